"""Web sessions kept in the database. The cookie holds only a random 256-bit id; the row,
keyed by the id's SHA-256, holds who is signed in and the little a page remembers (CSRF token,
a notice to show once).

Why a random id and not a signed one: the id cannot be forged without the secret key either
way, but a row can be deleted, so logging out, changing one's password, "sign out everywhere"
and a suspension end a session for good, and a stolen copy of the cookie dies with it. Storing
only the hash means a copy of the database or of a backup holds no usable cookie.

`request.session` stays the dict starlette code expects. Whenever the signed-in user changes
(sign-in, sign-out), the session gets a new id, so an id planted before sign-in (session
fixation) is worth nothing after it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.context import Node
from node.db import now

COOKIE = "entraide_session"
SIGNED_IN_SECONDS = 14 * 86400  # since the last visit
VISITOR_SECONDS = 2 * 3600  # a visitor's session only carries a form's CSRF token
TOUCH_SECONDS = 3600  # the sliding expiry is written at most this often
PURGE_SECONDS = 300
MAX_TOKEN = 100


def id_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class Session(dict):
    """The session of one request: its data, plus what saving it needs to know."""

    def __init__(self, data: dict[str, Any], key: str | None = None,
                 user_id: str | None = None, last_seen: float = 0.0) -> None:
        super().__init__(data)
        if user_id:
            self["user_id"] = user_id
        self.key = key  # the stored id hash; None until the session is stored
        self.loaded = dict(self)
        self.last_seen = last_seen


def _lifetime(user_id: str | None) -> int:
    return SIGNED_IN_SECONDS if user_id else VISITOR_SECONDS


async def load(node: Node, token: str | None) -> Session:
    """The live session the cookie names, else a new empty one (nothing stored yet)."""
    if not token or len(token) > MAX_TOKEN:
        return Session({})
    key = id_hash(token)
    row = await node.db.fetch_one(
        "SELECT user_id, data, last_seen FROM web_sessions WHERE id_hash = :h "
        "AND expires_at > :n", {"h": key, "n": now()})
    if row is None:
        return Session({})
    try:
        data = json.loads(row["data"])
    except ValueError:
        data = {}
    return Session(data if isinstance(data, dict) else {}, key, row["user_id"],
                   row["last_seen"])


def _cookie(token: str, max_age: int, secure: bool) -> str:
    return (f"{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
            + ("; Secure" if secure else ""))


async def save(node: Node, session: Session, secure: bool,
               may_start: Callable[[], bool]) -> str | None:
    """Writes what the request changed; returns the Set-Cookie value to send, if any.
    `may_start` says whether a visitor (not signed in) may get a new stored session."""
    user_id = session.get("user_id") or None
    data = {k: v for k, v in session.items() if k != "user_id"}
    stamp = now()
    lifetime = _lifetime(user_id)
    if session.key is not None and user_id != session.loaded.get("user_id"):
        # Signed in or out: the old id ends here; what remains goes under a new id.
        await node.db.execute("DELETE FROM web_sessions WHERE id_hash = :h", {"h": session.key})
        session.key = None
        if not session:
            return _cookie("", 0, secure)
    if session.key is not None:
        if not session:
            await node.db.execute("DELETE FROM web_sessions WHERE id_hash = :h",
                                  {"h": session.key})
            return _cookie("", 0, secure)
        changed = dict(session) != session.loaded
        if not changed and stamp - session.last_seen < TOUCH_SECONDS:
            return None
        # An UPDATE only: a session ended meanwhile (sign out everywhere) stays ended.
        await node.db.execute(
            "UPDATE web_sessions SET data = :d, last_seen = :t, expires_at = :x "
            "WHERE id_hash = :h",
            {"d": json.dumps(data), "t": stamp, "x": stamp + lifetime, "h": session.key})
        return None
    if not session or (user_id is None and not may_start()):
        return None
    token = secrets.token_urlsafe(32)
    session.key = id_hash(token)
    await node.db.execute(
        "INSERT INTO web_sessions (id_hash, user_id, data, created_at, last_seen, expires_at) "
        "VALUES (:h, :u, :d, :t, :t, :x)",
        {"h": session.key, "u": user_id, "d": json.dumps(data), "t": stamp,
         "x": stamp + lifetime})
    return _cookie(token, lifetime, secure)


async def end_all(node: Node, user_id: str) -> None:
    """Signs a member out everywhere: every session of theirs stops working now."""
    await node.db.execute("DELETE FROM web_sessions WHERE user_id = :u", {"u": user_id})


async def end_others(node: Node, user_id: str, keep: Session) -> None:
    """Signs a member out of every session but `keep` (the one they are using)."""
    await node.db.execute(
        "DELETE FROM web_sessions WHERE user_id = :u AND id_hash <> :h",
        {"u": user_id, "h": keep.key or ""})


async def count(node: Node, user_id: str) -> int:
    return int(await node.db.fetch_val(
        "SELECT COUNT(*) FROM web_sessions WHERE user_id = :u AND expires_at > :n",
        {"u": user_id, "n": now()}) or 0)


class ServerSessionMiddleware:
    """Puts the request's `Session` in the scope and stores its changes when the response
    starts. `may_start(address)` limits how many visitor sessions one address makes."""

    def __init__(self, app: ASGIApp, secure: bool,
                 may_start: Callable[[str], bool] = lambda address: True) -> None:
        self.app = app
        self.secure = secure
        self.may_start = may_start
        self.last_purge = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        node: Node = scope["app"].state.node
        connection = HTTPConnection(scope)
        session = await load(node, connection.cookies.get(COOKIE))
        scope["session"] = session
        address = connection.client.host if connection.client else "unknown"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = await save(node, session, self.secure,
                                    lambda: self.may_start(address))
                if cookie is not None:
                    message.setdefault("headers", []).append(
                        (b"set-cookie", cookie.encode("latin-1")))
                await self._purge(node)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _purge(self, node: Node) -> None:
        if time.monotonic() - self.last_purge < PURGE_SECONDS:
            return
        self.last_purge = time.monotonic()
        await node.db.execute("DELETE FROM web_sessions WHERE expires_at <= :n", {"n": now()})
