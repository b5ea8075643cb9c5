"""The durable inbox, kept in the database: one `inbox_log` row per accepted activity.

A row is a small state machine (Takahe's stator, microblog.pub's incoming table):

    pending ──handler returns──────────────▶ processed
       │    ──handler refuses (ActivityRejected)▶ rejected   (error: why)
       │    ──handler raises, MAX_ATTEMPTS times▶ failed     (error: the last exception)
       └─── handler raises, fewer times: stays pending, next_attempt_at moves on (backoff)
    ignored: a type without a handler, stored only to dedupe and to keep a trace.

A pending row is run by one process at a time: the process holds a lease (`locked_until`,
`claimed_by`) and renews it while the handler runs; a process that dies leaves its lease to run
out, and any process's resumer claims the row again (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
single writer on SQLite), as the delivery queue does (outbox/queue.py). Every change of state is
made by the lease holder only, so a process that lost its lease cannot finish a row twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from node import leases
from node.context import Node
from node.db import dumps, now
from outbox.backoff import retry_delay

# The first try and 7 retries, about two hours apart in total (15 + 3·n⁴ seconds each):
# long enough for a remote server that a handler needs to come back, short enough that a
# broken activity does not linger.
MAX_ATTEMPTS = 8
FINISHED = ("processed", "rejected", "failed", "ignored")


@dataclass(frozen=True)
class Entry:
    activity_id: str
    actor_uri: str
    type: str
    payload: str
    recipient_id: str | None
    attempts: int

    @property
    def activity(self) -> dict[str, Any]:
        return json.loads(self.payload)


async def store(node: Node, activity: dict[str, Any], actor_uri: str, recipient_id: str | None,
                worker_id: str, lease: float) -> Entry | None:
    """Keep the activity as pending, leased to `worker_id` who runs it at once. None when an
    activity with this id was received before (whatever its state: this node finishes it)."""
    entry = Entry(activity["id"], actor_uri, activity["type"], dumps(activity), recipient_id, 0)
    stored = await store_entries(node, {entry.activity_id: entry}, worker_id, lease)
    return entry if entry.activity_id in stored else None


async def store_entries(node: Node, entries: dict[str, Entry], worker_id: str,
                        lease: float) -> dict[str, bool]:
    """`store` for many activities in ONE statement (the runner's group commit gathers those
    that arrive together): {activity id: True} for each one stored now."""
    stamp = now()
    rows, values = [], {"n": stamp, "l": stamp + lease, "w": worker_id}
    for n, entry in enumerate(entries.values()):
        rows.append(f"(:i{n}, :a{n}, :t{n}, :p{n}, 'pending', :r{n}, 0, :n, :l, :w, :n)")
        values.update({f"i{n}": entry.activity_id, f"a{n}": entry.actor_uri,
                       f"t{n}": entry.type, f"p{n}": entry.payload, f"r{n}": entry.recipient_id})
    inserted = await node.db.fetch_all(
        "INSERT INTO inbox_log (activity_id, actor_uri, type, payload, status, recipient_id, "
        "attempts, next_attempt_at, locked_until, claimed_by, received_at) VALUES "
        f"{', '.join(rows)} ON CONFLICT (activity_id) DO NOTHING RETURNING activity_id",
        values,
    )
    return {row["activity_id"]: True for row in inserted}


async def store_ignored(node: Node, activity: dict[str, Any], actor_uri: str) -> bool:
    """Keep a trace of an activity no handler takes; False when it was received before."""
    stamp = now()
    inserted = await node.db.fetch_val(
        "INSERT INTO inbox_log (activity_id, actor_uri, type, payload, status, attempts, "
        "received_at, finished_at) VALUES (:i, :a, :t, :p, 'ignored', 0, :n, :n) "
        "ON CONFLICT (activity_id) DO NOTHING RETURNING 1",
        {"i": activity["id"], "a": actor_uri, "t": activity["type"], "p": dumps(activity),
         "n": stamp},
    )
    return bool(inserted)


async def claim(node: Node, worker_id: str, limit: int, lease: float) -> list[Entry]:
    """Take up to `limit` due pending rows whose lease is free, atomically across processes."""
    rows = await leases.claim(
        node, table="inbox_log", key="activity_id", state="status",
        returning=("activity_id", "actor_uri", "type", "payload", "recipient_id", "attempts"),
        worker_id=worker_id, limit=limit, lease=lease)
    return [Entry(**row) for row in rows]


async def renew(node: Node, activity_id: str, worker_id: str, lease: float) -> bool:
    """Extend the lease of a row this worker still holds; False when it holds it no more."""
    return bool(await node.db.fetch_val(
        "UPDATE inbox_log SET locked_until = :l WHERE activity_id = :i AND claimed_by = :w "
        "AND status = 'pending' RETURNING 1",
        {"l": now() + lease, "i": activity_id, "w": worker_id},
    ))


async def finish(node: Node, entry: Entry, worker_id: str, status: str,
                 error: str | None = None) -> bool:
    """Record the handler's end (processed or rejected); False when the lease was lost."""
    assert status in FINISHED
    return bool(await node.db.fetch_val(
        "UPDATE inbox_log SET status = :s, error = :e, attempts = :a, finished_at = :t, "
        "locked_until = NULL WHERE activity_id = :i AND claimed_by = :w AND status = 'pending' "
        "RETURNING 1",
        {"s": status, "e": error[:1000] if error else None, "a": entry.attempts + 1,
         "t": now(), "i": entry.activity_id, "w": worker_id},
    ))


async def mark_processed(node: Node, activity_ids: Iterable[str], worker_id: str
                         ) -> dict[str, bool]:
    """`finish(..., 'processed')` for many rows in ONE statement: {activity id: True} for
    each row this worker still held."""
    names = {f"i{n}": ident for n, ident in enumerate(activity_ids)}
    # attempts + 1 as `finish` counts it: only the lease holder updates the row.
    rows = await node.db.fetch_all(
        "UPDATE inbox_log SET status = 'processed', error = NULL, attempts = attempts + 1, "
        "finished_at = :t, locked_until = NULL WHERE claimed_by = :w AND status = 'pending' "
        f"AND activity_id IN ({', '.join(':' + name for name in names)}) "
        "RETURNING activity_id",
        {"t": now(), "w": worker_id, **names},
    )
    return {row["activity_id"]: True for row in rows}


async def retry_later(node: Node, entry: Entry, worker_id: str, error: str) -> str:
    """Count a failed try: the row waits for its next one, or is failed after the last.
    Returns the row's state ('pending' or 'failed')."""
    attempts = entry.attempts + 1
    final = attempts >= MAX_ATTEMPTS
    stamp = now()
    await node.db.execute(
        "UPDATE inbox_log SET status = :s, error = :e, attempts = :a, next_attempt_at = :n, "
        "finished_at = :f, locked_until = NULL "
        "WHERE activity_id = :i AND claimed_by = :w AND status = 'pending'",
        {"s": "failed" if final else "pending", "e": error[:1000], "a": attempts,
         "n": stamp + retry_delay(attempts, node.settings.backoff_scale),
         "f": stamp if final else None, "i": entry.activity_id, "w": worker_id},
    )
    return "failed" if final else "pending"


async def release(node: Node, activity_ids: list[str], worker_id: str) -> None:
    """Give up leases at shutdown, so that the next process need not wait for them to expire."""
    await node.db.execute_many(
        "UPDATE inbox_log SET locked_until = NULL WHERE activity_id = :i AND claimed_by = :w "
        "AND status = 'pending'",
        [{"i": ident, "w": worker_id} for ident in activity_ids],
    )


async def next_due(node: Node) -> float | None:
    """When the next pending row may be claimed (its retry time, or its lease's end)."""
    return await node.db.fetch_val(
        "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at "
        "THEN locked_until ELSE next_attempt_at END) FROM inbox_log WHERE status = 'pending'"
    )
