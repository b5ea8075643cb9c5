"""Work queues in a table, shared by every process of a node: a row is taken by one worker at a
time under a lease (`claimed_by`, `locked_until`) and comes back to the queue when the lease runs
out (its worker died). The durable inbox (inbox/queue.py) and the email queue (node/mailqueue.py)
claim their rows here; deliveries (outbox/queue.py) follow the same rule in a query of their own
that also limits how many rows of one host are taken.

On PostgreSQL two workers never take the same row (`FOR UPDATE SKIP LOCKED`); SQLite has one
writer, so the UPDATE is atomic by itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node.context import Node
from node.db import now


async def claim(node: Node, *, table: str, key: str, state: str, returning: Sequence[str],
                worker_id: str, limit: int, lease: float,
                due_by: float | None = None) -> list[dict[str, Any]]:
    """Take up to `limit` rows of `table` that are 'pending' in their `state` column, due now
    (or by `due_by`, if sooner) and free of any live lease, oldest due first; they are this
    worker's for `lease` seconds. `table`, `key`, `state` and `returning` are names written in
    code, never values from outside."""
    if limit <= 0:
        return []
    stamp = now()
    lock = "FOR UPDATE SKIP LOCKED" if node.db.is_postgres else ""
    return await node.db.fetch_all(
        f"UPDATE {table} SET locked_until = :lease, claimed_by = :w WHERE {key} IN ("
        f" SELECT {key} FROM {table} WHERE {state} = 'pending' AND next_attempt_at <= :due"
        " AND (locked_until IS NULL OR locked_until < :now)"
        f" ORDER BY next_attempt_at LIMIT :n {lock}"
        f") RETURNING {', '.join(returning)}",
        {"lease": stamp + lease, "w": worker_id, "now": stamp, "n": limit,
         "due": min(stamp, due_by) if due_by is not None else stamp},
    )
