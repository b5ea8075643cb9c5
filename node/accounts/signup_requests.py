"""Sign-up confirmed by email, when the node can send email.

The sign-up form answers the same page ("we sent you a link") whether or not the address has
an account, so the form cannot be used to learn who is a member. A new address gets a link
that creates the account; an address that has an account already gets an email telling its
owner that someone tried (and how to log in or choose a new password). The work, and the
argon2 hash that it costs, happens for both. Without SMTP the node cannot prove that an
address belongs to whoever types it: sign-up then makes the account at once (routes/accounts).
"""

from __future__ import annotations

import secrets

from node.accounts import emails
from node.accounts.errors import FormError
from node.accounts.members import NewMember, check_new_member, create_member, free_username
from node.accounts.passwords import token_hash
from node.actors import LocalActor, by_id
from node.auth import hash_password
from node.context import Node
from node.db import now
from node.i18n import _

VALID_SECONDS = 24 * 3600
MAX_TOKEN = 100


def confirm_path(token: str) -> str:
    return f"/signup/confirm/{token}"


async def check(node: Node, form: NewMember) -> NewMember:
    """The form's problems that say nothing about the address having an account."""
    return await check_new_member(node, form, email_may_be_known=True)


async def request_signup(node: Node, clean: NewMember, org: LocalActor | None) -> None:
    """Runs after the answer was sent: emails a confirmation link, or tells the owner of a
    known address that someone tried."""
    password_hash = hash_password(clean.password)
    known = await node.db.fetch_one("SELECT email, locale FROM users WHERE email = :e",
                                    {"e": clean.email})
    if known is not None:
        await emails.signup_attempt_on_known_address(node, known["email"],
                                                     known["locale"] or clean.locale)
        return
    token = secrets.token_urlsafe(32)
    stamp = now()
    await node.db.execute("DELETE FROM signup_requests WHERE expires_at <= :n", {"n": stamp})
    await node.db.execute(
        "INSERT INTO signup_requests (token_hash, email, password_hash, username, "
        "display_name, locale, org_id, created_at, expires_at) "
        "VALUES (:h, :e, :p, :u, :d, :l, :o, :t, :x)",
        {"h": token_hash(token), "e": clean.email, "p": password_hash,
         "u": clean.username, "d": clean.display_name, "l": clean.locale,
         "o": org.id if org else None, "t": stamp, "x": stamp + VALID_SECONDS})
    await emails.confirm_signup(node, clean.email, clean.locale, node.url(confirm_path(token)))


async def pending(node: Node, token: str) -> dict | None:
    if not token or len(token) > MAX_TOKEN:
        return None
    return await node.db.fetch_one(
        "SELECT email, display_name FROM signup_requests WHERE token_hash = :h "
        "AND expires_at > :n", {"h": token_hash(token), "n": now()})


async def confirm(node: Node, token: str) -> str:
    """Creates the account a confirmation link is for (once); returns the new user's id."""
    invalid = FormError({"token": _("This link does not work any more: it was used already, "
                                    "or it expired. Sign up again.")})
    if not token or len(token) > MAX_TOKEN:
        raise invalid
    row = await node.db.fetch_one(
        "DELETE FROM signup_requests WHERE token_hash = :h AND expires_at > :n RETURNING *",
        {"h": token_hash(token), "n": now()})
    if row is None:
        raise invalid
    if await node.db.fetch_val("SELECT 1 FROM users WHERE email = :e", {"e": row["email"]}):
        # Two links for one address: the first one used made the account.
        raise FormError({"token": _("This address has an account already: log in.")})
    username = row["username"]
    if username:
        username = await free_username(node, username)
    org = await by_id(node, row["org_id"]) if row["org_id"] else None
    form = NewMember(email=row["email"], password="", username=username,
                     display_name=row["display_name"], locale=row["locale"])
    return await create_member(node, form, org=org, password_hash=row["password_hash"])
