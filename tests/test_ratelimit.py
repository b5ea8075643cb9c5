"""Rate limits: token buckets per client address (inbox, sign-in, sign-up) and per verified
remote host (inbox); refusals are 429 with Retry-After and change nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from node.ratelimit import Rate, RateLimitConfigError, TokenBucket
from tests.conftest import ADMIN_EMAIL, node_settings, running_app
from tests.peers import RemotePeer

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"


class Clock:
    """Time that moves only when the test says so: bucket arithmetic without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills():
    clock = Clock()
    bucket = TokenBucket(Rate(3, 60), clock)
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == pytest.approx(20.0)  # one token comes back every 20 s
    assert bucket.take("b") == 0.0  # keys are independent
    clock.now += 20
    assert bucket.take("a") == 0.0
    assert bucket.take("a") > 0
    clock.now += 3600
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # never above capacity
    assert bucket.take("a") > 0


@pytest.mark.parametrize("text, rate", [
    ("20/60", Rate(20, 60)), (" 5/0.5 ", Rate(5, 0.5)), ("0", None), ("off", None), ("", None),
])
def test_rate_parsing(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["abc", "10", "10/x", "-1/60", "5/0", "1/2/3"])
def test_bad_rates_are_refused_with_a_reason(text):
    with pytest.raises(RateLimitConfigError, match="should look like|must be positive"):
        Rate.parse(text)


@pytest.fixture
async def limited(tmp_path: Path, database_url: str) -> AsyncIterator[tuple]:
    settings = node_settings(
        tmp_path, database_url, NODE_RATE_LOGIN_PER_ADDRESS="3/600",
        NODE_RATE_SIGNUP_PER_ADDRESS="2/3600", NODE_RATE_INBOX_PER_ADDRESS="4/600",
        NODE_RATE_INBOX_PER_HOST="2/600")
    async with running_app(settings) as (node, client):
        yield node, client


def client_from(client: httpx.AsyncClient, address: str) -> httpx.AsyncClient:
    app = client._transport.app  # the same running app, seen from another client address
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4242)),
                             base_url=BASE)


async def test_login_attempts_are_limited_per_address(limited):
    node, client = limited
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = {"email": ADMIN_EMAIL, "password": "wrong password", "csrf_token": token}
    for _ in range(3):
        assert (await client.post("/login", data=form)).status_code == 401
    resp = await client.post("/login", data=form)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 1
    # The error page in the reader's language (French by default), not the English reason.
    assert "Trop de tentatives" in resp.text and 'href="/"' in resp.text
    assert "entraide_session" not in resp.headers.get("set-cookie", "")
    async with client_from(client, "192.0.2.7") as other:
        page = await other.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        resp = await other.post("/login", data={**form, "csrf_token": token})
        assert resp.status_code == 401  # another address has its own budget


async def test_signups_are_limited_per_address(limited):
    node, client = limited
    users = await node.db.fetch_val("SELECT COUNT(*) FROM users")
    for _ in range(2):
        assert (await client.post("/signup", data={"email": "x"})).status_code != 429
    resp = await client.post("/signup", data={"email": "x@example.org"})
    assert resp.status_code == 429 and "Retry-After" in resp.headers
    assert await node.db.fetch_val("SELECT COUNT(*) FROM users") == users


async def test_inbox_posts_are_limited_per_address(limited):
    node, client = limited
    for _ in range(4):
        assert (await client.post("/inbox", content=b"{}")).status_code == 400
    resp = await client.post("/inbox", content=b"{}")
    assert resp.status_code == 429 and "error" in resp.json()
    assert int(resp.headers["Retry-After"]) >= 1
    assert await node.db.fetch_val("SELECT COUNT(*) FROM inbox_log") == 0


@pytest.fixture
async def peers() -> AsyncIterator[tuple[RemotePeer, RemotePeer]]:
    a, b = RemotePeer("127.0.0.3"), RemotePeer("127.0.0.4")
    for peer in (a, b):
        peer.add_actor("ana")
        peer.add_actor("bob")
        await peer.astart()
    yield a, b
    for peer in (a, b):
        await peer.astop()


def follow(peer: RemotePeer, name: str) -> dict:
    return {"id": peer.activity_id(), "type": "Follow", "actor": peer.actors[name].uri,
            "object": ORG}


async def test_inbox_activities_are_limited_per_signing_host(limited, peers):
    node, client = limited
    a, b = peers
    async with client_from(client, "198.51.100.1") as first, \
            client_from(client, "198.51.100.2") as second:
        # Two addresses, one server: the server's budget is shared.
        assert (await a.apost(first, a.actors["ana"], f"{BASE}/inbox",
                              follow(a, "ana"))).status_code == 202
        assert (await a.apost(second, a.actors["bob"], f"{BASE}/inbox",
                              follow(a, "bob"))).status_code == 202
        blocked = follow(a, "ana")
        resp = await a.apost(second, a.actors["ana"], f"{BASE}/inbox", blocked)
        assert resp.status_code == 429 and "Retry-After" in resp.headers
        assert await node.db.fetch_val("SELECT COUNT(*) FROM inbox_log WHERE activity_id = :i",
                                       {"i": blocked["id"]}) == 0
        # Another server is not slowed down by the first one.
        assert (await b.apost(first, b.actors["ana"], f"{BASE}/inbox",
                              follow(b, "ana"))).status_code == 202
