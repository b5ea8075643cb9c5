"""Backfill: once a follow of a remote organisation (or person) is accepted, the open offers and
needs it posted before are read from its outbox and kept, as if they had been delivered; only
what is posted afterwards would arrive otherwise.

The outbox is untrusted like any remote JSON, and bounded: at most MAX_PAGES pages (only on
the outbox's own origin, each once: a circle of pages ends), MAX_ITEMS items, MAX_FETCHES
objects fetched and DEADLINE seconds in all. An item counts only when its object is on the
outbox's origin; that object is fetched from its id (a post's current state: a withdrawn one
answers 410, a closed one says so), and kept only when it is a public Note with the FEP-0837
fields, written by the followed actor or published in its name (`audience`), and still open.
Storing is node/posts/incoming.py's `store_remote_post`, as for a delivered post: the same
checks (ownership rule, followed from here) and a post is never stored twice, so a second run
adds nothing.

A backfill is a job row (`backfills`, migration 13) that the Accept handler writes: the inbox
answers at once, and a BackfillRunner in each web process claims due rows under a lease, so
that a row left by a stop or a crash is run again, and a remote server that did not answer is
tried again a few times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from activitypub.collections import Walk, walk_items
from activitypub.origin import same_origin
from activitypub.transport import FetchError
from activitypub.vocab import id_of, types_of
from inbox.dereference import fetch_object
from node.actors import instance_actor, signing_key
from node.context import Node
from node.db import now
from node.posts import queries, wire
from node.posts.incoming import store_remote_post
from node.posts.provenance import Provenance
from node.remote_actors import get_actor

log = logging.getLogger(__name__)

MAX_PAGES = 10
MAX_ITEMS = 400
MAX_FETCHES = 100
DEADLINE = 60.0          # seconds for one backfill, every request included
LEASE = DEADLINE + 30.0  # a claimed row is another process's to take only after this
MAX_ATTEMPTS = 3
RETRY_DELAY = 60.0       # seconds, times the attempt number
IDLE_WAIT = 60.0         # a runner looks for due rows at least this often
AUTHOR_DEADLINE = 5.0

CARRIERS = {"Create", "Update", "Announce"}
T = TypeVar("T")


@dataclass
class Outcome:
    walk: Walk = field(default_factory=Walk)
    fetched: int = 0
    stored: int = 0
    refused: int = 0  # items whose object is on another origin: never fetched, never kept
    until: float = 0.0  # the event loop's time by which every request must be done

    async def bounded(self, request: Awaitable[T]) -> T:
        """One request of this backfill, cut off (TimeoutError) at the backfill's deadline.
        Only requests are: a database write is never interrupted halfway."""
        async with asyncio.timeout_at(self.until):
            return await request


# --- the work ----------------------------------------------------------------------------------

async def _outbox_of(node: Node, actor_uri: str, outcome: Outcome) -> str | None:
    await outcome.bounded(get_actor(node, actor_uri))  # refreshed when the copy is old
    outbox = await node.db.fetch_val(
        "SELECT outbox FROM remote_actors WHERE uri = :u", {"u": actor_uri})
    return outbox if same_origin(outbox, actor_uri) else None


def _reference(item: Any) -> tuple[str | None, dict | None, bool]:
    """(the id of the object an outbox item is about, that object if embedded, whether the
    item deletes it); (None, None, False) for items about nothing we keep (Like, Follow...)."""
    if isinstance(item, str):
        return item, None, False
    if not isinstance(item, dict):
        return None, None, False
    kinds = types_of(item)
    if kinds & CARRIERS:
        obj = item.get("object")
    elif "Delete" in kinds:
        return id_of(item.get("object")), None, True
    elif "Tombstone" in kinds:
        return id_of(item), None, True
    elif "actor" in item or "object" in item:
        return None, None, False
    else:
        obj = item  # some servers list the objects themselves
    return id_of(obj), obj if isinstance(obj, dict) else None, False


async def _take(node: Node, followed: str, outbox: str, item: Any, seen: set[str],
                outcome: Outcome) -> None:
    ident, embedded, deleted = _reference(item)
    if not ident:
        return
    if not same_origin(ident, outbox):
        # Never trusted, and not fetched either: the outbox has no say about other servers.
        outcome.refused += 1
        return
    if ident in seen:
        return  # the newest item about an object (outboxes list the newest first) decided
    seen.add(ident)
    if deleted or (embedded is not None and not wire.is_post_note(embedded)):
        return
    outcome.fetched += 1
    fetched = await outcome.bounded(fetch_object(node, ident))
    if fetched is None:
        return
    model, raw = fetched
    if not model.public or not wire.is_post_note(raw):
        return
    try:
        fields = wire.from_note(model, raw)
    except wire.NotAPost:
        return
    # Someone else's post on the same server is not what was followed: provenance.py says so.
    known = await queries.get_post_by_uri(node, ident)
    closed = fields["status"] not in queries.LISTED or (
        fields["ends_at"] is not None and fields["ends_at"] < now())
    if known is None and closed:
        return
    if await store_remote_post(node, model, raw, Provenance.backfill(followed)) is not None \
            and known is None:
        outcome.stored += 1
        await _know_author(node, model.author, outcome)


async def _know_author(node: Node, uri: str, outcome: Outcome) -> None:
    """Pages name a post's author: fetch them now if this node has never seen them."""
    if await node.db.fetch_val("SELECT 1 FROM remote_actors WHERE uri = :u", {"u": uri}):
        return
    try:
        async with asyncio.timeout(AUTHOR_DEADLINE):
            await outcome.bounded(get_actor(node, uri))
    except (FetchError, TimeoutError) as exc:
        log.info("author %s of a backfilled post is unknown: %s", uri, exc)


async def backfill(node: Node, actor_uri: str) -> Outcome:
    """Read the followed actor's outbox and keep its open offers and needs (see the module's
    description for the bounds and checks). FetchError when the outbox cannot be read."""
    outcome = Outcome(until=asyncio.get_running_loop().time() + DEADLINE)
    key = signing_key(node, await instance_actor(node))
    seen: set[str] = set()
    try:
        outbox = await _outbox_of(node, actor_uri, outcome)
        if outbox is None:
            log.info("%s has no outbox on its own server; nothing to backfill", actor_uri)
            return outcome
        items = walk_items(lambda url: outcome.bounded(node.transport.get_json(url, key)),
                           outbox, outcome.walk, max_pages=MAX_PAGES, max_items=MAX_ITEMS)
        async with contextlib.aclosing(items):
            async for item in items:
                if outcome.fetched >= MAX_FETCHES:
                    outcome.walk.stopped = "fetches"
                    break
                await _take(node, actor_uri, outbox, item, seen, outcome)
    except TimeoutError:
        outcome.walk.stopped = "deadline"
    log.info("backfill of %s: %d page(s), %d item(s), %d fetched, %d new, %d refused%s",
             actor_uri, outcome.walk.pages, outcome.walk.items, outcome.fetched,
             outcome.stored, outcome.refused,
             f" (stopped: {outcome.walk.stopped})" if outcome.walk.stopped else "")
    return outcome


# --- the job rows ------------------------------------------------------------------------------

_wakers: dict[int, asyncio.Event] = {}


async def schedule(node: Node, actor_uri: str) -> None:
    """Ask for a backfill of a remote actor (again, if it was done before): stored now, run by
    a BackfillRunner in the background."""
    stamp = now()
    await node.db.execute(
        "INSERT INTO backfills (actor_uri, state, attempts, next_at, requested_at) "
        "VALUES (:a, 'pending', 0, :t, :t) ON CONFLICT (actor_uri) DO UPDATE SET "
        "state = 'pending', attempts = 0, next_at = excluded.next_at, "
        "requested_at = excluded.requested_at, lease_until = NULL, claimed_by = NULL, "
        "error = NULL",
        {"a": actor_uri, "t": stamp})
    event = _wakers.get(id(node))
    if event is not None:
        event.set()


_DUE = "(state = 'pending' AND next_at <= :t) OR (state = 'running' AND lease_until < :t)"


async def claim(node: Node, runner_id: str) -> dict | None:
    """Take the next due row (or one whose runner died) under a lease."""
    stamp = now()
    return await node.db.fetch_one(
        "UPDATE backfills SET state = 'running', claimed_by = :me, lease_until = :until, "
        "attempts = attempts + 1 WHERE actor_uri = (SELECT actor_uri FROM backfills "
        f"WHERE {_DUE} ORDER BY next_at LIMIT 1) AND ({_DUE}) "
        "RETURNING actor_uri, attempts",
        {"me": runner_id, "until": stamp + LEASE, "t": stamp})


async def run_claimed(node: Node, row: dict, runner_id: str) -> None:
    mine = {"a": row["actor_uri"], "me": runner_id}
    try:
        outcome = await backfill(node, row["actor_uri"])
    except Exception as exc:  # an unreachable outbox, or a bug: tried again a few times only
        if not isinstance(exc, FetchError):
            log.exception("backfill of %s failed", row["actor_uri"])
        retry = row["attempts"] < MAX_ATTEMPTS
        await node.db.execute(
            "UPDATE backfills SET state = :s, next_at = :n, error = :e, finished_at = :t, "
            "lease_until = NULL WHERE actor_uri = :a AND claimed_by = :me AND state = 'running'",
            {**mine, "s": "pending" if retry else "failed", "e": str(exc)[:500], "t": now(),
             "n": now() + RETRY_DELAY * row["attempts"] * node.settings.backoff_scale})
        log.info("backfill of %s failed (try %d): %s", row["actor_uri"], row["attempts"], exc)
        return
    await node.db.execute(
        "UPDATE backfills SET state = 'done', pages = :p, items = :i, fetched = :f, "
        "stored = :s, error = :e, finished_at = :t, lease_until = NULL "
        "WHERE actor_uri = :a AND claimed_by = :me AND state = 'running'",
        {**mine, "p": outcome.walk.pages, "i": outcome.walk.items, "f": outcome.fetched,
         "s": outcome.stored, "e": outcome.walk.stopped or None, "t": now()})


async def states(node: Node, uris: list[str]) -> dict[str, dict]:
    """The backfill rows of these actors, for the network page."""
    if not uris:
        return {}
    names = {f"u{i}": uri for i, uri in enumerate(uris)}
    rows = await node.db.fetch_all(
        f"SELECT * FROM backfills WHERE actor_uri IN ({', '.join(':' + n for n in names)})",
        names)
    return {row["actor_uri"]: row for row in rows}


class BackfillRunner:
    """Runs due backfills one after another, until stopped; one per web process."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}:backfill"
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            try:
                row = await claim(self.node, self.id)
                if row is not None:
                    await run_claimed(self.node, row, self.id)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:  # a busy database or a bug in one backfill must not end the loop
                log.exception("running a backfill failed")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=IDLE_WAIT)

    def start(self) -> BackfillRunner:
        _wakers[id(self.node)] = self.wake
        self.task = asyncio.create_task(self.run())
        return self

    async def stop(self) -> None:
        """Stops at once; a row being run is handed back, to be run again from the start by
        the next runner (a second run adds nothing)."""
        if _wakers.get(id(self.node)) is self.wake:
            del _wakers[id(self.node)]
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        try:
            await self.node.db.execute(
                "UPDATE backfills SET state = 'pending', lease_until = NULL, claimed_by = NULL "
                "WHERE claimed_by = :me AND state = 'running'", {"me": self.id})
        except Exception:  # the database may be gone already: the lease runs out instead
            log.exception("handing back backfills failed")


def start_runner(node: Node) -> BackfillRunner:
    return BackfillRunner(node).start()
