"""Responses to offers and needs and their private conversations: respond, accept one (the
others are declined politely), mark the post fulfilled. What crosses to another node travels as
FEP-0837 Offer / Accept / Reject plus private Notes that any fediverse software can read."""

from __future__ import annotations

import html
import logging

from node.actors import LocalActor, actor_uri
from node.context import Node
from node.db import new_id, now
from node.posts import notify, publishing, queries, service, wire
from node.posts.markup import render_markdown
from node.posts.text import _
from outbox.publish import publish

log = logging.getLogger(__name__)

MESSAGE_MAX = 5000


class ResponseError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _message_html(text: str) -> str:
    text = text.strip()
    if not text:
        raise ResponseError({"message": _("Write a message.")})
    if len(text) > MESSAGE_MAX:
        raise ResponseError({"message": _("A message holds at most %(n)d characters.") % {
            "n": MESSAGE_MAX}})
    return render_markdown(text)


async def get_response(node: Node, response_id: str) -> dict | None:
    return await node.db.fetch_one("SELECT * FROM responses WHERE id = :i", {"i": response_id})


async def responses_of(node: Node, post_id: str) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT * FROM responses WHERE post_id = :p ORDER BY created_at", {"p": post_id})


async def responses_by(node: Node, user_id: str) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT r.*, p.title AS post_title FROM responses r JOIN posts p ON p.id = r.post_id "
        "WHERE r.responder_user_id = :u ORDER BY r.created_at DESC", {"u": user_id})


async def messages_of(node: Node, response_id: str) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT * FROM conversation_messages WHERE response_id = :r ORDER BY created_at, id",
        {"r": response_id})


def is_party(user: dict | None, post: dict, response: dict) -> bool:
    """Who may read a conversation: the responder, and whoever manages the post."""
    if user is None:
        return False
    return user["id"] == response["responder_user_id"] or queries.can_manage(user, post)


async def store_message(node: Node, response_id: str, sender_uri: str, body_html: str,
                        sender_user_id: str | None = None, note_uri: str | None = None) -> bool:
    inserted = await node.db.fetch_val(
        "INSERT INTO conversation_messages (response_id, sender_uri, sender_user_id, body_html, "
        "note_uri, created_at) VALUES (:r, :s, :u, :b, :n, :t) ON CONFLICT (note_uri) "
        "DO NOTHING RETURNING 1",
        {"r": response_id, "s": sender_uri, "u": sender_user_id, "b": body_html, "n": note_uri,
         "t": now()})
    await node.db.execute("UPDATE responses SET updated_at = :t WHERE id = :i",
                          {"t": now(), "i": response_id})
    return bool(inserted)


async def _speaker(node: Node, user: dict) -> LocalActor:
    """Who speaks for a member on the network: their Person actor, else their organisation."""
    return await service.person_of(node, user) or await service.organisation_of(node, user)


async def respond(node: Node, user: dict, post: dict, text: str) -> dict:
    """A member answers a post of this node or of a followed node."""
    body = _message_html(text)
    if post["status"] not in ("open", "in_progress"):
        raise ResponseError({"message": _("This post no longer takes responses.")})
    if not post["remote"] and post["author_user_id"] == user["id"]:
        raise ResponseError({"message": _("You cannot respond to your own post.")})
    speaker = await _speaker(node, user)
    me = actor_uri(node, speaker)
    response_id = new_id()[:16]
    thread = node.url(f"/responses/{response_id}")
    stamp = now()
    row = {
        "id": response_id, "post_id": post["id"], "thread_uri": thread, "responder_uri": me,
        "responder_user_id": user["id"],
        "responder_name": user.get("display_name") or speaker.name or speaker.username,
        "message_html": body, "public": 0, "status": "pending",
        "offer_uri": f"{thread}/offer" if post["remote"] else None, "answer_uri": None,
        "created_at": stamp, "updated_at": stamp,
    }
    columns = list(row)
    await node.db.execute(
        f"INSERT INTO responses ({', '.join(columns)}) VALUES "
        f"({', '.join(':' + c for c in columns)})", row)
    note_uri = f"{thread}/messages/{new_id()[:12]}"
    await store_message(node, response_id, me, body, user["id"],
                        note_uri if post["remote"] else None)
    if post["remote"]:
        recipients = list(dict.fromkeys([post["attributed_to"], post["org_uri"]]))
        offer = wire.offer(row["offer_uri"], me, post["uri"], post["attributed_to"],
                           recipients, body)
        offer["context"] = thread
        await publish(node, speaker, offer)
        note = wire.private_note(note_uri, me, post["attributed_to"], post["uri"], body, thread)
        note["to"] = recipients
        await publish(node, speaker, wire.create_private(f"{note_uri}/activity", note,
                                                         node.settings.base_url))
    else:
        await notify.new_response(node, post, row["responder_name"])
    return row


async def send_message(node: Node, user: dict, post: dict, response: dict, text: str) -> None:
    """A message in a response's conversation, from either side."""
    body = _message_html(text)
    if response["responder_user_id"] == user["id"]:
        speaker = await _speaker(node, user)
        recipient = None if not post["remote"] else post["attributed_to"]
    elif queries.can_manage(user, post):
        speaker, _org = await publishing.actors_of(node, post)
        recipient = None if node.is_local(response["responder_uri"]) else response[
            "responder_uri"]
    else:
        raise ResponseError({"message": _("Only the two sides of a response write here.")})
    if recipient:
        await _private_note(node, speaker, recipient, post, response, body, user["id"])
    else:
        await store_message(node, response["id"], actor_uri(node, speaker), body, user["id"])


async def _private_note(node: Node, speaker: LocalActor, recipient: str, post: dict,
                        response: dict, body: str, user_id: str | None = None) -> None:
    """Store a message of the conversation and send it as a mentioned-only Note, in reply to
    the recipient's last message so that their software threads it."""
    note_uri = node.url(f"/responses/{response['id']}/messages/{new_id()[:12]}")
    last = await node.db.fetch_val(
        "SELECT note_uri FROM conversation_messages WHERE response_id = :r AND sender_uri = :s "
        "AND note_uri IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1",
        {"r": response["id"], "s": recipient})
    note = wire.private_note(note_uri, actor_uri(node, speaker), recipient, last or post["uri"],
                             body, response["thread_uri"])
    await store_message(node, response["id"], note["attributedTo"], body, user_id, note_uri)
    await publish(node, speaker, wire.create_private(f"{note_uri}/activity", note,
                                                     node.settings.base_url))


async def accept(node: Node, post: dict, response: dict) -> None:
    """Accept one response: the post goes in progress, the other pending ones are declined."""
    if response["post_id"] != post["id"] or response["status"] != "pending":
        raise ResponseError({"response": _("Only a pending response can be accepted.")})
    if post["status"] != "open":
        raise ResponseError({"response": _("This post is not open any more.")})
    # The post moves first, atomically from open: of two accepts at once, only one gets past.
    post = await service.change_status(node, post, "in_progress")
    stamp = now()
    others = [r for r in await responses_of(node, post["id"])
              if r["id"] != response["id"] and r["status"] == "pending"]
    await node.db.execute("UPDATE responses SET status = 'accepted', updated_at = :t "
                          "WHERE id = :i", {"t": stamp, "i": response["id"]})
    await node.db.execute(
        "UPDATE responses SET status = 'declined', updated_at = :t WHERE post_id = :p "
        "AND status = 'pending'", {"t": stamp, "p": post["id"]})
    author, _org = await publishing.actors_of(node, post)
    await _tell(node, author, post, response, accepted=True)
    for other in others:
        await _tell(node, author, post, other, accepted=False)
    await notify.response_accepted(node, post, response["responder_user_id"])


ACCEPTED_TEXT = "Your response was accepted. Thank you! Let us continue the conversation here."
DECLINED_TEXT = ("Thank you for your response. Someone else's help was accepted for this post; "
                 "we hope to meet you on another one.")
PRIVATE_PLEASE_TEXT = ("Thank you for answering! To keep personal details out of public view, "
                       "please reply to this message privately (mentioning only this account).")


async def _tell(node: Node, author: LocalActor, post: dict, response: dict,
                accepted: bool) -> None:
    """Tell a responder the outcome: Accept/Reject for our nodes, a private Note for others."""
    text = _(ACCEPTED_TEXT) if accepted else _(DECLINED_TEXT)
    body = f"<p>{html.escape(text)}</p>"
    if node.is_local(response["responder_uri"]) or response["offer_uri"]:
        await store_message(node, response["id"], actor_uri(node, author), body)
    if node.is_local(response["responder_uri"]):
        return
    if response["offer_uri"]:
        answer_id = publishing.activity_id(node)
        await publish(node, author, wire.answer(
            "Accept" if accepted else "Reject", answer_id, actor_uri(node, author),
            response["offer_uri"], response["responder_uri"], reason="" if accepted else text))
        await node.db.execute("UPDATE responses SET answer_uri = :a WHERE id = :i",
                              {"a": answer_id, "i": response["id"]})
    else:
        # Mastodon ignores Accept{Offer}: a private Note says it in words.
        await _private_note(node, author, response["responder_uri"], post, response, body)


async def ask_private_reply(node: Node, post: dict, response: dict) -> None:
    """A public reply was recorded; suggest to its author to go on privately."""
    author, _org = await publishing.actors_of(node, post)
    body = f"<p>{html.escape(_(PRIVATE_PLEASE_TEXT))}</p>"
    await _private_note(node, author, response["responder_uri"], post, response, body)



async def mark_fulfilled(node: Node, post: dict) -> dict:
    """The help happened: the post closes, and every node that has it hears so (Update)."""
    return await service.change_status(node, post, "fulfilled")
