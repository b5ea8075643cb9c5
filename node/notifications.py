"""Notifications of members: stored for the web page (unread count in the menu, read when
opened) and, unless the member opted out of that kind, queued as an email in the member's
language (node/mailqueue.py), with the first lines of the message and a link.

node/posts/notify.py turns the events of the posts domain into calls of `notify`.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import nh3

from node.context import Node
from node.db import dumps, now
from node.i18n import DEFAULT_LOCALE, LOCALES, N_, gettext, ngettext, reset_locale, set_locale
from node.mailqueue import enqueue_email
from node.moderation.blocks import hidden_from

log = logging.getLogger(__name__)

NEW_RESPONSE = "new_response"
NEW_MESSAGE = "new_message"
RESPONSE_ACCEPTED = "response_accepted"
RESPONSE_DECLINED = "response_declined"
ACCEPTANCE_UNDONE = "acceptance_undone"
POST_STATUS_CHANGED = "post_status_changed"
NEW_POST = "new_post"
# Matches (node/matching.py): a new need fits my offer, a new offer my need, and, for the author
# of a new post, the posts that already fit it. Their frequency is chosen apart (at once, digest,
# never), so they are not among the KIND_LABELS of the email choices.
NEED_FITS_OFFER = "need_fits_offer"
OFFER_FITS_NEED = "offer_fits_need"
MATCHES_FOUND = "matches_found"
# One sentence per kind; %(title)s, %(by)s... come from the payload.
MESSAGES = {
    NEW_RESPONSE: N_("New response to “%(title)s” from %(by)s"),
    NEW_MESSAGE: N_("New message from %(by)s about “%(title)s”"),
    RESPONSE_ACCEPTED: N_("Your response to “%(title)s” was accepted"),
    RESPONSE_DECLINED: N_("Your response to “%(title)s” was declined"),
    ACCEPTANCE_UNDONE: N_("The acceptance of your response to “%(title)s” was undone"),
    POST_STATUS_CHANGED: N_("“%(title)s” changed status"),
    NEW_POST: N_("New post you follow: “%(title)s”"),
    NEED_FITS_OFFER: N_("A new need fits your offer “%(mine)s”: “%(title)s”"),
    OFFER_FITS_NEED: N_("A new offer fits your need “%(mine)s”: “%(title)s”"),
    MATCHES_FOUND: N_("Posts fit “%(title)s”"),
}
# A status change says which one.
STATUS_MESSAGES = {
    "closed": N_("“%(title)s” was closed"),
    "withdrawn": N_("“%(title)s” was withdrawn"),
    "fulfilled": N_("“%(title)s” is fulfilled"),
    "expired": N_("“%(title)s” has expired"),
}
# The email preferences page: what each kind is about, in the order shown.
KIND_LABELS = {
    NEW_RESPONSE: N_("A new response to one of my posts"),
    NEW_MESSAGE: N_("A new message in one of my conversations"),
    RESPONSE_ACCEPTED: N_("My response was accepted"),
    RESPONSE_DECLINED: N_("My response was declined"),
    ACCEPTANCE_UNDONE: N_("The acceptance of my response was undone"),
    POST_STATUS_CHANGED: N_("A post I responded to was closed, withdrawn or fulfilled"),
    NEW_POST: N_("A new post in a category or neighbourhood I follow"),
}
# The first lines of a message, in the list and in the email.
EXCERPT_LINES = 4
EXCERPT_CHARS = 300
_BREAKS = re.compile(r"<\s*(br|/p|/li|/div|/h[1-6]|/blockquote|/pre)\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Notification:
    id: int
    kind: str
    payload: dict
    is_read: bool
    created_at: float
    response_id: str | None = None

    def text(self, locale: str) -> str:
        return describe(self.kind, self.payload, locale)

    @property
    def url(self) -> str:
        return str(self.payload.get("url") or "")

    @property
    def excerpt(self) -> str:
        return str(self.payload.get("excerpt") or "")

    @property
    def open_path(self) -> str:
        """The link that marks it read, then leads to what it is about."""
        return f"/notifications/{self.id}"


def _in(locale: str) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def locale_of(user: dict) -> str:
    """The language a member reads their emails in."""
    return _in(user.get("locale") or "")


def describe(kind: str, payload: dict, locale: str) -> str:
    token = set_locale(_in(locale))
    try:
        return _describe(kind, payload)
    finally:
        reset_locale(token)


def _describe(kind: str, payload: dict) -> str:
    """The sentence of a notification in the current locale."""
    message = MESSAGES.get(kind, "%(title)s")
    if kind == POST_STATUS_CHANGED:
        message = STATUS_MESSAGES.get(str(payload.get("status")), message)
    values = {"title": payload.get("title", ""), "by": payload.get("by", ""),
              "mine": payload.get("mine", ""), "num": payload.get("num", 0)}
    if kind == MATCHES_FOUND:
        # How many posts fit a new post of its author, by the post's kind.
        num = int(values["num"] or 0)
        if payload.get("kind") == "offer":
            return ngettext("%(num)d need fits your offer “%(title)s”",
                            "%(num)d needs fit your offer “%(title)s”", num) % values
        return ngettext("%(num)d offer fits your need “%(title)s”",
                        "%(num)d offers fit your need “%(title)s”", num) % values
    return gettext(message) % values


def excerpt(markup: str, lines: int = EXCERPT_LINES, chars: int = EXCERPT_CHARS) -> str:
    """The first lines of a message as plain text (it may be HTML or plain text)."""
    text = html.unescape(nh3.clean(_BREAKS.sub("\n", markup or ""), tags=set()))
    kept = [" ".join(line.split()) for line in text.splitlines()]
    kept = [line for line in kept if line]
    short = "\n".join(kept[:lines])
    if len(short) > chars:
        return short[:chars].rstrip() + "…"
    return short + ("\n…" if len(kept) > lines else "")


# --- storing and telling ---------------------------------------------------------------------

async def notify(node: Node, user_id: str, kind: str, payload: dict,
                 response_id: str | None = None, *, email: bool = True) -> int:
    """Stores a notification for a member and, unless they opted out of this kind (or `email`
    is False: a digest tells it later), queues its email, both in one transaction (the
    caller's, when there is one). Returns its id."""
    if kind not in MESSAGES:
        raise ValueError(f"unknown notification kind {kind!r}")
    async with node.db.transaction():
        # RETURNING: the new id on both dialects (execute() gives it on SQLite only).
        notification_id = int(await node.db.fetch_val(
            "INSERT INTO notifications (user_id, kind, payload, is_read, created_at, "
            "response_id) VALUES (:u, :k, :p, 0, :t, :r) RETURNING id",
            {"u": user_id, "k": kind, "p": dumps(payload), "t": now(), "r": response_id},
        ))
        if email and node.settings.smtp_host \
                and kind not in await email_opt_outs(node, user_id):
            await _queue_email(node, user_id, notification_id, kind, payload)
    return notification_id


async def notify_new_response(
    node: Node, *, author_user_id: str, post_title: str, post_url: str, responder: str,
    message: str = "", response_id: str | None = None,
) -> int:
    """Someone answered a post: tell its author (or the coordinator of a proxied need)."""
    return await notify(node, author_user_id, NEW_RESPONSE,
                        {"title": post_title, "url": post_url, "by": responder,
                         "excerpt": excerpt(message)}, response_id)


async def notify_response_accepted(
    node: Node, *, responder_user_id: str, post_title: str, post_url: str, note: str = "",
    response_id: str | None = None,
) -> int:
    """The author accepted a local member's response."""
    return await notify(node, responder_user_id, RESPONSE_ACCEPTED,
                        {"title": post_title, "url": post_url, "excerpt": excerpt(note)},
                        response_id)


async def notify_new_post(
    node: Node, *, post_title: str, post_url: str, category: str, neighbourhood: str,
    author_user_id: str | None = None, description: str = "", actor: str | None = None,
) -> list[str]:
    """A post appeared (here or from a followed node): tell every member who follows its
    category or its neighbourhood, once each, never its own author nor a member who blocked
    the `actor` who wrote it. Returns who was told."""
    rows = await node.db.fetch_all(
        "SELECT DISTINCT user_id FROM follow_preferences WHERE "
        "(kind = 'category' AND value = :c) OR (kind = 'neighbourhood' AND value = :n) "
        "ORDER BY user_id",
        {"c": category, "n": neighbourhood},
    )
    told = [r["user_id"] for r in rows if r["user_id"] != author_user_id
            and not (actor and actor in await hidden_from(node, r["user_id"]))]
    payload = {"title": post_title, "url": post_url, "category": category,
               "neighbourhood": neighbourhood, "excerpt": excerpt(description)}
    for user_id in told:
        await notify(node, user_id, NEW_POST, payload)
    return told


# --- reading ---------------------------------------------------------------------------------

def _from_row(row: dict) -> Notification:
    return Notification(id=int(row["id"]), kind=row["kind"], payload=json.loads(row["payload"]),
                        is_read=bool(row["is_read"]), created_at=row["created_at"],
                        response_id=row["response_id"])


async def unread_count(node: Node, user_id: str) -> int:
    return int(await node.db.fetch_val(
        "SELECT COUNT(*) FROM notifications WHERE user_id = :u AND is_read = 0",
        {"u": user_id}) or 0)


async def recent(node: Node, user_id: str, limit: int = 50,
                 before: float | None = None) -> list[Notification]:
    """A member's newest notifications (older than `before` for the next page)."""
    older = "AND created_at < :b " if before is not None else ""
    rows = await node.db.fetch_all(
        "SELECT id, kind, payload, is_read, created_at, response_id FROM notifications "
        f"WHERE user_id = :u {older}ORDER BY created_at DESC, id DESC LIMIT :n",
        {"u": user_id, "n": limit, **({"b": before} if before is not None else {})},
    )
    return [_from_row(r) for r in rows]


async def open_notification(node: Node, user_id: str, notification_id: int) -> Notification | None:
    """Marks one of the member's notifications read and returns it (None if not theirs)."""
    row = await node.db.fetch_one(
        "UPDATE notifications SET is_read = 1 WHERE id = :i AND user_id = :u "
        "RETURNING id, kind, payload, is_read, created_at, response_id",
        {"i": notification_id, "u": user_id})
    return _from_row(row) if row else None


async def mark_all_read(node: Node, user_id: str) -> None:
    await node.db.execute(
        "UPDATE notifications SET is_read = 1 WHERE user_id = :u AND is_read = 0",
        {"u": user_id})


async def mark_conversation_read(node: Node, user_id: str, response_id: str) -> None:
    """The member opened a conversation: what it told them about it is read."""
    await node.db.execute(
        "UPDATE notifications SET is_read = 1 WHERE user_id = :u AND response_id = :r "
        "AND is_read = 0", {"u": user_id, "r": response_id})


async def unread_conversations(node: Node, user_id: str) -> dict[str, int]:
    """Unread notifications per conversation (response id) of a member."""
    rows = await node.db.fetch_all(
        "SELECT response_id, COUNT(*) AS n FROM notifications WHERE user_id = :u "
        "AND is_read = 0 AND response_id IS NOT NULL GROUP BY response_id", {"u": user_id})
    return {r["response_id"]: int(r["n"]) for r in rows}


async def unread_by_post(node: Node, user_id: str) -> dict[str, int]:
    """Unread notifications about the conversations of each post (an author's view)."""
    rows = await node.db.fetch_all(
        "SELECT r.post_id, COUNT(*) AS n FROM notifications n "
        "JOIN responses r ON r.id = n.response_id WHERE n.user_id = :u AND n.is_read = 0 "
        "GROUP BY r.post_id", {"u": user_id})
    return {r["post_id"]: int(r["n"]) for r in rows}


# --- email preferences -----------------------------------------------------------------------

async def email_opt_outs(node: Node, user_id: str) -> set[str]:
    rows = await node.db.fetch_all("SELECT kind FROM email_opt_outs WHERE user_id = :u",
                                   {"u": user_id})
    return {r["kind"] for r in rows}


async def set_email_opt_outs(node: Node, user_id: str, kinds: Iterable[str]) -> None:
    """The kinds the member no longer wants by email (unknown kinds are ignored)."""
    wanted = sorted({k for k in kinds if k in MESSAGES})
    async with node.db.transaction():
        await node.db.execute("DELETE FROM email_opt_outs WHERE user_id = :u", {"u": user_id})
        await node.db.execute_many(
            "INSERT INTO email_opt_outs (user_id, kind) VALUES (:u, :k)",
            [{"u": user_id, "k": k} for k in wanted])


# --- email -----------------------------------------------------------------------------------

async def _queue_email(node: Node, user_id: str, notification_id: int, kind: str,
                       payload: dict) -> None:
    user = await node.db.fetch_one(
        "SELECT email, locale, display_name FROM users WHERE id = :u", {"u": user_id})
    if user is None:
        return
    unread = await unread_count(node, user_id)
    locale = _in(user["locale"])
    token = set_locale(locale)
    try:
        subject, text = email_text(node, user, notification_id, kind, payload, unread)
    finally:
        reset_locale(token)
    try:
        await enqueue_email(node, user["email"], subject, text, locale=locale)
    except ValueError as exc:  # an address that cannot be written in a header
        log.warning("notification email to %r not queued: %s", user["email"], exc)


def email_text(node: Node, user: dict, notification_id: int, kind: str, payload: dict,
               unread: int) -> tuple[str, str]:
    """Subject and body of a notification email, in the current locale."""
    subject = _describe(kind, payload)
    name = user.get("display_name") or ""
    lines = [gettext("Hello %(name)s,") % {"name": name} if name else gettext("Hello,"), "",
             subject + "."]
    quoted = str(payload.get("excerpt") or "")
    if quoted:
        if kind in (NEW_RESPONSE, NEW_MESSAGE):
            intro = gettext("%(by)s wrote:") % {"by": payload.get("by", "")}
        elif kind in (NEW_POST, NEED_FITS_OFFER, OFFER_FITS_NEED):
            intro = gettext("The post says:")
        elif kind == MATCHES_FOUND:
            intro = gettext("They are:")
        else:
            intro = gettext("The author's note:")
        lines += ["", intro, *(f"> {line}" for line in quoted.splitlines())]
    lines += ["", gettext("Open it here: %(url)s") % {
        "url": node.url(f"/notifications/{notification_id}")}]
    lines += ["", ngettext("You have %(num)d unread notification.",
                           "You have %(num)d unread notifications.", unread) % {"num": unread}]
    lines += ["", "-- ", gettext(
        "You receive this email because you have an account on %(node)s. "
        "Choose which emails you receive: %(url)s") % {
        "node": node.settings.base_url, "url": node.url("/notifications/settings")}]
    return subject, "\n".join(lines) + "\n"
