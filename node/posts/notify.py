"""The events of offers, needs and responses that members hear of (node/notifications.py).

One function per event. `post` and `response` are rows of `posts` and `responses` (dicts).
Each function works out who is told: local members only (remote people hear through
ActivityPub), never whoever caused the event, never a member who blocked the sender.
A notification that cannot be stored must never undo what it tells about, so failures are
logged and swallowed here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from node import matching
from node import notifications as n
from node.context import Node
from node.moderation.blocks import hidden_from
from node.posts import parties

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
# Statuses of a post that its responders hear of (in_progress is the acceptance itself).
TOLD_STATUSES = ("closed", "withdrawn", "fulfilled", "expired")


def _post_url(node: Node, post: Row) -> str:
    return node.url(f"/posts/{post['id']}")


def _conversation_url(node: Node, response_id: str | None, post: Row) -> str:
    return node.url(f"/responses/{response_id}") if response_id else _post_url(node, post)


def _responder(response: Row | str | None) -> tuple[str | None, str | None]:
    """(response id, responder's user id); a bare string is the responder's user id (the
    older calling convention)."""
    if response is None or isinstance(response, str):
        return None, response
    return response.get("id"), response.get("responder_user_id")


async def _blocked(node: Node, user_id: str, actor: str | None) -> bool:
    return bool(actor) and actor in await hidden_from(node, user_id)


async def _safely(what: str, post: Row, coro: Any) -> None:
    try:
        await coro
    except Exception:
        log.exception("could not notify %s about post %s", what, post.get("id"))


async def new_response(node: Node, post: Row, responder: str,
                       response: Row | None = None) -> None:
    """Someone responded to a post of this node: tell its author. `responder` is the name to
    show; `response` the new row (its message is quoted, its conversation linked)."""
    if post.get("remote"):
        return
    response = response or {}
    response_id = response.get("id")
    url = (node.url(f"/responses/{response_id}") if response_id
           else node.url(f"/posts/{post['id']}/responses"))
    # Whoever answers the post's responses: its author, or for a need posted on behalf of
    # someone, each coordinator of the organisation (node/posts/parties.py).
    for party in await parties.post_side(node, dict(post)):
        author = party.user_id
        if not author or await _blocked(node, author, response.get("responder_uri")):
            continue
        await _safely("the author", post, n.notify_new_response(
            node, author_user_id=author, post_title=post["title"], post_url=url,
            responder=responder, message=response.get("message_html") or "",
            response_id=response_id))


async def conversation_parties(node: Node, post: Row, response: Row) -> list[str]:
    """The local members who read a response's conversation: the one rule of
    node/posts/parties.py (for a need posted on behalf of someone, every coordinator of its
    organisation)."""
    return await parties.local_readers(node, dict(post), dict(response))


async def new_message(node: Node, post: Row, response: Row, *, sender_uri: str,
                      sender_user_id: str | None, sender_name: str, body_html: str) -> None:
    """A message in a response's conversation: tell the other parties, never the side that
    wrote it (known by its user, or by its actor for words the node writes on its behalf)."""
    writers = {sender_user_id}
    if sender_uri == response.get("responder_uri"):
        writers.add(response.get("responder_user_id"))
    if not post.get("remote") and sender_uri in (post.get("attributed_to"), post.get("org_uri")):
        writers.add(post.get("author_user_id"))
    for user_id in await conversation_parties(node, post, response):
        if user_id in writers or await _blocked(node, user_id, sender_uri):
            continue
        await _safely("a party", post, n.notify(
            node, user_id, n.NEW_MESSAGE,
            {"title": post["title"], "url": _conversation_url(node, response["id"], post),
             "by": sender_name, "excerpt": n.excerpt(body_html)},
            response["id"]))


async def response_accepted(node: Node, post: Row, response: Row | str | None, *,
                            note: str = "") -> None:
    """The author accepted a local member's response (`note`: their words, if any)."""
    response_id, user_id = _responder(response)
    if not user_id:
        return
    await _safely("the responder", post, n.notify_response_accepted(
        node, responder_user_id=user_id, post_title=post["title"],
        post_url=_conversation_url(node, response_id, post), note=note,
        response_id=response_id))


async def _to_responder(node: Node, post: Row, response: Row | str | None, kind: str,
                        note: str = "", **extra: str) -> None:
    response_id, user_id = _responder(response)
    if not user_id:
        return
    await _safely("the responder", post, n.notify(
        node, user_id, kind,
        {"title": post["title"], "url": _conversation_url(node, response_id, post),
         "excerpt": n.excerpt(note), **extra},
        response_id))


async def response_declined(node: Node, post: Row, response: Row | str | None, *,
                            note: str = "") -> None:
    """The author declined a local member's response, with a short note (text or HTML)."""
    await _to_responder(node, post, response, n.RESPONSE_DECLINED, note)


async def acceptance_undone(node: Node, post: Row, response: Row | str | None, *,
                            note: str = "") -> None:
    """The author undid the acceptance of a local member's response."""
    await _to_responder(node, post, response, n.ACCEPTANCE_UNDONE, note)


async def post_status_changed(node: Node, post: Row, status: str, *,
                              by_user_id: str | None = None) -> None:
    """A post was closed, withdrawn, fulfilled or expired: tell the local members whose
    response is still waiting or accepted (a declined one was told already)."""
    if status not in TOLD_STATUSES:
        return
    # Another server sends its kind Reject ("closed": the response becomes not_needed) and the
    # post's Delete or Update apart, in either order: its waiting responders hear of the new
    # status whichever comes first. Here, close() tells them before their responses change.
    waiting = "('pending', 'accepted', 'not_needed')" if post["remote"] else \
        "('pending', 'accepted')"
    rows = await node.db.fetch_all(
        "SELECT responder_user_id FROM responses WHERE post_id = :p "
        f"AND responder_user_id IS NOT NULL AND status IN {waiting} "
        "ORDER BY created_at", {"p": post["id"]})
    told: set[str] = set()
    for row in rows:
        user_id = row["responder_user_id"]
        if user_id == by_user_id or user_id in told:
            continue
        told.add(user_id)
        # About the post, not the conversation: reading the conversation leaves it unread.
        await _safely("a responder", post, n.notify(
            node, user_id, n.POST_STATUS_CHANGED,
            {"title": post["title"], "url": _post_url(node, post), "status": status}))


async def new_post(node: Node, post: Row) -> None:
    """A post appeared (written here, or received from a followed node): tell the members who
    follow its category or neighbourhood."""
    await _safely("the followers of its topics", post, n.notify_new_post(
        node, post_title=post["title"], post_url=_post_url(node, post),
        category=post.get("category") or "", neighbourhood=post.get("neighbourhood") or "",
        author_user_id=post.get("author_user_id"),
        description=post.get("description_html") or "", actor=post.get("attributed_to")))
    # Whose offers fit a new need, whose needs a new offer (node/matching.py).
    await _safely("the authors of fitting posts", post, matching.post_arrived(node, post))


async def post_changed(node: Node, post: Row) -> None:
    """A post edited here or by its author's server: what fits it now and did not before is
    told, as for a new post; a pair already told is never told again (node/matching.py)."""
    await _safely("the authors of fitting posts", post, matching.post_arrived(node, post))
