"""Durable delivery: retries until a target comes up (and then exactly once), one job per shared
inbox, permanent failures on 4xx, the retry schedule in numbers, and host health driven by
controlled dates. Real node processes, real peers, real signatures."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.context import Node
from node.db import Database
from node.db import now as db_now
from outbox import hosts
from outbox.backoff import JITTER, MAX_ATTEMPTS, base_delay, retry_delay
from outbox.queue import claim
from outbox.worker import DeliveryWorker
from tests.nodes import NodeProcess
from tests.peers import RemotePeer

DAY = 24 * 3600
WEEK = 7 * DAY


# --- the retry schedule, in numbers --------------------------------------------------------

def _schedule(pick: str) -> list[float]:
    """The waits after failures 1..16 (failure 17 ends the job), with no or with full jitter."""
    waits = [base_delay(a) for a in range(1, MAX_ATTEMPTS)]
    return waits if pick == "low" else [w * (1 + JITTER) for w in waits]


def test_sixteen_retries_spread_over_about_a_week() -> None:
    assert MAX_ATTEMPTS == 17
    low, high = sum(_schedule("low")), sum(_schedule("high"))
    assert 6 * DAY < low < high < WEEK
    # The first retries come within a minute or so, the last ones days apart.
    assert base_delay(1) == 15 and base_delay(2) == 18
    assert sum(_schedule("low")[:5]) < 3600
    assert base_delay(16) > 1.5 * DAY  # the last wait: 15 + 3·15⁴ s, about 42 hours


def test_retry_delays_grow_monotonically_whatever_the_jitter() -> None:
    low, high = _schedule("low"), _schedule("high")
    for attempt in range(len(low) - 1):
        # The earliest next retry is later than the latest previous one.
        assert low[attempt + 1] > high[attempt], attempt


def test_retry_delay_stays_inside_its_jitter_window_and_scales() -> None:
    rng = random.Random(1)
    for attempts in range(1, MAX_ATTEMPTS):
        base = base_delay(attempts)
        for _ in range(50):
            delay = retry_delay(attempts, rng=rng)
            assert base <= delay <= base * (1 + JITTER)
        scaled = retry_delay(attempts, scale=0.001, rng=random.Random(7))
        assert scaled == pytest.approx(retry_delay(attempts, rng=random.Random(7)) * 0.001)
    assert retry_delay(0) >= 15  # a zero count is treated as the first failure


# --- host health, with controlled dates ----------------------------------------------------

HOST = "flaky.example"
T0 = 1_790_000_000.0  # a fixed UTC instant; failures are placed on days after it


async def _host(node: Node) -> dict[str, Any] | None:
    return await node.db.fetch_one("SELECT * FROM hosts WHERE host = :h", {"h": HOST})


async def test_host_unavailable_after_failures_on_seven_distinct_days(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, _ = app_node
    # Many failures on the same day count as one day.
    for hour in range(5):
        assert await hosts.record_failure(node, HOST, at=T0 + hour * 3600) is False
    for day in range(1, 6):
        assert await hosts.record_failure(node, HOST, at=T0 + day * DAY) is False
    row = await _host(node)
    assert len(json.loads(row["failure_days"])) == 6 and row["unavailable"] == 0
    assert not await hosts.is_unavailable(node, HOST)

    assert await hosts.record_failure(node, HOST, at=T0 + 6 * DAY) is True
    assert await hosts.is_unavailable(node, HOST)
    assert (await _host(node))["last_failure_at"] == T0 + 6 * DAY

    # One success makes it available again and forgets the failure days.
    await hosts.record_success(node, HOST)
    row = await _host(node)
    assert row["unavailable"] == 0 and json.loads(row["failure_days"]) == []


async def test_seven_failures_spread_over_six_days_are_not_enough(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, _ = app_node
    stamps = [T0 + d * DAY for d in (0, 1, 2, 3, 4, 5, 5)]
    results = [await hosts.record_failure(node, HOST, at=t) for t in stamps]
    assert results == [False] * 7


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.0.3")
    remote.add_actor("ana")
    await remote.astart()
    yield remote
    await remote.astop()


async def test_worker_postpones_jobs_for_an_unavailable_host(
    app_node: tuple[Node, httpx.AsyncClient], peer: RemotePeer
) -> None:
    node, _ = app_node
    host = f"{peer.host_ip}:{peer.port}"
    await node.db.execute(
        "INSERT INTO activities (uri, actor_uri, type, public, payload, created_at) "
        "VALUES ('http://127.0.0.1:8999/activities/x', 'http://127.0.0.1:8999/actor', "
        "'Update', 1, '{}', :t)", {"t": db_now()})
    sender = await node.db.fetch_val("SELECT id FROM actors WHERE kind = 'Application'")
    await node.db.execute(
        "INSERT INTO deliveries (activity_uri, sender_id, inbox_url, host, state, attempts, "
        "next_attempt_at, created_at) VALUES ('http://127.0.0.1:8999/activities/x', :s, :i, "
        ":h, 'pending', 0, :t, :t)",
        {"s": sender, "i": f"{peer.base}/inbox", "h": host, "t": db_now() - 1})
    recent = db_now() - 60
    for day in range(7):
        await hosts.record_failure(node, host, at=recent - (6 - day) * DAY)
    assert await hosts.is_unavailable(node, host)

    worker = DeliveryWorker(node)
    jobs = await claim(node, worker.id, 10, lease=30)
    assert len(jobs) == 1
    await worker.deliver(jobs[0])
    row = await node.db.fetch_one("SELECT * FROM deliveries")
    # Not tried, not counted: put back until the host's rare probe is due.
    assert row["state"] == "pending" and row["attempts"] == 0
    expected = recent + hosts.UNAVAILABLE_RETRY * node.settings.backoff_scale
    assert row["next_attempt_at"] == pytest.approx(expected)
    assert peer.received == []


# --- real nodes and peers ------------------------------------------------------------------

async def _execute(database_url: str, sql: str, values: dict[str, Any]) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        await db.execute(sql, values)
    finally:
        await db.disconnect()


def _seed_follower(node: NodeProcess, peer: RemotePeer, username: str) -> str:
    """Make the peer's actor a follower of the node's organisation without asking the peer
    (it is down): the cached actor row and the accepted follow, as if it had followed before."""
    actor = peer.actors[username]
    asyncio.run(_execute(node.database_url,
        "INSERT INTO remote_actors (uri, type, username, host, inbox, shared_inbox, "
        "public_key_id, public_key_pem, raw, fetched_at) VALUES (:u, 'Person', :n, :h, :i, "
        ":s, :k, :p, '{}', :t)",
        {"u": actor.uri, "n": username, "h": f"{peer.host_ip}:{peer.port}",
         "i": actor.inbox, "s": f"{peer.base}/inbox", "k": actor.key.key_id,
         "p": actor.keys.public_pem, "t": time.time()}))
    asyncio.run(_execute(node.database_url,
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        {"f": actor.uri, "e": node.org_uri, "a": f"{actor.uri}#follow-1", "t": time.time()}))
    return actor.uri


def _publish(node: NodeProcess, text: str) -> str:
    """Publish a note through the admin page; returns the Create activity's id."""
    before = {r["uri"] for r in node.query("SELECT uri FROM activities WHERE type = 'Create'")}
    assert node.admin_action("note", text=text).status_code == 303
    after = {r["uri"] for r in node.query("SELECT uri FROM activities WHERE type = 'Create'")}
    (created,) = after - before
    return created


def _creates(peer: RemotePeer, activity_id: str) -> list[Any]:
    return [r for r in peer.received if r.activity.get("id") == activity_id]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path / "n", host="127.0.0.2", org="quartier").start()
    proc.login()
    yield proc
    proc.close()


@pytest.mark.e2e
def test_target_down_at_first_receives_the_activity_once_it_is_up(node: NodeProcess) -> None:
    peer = RemotePeer("127.0.0.3")  # not started: nothing listens on its port yet
    peer.add_actor("ana")
    _seed_follower(node, peer, "ana")
    create_id = _publish(node, "Distribution de colis demain 10h")
    failed = node.wait_until(
        "SELECT attempts, last_error FROM deliveries WHERE activity_uri = :a "
        "AND state = 'pending' AND attempts >= 3", {"a": create_id})
    assert failed[0]["last_error"]

    peer.start()
    try:
        rows = node.wait_until("SELECT * FROM deliveries WHERE activity_uri = :a "
                               "AND state = 'delivered'", {"a": create_id})
        assert len(rows) == 1 and rows[0]["inbox_url"] == f"{peer.base}/inbox"
        assert rows[0]["attempts"] >= 4  # three or more failures, then the success
        time.sleep(1.0)  # a duplicate, if any, would arrive in this time
        received = _creates(peer, create_id)
        assert len(received) == 1
        assert received[0].signature_ok, received[0].signature_error
        assert "Distribution de colis" in received[0].activity["object"]["content"]
        # One day of failures does not make the host unavailable, and the success resets it.
        host = node.query("SELECT * FROM hosts WHERE host = :h",
                          {"h": f"{peer.host_ip}:{peer.port}"})
        assert host[0]["unavailable"] == 0 and json.loads(host[0]["failure_days"]) == []
    finally:
        peer.stop()


@pytest.mark.e2e
def test_shared_inbox_dedupe_and_permanent_failures(node: NodeProcess) -> None:
    peer = RemotePeer("127.0.0.3")
    for name in ("ana", "bob", "cleo"):
        peer.add_actor(name)
    peer.start()
    try:
        for actor in peer.actors.values():
            follow = {"@context": "https://www.w3.org/ns/activitystreams",
                      "id": peer.activity_id(), "type": "Follow", "actor": actor.uri,
                      "object": node.org_uri}
            assert peer.post(actor, f"{node.org_uri}/inbox", follow).status_code == 202
        peer.wait_for("Accept", count=3)

        # Three followers behind one shared inbox: one job, one POST.
        create_id = _publish(node, "Repas partagé vendredi")
        peer.wait_for("Create")
        # The node records the delivery once the peer's answer is back, just after the peer
        # has counted the POST.
        node.wait_until("SELECT 1 FROM deliveries WHERE activity_uri = :a AND state = "
                        "'delivered'", {"a": create_id})
        jobs = node.query("SELECT inbox_url, state FROM deliveries WHERE activity_uri = :a",
                          {"a": create_id})
        assert jobs == [{"inbox_url": f"{peer.base}/inbox", "state": "delivered"}]
        time.sleep(0.5)
        assert [r.path for r in _creates(peer, create_id)] == ["/inbox"]

        # A 4xx other than 408/429 will not get better: one try, then the job is failed.
        peer.inbox_status = 403
        refused_id = _publish(node, "Annonce refusée")
        failed = node.wait_until("SELECT * FROM deliveries WHERE activity_uri = :a "
                                 "AND state = 'failed'", {"a": refused_id})
        assert failed[0]["attempts"] == 1 and "403" in failed[0]["last_error"]
        time.sleep(0.5)
        assert len(_creates(peer, refused_id)) == 1

        # 429 (rate limited) is retried, and delivered once the peer accepts again.
        peer.inbox_status = 429
        limited_id = _publish(node, "Annonce ralentie")
        node.wait_until("SELECT 1 FROM deliveries WHERE activity_uri = :a AND state = "
                        "'pending' AND attempts >= 2", {"a": limited_id})
        peer.inbox_status = 202
        node.wait_until("SELECT 1 FROM deliveries WHERE activity_uri = :a "
                        "AND state = 'delivered'", {"a": limited_id})
        assert len(_creates(peer, limited_id)) >= 3
    finally:
        peer.stop()
