"""Changing and resetting passwords.

A reset is a link holding a random token; only the token's SHA-256 is stored. The link works
once and expires: an hour when it was emailed, a day when a coordinator made it to hand over
in person (for a member who has no email, or cannot read it). Using it sets the new password,
ends every session of the member and every other reset link. Changing one's password needs
the current one and ends the member's other sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from node.accounts import emails, sessions
from node.accounts.errors import FormError
from node.accounts.validation import normalise_email, password_problem
from node.auth import authenticate, set_password
from node.context import Node
from node.db import now
from node.i18n import _
from node.ratelimit import limiter_of

EMAILED_SECONDS = 3600
HANDED_OVER_SECONDS = 24 * 3600
KEEP_DEAD_SECONDS = 30 * 86400
MAX_TOKEN = 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def reset_path(token: str) -> str:
    return f"/password/reset/{token}"


@dataclass(frozen=True)
class ResetLink:
    token: str
    expires_at: float

    @property
    def path(self) -> str:
        return reset_path(self.token)


async def change_password(node: Node, user: dict, current: str, new: str, confirm: str, *,
                          address: str, session: sessions.Session) -> None:
    """Checks the current password (rate-limited like every password check), stores the new
    one and signs the member out everywhere but here. FormError says what is wrong."""
    errors: dict[str, str] = {}
    if problem := password_problem(new, confirm):
        errors["password"] = problem
    if await authenticate(node, user["email"], current, address=address) is None:
        errors["current"] = _("Your current password is not right.")
    if errors:
        raise FormError(errors)
    async with node.db.transaction():
        await set_password(node, user["id"], new)
        await _forget_reset_links(node, user["id"])
    await sessions.end_others(node, user["id"], session)
    await emails.password_changed(node, user["email"], user.get("locale") or "")


async def _forget_reset_links(node: Node, user_id: str) -> None:
    await node.db.execute(
        "UPDATE password_resets SET used_at = :t WHERE user_id = :u AND used_at IS NULL",
        {"t": now(), "u": user_id})


async def _new_link(node: Node, user_id: str, seconds: int, by: str | None) -> ResetLink:
    token = secrets.token_urlsafe(32)
    created = now()
    # Links dead for a month are of no use to anyone (not even to see who made which).
    await node.db.execute("DELETE FROM password_resets WHERE expires_at < :old",
                          {"old": created - KEEP_DEAD_SECONDS})
    await node.db.execute(
        "INSERT INTO password_resets (token_hash, user_id, created_by, created_at, expires_at) "
        "VALUES (:h, :u, :b, :c, :x)",
        {"h": token_hash(token), "u": user_id, "b": by, "c": created, "x": created + seconds})
    return ResetLink(token, created + seconds)


async def request_reset(node: Node, email: str, fallback_locale: str) -> None:
    """Emails a reset link if an account uses `email`. Says nothing either way: the page that
    asked answers the same whatever happens here (and before this runs)."""
    email = normalise_email(email)
    if not email or len(email) > 254 or not node.settings.smtp_host:
        return
    user = await node.db.fetch_one("SELECT id, email, locale FROM users WHERE email = :e",
                                   {"e": email})
    # A few emails an hour per address at most: the form cannot be used to flood a mailbox.
    if user is None or not limiter_of(node).may_email_reset(email):
        return
    link = await _new_link(node, user["id"], EMAILED_SECONDS, None)
    await emails.reset_link(node, user["email"], user["locale"] or fallback_locale,
                            node.url(link.path))


def may_reset_for(actor: dict, target: dict, shared_coordinated_org: bool) -> bool:
    """An admin may make a reset link for anyone but themselves (they change their own
    password); a coordinator for a plain member of an organisation they coordinate (never for
    another coordinator or an admin, whose account would give more power)."""
    if actor["id"] == target["id"]:
        return False
    if actor["role"] == "admin":
        return True
    return actor["role"] == "coordinator" and target["role"] == "member" and \
        shared_coordinated_org


async def coordinated_members(node: Node, coordinator: dict) -> list[dict]:
    """The accounts a coordinator or admin may make a reset link for, for the members page."""
    if coordinator["role"] == "admin":
        rows = await node.db.fetch_all(
            "SELECT u.id, u.email, u.role, u.display_name, a.username FROM users u "
            "LEFT JOIN actors a ON a.id = u.actor_id WHERE u.id <> :me ORDER BY u.created_at",
            {"me": coordinator["id"]})
        return rows
    return await node.db.fetch_all(
        "SELECT DISTINCT u.id, u.email, u.role, u.display_name, a.username, u.created_at "
        "FROM users u LEFT JOIN actors a ON a.id = u.actor_id "
        "JOIN memberships m ON m.user_id = u.id "
        "JOIN memberships mine ON mine.org_id = m.org_id AND mine.user_id = :me "
        "AND mine.role = 'coordinator' "
        "WHERE u.role = 'member' ORDER BY u.created_at", {"me": coordinator["id"]})


async def start_reset_for(node: Node, actor: dict, user_id: str) -> tuple[ResetLink, dict]:
    """A reset link made by a coordinator or admin, to hand to the member in person. The
    member is told by email when they have one and SMTP is configured."""
    target = await node.db.fetch_one(
        "SELECT id, email, role, display_name, locale FROM users WHERE id = :i", {"i": user_id})
    shared = bool(target) and bool(await node.db.fetch_val(
        "SELECT 1 FROM memberships m JOIN memberships mine ON mine.org_id = m.org_id "
        "WHERE m.user_id = :u AND mine.user_id = :me AND mine.role = 'coordinator'",
        {"u": user_id, "me": actor["id"]}))
    if target is None or not may_reset_for(actor, target, shared):
        raise FormError({"form": _("You cannot make a reset link for this account.")})
    link = await _new_link(node, target["id"], HANDED_OVER_SECONDS, actor["id"])
    await emails.reset_started_by_coordinator(
        node, target["email"], target["locale"] or "",
        actor.get("display_name") or actor["email"])
    return link, target


async def usable_reset(node: Node, token: str) -> dict | None:
    """The member a reset link is for, while it is unused and unexpired."""
    if not token or len(token) > MAX_TOKEN:
        return None
    return await node.db.fetch_one(
        "SELECT r.user_id, u.email FROM password_resets r JOIN users u ON u.id = r.user_id "
        "WHERE r.token_hash = :h AND r.used_at IS NULL AND r.expires_at > :n",
        {"h": token_hash(token), "n": now()})


async def use_reset(node: Node, token: str, password: str, confirm: str) -> dict:
    """Sets the new password through a reset link, once: the link, the member's other links
    and all their sessions end. Returns the member (id, email); FormError otherwise."""
    if problem := password_problem(password, confirm):
        raise FormError({"password": problem})
    if not token or len(token) > MAX_TOKEN:
        raise FormError({"token": invalid_link_text()})
    async with node.db.transaction():
        # Marking the link used is the test: of two uses at once, one UPDATE finds it unused.
        row = await node.db.fetch_one(
            "UPDATE password_resets SET used_at = :n WHERE token_hash = :h "
            "AND used_at IS NULL AND expires_at > :n RETURNING user_id",
            {"h": token_hash(token), "n": now()})
        if row is None:
            raise FormError({"token": invalid_link_text()})
        await set_password(node, row["user_id"], password)
        await _forget_reset_links(node, row["user_id"])
        await sessions.end_all(node, row["user_id"])
    user = await node.db.fetch_one("SELECT id, email FROM users WHERE id = :i",
                                   {"i": row["user_id"]})
    return user or {"id": row["user_id"], "email": ""}


def invalid_link_text() -> str:
    return _("This link does not work any more: it was used already, or it expired. Ask "
             "for a new one.")
