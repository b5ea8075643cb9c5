"""Deliveries are isolated per host: followers whose inboxes hang, answer 500 or drip their
answer a byte at a time hold only their own host's slots, and every outgoing request has an
overall deadline (connecting, headers and body together). A real node, hostile followers on
their own hosts, healthy followers, real signatures; the queue's per-host claim on its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from activitypub.signatures import SigningKey
from activitypub.transport import FetchError, Transport
from node.context import Node
from node.db import now as db_now
from outbox import queue
from tests.hostile import HostilePeer
from tests.nodes import NodeProcess
from tests.peers import RemotePeer, free_port
from tests.peers import test_keypair as keypair

POSTS = 20
# How long the healthy followers may take for all the posts: a bound on liveness, generous
# for a loaded machine, not a measure of speed (they take a second or two).
LIVENESS = 20.0


# --- the transport: one deadline for the whole answer ---------------------------------------

@contextlib.asynccontextmanager
async def dripping_server(host: str, headers_at_once: bool
                          ) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A server that answers any request one byte every 0.1 s (or its headers at once, then so),
    with a body that never ends: each read gets a byte long before a per-read timeout. The
    event is set once the client has dropped the connection."""
    dropped = asyncio.Event()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/activity+json\r\n" \
             b"Connection: close\r\n\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        try:
            if headers_at_once:
                writer.write(answer)
            for index in range(len(answer) if headers_at_once else 0, 100_000):
                writer.write(answer[index:index + 1] or b" ")
                await writer.drain()
                await asyncio.sleep(0.1)
        except (ConnectionError, OSError):
            dropped.set()
        finally:
            writer.close()

    port = free_port(host)
    server = await asyncio.start_server(handle, host, port)
    try:
        yield f"http://{host}:{port}", dropped
    finally:
        server.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("headers_at_once", [False, True], ids=["headers-dripped", "body-dripped"])
async def test_transport_gives_up_on_a_dripping_answer_at_its_deadline(
    method: str, headers_at_once: bool
) -> None:
    # The per-read timeout (2 s) never fires: a byte comes every 0.1 s. Only an overall
    # deadline ends the request; without one it would read for hours.
    transport = Transport(allow_private=True, allow_http=True, timeout=2.0)
    pair = keypair()
    key = SigningKey("http://127.0.0.70/actor#main-key", pair.private_pem)
    try:
        async with dripping_server("127.0.0.76", headers_at_once) as (base, dropped):
            if method == "GET":
                call = transport.get_json(f"{base}/users/ana", key)
            else:  # a delivery, with the deadline the worker gives it
                call = transport.post_activity(f"{base}/inbox", key, {"type": "Create"},
                                               deadline=1.0)
            with pytest.raises(FetchError, match="no complete answer within"):
                # A safety net for the old code, which would read on for an hour.
                await asyncio.wait_for(call, timeout=15)
            # The connection is dropped, not left to drip on.
            await asyncio.wait_for(dropped.wait(), timeout=10)
    finally:
        await transport.aclose()


# --- the queue: a claim takes from each host only what its lane has room for ----------------

async def _queue_jobs(node: Node, host: str, count: int) -> None:
    await node.db.execute_many(
        "INSERT INTO deliveries (activity_uri, sender_id, inbox_url, host, state, attempts, "
        "next_attempt_at, created_at) VALUES (:a, 'sender', :i, :h, 'pending', 0, :t, :t)",
        [{"a": f"http://127.0.0.1:8999/activities/{host}-{n}", "i": f"http://{host}/inbox",
          "h": host, "t": db_now() - 10 + n * 0.01} for n in range(count)],
    )


async def test_claim_takes_per_host_room_and_one_for_a_failing_host(
    app_node: tuple[Node, httpx.AsyncClient]
) -> None:
    node, _ = app_node
    # The hung host's jobs are the oldest: a claim by age alone would take them first.
    for host in ("hung.example", "busy.example", "down.example", "fine.example"):
        await _queue_jobs(node, host, 10)
    await node.db.execute(
        "INSERT INTO hosts (host, failure_days, unavailable, last_failure_at, last_success_at) "
        "VALUES ('down.example', '[\"2026-01-01\"]', 0, :t, :s)",
        {"t": db_now() - 5, "s": db_now() - 60})

    jobs = await queue.claim(node, "w1", 100, lease=30, per_host=4,
                             room={"hung.example": 0, "busy.example": 1})
    taken = Counter(job.host for job in jobs)
    # A full lane takes nothing, a half-full one its room, a failing host one probe.
    assert taken == {"busy.example": 1, "down.example": 1, "fine.example": 4}
    assert {job.host for job in jobs if job.failing} == {"down.example"}
    # The oldest jobs of each host go first.
    fine = sorted(job.id for job in jobs if job.host == "fine.example")
    first = await node.db.fetch_all(
        "SELECT id FROM deliveries WHERE host = 'fine.example' ORDER BY id LIMIT 4")
    assert fine == [row["id"] for row in first]

    # Another worker gets the rest of the backlog, never a job already claimed.
    others = await queue.claim(node, "w2", 100, lease=30, per_host=4)
    assert not {job.id for job in others} & {job.id for job in jobs}
    assert Counter(job.host for job in others) == {
        "hung.example": 4, "busy.example": 4, "down.example": 1, "fine.example": 4}

    # A success ends the failing state: the host gets its full lane again.
    await node.db.execute(
        "UPDATE hosts SET last_success_at = :t WHERE host = 'down.example'", {"t": db_now()})
    again = await queue.claim(node, "w3", 100, lease=30, per_host=4)
    assert Counter(job.host for job in again)["down.example"] == 4
    assert not any(job.failing for job in again)


# --- a real node with hostile followers --------------------------------------------------------

def _follow_hostile(node: NodeProcess, peer: HostilePeer) -> None:
    actor = peer.add_actor("ana")
    follow = peer.activity(actor, "Follow", node.org_uri)
    assert peer.post(actor, f"{node.org_uri}/inbox", follow).status_code == 202
    deadline = time.monotonic() + 15
    while not peer.received_of("Accept"):
        assert time.monotonic() < deadline, f"{peer.base} got no Accept\n{node.log()}"
        time.sleep(0.05)


def _follow_remote(node: NodeProcess, peer: RemotePeer) -> None:
    actor = peer.add_actor("bea")
    follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
              "type": "Follow", "actor": actor.uri, "object": node.org_uri}
    assert peer.post(actor, f"{node.org_uri}/inbox", follow).status_code == 202
    peer.wait_for("Accept")


def _host(peer: HostilePeer | RemotePeer) -> str:
    return f"{peer.host_ip}:{peer.port}"


@pytest.fixture
def hostile_followers() -> Iterator[dict[str, Any]]:
    peers = {
        "hang": HostilePeer("127.0.0.71"),
        "error": HostilePeer("127.0.0.72"),
        "drip": HostilePeer("127.0.0.73"),
        "ok": HostilePeer("127.0.0.74"),
        "remote": RemotePeer("127.0.0.75"),
    }
    for peer in peers.values():
        peer.start()
    try:
        yield peers
    finally:
        for peer in peers.values():
            peer.stop()


@pytest.mark.e2e
def test_hostile_followers_do_not_delay_the_healthy_ones(
    tmp_path: Path, hostile_followers: dict[str, Any]
) -> None:
    peers = hostile_followers
    # Reads may pause 10 s, the README's default, longer than the drip's 5 s between bytes: only
    # the overall deadline of a delivery (3 s here) ends a dripped answer.
    node = NodeProcess(tmp_path / "node", host="127.0.0.70", NODE_FETCH_TIMEOUT="10",
                       NODE_DELIVERY_TIMEOUT="3")
    try:
        node.start()
        node.login()
        for name in ("hang", "error", "drip", "ok"):
            _follow_hostile(node, peers[name])
        _follow_remote(node, peers["remote"])
        for name in ("hang", "error", "drip"):
            peers[name].inbox_mode = name

        for n in range(POSTS):
            assert node.admin_action("note", text=f"Annonce {n}").status_code == 303
        creates = {r["uri"] for r in node.query(
            "SELECT uri FROM activities WHERE type = 'Create'")}
        assert len(creates) == POSTS

        def healthy() -> tuple[set[str], set[str]]:
            ok = {a["id"] for a in peers["ok"].received_of("Create")}
            remote = {a["id"] for a in peers["remote"].inbox_activities("Create")}
            return ok, remote

        deadline = time.monotonic() + LIVENESS
        while healthy() != (creates, creates) and time.monotonic() < deadline:
            time.sleep(0.1)
        ok, remote = healthy()
        assert (len(ok), len(remote)) == (POSTS, POSTS), node.log()[-3000:]
        assert ok == remote == creates
        assert all(r.signature_ok for r in peers["remote"].received)

        # The bad hosts were tried and their failures recorded against them alone: the drip was
        # cut off by the deadline, the 500s are being retried, the hang timed out.
        errors = {name: node.wait_until(
            "SELECT last_error, attempts FROM deliveries WHERE host = :h "
            "AND last_error IS NOT NULL", {"h": _host(peers[name])}) for name in
            ("hang", "error", "drip")}
        assert "no complete answer within 3 s" in errors["drip"][0]["last_error"]
        assert "no complete answer within 3 s" in errors["hang"][0]["last_error"]
        assert "HTTP 500" in errors["error"][0]["last_error"]
        node.wait_until("SELECT 1 FROM deliveries WHERE host = :h AND attempts >= 2",
                        {"h": _host(peers["error"])})
        health = {row["host"]: row for row in node.query("SELECT * FROM hosts")}
        for name in ("hang", "error", "drip"):
            assert health[_host(peers[name])]["last_failure_at"] is not None, name
        for name in ("ok", "remote"):
            row = health[_host(peers[name])]
            assert row["last_failure_at"] is None and row["last_success_at"] is not None, name
        # Every post reached each healthy follower once.
        delivered = node.query(
            "SELECT d.host, COUNT(*) AS n FROM deliveries d JOIN activities a "
            "ON a.uri = d.activity_uri WHERE a.type = 'Create' AND d.state = 'delivered' "
            "GROUP BY d.host")
        counts = {row["host"]: row["n"] for row in delivered}
        assert counts[_host(peers["ok"])] == counts[_host(peers["remote"])] == POSTS
    finally:
        node.close()
