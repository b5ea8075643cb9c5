"""The inbox's front door: bounded body, JSON, HTTP signature, dedupe, then the handler.

Every refusal is a 4xx with a reason and changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from activitypub.signatures import SignatureError
from activitypub.vocab import id_of
from inbox.context import ActivityRejected, InboxContext
from inbox.handlers import HANDLERS
from keys.request_signer import verified_signer
from node.actors import LocalActor
from node.context import Node
from node.db import dumps, now
from node.moderation.inbound import refusal
from node.ratelimit import limiter_of

log = logging.getLogger(__name__)

MAX_DEPTH = 32
# A row still 'processing' after this long belongs to a process that died mid-handler: a retry
# by the sender is processed again instead of being taken for a duplicate.
STALE_PROCESSING = 300


@dataclass(frozen=True)
class Outcome:
    status: int
    reason: str


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def parse_activity(body: bytes) -> dict[str, Any]:
    try:
        activity = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Refused(400, "body is not valid JSON") from exc
    if not isinstance(activity, dict):
        raise Refused(400, "an activity must be a JSON object")
    if _depth(activity) > MAX_DEPTH:
        raise Refused(400, f"JSON nested deeper than {MAX_DEPTH} levels")
    ident = activity.get("id")
    if not isinstance(ident, str) or not ident.startswith(("http:", "https:")):
        raise Refused(400, "the activity has no http(s) id")
    if not isinstance(activity.get("type"), str):
        raise Refused(400, "the activity has no type")
    if not id_of(activity.get("actor")):
        raise Refused(400, "the activity has no actor")
    return activity


async def verify_signer(node: Node, request: Request, body: bytes) -> str:
    """Check the HTTP signature; returns the URI of the actor who owns the signing key."""
    try:
        return await verified_signer(node, request, body)
    except SignatureError as exc:
        raise Refused(401, str(exc)) from exc


async def receive(node: Node, request: Request, recipient: LocalActor | None) -> Outcome:
    try:
        body = await read_body(request, node.settings.max_inbox_bytes)
        activity = parse_activity(body)
        actor_uri = id_of(activity["actor"]) or ""
        blocked = await refusal(node, actor_uri, request.headers.get("signature"))
        if blocked:
            raise Refused(403, blocked)
        try:
            signer = await verify_signer(node, request, body)
        except Refused:
            if activity["type"] == "Delete" and id_of(activity.get("object")) == actor_uri:
                # A deleted actor's key is gone with it; an actor we never knew has nothing here
                # to delete. Mastodon answers these the same way.
                return Outcome(202, "delete of an unknown actor; nothing to do")
            raise
        if signer != actor_uri:
            raise Refused(401, f"signed by {signer}, not by the activity's actor {actor_uri}")
        if urlsplit(activity["id"]).netloc != urlsplit(actor_uri).netloc:
            raise Refused(400, "the activity id is not on the actor's host")
        # Counted once the signer is proven, so that nobody can spend another server's budget.
        limiter_of(node).check_inbox_host(urlsplit(signer).netloc)
    except Refused as exc:
        log.info("inbox refused a POST: %s %s", exc.status, exc.reason)
        return Outcome(exc.status, exc.reason)
    return await process(node, activity, actor_uri, recipient)


async def process(
    node: Node, activity: dict[str, Any], actor_uri: str, recipient: LocalActor | None
) -> Outcome:
    """Dedupe by activity id, then hand the activity to its handler."""
    inserted = await node.db.fetch_val(
        "INSERT INTO inbox_log (activity_id, actor_uri, type, payload, status, received_at) "
        "VALUES (:i, :a, :t, :p, 'processing', :r) ON CONFLICT (activity_id) DO UPDATE SET "
        "received_at = excluded.received_at WHERE inbox_log.status = 'processing' "
        "AND inbox_log.received_at < :stale RETURNING 1",
        {"i": activity["id"], "a": actor_uri, "t": activity["type"], "p": dumps(activity),
         "r": now(), "stale": now() - STALE_PROCESSING},
    )
    if not inserted:
        return Outcome(202, "already received")
    handler = HANDLERS.get(activity["type"])
    status, error, outcome = "processed", None, Outcome(202, "accepted")
    if handler is None:
        log.info("ignoring activity of unknown type %r from %s", activity["type"], actor_uri)
        status, outcome = "ignored", Outcome(202, f"type {activity['type']} is not handled")
    else:
        try:
            await handler(InboxContext(node, activity, actor_uri, recipient))
        except ActivityRejected as exc:
            status, error, outcome = "rejected", str(exc), Outcome(422, str(exc))
        except Exception as exc:
            log.exception("handling %s %s failed", activity["type"], activity["id"])
            status, error = "failed", repr(exc)
            outcome = Outcome(500, "the activity could not be processed; it will be retried")
    if status == "failed":
        # Forget it so that the sender's retry is processed again rather than deduplicated.
        await node.db.execute("DELETE FROM inbox_log WHERE activity_id = :i",
                              {"i": activity["id"]})
    else:
        await node.db.execute(
            "UPDATE inbox_log SET status = :s, error = :e WHERE activity_id = :i",
            {"s": status, "e": error, "i": activity["id"]},
        )
    return outcome
