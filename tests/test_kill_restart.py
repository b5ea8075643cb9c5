"""Nothing lost: a real node is SIGKILLed while it delivers a post to followers on three hosts,
restarted, and every follower ends up with the post exactly once by activity id; a follower's
server that goes away gets retries with growing delays and the post when it comes back.

What "exactly once" means on the wire: the queue is lease-based (a claimed row is locked for a
while; a worker that dies leaves the lease to run out and the row is claimed again). A POST the
dead process had in flight may have reached the receiver without its success being recorded, so
that receiver gets the same activity a second time: HTTP delivery is at-least-once, and
exactly-once holds per activity id, because receivers dedupe by id (as ours does, and Mastodon).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.nodes import NodeProcess
from tests.peers import RemotePeer

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT = 2  # the lease is 2 × this + 5 s


class SlowPeer(RemotePeer):
    """A peer whose inbox, when `slow` is set, holds each POST for `delay` seconds before
    answering: the window in which the test kills the node."""

    def __init__(self, host: str, delay: float) -> None:
        super().__init__(host)
        self.delay = delay
        self.slow = False
        self.arrivals = 0

    def _app(self):  # type: ignore[override]
        inner = super()._app()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] != "POST":
                await inner(scope, receive, send)
                return
            # The whole request is in hand before the pause: if the sender dies meanwhile, this
            # server still processes what it received, as a real one would.
            messages = []
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            self.arrivals += 1
            if self.slow:
                await asyncio.sleep(self.delay)

            async def replay() -> Message:
                return messages.pop(0) if messages else {"type": "http.disconnect"}

            await inner(scope, replay, send)

        return app


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def creates(peer: RemotePeer) -> Counter:
    """POSTs of Create per activity id."""
    return Counter(a["id"] for a in peer.inbox_activities("Create"))


def follow(node: NodeProcess, peer: RemotePeer, name: str) -> None:
    actor = peer.actors[name]
    activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
                "type": "Follow", "actor": actor.uri, "object": node.org_uri}
    resp = peer.post(actor, f"{node.org_uri}/inbox", activity)
    assert resp.status_code == 202, resp.text


@pytest.fixture
def peers() -> Iterator[list[SlowPeer]]:
    started = []
    for host in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        peer = SlowPeer(host, delay=1.5)
        peer.add_actor("follower")
        started.append(peer.start())
    yield started
    for peer in started:
        peer.stop()


def test_sigkill_mid_delivery_then_restart_delivers_exactly_once(tmp_path, peers):
    node = NodeProcess(tmp_path / "n", host="127.0.0.2",
                       NODE_DELIVERY_TIMEOUT=str(DELIVERY_TIMEOUT)).start()
    try:
        for peer in peers:
            follow(node, peer, "follower")
        node.wait_until("SELECT COUNT(*) AS n FROM follows WHERE state = 'accepted' "
                        "HAVING COUNT(*) = 3")
        for peer in peers:
            peer.wait_for("Accept")
        slow = peers[0]
        slow.slow = True
        before = slow.arrivals
        node.login()
        assert node.admin_action("note", text="Repas chaud ce soir").status_code == 303
        # The slow inbox holds the POST: the node is killed while that delivery is in flight.
        wait(lambda: slow.arrivals > before, 15, "the delivery to reach the slow peer")
        node.kill()
        in_flight = node.query(
            "SELECT d.state, d.locked_until FROM deliveries d JOIN activities a "
            "ON a.uri = d.activity_uri WHERE a.type = 'Create' AND d.host = :h",
            {"h": f"{slow.host_ip}:{slow.port}"})
        assert in_flight and in_flight[0]["state"] == "pending"  # not recorded as delivered
        assert in_flight[0]["locked_until"] is not None  # still leased by the dead process

        node.start()
        node.wait_until(
            "SELECT 1 FROM deliveries d JOIN activities a ON a.uri = d.activity_uri "
            "WHERE a.type = 'Create' GROUP BY a.uri "
            "HAVING SUM(CASE WHEN d.state = 'delivered' THEN 1 ELSE 0 END) = 3",
            timeout=4 * DELIVERY_TIMEOUT + 20)
        wait(lambda: sum(creates(slow).values()) >= 2, 10, "the slow peer's second POST")
        ids = {peer.host_ip: creates(peer) for peer in peers}
        create_ids = {activity_id for counter in ids.values() for activity_id in counter}
        assert len(create_ids) == 1, ids  # one post, the same activity everywhere
        for host, counter in ids.items():
            assert len(counter) == 1, (host, counter)  # exactly once by activity id
        # At the HTTP level: the fast peers were served once; the slow one also got the POST
        # the killed process had in flight, and the retry after the lease ran out.
        assert ids[slow.host_ip].most_common(1)[0][1] == 2, ids
        for peer in peers[1:]:
            assert sum(ids[peer.host_ip].values()) in (1, 2), ids
        # Every peer checked the signature of the copy it kept (the in-flight POST could not
        # be checked: the key's owner was dead when the slow peer looked it up).
        for peer in peers:
            last = [r for r in peer.received if r.activity["type"] == "Create"][-1]
            assert last.signature_ok, last.signature_error
    finally:
        node.close()


def test_a_peer_away_for_a_while_gets_backoff_then_the_post(tmp_path, peers):
    node = NodeProcess(tmp_path / "n", host="127.0.0.2").start()
    try:
        away = peers[1]
        follow(node, away, "follower")
        node.wait_until("SELECT 1 FROM follows WHERE state = 'accepted'")
        away.wait_for("Accept")
        away.stop()
        node.login()
        assert node.admin_action("note", text="Distribution demain 10h").status_code == 303
        seen: list[tuple[int, float]] = []

        def retries_grow() -> bool:
            rows = node.query(
                "SELECT d.attempts, d.next_attempt_at, d.state FROM deliveries d "
                "JOIN activities a ON a.uri = d.activity_uri WHERE a.type = 'Create'")
            if rows and rows[0]["attempts"] and (not seen or seen[-1][0] != rows[0]["attempts"]):
                assert rows[0]["state"] == "pending"
                seen.append((rows[0]["attempts"], rows[0]["next_attempt_at"]))
            return len(seen) >= 3 and seen[-1][0] >= 4

        wait(retries_grow, 30, "four failed attempts")
        attempts = [a for a, _ in seen]
        times = [t for _, t in seen]
        assert attempts == sorted(attempts) and times == sorted(times)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert gaps[-1] > gaps[0], seen  # the delays grow
        error = node.query("SELECT last_error FROM deliveries WHERE state = 'pending'")
        assert error and error[0]["last_error"]

        away.start()  # the same address and port: the server is back
        node.wait_until(
            "SELECT 1 FROM deliveries d JOIN activities a ON a.uri = d.activity_uri "
            "WHERE a.type = 'Create' AND d.state = 'delivered'", timeout=30)
        got = away.inbox_activities("Create")
        assert len({a["id"] for a in got}) == 1
        assert "Distribution demain" in got[0]["object"]["content"]
        assert node.query("SELECT unavailable FROM hosts WHERE host = :h",
                          {"h": f"{away.host_ip}:{away.port}"})[0]["unavailable"] == 0
    finally:
        node.close()
