"""What other nodes and fediverse servers send about offers and needs, turned into rows:
remote posts (that came by a way node/posts/provenance.py accepts), responses and conversation
messages, answers to our responses, and remote posts' updates and deletions.

The inbox handlers call these after they verified who sent what (inbox/handlers/)."""

from __future__ import annotations

import logging
from typing import Any

from activitypub.model import RemoteObject
from activitypub.origin import is_http_url, same_origin
from activitypub.vocab import id_of, is_public
from inbox.dereference import fetch_object, object_link
from node.context import Node
from node.db import new_id, now
from node.objects import sanitize_html, store_model
from node.posts import nearby, notify, parties, places, queries, responses, wire
from node.posts.provenance import LISTED_ON_THEIR_OWN, Provenance, Via, admitted

log = logging.getLogger(__name__)


def _clean(content: Any) -> str:
    """Remote HTML of a message: bounded, then sanitised."""
    return sanitize_html(content[:wire.REMOTE_CONTENT_MAX]) if isinstance(content, str) else ""


def _same_host(a: str | None, b: str | None) -> bool:
    return same_origin(a, b)


def is_offer_or_need(obj: dict[str, Any]) -> bool:
    """A Note (or FEP-0837 Proposal) carrying the offer/need fields: it is kept as a post or not
    at all, never as a plain object."""
    return wire.is_post_note(obj)


async def store_remote_post(node: Node, model: RemoteObject, raw: dict[str, Any],
                            provenance: Provenance) -> dict | None:
    """Insert or refresh the remote post a Note describes; None when it is not one to keep:
    not a post, or it came by no way this node accepts (node/posts/provenance.py), or the
    ownership rule refuses it. The caller has checked that the Note is its author's
    (activitypub/model.py, the inbox handlers). Members are told of a new post unless it was
    read back from an outbox after a follow."""
    try:
        fields = wire.from_note(model, raw)
    except wire.NotAPost:
        return None
    if node.is_local(fields["uri"]):
        return None
    fields = nearby.placed(fields, places.parse_places(node.settings.neighbourhoods))
    existing = await queries.get_post_by_uri(node, fields["uri"])
    via = await admitted(node, provenance, fields, model, existing)
    if via is None:
        log.info("%s reached us by %s %s, a way not accepted; not kept", model.id,
                 provenance.arrival, provenance.by)
        return None
    if existing is not None and (existing["attributed_to"] != fields["attributed_to"]
                                 or not existing["remote"]):
        return None
    if not await store_model(node, model, local=False):
        return None  # another author's id, or a deleted post: the ownership rule
    stamp = now()
    if existing is not None:
        if existing["status"] in ("withdrawn", "expired"):
            return existing  # a withdrawn post stays withdrawn
        changes = {k: v for k, v in fields.items() if k not in ("uri", "created_at")}
        if existing["via"] == Via.FOLLOW and via in LISTED_ON_THEIR_OWN:
            changes["via"] = via.value  # now listed on its own, whatever becomes of the follow
        sets = ", ".join(f"{c} = :{c}" for c in changes)
        await node.db.execute(f"UPDATE posts SET {sets}, updated_at = :updated_at WHERE id = :id",
                              {**changes, "updated_at": stamp, "id": existing["id"]})
        if changes.get("status", existing["status"]) != existing["status"]:
            await notify.post_status_changed(node, {**existing, **changes}, changes["status"])
        elif provenance.tells_members:
            await notify.post_changed(node, {**existing, **changes})
        return {**existing, **changes}
    row = {**fields, "id": new_id()[:16], "author_user_id": None, "proxied": 0,
           "description_md": "", "remote": 1, "via": via.value,
           "created_at": fields["created_at"] or stamp, "updated_at": stamp}
    columns = list(row)
    inserted = await node.db.fetch_val(
        f"INSERT INTO posts ({', '.join(columns)}) VALUES "
        f"({', '.join(':' + c for c in columns)}) ON CONFLICT (uri) DO NOTHING RETURNING 1", row)
    if inserted and provenance.tells_members:
        # The Create and the Group's Announce may race: members are told once.
        await notify.new_post(node, row)
    return row


class LookUpError(ValueError):
    """A link a member gave is no offer or need this node can show; the reason is for the log
    (the page says it in the member's language)."""


async def look_up(node: Node, member_actor: str, url: str) -> dict:
    """The offer or need at `url`, fetched from its origin with a signed GET and kept as a post
    (a member looked it up). LookUpError when it cannot be had or is not one."""
    if not is_http_url(url) or node.is_local(url):
        raise LookUpError("not a link to another server")
    known = await queries.get_post_by_uri(node, url)
    if known is not None and known["status"] not in ("withdrawn", "expired"):
        return known
    fetched = await fetch_object(node, url)
    if fetched is None:  # a web page of the post, or a link that is not its id
        ident = await object_link(node, url)
        fetched = await fetch_object(node, ident) if ident else None
    if fetched is None:
        raise LookUpError("nothing usable at that address")
    model, raw = fetched
    if not is_offer_or_need(raw):
        raise LookUpError("not an offer or a need")
    stored = await store_remote_post(node, model, raw, Provenance.fetch(member_actor))
    if stored is None or stored["status"] in ("withdrawn", "expired"):
        raise LookUpError("not public, or withdrawn")
    return stored


async def _response_for_thread(node: Node, thread: str | None) -> dict | None:
    if not thread:
        return None
    return await node.db.fetch_one("SELECT * FROM responses WHERE thread_uri = :t",
                                   {"t": thread})


def _takes_responses(post: dict) -> bool:
    """A post never published (local only) or already closed takes no response from outside."""
    return post["visibility"] != "local" and post["status"] in ("open", "in_progress")


def _is_side(actor: str, post: dict, response: dict) -> bool:
    return parties.remote_may_write(actor, post, response)


async def _new_response(node: Node, post: dict, actor: str, thread: str, body: str,
                        public: bool, offer_uri: str | None, name: str) -> dict | None:
    stamp = now()
    row = {
        "id": new_id()[:16], "post_id": post["id"], "thread_uri": thread,
        "responder_uri": actor, "responder_user_id": None, "responder_name": name,
        "message_html": body, "public": int(public), "status": "pending",
        "offer_uri": offer_uri, "answer_uri": None, "created_at": stamp, "updated_at": stamp,
    }
    columns = list(row)
    inserted = await node.db.fetch_val(
        f"INSERT INTO responses ({', '.join(columns)}) VALUES "
        f"({', '.join(':' + c for c in columns)}) ON CONFLICT (thread_uri) DO NOTHING "
        "RETURNING 1", row)
    if not inserted:
        return None  # the Offer and its Note raced: the other one made the response
    await notify.new_response(node, post, name or actor, row)
    await responses.response_arrived(node, post, row)  # told at once if the post is full
    return row


async def _actor_name(node: Node, actor: str) -> str:
    # Never a raw URL: the actor's name, or @user@host (node/posts/parties.py).
    return await parties.name_of(node, actor)


def _thread_of(activity: dict[str, Any], actor: str, fallback: str) -> str:
    """A thread named by the sender is only trusted on the sender's own host."""
    thread = id_of(activity.get("context"))
    return thread if thread and _same_host(thread, actor) else fallback


async def reply_received(node: Node, actor: str, obj: dict[str, Any]) -> bool:
    """A Note that belongs to a response's conversation, or starts a response to one of our
    posts. Returns whether it was taken (then it is private: it is not stored as an object)."""
    body = _clean(obj.get("content"))
    note_uri = obj.get("id")
    reply_to = id_of(obj.get("inReplyTo"))
    response = await _response_for_thread(node, id_of(obj.get("context")))
    if response is None and reply_to:
        row = await node.db.fetch_one(
            "SELECT response_id FROM conversation_messages WHERE note_uri = :n", {"n": reply_to})
        if row is not None:
            response = await responses.get_response(node, row["response_id"])
    if response is not None:
        post = await queries.get_post(node, response["post_id"])
        if post is None or not _is_side(actor, post, response):
            return False
        if await responses.store_message(node, response["id"], actor, body, None, note_uri):
            await notify.new_message(node, post, response, sender_uri=actor, sender_user_id=None,
                                     sender_name=await _actor_name(node, actor), body_html=body)
        if not response["message_html"] and actor == response["responder_uri"]:
            await node.db.execute("UPDATE responses SET message_html = :b WHERE id = :i",
                                  {"b": body, "i": response["id"]})
        return True
    if not reply_to:  # neither in a conversation nor answering a post: nothing to look up
        return False
    post = await queries.get_post_by_uri(node, reply_to)
    if post is None or post["remote"]:
        return False
    if not _takes_responses(post):
        log.info("reply %s to closed or unpublished post %s dropped", note_uri, post["uri"])
        await responses.answer_late(node, post, actor, _thread_of(obj, actor, note_uri or ""),
                                    reply_to=note_uri)
        return True
    public = is_public(obj)
    thread = _thread_of(obj, actor, note_uri)
    created = await _new_response(node, post, actor, thread, body, public, None,
                                  await _actor_name(node, actor))
    if created is None:
        response = await _response_for_thread(node, thread)
        if response is not None and response["responder_uri"] == actor:
            await responses.store_message(node, response["id"], actor, body, None, note_uri)
            if not response["message_html"]:
                await node.db.execute("UPDATE responses SET message_html = :b WHERE id = :i",
                                      {"b": body, "i": response["id"]})
        return True
    await responses.store_message(node, created["id"], actor, body, None, note_uri)
    if public:
        # Recorded, but personal details should not go on in public: ask for a private reply.
        await responses.ask_private_reply(node, post, created)
    return True


async def offer_received(node: Node, actor: str, activity: dict[str, Any]) -> bool:
    """FEP-0837 Offer answering one of our posts (or the older Offer(Commitment) shape)."""
    target = wire.satisfied_post(activity)
    post = await queries.get_post_by_uri(node, target or "")
    if post is None or post["remote"]:
        return False
    if not _takes_responses(post):
        log.info("Offer %s for closed or unpublished post %s dropped", activity["id"],
                 post["uri"])
        await responses.answer_late(node, post, actor, _thread_of(activity, actor,
                                                                  activity["id"]),
                                    offer_uri=activity["id"])
        return True
    offer_uri = activity["id"]
    thread = _thread_of(activity, actor, offer_uri)
    body = _clean(activity.get("content"))
    created = await _new_response(node, post, actor, thread, body, False, offer_uri,
                                  await _actor_name(node, actor))
    if created is None:
        await node.db.execute(
            "UPDATE responses SET offer_uri = :o WHERE thread_uri = :t AND responder_uri = :a",
            {"o": offer_uri, "t": thread, "a": actor})
    return True


async def answer_received(node: Node, actor: str, activity: dict[str, Any],
                          accepted: bool) -> bool:
    """Accept{Offer} / Reject{Offer} about a response a member of ours made."""
    offer_uri = id_of(activity.get("object"))
    if not offer_uri or not node.is_local(offer_uri):
        return False
    response = await node.db.fetch_one(
        "SELECT * FROM responses WHERE offer_uri = :o AND responder_user_id IS NOT NULL",
        {"o": offer_uri})
    if response is None:
        return False
    post = await queries.get_post(node, response["post_id"])
    if post is None or actor not in (post["attributed_to"], post["org_uri"]):
        log.info("%s answered an offer about a post that is not theirs; ignored", actor)
        return True
    # A Reject that only says the post is full or closed is no refusal of the person.
    status = "accepted" if accepted else (
        "not_needed" if activity.get("answerReason") in ("full", "closed") else "declined")
    await node.db.execute(
        "UPDATE responses SET status = :s, answer_uri = :a, updated_at = :t WHERE id = :i",
        {"s": status, "a": activity["id"], "t": now(), "i": response["id"]})
    # Our nodes put the words in a private Note; other software may put them here.
    text = activity.get("content")
    if isinstance(text, str) and text.strip():
        await responses.store_message(node, response["id"], actor, _clean(text), None,
                                      activity["id"])
    # The post's own status is its server's to change (an Update follows when it does).
    if status == "accepted":
        await notify.response_accepted(node, post, response)
    elif status == "declined":
        await notify.response_declined(node, post, response, note=_clean(text))
    return True


async def answer_undone(node: Node, actor: str, accepted: Any) -> bool:
    """Undo{Accept}: the author of a post took back the acceptance of a member's response."""
    accept_uri = id_of(accepted)
    response = await node.db.fetch_one(
        "SELECT * FROM responses WHERE answer_uri = :a AND responder_user_id IS NOT NULL",
        {"a": accept_uri or ""})
    if response is None:
        return False
    post = await queries.get_post(node, response["post_id"])
    if post is None or actor not in (post["attributed_to"], post["org_uri"]):
        log.info("%s undid an acceptance about a post that is not theirs; ignored", actor)
        return True
    undone = await node.db.fetch_val(
        "UPDATE responses SET status = 'pending', updated_at = :t WHERE id = :i "
        "AND status = 'accepted' RETURNING 1", {"t": now(), "i": response["id"]})
    if undone:
        await notify.acceptance_undone(node, post, response)
    return True


async def post_updated(node: Node, model: RemoteObject, raw: dict[str, Any],
                       actor: str) -> None:
    """An Update by the post's author (the handler checked the signer owns the object)."""
    if is_offer_or_need(raw):
        await store_remote_post(node, model, raw, Provenance.update(actor))


async def post_deleted(node: Node, uri: str, actor: str) -> None:
    post = await queries.get_post_by_uri(node, uri)
    if post is None or not post["remote"] or post["attributed_to"] != actor:
        return
    expired = post["ends_at"] is not None and post["ends_at"] < now() + 60
    status = "expired" if expired else "withdrawn"
    changed = await node.db.fetch_val(
        "UPDATE posts SET status = :s, updated_at = :t WHERE id = :i AND status <> :s "
        "RETURNING 1", {"s": status, "t": now(), "i": post["id"]})
    if changed:
        await notify.post_status_changed(node, {**post, "status": status}, status)

