"""The durable inbox: a 2xx means the activity is stored, and the node itself finishes every
stored activity exactly once, whatever happens to the process and whatever the sender does.

The crash test runs a real node process and a hostile peer with its own signing code: a stream
of signed Follow / Like / Flag POSTs, SIGKILL in the middle, restart, nothing resent. The
test-only hook `NODE_TEST_INBOX_DELAY` (inbox/runner.py) makes each fresh activity wait before
its handler, so that the kill lands between storing and handling; `NODE_INBOX_WAIT` is shorter,
so some activities are answered 202 while their handler has not run yet.

Each effect is one a second run would show: a Follow makes the node publish an `Accept` with a
new id every time its handler runs, so "one Accept per Follow" proves exactly once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from inbox import queue
from inbox.handlers import HANDLERS
from inbox.runner import InboxRunner
from node.context import Node
from node.db import dumps, now
from tests.conftest import node_settings, running_app
from tests.hostile import HostileActor, HostilePeer, sign
from tests.nodes import NodeProcess

NODE_HOST = "127.0.0.80"
PEER_HOST = "127.0.0.81"
KINDS = ("Follow", "Like", "Flag")
STREAM = 30
KILL_AFTER = 12  # answered POSTs before the kill


# --- a real process killed in the middle of a stream -------------------------------------------

LOCAL_NOTE_SQL = (
    "INSERT INTO objects (uri, type, attributed_to, local, payload, deleted, published) "
    "VALUES (:u, 'Note', :a, 1, :p, 0, :t) RETURNING uri")


def _local_note(uri: str, author: str) -> dict[str, Any]:
    doc = {"id": uri, "type": "Note", "attributedTo": author, "content": "<p>Soupe</p>",
           "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    return {"u": uri, "a": author, "p": dumps(doc), "t": now()}


def _stream(peer: HostilePeer, node: NodeProcess) -> list[tuple[str, dict[str, Any]]]:
    """(kind, activity) for STREAM activities, each from its own actor of the peer."""
    note = f"{node.base}/objects/soup"
    node.query(LOCAL_NOTE_SQL, _local_note(note, node.org_uri))
    out = []
    for i in range(STREAM):
        kind = KINDS[i % len(KINDS)]
        actor = peer.add_actor(f"user{i}")
        if kind == "Flag":
            activity = peer.activity(actor, "Flag", [node.org_uri], content=f"report {i}")
        else:
            activity = peer.activity(actor, kind, note if kind == "Like" else node.org_uri)
        out.append((kind, activity))
    return out


def _post(http: httpx.Client, peer: HostilePeer, activity: dict[str, Any],
          node: NodeProcess) -> httpx.Response:
    actor: HostileActor = peer.actors[activity["actor"].rsplit("/", 1)[1]]
    body = json.dumps(activity).encode()
    url = f"{node.base}/inbox"
    return http.post(url, content=body, headers=sign(actor, "POST", url, body))


def _status(node: NodeProcess) -> dict[str, str]:
    return {r["activity_id"]: r["status"]
            for r in node.query("SELECT activity_id, status FROM inbox_log")}


def _wait_no_pending(node: NodeProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "pending" not in _status(node).values():
            return
        time.sleep(0.2)
    raise AssertionError(f"activities still pending after {timeout}s:\n{node.log()[-3000:]}")


def _accepts_of(node: NodeProcess, follower: str) -> int:
    return sum(1 for r in node.query("SELECT payload FROM activities WHERE type = 'Accept'")
               if f'"actor":"{follower}"' in r["payload"].replace(" ", ""))


def _effect(node: NodeProcess, kind: str, activity: dict[str, Any]) -> int:
    """How many times the activity's effect is in the database (1 when handled once)."""
    actor = activity["actor"]
    if kind == "Follow":
        follows = node.query("SELECT state FROM follows WHERE follower_uri = :f", {"f": actor})
        assert [f["state"] for f in follows] in ([], ["accepted"])
        return _accepts_of(node, actor) if follows else 0
    if kind == "Like":
        return len(node.query("SELECT 1 FROM reactions WHERE actor_uri = :a", {"a": actor}))
    return len(node.query("SELECT 1 FROM report_reporters WHERE reporter = :a", {"a": actor}))


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory):
    """A node killed in the middle of a stream of signed POSTs, then started again."""
    peer = HostilePeer(PEER_HOST).start()
    node = NodeProcess(tmp_path_factory.mktemp("durable"), host=NODE_HOST,
                       NODE_TEST_INBOX_DELAY="0.6", NODE_INBOX_WAIT="0.2",
                       NODE_INBOX_LEASE="2", NODE_REPORTS_PER_SERVER="0")
    node.start()
    stream = _stream(peer, node)
    answers: dict[str, int] = {}
    sending = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=15) as http:
            for _kind, activity in stream:
                if len(answers) == KILL_AFTER:
                    sending.set()
                try:
                    resp = _post(http, peer, activity, node)
                except httpx.HTTPError:
                    return  # the node is gone: a real sender would retry later, not this one
                answers[activity["id"]] = resp.status_code

    sender = threading.Thread(target=send)
    try:
        sender.start()
        assert sending.wait(30), node.log()
        time.sleep(0.1)  # the next POST is stored and waits for its handler
        node.kill()
        sender.join(20)
        after_kill = {ident: (status, _effect(node, kind, activity))
                      for kind, activity in stream
                      for ident, status in _status(node).items() if ident == activity["id"]}
        node.start()
        yield peer, node, stream, answers, after_kill
    finally:
        node.close()
        peer.stop()


def test_every_acknowledged_activity_is_processed_once_after_a_crash_without_resending(crashed):
    peer, node, stream, answers, after_kill = crashed
    answered = [(k, a) for k, a in stream if 200 <= answers.get(a["id"], 0) < 300]
    assert len(answered) >= KILL_AFTER
    # The kill landed between storing and handling: acknowledged, stored, not yet handled.
    waiting = [a["id"] for _k, a in answered if after_kill.get(a["id"], ("",))[0] == "pending"]
    assert waiting, f"the kill did not land between storing and handling: {after_kill}"
    assert all(after_kill[ident][1] == 0 for ident in waiting)

    _wait_no_pending(node)  # nothing was resent: the node resumes by itself
    status = _status(node)
    for kind, activity in answered:
        assert status.get(activity["id"]) == "processed", (kind, activity["id"], status)
    # Every stored activity, answered or cut off by the kill, is processed exactly once.
    for kind, activity in stream:
        if activity["id"] in status:
            assert status[activity["id"]] == "processed"
            assert _effect(node, kind, activity) == 1, (kind, activity["id"])
        else:
            assert _effect(node, kind, activity) == 0
    assert len(node.query("SELECT 1 FROM reports")) == 1  # the Flags became one entry
    # The resumed Follows' Accepts reach their followers, one each.
    follows = [a for k, a in answered if k == "Follow"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        accepted = {a["object"]["actor"] for a in peer.received_of("Accept")}
        if all(f["actor"] in accepted for f in follows):
            break
        time.sleep(0.2)
    for follow in follows:
        ids = {a["id"] for a in peer.received_of("Accept") if a["object"]["actor"]
               == follow["actor"]}
        assert len(ids) == 1, (follow["actor"], ids)


def test_the_senders_retry_after_the_restart_is_already_received_and_nothing_doubles(crashed):
    peer, node, stream, answers, _after_kill = crashed
    _wait_no_pending(node)
    stored = set(_status(node))
    with httpx.Client(timeout=15) as http:
        for _kind, activity in stream:  # a sender retries what it is unsure of, and more
            resp = _post(http, peer, activity, node)
            assert 200 <= resp.status_code < 300, resp.text
            if activity["id"] in stored:
                assert resp.json()["status"] == "already received"
    _wait_no_pending(node)
    status = _status(node)
    for kind, activity in stream:
        assert status[activity["id"]] == "processed", (kind, activity["id"])
        assert _effect(node, kind, activity) == 1, (kind, activity["id"])
    likes = sum(1 for k, _a in stream if k == "Like")
    assert len(node.query("SELECT 1 FROM reactions")) == likes
    assert len(node.query("SELECT 1 FROM report_reporters")) == STREAM // len(KINDS)


# --- the queue's rules, in one process ----------------------------------------------------------

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
NOTE = f"{BASE}/objects/soup"


@pytest_asyncio.fixture
async def quick_node(tmp_path: Path, database_url: str):
    settings = node_settings(tmp_path, database_url, NODE_INBOX_LEASE="1",
                             NODE_BACKOFF_SCALE="0.0001")
    async with running_app(settings) as (node, client):
        await node.db.fetch_val(LOCAL_NOTE_SQL, _local_note(NOTE, ORG))
        yield node, client


async def _pending(node: Node, kind: str, actor: str, claimed_by: str | None = None,
                   locked_until: float | None = None, obj: str = NOTE) -> str:
    """A stored, unfinished activity as a crashed (or living) process leaves it."""
    ident = f"http://{PEER_HOST}/activities/{kind}-{actor.rsplit('/', 1)[1]}-{now()}"
    activity = {"id": ident, "type": kind, "actor": actor, "object": obj}
    await node.db.execute(
        "INSERT INTO inbox_log (activity_id, actor_uri, type, payload, status, attempts, "
        "next_attempt_at, locked_until, claimed_by, received_at) VALUES "
        "(:i, :a, :t, :p, 'pending', 0, :n, :l, :w, :n)",
        {"i": ident, "a": actor, "t": kind, "p": dumps(activity), "n": now(),
         "l": locked_until, "w": claimed_by})
    return ident


async def _row(node: Node, ident: str) -> dict:
    row = await node.db.fetch_one("SELECT * FROM inbox_log WHERE activity_id = :i", {"i": ident})
    assert row is not None
    return row


async def _until(node: Node, ident: str, status: str, within: float = 10) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = await _row(node, ident)
        if row["status"] == status:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"{ident} not {status}: {await _row(node, ident)}")


async def test_a_row_left_by_a_dead_process_is_resumed_and_a_live_lease_is_respected(quick_node):
    node, _client = quick_node
    ana, bob = f"http://{PEER_HOST}/users/ana", f"http://{PEER_HOST}/users/bob"
    dead = await _pending(node, "Like", ana, claimed_by="dead-host:1:1", locked_until=now() - 1)
    held = await _pending(node, "Like", bob, claimed_by="live-host:2:2",
                          locked_until=now() + 3600)
    row = await _until(node, dead, "processed")  # the running node's resumer took it
    assert row["attempts"] == 1 and row["locked_until"] is None
    assert await node.db.fetch_val("SELECT COUNT(*) FROM reactions WHERE actor_uri = :a",
                                   {"a": ana}) == 1
    await asyncio.sleep(1.5)  # a full poll later: the live process's row is still its own
    row = await _row(node, held)
    assert row["status"] == "pending" and row["claimed_by"] == "live-host:2:2"
    assert await node.db.fetch_val("SELECT COUNT(*) FROM reactions WHERE actor_uri = :a",
                                   {"a": bob}) == 0
    # That process dies: its lease runs out, and the row is resumed.
    await node.db.execute("UPDATE inbox_log SET locked_until = :t WHERE activity_id = :i",
                          {"t": now() - 1, "i": held})
    await _until(node, held, "processed")
    assert await node.db.fetch_val("SELECT COUNT(*) FROM reactions WHERE actor_uri = :a",
                                   {"a": bob}) == 1


async def test_a_failing_handler_is_retried_with_backoff_then_failed_with_its_error(
        quick_node, monkeypatch):
    node, _client = quick_node
    tries: dict[str, int] = {}

    async def flaky(ctx) -> None:
        tries[ctx.activity["id"]] = tries.get(ctx.activity["id"], 0) + 1
        if "broken" in ctx.activity["id"] or tries[ctx.activity["id"]] < 3:
            raise RuntimeError(f"remote server down (try {tries[ctx.activity['id']]})")

    monkeypatch.setitem(HANDLERS, "Flaky", flaky)
    recovers = await _pending(node, "Flaky", f"http://{PEER_HOST}/users/ana")
    broken = await _pending(node, "Flaky", f"http://{PEER_HOST}/users/broken")
    row = await _until(node, recovers, "processed")
    assert row["attempts"] == 3 and tries[recovers] == 3
    row = await _until(node, broken, "failed", within=20)
    assert row["attempts"] == queue.MAX_ATTEMPTS == tries[broken]
    assert "remote server down" in row["error"] and row["finished_at"] is not None
    await asyncio.sleep(0.3)
    assert tries[broken] == queue.MAX_ATTEMPTS  # bounded: no try after the last


async def test_two_processes_never_claim_the_same_row(quick_node):
    node, _client = quick_node
    await node.inbox_runner.stop()  # this test claims by hand
    idents = {await _pending(node, "Like", f"http://{PEER_HOST}/users/u{i}") for i in range(60)}
    first, second = InboxRunner(node), InboxRunner(node)
    assert first.id != second.id

    async def claim_all(runner: InboxRunner) -> list[str]:
        taken: list[str] = []
        while batch := await queue.claim(node, runner.id, 7, 30):
            taken += [e.activity_id for e in batch]
            await asyncio.sleep(0)
        return taken

    a, b = await asyncio.gather(claim_all(first), claim_all(second))
    assert not set(a) & set(b)
    assert set(a) | set(b) == idents and len(a) + len(b) == len(idents)
    # Held leases are not claimed again; a renewal keeps them.
    assert await queue.claim(node, "third", 100, 30) == []
    assert await queue.renew(node, a[0], first.id, 30)
    assert not await queue.renew(node, a[0], second.id, 30)


def _like(actor: str) -> dict[str, Any]:
    return {"id": f"{actor}/likes/{now()}", "type": "Like", "actor": actor, "object": NOTE}


async def test_activities_are_answered_once_handled_and_their_rows_marked_together(
        quick_node, monkeypatch):
    node, _client = quick_node
    runner = node.inbox_runner
    marks: list[int] = []
    mark = queue.mark_processed

    async def counted(node_: Node, ids: Any, worker: str) -> dict[str, bool]:
        marks.append(len(ids))
        return await mark(node_, ids, worker)

    monkeypatch.setattr(queue, "mark_processed", counted)
    likes = [_like(f"http://{PEER_HOST}/users/m{i}") for i in range(20)]
    results = await asyncio.gather(*(runner.accept(a, a["actor"], None) for a in likes))
    assert [r.state for r in results] == ["processed"] * 20
    for like in likes:
        await _until(node, like["id"], "processed")
    # The marks waited for one another instead of a statement each.
    assert sum(marks) == 20 and len(marks) <= 4, marks
    assert await node.db.fetch_val("SELECT COUNT(*) FROM reactions") == 20


async def test_a_mark_the_database_refuses_leaves_the_row_to_its_lease_and_a_rerun_adds_nothing(
        quick_node, monkeypatch, caplog):
    node, _client = quick_node
    runner = node.inbox_runner
    mark = queue.mark_processed
    refused: list[str] = []

    async def once_refused(node_: Node, ids: Any, worker: str) -> dict[str, bool]:
        if not refused:
            refused.extend(ids)
            raise RuntimeError("database restarting")
        return await mark(node_, ids, worker)

    monkeypatch.setattr(queue, "mark_processed", once_refused)
    like = _like(f"http://{PEER_HOST}/users/ana")
    assert (await runner.accept(like, like["actor"], None)).state == "processed"
    row = await _until(node, like["id"], "processed", within=15)  # resumed after the lease
    assert refused == [like["id"]] and row["attempts"] == 1
    assert "marking inbox row" in caplog.text and "database restarting" in caplog.text
    # The handler ran twice; the reaction is there once.
    assert await node.db.fetch_val("SELECT COUNT(*) FROM reactions WHERE actor_uri = :a",
                                   {"a": like["actor"]}) == 1


async def test_stopping_writes_the_marks_still_waiting(quick_node):
    node, _client = quick_node
    runner = node.inbox_runner
    like = _like(f"http://{PEER_HOST}/users/bob")
    assert (await runner.accept(like, like["actor"], None)).state == "processed"
    await runner.stop()
    assert (await _row(node, like["id"]))["status"] == "processed"
