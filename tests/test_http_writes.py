"""What one event-loop turn writes to a connection leaves in one send (node/http_server.py's
CorkedTransport), in order, and nothing waiting is lost when the connection closes. Real
sockets: an asyncio transport over a socket pair, and a real node answering keep-alive and
`Connection: close` requests on a raw socket."""

from __future__ import annotations

import asyncio
import socket

import pytest

from node.http_server import CorkedTransport
from tests.nodes import NodeProcess

NODE_IP = "127.0.19.30"


async def _pair() -> tuple[asyncio.Transport, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    theirs.setblocking(False)
    return transport, theirs  # type: ignore[return-value]


async def _read_all(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    chunks = []
    while chunk := await loop.sock_recv(sock, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_writes_of_one_turn_leave_in_one_send_in_order():
    transport, theirs = await _pair()
    sends: list[bytes] = []
    real_write = transport.write
    transport.write = lambda data: (sends.append(bytes(data)), real_write(data))  # type: ignore
    corked = CorkedTransport(transport, asyncio.get_running_loop())
    corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
    corked.write(b"hello")
    assert sends == []  # not before the turn ends
    await asyncio.sleep(0)
    assert sends == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]
    corked.write(b"second")
    await asyncio.sleep(0)
    assert sends[1:] == [b"second"]
    # Closing sends what waits first.
    corked.write(b"last words")
    corked.close()
    assert await _read_all(theirs) == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhellosecondlast words")
    # A write after closing is dropped, as the real transport's would be, without an error.
    corked.write(b"too late")
    await asyncio.sleep(0)
    assert corked.is_closing()  # the rest is the real transport's
    theirs.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    process = NodeProcess(tmp_path_factory.mktemp("corked"), host=NODE_IP).start()
    yield process
    process.stop()


def test_a_node_answers_whole_responses_on_one_connection(node: NodeProcess):
    head = (f"GET /.well-known/nodeinfo HTTP/1.1\r\nHost: {NODE_IP}:{node.port}\r\n"
            "Accept: application/json\r\n").encode()
    with socket.create_connection((NODE_IP, node.port), timeout=10) as conn:
        # Three requests sent at once: three whole answers, in order, then the close.
        conn.sendall(head + b"\r\n" + head + b"\r\n" + head + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert len(answers) == 3
    for answer in answers:
        head_part, _, body = answer.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head_part.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        assert head_part.startswith(b"200 OK") and len(body) == length
        assert b'"links"' in body
