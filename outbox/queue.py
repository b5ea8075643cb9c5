"""The delivery queue, kept in the database: one row per (activity, target inbox).

A row is claimed with a lease; a worker that dies leaves the lease to run out and another claim
takes the row again, so nothing accepted for delivery is lost. Receivers dedupe by activity id.

Like the per-instance send queues of Mastodon and Lemmy, the rows of one host form that host's
queue: a claim takes from each host only as many rows as the worker has free slots for that
host (one while the host is failing), so a host that hangs keeps its backlog in the table and
never crowds out the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from node.context import Node
from node.db import now
from outbox.backoff import MAX_ATTEMPTS, retry_delay


@dataclass(frozen=True)
class Job:
    id: int
    activity_uri: str
    sender_id: str
    inbox_url: str
    host: str
    attempts: int
    # The host's last delivery failed (from any worker): it gets one request at a time.
    failing: bool = False
    # The host's health as the claim found it (outbox/hosts.py): no look-up per job.
    unavailable: bool = False
    last_failure_at: float | None = None


async def enqueue(node: Node, activity_uri: str, sender_id: str, inboxes: list[str]) -> int:
    """One job per inbox; an inbox already queued for this activity is not queued twice."""
    stamp = now()
    rows = [
        {"a": activity_uri, "s": sender_id, "i": inbox, "h": urlsplit(inbox).netloc, "t": stamp}
        for inbox in dict.fromkeys(inboxes)
    ]
    await node.db.execute_many(
        "INSERT INTO deliveries (activity_uri, sender_id, inbox_url, host, state, attempts, "
        "next_attempt_at, created_at) VALUES (:a, :s, :i, :h, 'pending', 0, :t, :t) "
        "ON CONFLICT (activity_uri, inbox_url) DO NOTHING",
        rows,
    )
    return len(rows)


async def claim(
    node: Node, worker_id: str, limit: int, lease: float,
    per_host: int = 4, room: dict[str, int] | None = None,
) -> list[Job]:
    """Take up to `limit` due jobs for this worker, atomically across processes: at most
    `per_host` per host (`room[host]` for a host the worker is already sending to, nothing when
    that is 0) and one for a host whose last delivery failed."""
    if limit <= 0:
        return []
    stamp = now()
    room = room or {}
    values: dict[str, object] = {
        "lease": stamp + lease, "w": worker_id, "now": stamp, "n": limit,
        "scan": max(8 * limit, 256), "per_host": per_host,
    }
    full, partial = [], []
    for index, (host, free) in enumerate(sorted(room.items())):
        values[f"h{index}"] = host
        if free <= 0:
            full.append(f":h{index}")
        else:
            values[f"r{index}"] = free
            partial.append(f"WHEN c.host = :h{index} THEN :r{index}")
    # A full host's rows are left out of the scan, so its backlog cannot fill the window.
    skip = f"AND host NOT IN ({', '.join(full)})" if full else ""
    lock = "FOR UPDATE SKIP LOCKED" if node.db.is_postgres else ""
    rows = await node.db.fetch_all(
        "UPDATE deliveries SET locked_until = :lease, claimed_by = :w WHERE id IN ("
        " SELECT id FROM ("
        "  SELECT c.id, c.next_attempt_at, ROW_NUMBER() OVER ("
        "   PARTITION BY c.host ORDER BY c.next_attempt_at, c.id) AS place,"
        "  CASE WHEN h.last_failure_at > COALESCE(h.last_success_at, 0) THEN 1"
        f"  {' '.join(partial)} ELSE :per_host END AS quota"
        "  FROM (SELECT id, host, next_attempt_at FROM deliveries"
        "   WHERE state = 'pending' AND next_attempt_at <= :now"
        f"   AND (locked_until IS NULL OR locked_until < :now) {skip}"
        f"   ORDER BY next_attempt_at LIMIT :scan {lock}) c"
        "  LEFT JOIN hosts h ON h.host = c.host"
        " ) ranked WHERE place <= quota ORDER BY next_attempt_at LIMIT :n"
        ") RETURNING id, activity_uri, sender_id, inbox_url, host, attempts, EXISTS ("
        " SELECT 1 FROM hosts h WHERE h.host = deliveries.host"
        " AND h.last_failure_at > COALESCE(h.last_success_at, 0)) AS failing,"
        " (SELECT h.unavailable FROM hosts h WHERE h.host = deliveries.host) AS unavailable,"
        " (SELECT h.last_failure_at FROM hosts h WHERE h.host = deliveries.host)"
        " AS last_failure_at",
        values,
    )
    return [Job(**{**row, "failing": bool(row["failing"]),
                   "unavailable": bool(row["unavailable"])}) for row in rows]


async def complete(node: Node, job: Job) -> None:
    await node.db.execute(
        "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = :t, "
        "locked_until = NULL, last_error = NULL WHERE id = :i",
        {"t": now(), "i": job.id},
    )


async def complete_many(node: Node, job_ids: Iterable[int]) -> dict[int, bool]:
    """`complete` for many jobs in ONE statement (the worker's group commit)."""
    names = {f"i{n}": ident for n, ident in enumerate(job_ids)}
    await node.db.execute(
        "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = :t, "
        f"locked_until = NULL, last_error = NULL WHERE id IN ({', '.join(':' + k for k in names)})",
        {"t": now(), **names},
    )
    return {ident: True for ident in names.values()}


async def fail(node: Node, job: Job, error: str, permanent: bool = False) -> str:
    """Record a failed try; the job is retried later unless it is hopeless. Returns its state."""
    attempts = job.attempts + 1
    state = "failed" if permanent or attempts >= MAX_ATTEMPTS else "pending"
    await node.db.execute(
        "UPDATE deliveries SET state = :s, attempts = :a, next_attempt_at = :n, "
        "locked_until = NULL, last_error = :e WHERE id = :i",
        {
            "s": state, "a": attempts, "e": error[:500], "i": job.id,
            "n": now() + retry_delay(attempts, node.settings.backoff_scale),
        },
    )
    return state


async def postpone(node: Node, job: Job, until: float) -> None:
    """Put a job back without counting a try (its host is known to be down)."""
    await node.db.execute(
        "UPDATE deliveries SET next_attempt_at = :n, locked_until = NULL WHERE id = :i",
        {"n": until, "i": job.id},
    )


async def next_due(node: Node) -> float | None:
    """When the next job becomes due. Jobs due already but left unclaimed wait for a lane to
    free (the worker is woken then) or for another worker's lease to run out."""
    return await node.db.fetch_val(
        "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending' "
        "AND next_attempt_at > :now", {"now": now()}
    )
