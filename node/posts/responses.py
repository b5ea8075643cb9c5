"""Responses to offers and needs and their private conversations.

Who reads and writes a conversation is decided in one place, parties.py; what the node itself
writes to a person is in that person's language (speech.py). The author accepts helpers up to
the post's capacity; when the last place is taken the post is in progress and the other pending
responders are told, kindly, that their help is not needed this time (status `not_needed`,
never "declined"). The author may also decline one response with a short note, undo an
acceptance (a full post reopens) and close the post (pending responders are told likewise).
Someone who answers a full or closed post is told so at once.

What crosses to another node travels as FEP-0837 Offer / Accept / Reject (and Undo of an
Accept), each with a private Note in the responder's language that any fediverse software
shows."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from node.actors import LocalActor, actor_uri
from node.context import Node
from node.db import new_id, now
from node.posts import notify, parties, publishing, queries, service, speech, wire
from node.posts.markup import render_markdown
from node.posts.text import N_, _
from outbox.publish import publish

log = logging.getLogger(__name__)

MESSAGE_MAX = 5000
NOTE_MAX = 1000
OPEN = ("open", "in_progress")
# A response the author may still accept or decline: waiting, or told the post was full.
ANSWERABLE = ("pending", "not_needed")

ACCEPTED_TEXT = N_("Your response to “%(title)s” was accepted. Thank you! You can arrange the "
                   "details in this conversation.")
DECLINED_TEXT = N_("Thank you for your response to “%(title)s”. %(author)s will not take it "
                   "up this time; we hope to meet you on another post.")
FULL_TEXT = N_("Thank you for offering your help with “%(title)s”. It now has all the help it "
               "needs, so your response will not be needed this time. We hope to meet you on "
               "another post.")
CLOSED_TEXT = N_("Thank you for your response to “%(title)s”. This post is closed now, so your "
                 "response will not be needed. We hope to meet you on another post.")
UNDONE_TEXT = N_("The acceptance of your response to “%(title)s” was undone: your response is "
                 "waiting again. You can still write in this conversation.")
PRIVATE_PLEASE_TEXT = N_("Thank you for answering! To keep personal details out of public "
                         "view, please reply to this message privately (mentioning only this "
                         "account).")


class ResponseError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _message_html(text: str, limit: int = MESSAGE_MAX) -> str:
    text = text.strip()
    if not text:
        raise ResponseError({"message": _("Write a message.")})
    if len(text) > limit:
        raise ResponseError({"message": _("A message holds at most %(n)d characters.") % {
            "n": limit}})
    return render_markdown(text)


# --- reading -----------------------------------------------------------------------------------

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


def places(post: dict) -> int:
    """How many helpers the post takes: its capacity, one when it names none."""
    return max(int(post.get("capacity") or 1), 1)


async def accepted_count(node: Node, post_id: str) -> int:
    return int(await node.db.fetch_val(
        "SELECT COUNT(*) FROM responses WHERE post_id = :p AND status = 'accepted'",
        {"p": post_id}) or 0)


async def still_needed(node: Node, post: dict) -> int:
    """Helpers still wanted: 0 once the post is full or closed."""
    if post["status"] != "open":
        return 0
    return max(places(post) - await accepted_count(node, post["id"]), 0)


def late_reason(post: dict) -> str | None:
    """Why a new response comes too late, in the reader's words; None while the post is open."""
    if post["status"] == "open":
        return None
    if post["status"] == "in_progress":
        return _("“%(title)s” already has all the help it needs. Thank you for offering!") % {
            "title": post["title"]}
    return _("“%(title)s” is closed now. Thank you for wanting to help!") % {
        "title": post["title"]}


# --- writing -----------------------------------------------------------------------------------

async def store_message(node: Node, response_id: str, sender_uri: str, body_html: str,
                        sender_user_id: str | None = None, note_uri: str | None = None) -> bool:
    """Keep a message of a conversation. A message without a member (`sender_user_id`) from a
    local actor is the node's own automatic message."""
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
    late = late_reason(post)
    if late:
        raise ResponseError({"message": late})
    if (not post["remote"] and post["author_user_id"] == user["id"]) or \
            await parties.speaks_for_post(node, user, post):
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
        await notify.new_response(node, post, row["responder_name"], row)
    return row


async def send_message(node: Node, user: dict, post: dict, response: dict, text: str) -> None:
    """A message in a response's conversation, from one of its parties (parties.py); the
    other parties of this node are notified."""
    sender, body = await _write(node, user, post, response, text)
    await notify.new_message(node, post, response, sender_uri=sender, sender_user_id=user["id"],
                             sender_name=await parties.user_name(node, user["id"]),
                             body_html=body)


async def _write(node: Node, user: dict, post: dict, response: dict, text: str,
                 limit: int = MESSAGE_MAX) -> tuple[str, str]:
    """Store (and send to a remote side) a member's message; returns (speaker URI, HTML)."""
    if not await parties.may_take_part(node, user, post, response):
        raise ResponseError({"message": _("Only the people taking part in this conversation "
                                          "write here.")})
    body = _message_html(text, limit)
    if response["responder_user_id"] == user["id"]:
        speaker = await _speaker(node, user)
        recipient = post["attributed_to"] if post["remote"] else None
    else:
        speaker, _org = await publishing.actors_of(node, post)
        recipient = None if node.is_local(response["responder_uri"]) else response[
            "responder_uri"]
    if recipient:
        await _private_note(node, speaker, recipient, post, response, body, user["id"])
    else:
        await store_message(node, response["id"], actor_uri(node, speaker), body, user["id"])
    return actor_uri(node, speaker), body


async def _private_note(node: Node, speaker: LocalActor, recipient: str, post: dict,
                        response: dict, body: str, user_id: str | None = None,
                        content_map: dict[str, str] | None = None) -> None:
    """Store a message of the conversation and send it as a mentioned-only Note, in reply to
    the recipient's last message so that their software threads it."""
    note_uri = node.url(f"/responses/{response['id']}/messages/{new_id()[:12]}")
    last = await node.db.fetch_val(
        "SELECT note_uri FROM conversation_messages WHERE response_id = :r AND sender_uri = :s "
        "AND note_uri IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1",
        {"r": response["id"], "s": recipient})
    note = wire.private_note(note_uri, actor_uri(node, speaker), recipient, last or post["uri"],
                             body, response["thread_uri"],
                             mention_name=await parties.handle_of(node, recipient),
                             content_map=content_map)
    await store_message(node, response["id"], note["attributedTo"], body, user_id, note_uri)
    await publish(node, speaker, wire.create_private(f"{note_uri}/activity", note,
                                                     node.settings.base_url))


# --- the author's answers ----------------------------------------------------------------------

async def _require_post_side(node: Node, user: dict | None, post: dict,
                             response: dict | None = None) -> None:
    if response is not None and response["post_id"] != post["id"]:
        raise ResponseError({"response": _("This response belongs to another post.")})
    if not await parties.speaks_for_post(node, user, post):
        raise ResponseError({"response": _("Only the author of the post answers its "
                                           "responses.")})


async def _locked_post(node: Node, post_id: str) -> dict:
    """The post, read again after taking its row lock (inside a transaction): accepts, undos
    and closures of one post happen one after the other."""
    await node.db.execute("UPDATE posts SET updated_at = updated_at WHERE id = :i",
                          {"i": post_id})
    post = await queries.get_post(node, post_id)
    if post is None:
        raise ResponseError({"response": _("This post is gone.")})
    return post


async def accept(node: Node, user: dict | None, post: dict, response: dict) -> dict:
    """Accept one response. When it takes the last place, the post is in progress and the
    other pending responders are told kindly that it is full. Returns the post as it is now."""
    await _require_post_side(node, user, post, response)
    told: list[dict] = []
    async with node.db.transaction():
        post = await _locked_post(node, post["id"])
        if post["status"] == "in_progress":
            raise ResponseError({"response": _(
                "Every place is taken: undo an acceptance first.")})
        if post["status"] != "open":
            raise ResponseError({"response": _("This post is not open any more.")})
        accepted = await accepted_count(node, post["id"])
        changed = await node.db.fetch_val(
            "UPDATE responses SET status = 'accepted', updated_at = :t, accepted_at = :t "
            "WHERE id = :i AND post_id = :p AND status IN ('pending', 'not_needed') RETURNING 1",
            {"t": now(), "i": response["id"], "p": post["id"]})
        if not changed:
            raise ResponseError({"response": _("Only a waiting response can be accepted.")})
        full = accepted + 1 >= places(post)
        if full:
            told = await node.db.fetch_all(
                "UPDATE responses SET status = 'not_needed', updated_at = :t WHERE post_id = :p "
                "AND status = 'pending' RETURNING *", {"t": now(), "p": post["id"]})
            await node.db.execute(
                "UPDATE posts SET status = 'in_progress', updated_at = :t WHERE id = :i",
                {"t": now(), "i": post["id"]})
            post = {**post, "status": "in_progress"}
    if full:
        await publishing.updated(node, post)
    await _tell(node, post, response, ACCEPTED_TEXT, answer="Accept")
    await notify.response_accepted(node, post, response)
    for other in told:
        await _tell_full(node, post, other)
    return post


async def _tell_full(node: Node, post: dict, response: dict) -> None:
    """The post is full: its words reach a local responder as a message of the conversation."""
    body = await _tell(node, post, response, FULL_TEXT, answer="Reject", why="full")
    if body:
        author, _org = await publishing.actors_of(node, post)
        await notify.new_message(node, post, response, sender_uri=actor_uri(node, author),
                                 sender_user_id=None,
                                 sender_name=await parties.name_of(node, actor_uri(node, author)),
                                 body_html=body)


async def decline(node: Node, user: dict | None, post: dict, response: dict,
                  note: str = "") -> None:
    """Decline one response, with an optional short note from the author."""
    await _require_post_side(node, user, post, response)
    if note.strip():
        _message_html(note, NOTE_MAX)  # refused before anything changes
    if post["status"] not in OPEN:
        raise ResponseError({"response": _("This post is not open any more.")})
    changed = await node.db.fetch_val(
        "UPDATE responses SET status = 'declined', updated_at = :t WHERE id = :i "
        "AND status IN ('pending', 'not_needed') RETURNING 1",
        {"t": now(), "i": response["id"]})
    if not changed:
        raise ResponseError({"response": _(
            "Only a waiting response can be declined (undo an acceptance first).")})
    author_name = await parties.name_of(
        node, post["org_uri"] if post["proxied"] else post["attributed_to"])
    await _tell(node, post, response, DECLINED_TEXT, answer="Reject", why="declined",
                author=author_name)
    note_html = ""
    if note.strip():
        _uri, note_html = await _write(node, user, post, response, note, NOTE_MAX)
    await notify.response_declined(node, post, response, note=note_html)


async def undo_acceptance(node: Node, user: dict | None, post: dict, response: dict) -> dict:
    """The response waits again; a full post reopens. Returns the post as it is now."""
    await _require_post_side(node, user, post, response)
    async with node.db.transaction():
        post = await _locked_post(node, post["id"])
        if post["status"] not in OPEN:
            raise ResponseError({"response": _("This post is not open any more.")})
        changed = await node.db.fetch_val(
            "UPDATE responses SET status = 'pending', updated_at = :t, accepted_at = NULL "
            "WHERE id = :i AND status = 'accepted' RETURNING 1",
            {"t": now(), "i": response["id"]})
        if not changed:
            raise ResponseError({"response": _("This response is not accepted.")})
        reopened = post["status"] == "in_progress"
        if reopened:
            await node.db.execute(
                "UPDATE posts SET status = 'open', updated_at = :t WHERE id = :i",
                {"t": now(), "i": post["id"]})
            post = {**post, "status": "open"}
    if reopened:
        await publishing.updated(node, post)
    await _tell(node, post, response, UNDONE_TEXT, answer="Undo")
    await notify.acceptance_undone(node, post, response)
    return post


async def close(node: Node, post: dict, status: str, by_user_id: str | None = None) -> dict:
    """Fulfilled or withdrawn: the post closes and every responder still waiting is told
    kindly that their help will not be needed."""
    post = await service.change_status(node, post, status)
    # Before the waiting responses change: notify tells the pending and accepted ones.
    await notify.post_status_changed(node, post, status, by_user_id=by_user_id)
    waiting = await node.db.fetch_all(
        "UPDATE responses SET status = 'not_needed', updated_at = :t WHERE post_id = :p "
        "AND status = 'pending' RETURNING *", {"t": now(), "p": post["id"]})
    for response in waiting:
        await _tell(node, post, response, CLOSED_TEXT, answer="Reject", why="closed")
    return post


async def mark_fulfilled(node: Node, post: dict, by_user_id: str | None = None) -> dict:
    """The help happened: the post closes, and every node that has it hears so (Update)."""
    return await close(node, post, "fulfilled", by_user_id)


# --- responses from other servers that come too late --------------------------------------------

async def response_arrived(node: Node, post: dict, response: dict) -> None:
    """A response from another server was stored: if the post is full or closed by now, its
    author is told so kindly at once instead of waiting for an answer that cannot come."""
    if post["remote"] or response["status"] != "pending":
        return
    fresh = await queries.get_post(node, post["id"])
    if fresh is None or fresh["status"] == "open":
        return
    changed = await node.db.fetch_val(
        "UPDATE responses SET status = 'not_needed', updated_at = :t WHERE id = :i "
        "AND status = 'pending' RETURNING 1", {"t": now(), "i": response["id"]})
    if changed:
        full = fresh["status"] == "in_progress"
        await _tell(node, fresh, response, FULL_TEXT if full else CLOSED_TEXT, answer="Reject",
                    why="full" if full else "closed")


async def answer_late(node: Node, post: dict, actor: str, thread: str,
                      offer_uri: str | None = None, reply_to: str | None = None) -> None:
    """Someone on another server answered a closed post: no response is kept, but they hear
    kindly, in their language, that it is closed: a Reject of their Offer, and one private
    Note per thread (an Offer and its Note from a node like ours share the thread)."""
    if post["remote"] or post["visibility"] == "local":
        return
    author, _org = await publishing.actors_of(node, post)
    me = actor_uri(node, author)
    if offer_uri:
        await publish(node, author, wire.answer("Reject", publishing.activity_id(node), me,
                                                offer_uri, actor, why="closed"))
    key = hashlib.sha256(f"{actor} {thread}".encode()).hexdigest()[:24]
    note_uri = node.url(f"/posts/{post['id']}/late/{key}")
    if await node.db.fetch_val("SELECT 1 FROM activities WHERE uri = :u",
                               {"u": f"{note_uri}/activity"}):
        return  # this thread was told already
    words = await speech.for_remote(node, actor, post, CLOSED_TEXT, title=post["title"])
    note = wire.private_note(note_uri, me, actor, reply_to or post["uri"], words.html, thread,
                             mention_name=await parties.handle_of(node, actor),
                             content_map=words.content_map)
    await publish(node, author, wire.create_private(f"{note_uri}/activity", note,
                                                    node.settings.base_url))


# --- telling a responder -----------------------------------------------------------------------

async def _tell(node: Node, post: dict, response: dict, message: str, answer: str,
                why: str = "", **params: Any) -> str:
    """Tell a responder an outcome in their language: an automatic message in the
    conversation for a member of ours (returned, for the caller's notification); for someone
    on another server, Accept / Reject / Undo of their Offer when they sent one, and the same
    words as a private Note, which is what Mastodon and others show."""
    author, _org = await publishing.actors_of(node, post)
    params = {"title": post["title"], **params}
    if not response["responder_user_id"] or not node.is_local(response["responder_uri"]):
        await _tell_remote(node, author, post, response, message, answer, why, params)
        return ""
    words = await speech.for_user(node, response["responder_user_id"], message, **params)
    await store_message(node, response["id"], actor_uri(node, author), words.html)
    return words.html


async def _tell_remote(node: Node, author: LocalActor, post: dict, response: dict,
                       message: str, answer: str, why: str, params: dict[str, Any]) -> None:
    responder = response["responder_uri"]
    words = await speech.for_remote(node, responder, post, message, **params)
    me = actor_uri(node, author)
    if response["offer_uri"]:
        answer_id = publishing.activity_id(node)
        if answer == "Undo":
            if response["answer_uri"]:
                accepted = wire.answer("Accept", response["answer_uri"], me,
                                       response["offer_uri"], responder)
                await publish(node, author, wire.undo_answer(answer_id, me, accepted))
        else:
            await publish(node, author, wire.answer(answer, answer_id, me, response["offer_uri"],
                                                    responder, why=why))
            await node.db.execute("UPDATE responses SET answer_uri = :a WHERE id = :i",
                                  {"a": answer_id, "i": response["id"]})
    await _private_note(node, author, responder, post, response, words.html,
                        content_map=words.content_map)


async def ask_private_reply(node: Node, post: dict, response: dict) -> None:
    """A public reply was recorded; suggest to its author, in their language, to go on
    privately."""
    author, _org = await publishing.actors_of(node, post)
    words = await speech.for_remote(node, response["responder_uri"], post, PRIVATE_PLEASE_TEXT)
    await _private_note(node, author, response["responder_uri"], post, response, words.html,
                        content_map=words.content_map)
