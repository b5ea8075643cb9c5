"""Outgoing requests cannot be turned against the node's own network (SSRF): real uvicorn servers
on loopback addresses stand in for the private services an attacker would aim at."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from activitypub.transport import FetchError, Transport, is_public_address
from tests.peers import free_port


class LoopbackServer:
    """A small real HTTP server on 127.0.0.x that records every request it gets."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.hits: list[str] = []
        self.redirect_to: str | None = None
        self._server: uvicorn.Server | None = None

    def app(self) -> Starlette:
        async def ok(request: Request) -> Response:
            self.hits.append(request.url.path)
            return JSONResponse({"ok": True, "host": self.host})

        async def redirect(request: Request) -> Response:
            self.hits.append(request.url.path)
            return RedirectResponse(self.redirect_to or "/", status_code=302)

        async def loop(request: Request) -> Response:
            self.hits.append(request.url.path)
            return RedirectResponse(f"/loop?n={len(self.hits)}", status_code=302)

        async def huge(request: Request) -> Response:
            self.hits.append(request.url.path)

            async def chunks():
                for _ in range(40):
                    yield b"x" * 65536

            return StreamingResponse(chunks(), media_type="application/json")

        async def declared(request: Request) -> Response:
            self.hits.append(request.url.path)
            return Response(b"x" * (2 * 1024 * 1024), media_type="application/json")

        async def slow(request: Request) -> Response:
            self.hits.append(request.url.path)
            await asyncio.sleep(3)
            return JSONResponse({})

        return Starlette(routes=[
            Route("/", ok), Route("/redirect", redirect), Route("/loop", loop),
            Route("/huge", huge), Route("/declared", declared), Route("/slow", slow),
        ])

    def start(self) -> LoopbackServer:
        config = uvicorn.Config(self.app(), host=self.host, port=self.port, log_level="warning",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


@pytest.fixture
def servers() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    a = LoopbackServer("127.0.0.5").start()
    b = LoopbackServer("127.0.0.6").start()
    yield a, b
    a.stop()
    b.stop()


def transport(**kwargs) -> Transport:
    kwargs.setdefault("allow_private", False)
    return Transport(allow_http=True, timeout=2.0, **kwargs)


async def test_loopback_refused_without_config_allowed_with_it(servers):
    a, _ = servers
    strict = transport()
    try:
        with pytest.raises(FetchError, match="not a public address"):
            await strict.get_json(a.base + "/", None)
    finally:
        await strict.aclose()
    assert a.hits == []
    relaxed = transport(allow_private=True)
    try:
        assert (await relaxed.get_json(a.base + "/", None))["host"] == a.host
    finally:
        await relaxed.aclose()
    assert a.hits == ["/"]


@pytest.mark.parametrize("host", [
    "localhost", "[::1]", "[::ffff:127.0.0.5]", "[::ffff:7f00:5]", "0.0.0.0", "2130706437",
    "[fe80::1]", "169.254.169.254", "10.0.0.1", "[fd00::1]",
])
async def test_private_addresses_in_every_spelling_are_refused(servers, host):
    a, _ = servers
    strict = transport()
    try:
        with pytest.raises(FetchError):
            await strict.request("GET", f"http://{host}:{a.port}/")
    finally:
        await strict.aclose()
    assert a.hits == []


@pytest.mark.parametrize("address, public", [
    ("8.8.8.8", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("100.64.0.1", False), ("169.254.169.254", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("::1", False), ("fe80::1", False), ("fd12::1", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),  # IPv4-mapped
    ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
    ("64:ff9b::a00:1", False),  # NAT64 around 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo whose client is 127.0.0.1
])
def test_address_classification(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_the_address_connected_to_is_the_address_checked(servers):
    """The resolver is the only source of addresses: a host the system cannot resolve is reached
    at the address the policy approved, so DNS cannot answer differently at connect time."""
    a, _ = servers
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [a.host]

    pinned = transport(resolver=resolver,
                       allowed_networks=[ipaddress.ip_network(f"{a.host}/32")])
    try:
        assert (await pinned.get_json(f"http://peer.invalid:{a.port}/", None))["host"] == a.host
    finally:
        await pinned.aclose()
    assert asked and set(asked) == {"peer.invalid"}
    assert a.hits == ["/"]


async def test_dns_rebinding_is_refused_at_connect_time(servers):
    """First answer: an allowed address (passes the early check); every later answer: a private
    one. The connection is refused and the private server never sees a byte."""
    a, b = servers
    answers = iter([[a.host]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers, [b.host])

    pinned = transport(resolver=rebinding,
                       allowed_networks=[ipaddress.ip_network(f"{a.host}/32")])
    try:
        with pytest.raises(FetchError, match="not a public address"):
            await pinned.get_json(f"http://rebind.invalid:{b.port}/", None)
    finally:
        await pinned.aclose()
    assert a.hits == [] and b.hits == []


async def test_mixed_answer_with_one_private_address_is_refused(servers):
    a, b = servers

    async def mixed(host: str, port: int) -> list[str]:
        return [a.host, b.host]

    pinned = transport(resolver=mixed, allowed_networks=[ipaddress.ip_network(f"{a.host}/32")])
    try:
        with pytest.raises(FetchError, match="not a public address"):
            await pinned.get_json(f"http://mixed.invalid:{a.port}/", None)
    finally:
        await pinned.aclose()
    assert a.hits == [] and b.hits == []


async def test_redirect_to_a_private_address_is_refused(servers):
    a, b = servers  # a stands for a public server (allowed network), b for a private one
    a.redirect_to = f"{b.base}/"
    t = transport(allowed_networks=[ipaddress.ip_network(f"{a.host}/32")])
    try:
        with pytest.raises(FetchError, match="not a public address"):
            await t.get_json(f"{a.base}/redirect", None)
        a.redirect_to = "/"
        assert (await t.get_json(f"{a.base}/redirect", None))["ok"] is True
    finally:
        await t.aclose()
    assert b.hits == []


async def test_redirects_are_bounded(servers):
    a, _ = servers
    t = transport(allow_private=True)
    try:
        with pytest.raises(FetchError, match="redirected more than 3 times"):
            await t.get_json(f"{a.base}/loop", None)
    finally:
        await t.aclose()
    assert len(a.hits) == 4


@pytest.mark.parametrize("path", ["/huge", "/declared"])
async def test_reads_are_bounded(servers, path):
    a, _ = servers
    t = Transport(allow_private=True, allow_http=True, timeout=5, max_bytes=1024 * 1024)
    try:
        with pytest.raises(FetchError, match="more than 1048576 bytes"):
            await t.get_json(a.base + path, None)
    finally:
        await t.aclose()


async def test_slow_servers_time_out(servers):
    a, _ = servers
    t = Transport(allow_private=True, allow_http=True, timeout=0.5)
    try:
        with pytest.raises(FetchError, match="timed out"):
            await t.get_json(a.base + "/slow", None)
    finally:
        await t.aclose()


@pytest.mark.parametrize("url, reason", [
    ("ftp://127.0.0.5/", "not an http"), ("file:///etc/passwd", "not an http"),
    ("http://user:pw@127.0.0.5/", "credentials"), ("http://127.0.0.5:99999/", "bad port"),
])
async def test_odd_urls_are_refused(url, reason):
    t = transport(allow_private=True)
    try:
        with pytest.raises(FetchError, match=reason):
            await t.request("GET", url)
    finally:
        await t.aclose()


async def test_plain_http_refused_unless_allowed(servers):
    a, _ = servers
    t = Transport(allow_private=True, allow_http=False)
    try:
        with pytest.raises(FetchError, match="plain http"):
            await t.get_json(a.base + "/", None)
    finally:
        await t.aclose()
    assert a.hits == []
