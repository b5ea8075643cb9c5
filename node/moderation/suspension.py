"""A suspended member is signed out: `actions.suspend` ends every stored session of theirs at
once, and this middleware refuses any session of a suspended account that still comes in (one
made by a sign-in racing the suspension), whatever page it is for."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from node.moderation.actions import is_suspended


class SuspensionMiddleware:
    """Sits inside the session middleware, so the session is already decoded here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope.get("session") if scope["type"] == "http" else None
        user_id = session.get("user_id") if session else None
        if user_id:
            node = scope["app"].state.node
            if await is_suspended(node, user_id):
                # Cleared, the session is deleted when the response starts (sessions.save).
                session.clear()
        await self.app(scope, receive, send)
