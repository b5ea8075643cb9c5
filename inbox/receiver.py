"""The inbox's front door: bounded body, JSON, HTTP signature, then the durable queue.

Every refusal is a 4xx with a reason and changes nothing. A 2xx means the activity is stored:
this node runs its handler and, after a crash, resumes it (inbox/runner.py, inbox/queue.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request

from activitypub.signatures import SignatureError
from activitypub.vocab import id_of
from inbox.relayed import confirmed_by_origin
from inbox.runner import runner_of
from keys.request_signer import verified_signer
from node.actors import LocalActor
from node.context import Node
from node.moderation.inbound import refusal
from node.ratelimit import limiter_of

log = logging.getLogger(__name__)

MAX_DEPTH = 32


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
    """How deep the JSON nests; -1 when a string holds a NUL character, which no database
    column can hold (PostgreSQL refuses it) and no text needs."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            if any("\x00" in k for k in item):
                return -1
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
        elif isinstance(item, str) and "\x00" in item:
            return -1
    return deepest


def parse_activity(body: bytes) -> dict[str, Any]:
    try:
        # orjson: a third of the json module's time, and stricter where strict is right for
        # text that will be stored (a lone surrogate, NaN, an integer past 64 bits: refused).
        activity = orjson.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Refused(400, f"body is not valid JSON: {exc}") from exc
    if not isinstance(activity, dict):
        raise Refused(400, "an activity must be a JSON object")
    depth = _depth(activity)
    if depth < 0:
        raise Refused(400, "a string of the activity holds a NUL character")
    if depth > MAX_DEPTH:
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
            # A relay's forwarding counts only as far as the author's server confirms it.
            confirmed = await confirmed_by_origin(node, signer, activity)
            if confirmed is None:
                raise Refused(401, f"signed by {signer}, not by the activity's actor {actor_uri}")
            activity = confirmed
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
    """Store the activity (once per id), then run its handler: see inbox/runner.py for why the
    handler runs inside the request for a few seconds and how a crash is resumed."""
    result = await runner_of(node).accept(activity, actor_uri, recipient)
    if result.state == "duplicate":
        return Outcome(202, "already received")
    if result.state == "ignored":
        log.info("ignoring activity of unknown type %r from %s", activity["type"], actor_uri)
        return Outcome(202, f"type {activity['type']} is not handled")
    if result.state == "rejected":
        return Outcome(422, result.error or "rejected")
    if result.state in ("pending", "failed"):
        return Outcome(202, "stored; processing failed and will be retried by this node")
    if result.state == "running":
        return Outcome(202, "stored; still being processed")
    return Outcome(202, "accepted")
