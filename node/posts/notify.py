"""Tells members about responses through node.notifications, when that module is present.

A notification that cannot be stored must never undo the response it is about, so failures
are logged and swallowed here.
"""

from __future__ import annotations

import logging

from node.context import Node

log = logging.getLogger(__name__)

try:
    from node import notifications
except ImportError:  # pragma: no cover - only while node.notifications is absent from the tree
    notifications = None  # type: ignore[assignment]


async def new_response(node: Node, post: dict, responder: str) -> None:
    if notifications is None or not post.get("author_user_id"):
        return
    try:
        await notifications.notify_new_response(
            node, author_user_id=post["author_user_id"], post_title=post["title"],
            post_url=node.url(f"/posts/{post['id']}/responses"), responder=responder)
    except Exception:
        log.exception("could not notify the author of %s", post["id"])


async def response_accepted(node: Node, post: dict, responder_user_id: str | None) -> None:
    if notifications is None or not responder_user_id:
        return
    try:
        await notifications.notify_response_accepted(
            node, responder_user_id=responder_user_id, post_title=post["title"],
            post_url=node.url(f"/posts/{post['id']}"))
    except Exception:
        log.exception("could not notify the responder of %s", post["id"])


async def new_post(node: Node, post: dict) -> None:
    """A post appeared (written here, or received from a followed node): tell the members who
    follow its category or neighbourhood."""
    if notifications is None:
        return
    try:
        await notifications.notify_new_post(
            node, post_title=post["title"], post_url=node.url(f"/posts/{post['id']}"),
            category=post.get("category") or "", neighbourhood=post.get("neighbourhood") or "",
            author_user_id=post.get("author_user_id"))
    except Exception:
        log.exception("could not tell the followers of %s's topics", post["id"])
