"""Deliveries (signed POSTs) go through aiohttp (activitypub/transport.py, `post_activity`) with
the same guarantees as the fetches of tests/test_ssrf.py: only checked addresses are connected
to (DNS rebinding cannot redirect a delivery), a redirect is never followed, answers are
bounded in size and time; and what arrives is signed over the exact body sent. Real uvicorn
servers on loopback addresses stand in for remote inboxes and private services."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from activitypub.signatures import SigningKey, parse_signature, verify_request
from activitypub.transport import EncodedActivity, FetchError, Transport
from keys.keypair import generate_keypair
from tests.peers import free_port, serve_in_thread

pytestmark = pytest.mark.asyncio

KEYS = generate_keypair()
KEY = SigningKey("http://node.example/actor#main-key", KEYS.private_pem)
ACTIVITY = {"id": "http://node.example/activities/1", "type": "Create",
            "object": {"type": "Note", "content": "Soupe chaude à 19 h — Saint-Gilles"}}


class Inbox:
    """A remote inbox on a loopback address that checks each POST's signature and keeps it."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.received: list[tuple[str, bytes, bool]] = []  # path, body, signature valid

    def app(self) -> Starlette:
        async def inbox(request: Request) -> Response:
            body = await request.body()
            headers = {k: v for k, v in request.headers.items()}
            try:
                verify_request(parse_signature(headers.get("signature")), "POST",
                               request.url.path, headers, KEYS.public_pem, body)
                valid = True
            except Exception:
                valid = False
            self.received.append((request.url.path, body, valid))
            path = request.url.path
            if path == "/slow":
                await asyncio.sleep(3)
            if path == "/redirect":
                return RedirectResponse("/elsewhere", status_code=307)
            if path == "/huge":
                async def chunks():
                    for _ in range(40):
                        yield b"x" * 65536
                return StreamingResponse(chunks())
            return Response(status_code=202)

        return Starlette(routes=[Route("/{path:path}", inbox, methods=["POST"])])

    def start(self) -> Inbox:
        self.server, _ = serve_in_thread(self.app(), self.host, self.port)
        return self

    def stop(self) -> None:
        self.server.should_exit = True


@pytest.fixture
def inboxes() -> Iterator[tuple[Inbox, Inbox]]:
    allowed, private = Inbox("127.0.19.30").start(), Inbox("127.0.19.31").start()
    yield allowed, private
    allowed.stop()
    private.stop()


def only(inbox: Inbox, **kwargs) -> Transport:
    """A transport that treats loopback as private, except the one allowed inbox."""
    return Transport(allow_private=False, allow_http=True, timeout=1.0,
                     allowed_networks=[ipaddress.ip_network(f"{inbox.host}/32")], **kwargs)


async def test_a_delivery_is_signed_over_the_body_sent_and_the_body_is_encoded_once(inboxes):
    allowed, _ = inboxes
    encoded = EncodedActivity.of(ACTIVITY)
    transport = only(allowed)
    try:
        for path in ("/inbox", "/users/ana/inbox"):  # one encoding, two deliveries
            resp = await transport.post_activity(allowed.base + path, KEY, encoded)
            assert resp.status == 202
        resp = await transport.post_activity(allowed.base + "/inbox", KEY, ACTIVITY)
        assert resp.status == 202
    finally:
        await transport.aclose()
    assert [(path, valid) for path, _, valid in allowed.received] == [
        ("/inbox", True), ("/users/ana/inbox", True), ("/inbox", True)]
    assert {body for _, body, _ in allowed.received} == {encoded.body}


async def test_a_name_is_connected_to_at_the_address_that_was_checked(inboxes):
    allowed, _ = inboxes
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [allowed.host]

    transport = only(allowed, resolver=resolver)
    try:
        resp = await transport.post_activity(f"http://peer.invalid:{allowed.port}/inbox", KEY,
                                             ACTIVITY)
    finally:
        await transport.aclose()
    assert resp.status == 202
    assert set(asked) == {"peer.invalid"} and len(allowed.received) == 1


async def test_dns_rebinding_cannot_turn_a_delivery_to_a_private_address(inboxes):
    """First answer: the allowed address (passes the early check); every later answer: a
    private one. Nothing reaches the private server."""
    allowed, private = inboxes
    answers = iter([[allowed.host]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers, [private.host])

    transport = only(allowed, resolver=rebinding)
    try:
        with pytest.raises(FetchError, match="not a public address"):
            await transport.post_activity(f"http://rebind.invalid:{private.port}/inbox", KEY,
                                          ACTIVITY)
    finally:
        await transport.aclose()
    assert allowed.received == [] and private.received == []


async def test_a_private_address_is_refused_before_any_byte_is_sent(inboxes):
    allowed, private = inboxes
    transport = only(allowed)
    try:
        with pytest.raises(FetchError, match="not a public address"):
            await transport.post_activity(private.base + "/inbox", KEY, ACTIVITY)
    finally:
        await transport.aclose()
    assert private.received == []


async def test_a_redirect_is_answered_never_followed(inboxes):
    allowed, _ = inboxes
    transport = only(allowed)
    try:
        resp = await transport.post_activity(allowed.base + "/redirect", KEY, ACTIVITY)
    finally:
        await transport.aclose()
    assert resp.status == 307
    assert [path for path, _, _ in allowed.received] == ["/redirect"]


@pytest.mark.parametrize("path, error", [("/slow", "timed out"),
                                         ("/huge", "more than 1048576 bytes")])
async def test_answers_are_bounded_in_time_and_size(inboxes, path, error):
    allowed, _ = inboxes
    transport = only(allowed)
    try:
        with pytest.raises(FetchError, match=error):
            await transport.post_activity(allowed.base + path, KEY, ACTIVITY, deadline=1.0)
    finally:
        await transport.aclose()


class ClosingInbox:
    """An inbox that answers the first request of each connection and keeps it open, then
    closes that connection when the next request arrives on it, without a word: what a
    server whose keep-alive ran out does to a request already on its way."""

    def __init__(self, host: str) -> None:
        self.host, self.port = host, free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.answered = 0
        self.dropped = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                if not first:
                    self.dropped += 1
                    break
                first = False
                self.answered += 1
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n"
                             b"Connection: keep-alive\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self) -> ClosingInbox:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.close()


async def test_a_kept_alive_connection_closed_under_a_delivery_is_retried_at_once():
    """Every second POST meets a connection the server has just closed; each delivery still
    gets its answer, through one immediate retry on a new connection."""
    async with ClosingInbox("127.0.19.32") as inbox:
        transport = Transport(allow_private=True, allow_http=True, timeout=2.0)
        try:
            for n in range(4):
                resp = await transport.post_activity(f"{inbox.base}/inbox", KEY,
                                                     {**ACTIVITY, "id": f"{ACTIVITY['id']}{n}"})
                assert resp.status == 202
        finally:
            await transport.aclose()
    assert inbox.answered == 4 and inbox.dropped == 3


async def test_a_server_that_drops_every_delivery_fails_it_after_one_retry():
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    host = "127.0.19.33"
    port = free_port(host)
    server = await asyncio.start_server(drop, host, port)
    transport = Transport(allow_private=True, allow_http=True, timeout=2.0)
    try:
        with pytest.raises(FetchError, match="Disconnected|reset|Connection"):
            await transport.post_activity(f"http://{host}:{port}/inbox", KEY, ACTIVITY)
    finally:
        await transport.aclose()
        server.close()
