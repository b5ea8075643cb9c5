"""Two real delivery worker processes (`python -m node worker`) on one database: every queued
job reaches the sink exactly once, on SQLite and on PostgreSQL.

The node's web process serves the actor documents the sink fetches to check each signature;
it runs no worker of its own (NODE_RUN_WORKER=0), so only the two worker processes deliver."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from node.actors import by_username
from node.config import load_settings
from node.context import Node
from outbox.publish import publish
from tests.databases import drop_postgres_database, make_database_url
from tests.nodes import REPO, NodeProcess
from tests.peers import RemotePeer

pytestmark = pytest.mark.e2e

ACTIVITIES = 16
INBOXES_PER_ACTIVITY = 10  # 160 jobs, all due at once


async def _queue_jobs(env: dict[str, str], org: str, inboxes: list[str]) -> list[str]:
    """Publish through the real outbox (store, then one job per inbox) from a third process."""
    node = Node.create(load_settings(env))
    await node.start()
    try:
        actor = await by_username(node, org, "Group")
        assert actor is not None
        sender = node.url(f"/groups/{org}")
        ids = []
        for n in range(ACTIVITIES):
            ident = node.url(f"/activities/bulk-{n}")
            note = {"id": node.url(f"/posts/bulk-{n}"), "type": "Note",
                    "attributedTo": sender, "content": f"<p>annonce {n}</p>",
                    "to": ["https://www.w3.org/ns/activitystreams#Public"]}
            activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": ident,
                        "type": "Create", "actor": sender, "object": note,
                        "to": note["to"]}
            assert await publish(node, actor, activity, extra_inboxes=inboxes) == len(inboxes)
            ids.append(ident)
        return ids
    finally:
        await node.stop()


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "node", "worker"], cwd=REPO, env=env,
        stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_worker_processes_deliver_each_job_once(tmp_path: Path, kind: str) -> None:
    url = make_database_url(tmp_path, kind)
    peer = RemotePeer("127.0.0.3").start()
    node = NodeProcess(tmp_path / "node", host="127.0.0.2", database_url=url,
                       NODE_RUN_WORKER="0",
                       # This is about claims, not deadlines: on a loaded machine the peer's
                       # answer (it fetches the key to check each signature) may take over the
                       # default 3 s, and a retry after a timeout is a second POST.
                       NODE_DELIVERY_TIMEOUT="15")
    workers: list[subprocess.Popen] = []
    try:
        for n in range(INBOXES_PER_ACTIVITY):
            peer.add_actor(f"u{n}")
        inboxes = [a.inbox for a in peer.actors.values()]
        node.start()
        ids = asyncio.run(_queue_jobs(node.env, node.org, inboxes))
        total = len(ids) * len(inboxes)
        pending = node.query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'")
        assert pending[0]["n"] == total

        workers = [_start_worker(node.env, tmp_path / f"worker{i}.log") for i in range(2)]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            left = node.query("SELECT COUNT(*) AS n FROM deliveries WHERE state <> 'delivered'")
            if left[0]["n"] == 0 and len(peer.received) >= total:
                break
            assert all(w.poll() is None for w in workers), "a worker exited"
            time.sleep(0.2)
        # Anything delivered twice would arrive after the last row turned 'delivered'.
        time.sleep(0.5)

        got = Counter((r.activity["id"], r.path) for r in peer.received)
        expected = {(i, inbox.split(peer.base, 1)[1]) for i in ids for inbox in inboxes}
        assert set(got) == expected, "some jobs never reached the sink"
        rows = node.query("SELECT activity_uri, inbox_url, state, attempts, last_error, "
                          "claimed_by FROM deliveries")
        assert {r["state"] for r in rows} == {"delivered"}
        # A second POST is a double claim unless the job's own row counts a failed attempt: on
        # a loaded machine the peer may answer after the deadline, and at-least-once resends.
        retried = {(r["activity_uri"], r["inbox_url"].split(peer.base, 1)[1])
                   for r in rows if r["attempts"] > 1}
        twice = {k: v for k, v in got.items() if v > 1 and k not in retried}
        assert not twice, f"delivered more than once: {twice}"
        assert len(retried) <= len(rows) // 10, retried  # retries stay the exception
        assert all(r.signature_ok for r in peer.received), [r.signature_error
                                                            for r in peer.received][:3]
        # Both processes took part: the claim is shared, not won by one worker alone.
        claimers = Counter(r["claimed_by"].split(":")[1] for r in rows)
        assert len(claimers) == 2, claimers
    finally:
        for w in workers:
            _stop(w)
        node.stop()
        node.client.close()
        peer.stop()
        if url.startswith("postgresql"):
            drop_postgres_database(url)
