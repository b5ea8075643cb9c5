"""Checks of what people type in account forms; each returns a translated message or None."""

from __future__ import annotations

import re

from node.actors import RESERVED, USERNAME
from node.i18n import _

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
# argon2 hashes any length, but a megabyte password is a cheap way to burn CPU.
MAX_PASSWORD = 256
MAX_NAME = 80


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    if not email or len(email) > 254 or not EMAIL.match(email):
        return _("Enter a valid email address, for example name@example.org.")
    return None


def password_problem(password: str, confirm: str | None = None) -> str | None:
    if len(password) < MIN_PASSWORD:
        return _("The password needs at least 8 characters.")
    if len(password) > MAX_PASSWORD:
        return _("The password is too long (256 characters at most).")
    if confirm is not None and confirm != password:
        return _("The two passwords are different.")
    return None


def username_problem(username: str) -> str | None:
    if not USERNAME.match(username) or username in RESERVED:
        return _("A username has 1 to 30 characters: lowercase letters, digits, '.', '-' "
                 "or '_', and starts with a letter, a digit or '_'.")
    return None


def name_problem(name: str) -> str | None:
    if len(name) > MAX_NAME:
        return _("The name is too long (80 characters at most).")
    if any(ord(c) < 32 for c in name):
        return _("The name cannot hold control characters.")
    return None


def username_from_email(email: str) -> str:
    """A handle proposed from the address: `Marie.Dupont+x@...` -> `marie.dupont_x`."""
    local = email.split("@", 1)[0].lower()
    cleaned = re.sub(r"[^a-z0-9_.\-]", "_", local).lstrip(".-")[:30]
    return cleaned or "member"
