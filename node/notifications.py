"""Notifications of members: stored for the web page (with an unread count in the menu) and,
when an SMTP server is configured, sent by email in the member's language.

The posts code calls `notify_new_response`, `notify_response_accepted` and `notify_new_post`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from node.config import Settings
from node.context import Node
from node.db import dumps, now
from node.i18n import DEFAULT_LOCALE, N_, translate

log = logging.getLogger(__name__)

NEW_RESPONSE = "new_response"
RESPONSE_ACCEPTED = "response_accepted"
NEW_POST = "new_post"
# One sentence per kind; %(title)s, %(by)s... come from the payload.
MESSAGES = {
    NEW_RESPONSE: N_("New response to “%(title)s” from %(by)s"),
    RESPONSE_ACCEPTED: N_("Your response to “%(title)s” was accepted"),
    NEW_POST: N_("New post you follow: “%(title)s”"),
}
# Emails being sent; kept so that the tasks are not collected before they finish.
_sending: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class Notification:
    id: int
    kind: str
    payload: dict
    is_read: bool
    created_at: float

    def text(self, locale: str) -> str:
        return describe(self.kind, self.payload, locale)

    @property
    def url(self) -> str:
        return str(self.payload.get("url") or "")


def describe(kind: str, payload: dict, locale: str) -> str:
    template = translate(locale, MESSAGES.get(kind, "%(title)s"))
    values = {"title": payload.get("title", ""), "by": payload.get("by", "")}
    return template % values


async def notify(node: Node, user_id: str, kind: str, payload: dict) -> int:
    """Stores a notification for a member and emails it when SMTP is configured."""
    if kind not in MESSAGES:
        raise ValueError(f"unknown notification kind {kind!r}")
    # RETURNING: the new id on both dialects (execute() gives it on SQLite only).
    notification_id = await node.db.fetch_val(
        "INSERT INTO notifications (user_id, kind, payload, is_read, created_at) "
        "VALUES (:u, :k, :p, 0, :t) RETURNING id",
        {"u": user_id, "k": kind, "p": dumps(payload), "t": now()},
    )
    if node.settings.smtp_host:
        await _queue_email(node, user_id, kind, payload)
    return int(notification_id) if notification_id is not None else 0


async def notify_new_response(
    node: Node, *, author_user_id: str, post_title: str, post_url: str, responder: str
) -> int:
    """Someone answered a post: tell its author (or the coordinator of a proxied need)."""
    return await notify(node, author_user_id, NEW_RESPONSE,
                        {"title": post_title, "url": post_url, "by": responder})


async def notify_response_accepted(
    node: Node, *, responder_user_id: str, post_title: str, post_url: str
) -> int:
    """The author accepted a local member's response."""
    return await notify(node, responder_user_id, RESPONSE_ACCEPTED,
                        {"title": post_title, "url": post_url})


async def notify_new_post(
    node: Node, *, post_title: str, post_url: str, category: str, neighbourhood: str,
    author_user_id: str | None = None,
) -> list[str]:
    """A post appeared (here or from a followed node): tell every member who follows its
    category or its neighbourhood, once each, never its own author. Returns who was told."""
    rows = await node.db.fetch_all(
        "SELECT DISTINCT user_id FROM follow_preferences WHERE "
        "(kind = 'category' AND value = :c) OR (kind = 'neighbourhood' AND value = :n) "
        "ORDER BY user_id",
        {"c": category, "n": neighbourhood},
    )
    told = [r["user_id"] for r in rows if r["user_id"] != author_user_id]
    for user_id in told:
        await notify(node, user_id, NEW_POST,
                     {"title": post_title, "url": post_url, "category": category,
                      "neighbourhood": neighbourhood})
    return told


async def unread_count(node: Node, user_id: str) -> int:
    return int(await node.db.fetch_val(
        "SELECT COUNT(*) FROM notifications WHERE user_id = :u AND is_read = 0",
        {"u": user_id}) or 0)


async def recent(node: Node, user_id: str, limit: int = 50) -> list[Notification]:
    rows = await node.db.fetch_all(
        "SELECT id, kind, payload, is_read, created_at FROM notifications WHERE user_id = :u "
        "ORDER BY created_at DESC LIMIT :n",
        {"u": user_id, "n": limit},
    )
    return [Notification(id=r["id"], kind=r["kind"], payload=json.loads(r["payload"]),
                         is_read=bool(r["is_read"]), created_at=r["created_at"]) for r in rows]


async def mark_all_read(node: Node, user_id: str) -> None:
    await node.db.execute(
        "UPDATE notifications SET is_read = 1 WHERE user_id = :u AND is_read = 0",
        {"u": user_id})


# --- email -----------------------------------------------------------------------------------

async def _queue_email(node: Node, user_id: str, kind: str, payload: dict) -> None:
    row = await node.db.fetch_one("SELECT email, locale FROM users WHERE id = :u",
                                  {"u": user_id})
    if row is None:
        return
    locale = row["locale"] or DEFAULT_LOCALE
    try:
        message = build_email(node.settings, row["email"], kind, payload, locale)
    except (ValueError, TypeError) as exc:
        log.warning("notification email to %s not built: %s", row["email"], exc)
        return
    send_later(node.settings, message)


def send_later(settings: Settings, message: EmailMessage) -> None:
    """Sends an email in a thread; the request that caused it does not wait for the mail
    server, and a failure is logged."""
    task = asyncio.create_task(_send_logged(settings, message))
    _sending.add(task)
    task.add_done_callback(_sending.discard)


def build_email(settings: Settings, to: str, kind: str, payload: dict,
                locale: str) -> EmailMessage:
    subject = describe(kind, payload, locale)
    url = str(payload.get("url") or settings.url("/notifications"))
    if url.startswith("/"):
        url = settings.url(url)
    footer = translate(locale, "You receive this email because you have an account on %(node)s. "
                               "Choose what you follow on %(url)s.")
    message = new_email(settings, to, subject)
    message.set_content(
        f"{subject}\n\n{url}\n\n-- \n"
        + footer % {"node": settings.base_url, "url": settings.url("/account")} + "\n")
    # After set_content, which replaces every Content-* header.
    message["Content-Language"] = locale
    return message


def new_email(settings: Settings, to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    # A title from another server may hold line breaks: a header must be one line.
    message["Subject"] = " ".join(subject.split())
    message["From"] = settings.smtp_from or f"entraide@{settings.domain or 'localhost'}"
    message["To"] = to
    return message


def send_email(settings: Settings, message: EmailMessage) -> None:
    """Blocking SMTP delivery (run in a thread)."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


async def _send_logged(settings: Settings, message: EmailMessage) -> None:
    try:
        await asyncio.to_thread(send_email, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        # The notification is stored already; a lost email is logged, not retried.
        log.warning("notification email to %s failed: %s", message["To"], exc)


async def wait_for_emails() -> None:
    """Waits for the emails being sent (the app's shutdown, tests)."""
    while _sending:
        await asyncio.gather(*list(_sending), return_exceptions=True)
