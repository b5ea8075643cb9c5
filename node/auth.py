"""Accounts: argon2 password hashes, sign-in checks."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from node.context import Node
from node.db import new_id, now
from node.ratelimit import limiter_of

_hasher = PasswordHasher()
ROLES = ("member", "coordinator", "admin")


class AccountError(ValueError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def create_user(
    node: Node, email: str, password: str, role: str = "member", actor_id: str | None = None
) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError("a valid email address is needed")
    if len(password) < 8:
        raise AccountError("the password needs at least 8 characters")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}")
    if await node.db.fetch_one("SELECT id FROM users WHERE email = :e", {"e": email}):
        raise AccountError("an account with this email exists already")
    user_id = new_id()
    await node.db.execute(
        "INSERT INTO users (id, email, password_hash, actor_id, role, created_at) "
        "VALUES (:i, :e, :p, :a, :r, :t)",
        {"i": user_id, "e": email, "p": hash_password(password), "a": actor_id, "r": role,
         "t": now()},
    )
    return user_id


async def authenticate(node: Node, email: str, password: str, *, address: str) -> dict | None:
    """The account if `password` is its password. Every form that checks a password comes
    here, so every check is rate-limited per client `address` and per account (RateLimited);
    only wrong passwords count against the limits."""
    email = email.strip().lower()
    refund = limiter_of(node).take_password_attempt(address, email)
    row = await node.db.fetch_one(
        "SELECT id, email, role, password_hash FROM users WHERE email = :e", {"e": email})
    if row is None:
        _hasher.hash(password)  # spend the same time whether or not the account exists
        return None
    try:
        _hasher.verify(row["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    refund()
    return row


async def set_password(node: Node, user_id: str, password: str) -> None:
    """Stores a new password (the caller ends the sessions it should)."""
    await node.db.execute("UPDATE users SET password_hash = :p WHERE id = :i",
                          {"p": hash_password(password), "i": user_id})
