"""Health of remote hosts, as Mastodon's DeliveryFailureTracker keeps it: a host whose deliveries
fail on 7 different days is marked unavailable; it is then only tried rarely, and one success
makes it available again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from node.context import Node
from node.db import now

FAILURE_DAYS_THRESHOLD = 7
# An unavailable host still gets one probe this often, so that it can come back.
UNAVAILABLE_RETRY = 24 * 3600


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


async def record_failure(node: Node, host: str, at: float | None = None) -> bool:
    """Count a failed delivery (at `at`, default now); returns True when the host is (now)
    unavailable."""
    stamp = now() if at is None else at
    row = await node.db.fetch_one("SELECT * FROM hosts WHERE host = :h", {"h": host})
    days = set(json.loads(row["failure_days"])) if row else set()
    days.add(_day(stamp))
    unavailable = len(days) >= FAILURE_DAYS_THRESHOLD
    await node.db.execute(
        "INSERT INTO hosts (host, failure_days, unavailable, last_failure_at) "
        "VALUES (:h, :d, :u, :t) ON CONFLICT (host) DO UPDATE SET "
        "failure_days = excluded.failure_days, unavailable = excluded.unavailable, "
        "last_failure_at = excluded.last_failure_at",
        {"h": host, "d": json.dumps(sorted(days)), "u": int(unavailable), "t": stamp},
    )
    return unavailable


async def record_success(node: Node, host: str) -> None:
    await node.db.execute(
        "INSERT INTO hosts (host, failure_days, unavailable, last_success_at) "
        "VALUES (:h, '[]', 0, :t) ON CONFLICT (host) DO UPDATE SET failure_days = '[]', "
        "unavailable = 0, last_success_at = excluded.last_success_at",
        {"h": host, "t": now()},
    )


async def record_successes(node: Node, hosts: Iterable[str]) -> dict[str, bool]:
    """`record_success` for many hosts in ONE statement (each host once)."""
    names = {f"h{n}": host for n, host in enumerate(dict.fromkeys(hosts))}
    await node.db.execute(
        "INSERT INTO hosts (host, failure_days, unavailable, last_success_at) VALUES "
        + ", ".join(f"(:{name}, '[]', 0, :t)" for name in names)
        + " ON CONFLICT (host) DO UPDATE SET failure_days = '[]', unavailable = 0, "
        "last_success_at = excluded.last_success_at",
        {"t": now(), **names},
    )
    return {host: True for host in names.values()}


async def is_unavailable(node: Node, host: str) -> bool:
    value = await node.db.fetch_val("SELECT unavailable FROM hosts WHERE host = :h", {"h": host})
    return bool(value)
