"""Attacks on what a signature binds, against a running node, from a hostile server that signs
with code of its own (tests/hostile.py).

A signature must bind the body (through a digest the signature covers), the host (this node's)
and the path actually requested; anything it does not cover never stands in. Each attack gets a
4xx with its reason and stores nothing; the honest ways real servers sign still get through.
The web server's own limits on request heads are attacked here too (raw sockets)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hostile import AP_JSON, HostileActor, HostilePeer, sign
from tests.nodes import NodeProcess

pytestmark = pytest.mark.e2e

NODE_IP, PEER_IP, PROXIED_IP = "127.0.0.90", "127.0.0.91", "127.0.0.92"
ELSEWHERE = "127.0.0.93:8443"  # another server, for which requests are captured
HEADER_TIMEOUT = 1.0
BODY_IDLE_TIMEOUT, BODY_TIMEOUT = 1.0, 2.5


@pytest.fixture(scope="module")
def peer() -> Iterator[HostilePeer]:
    peer = HostilePeer(PEER_IP).start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("sigattack"), host=NODE_IP,
                       NODE_AUTHORIZED_FETCH="1", NODE_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                       NODE_BODY_IDLE_TIMEOUT=str(BODY_IDLE_TIMEOUT),
                       NODE_BODY_TIMEOUT=str(BODY_TIMEOUT))
    node.start()
    yield node
    node.close()


def _follow(peer: HostilePeer, node: NodeProcess, name: str) -> tuple[HostileActor, dict]:
    actor = peer.add_actor(name)
    return actor, peer.activity(actor, "Follow", node.org_uri)


def _body(activity: dict) -> bytes:
    return json.dumps(activity).encode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _stored(node: NodeProcess, actor: HostileActor, activity: dict) -> list[dict]:
    return (node.query("SELECT activity_id FROM inbox_log WHERE activity_id = :a",
                       {"a": activity["id"]})
            + node.query("SELECT follower_uri FROM follows WHERE follower_uri = :u",
                         {"u": actor.uri}))


def _refused(resp: httpx.Response, node: NodeProcess, actor: HostileActor, activity: dict,
             reason: str) -> None:
    assert resp.status_code in (400, 401), resp.text
    assert reason in resp.text, resp.text
    assert _stored(node, actor, activity) == []


def _accepted(resp: httpx.Response, node: NodeProcess, actor: HostileActor) -> None:
    assert resp.status_code == 202, resp.text
    node.wait_until("SELECT 1 FROM follows WHERE follower_uri = :u AND state = 'accepted'",
                    {"u": actor.uri}, timeout=10)


def _send(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=10)


# --- the body ------------------------------------------------------------------------------

def test_unsigned_digest_never_stands_in_for_a_signed_content_digest(
    node: NodeProcess, peer: HostilePeer
) -> None:
    """A captured request whose signed Content-Digest holds only sha-512: the attacker swaps the
    body and adds a Digest that matches the new one, outside the signature."""
    actor, follow = _follow(peer, node, "swapper")
    signed_body = _body(peer.activity(actor, "Like", node.org_uri))
    url = f"{node.base}/inbox"
    headers = sign(actor, "POST", url, _body(follow), content_digest={"sha-512": signed_body},
                   covered=["(request-target)", "host", "date", "content-digest"])
    signed_names = headers["Signature"].split('headers="')[1].split('"')[0].split()
    assert "Digest" in headers and "digest" not in signed_names
    _refused(_send(url, _body(follow), headers), node, actor, follow,
             "Content-Digest does not match the body (sha-512)")


@pytest.mark.parametrize("digests,reason", [
    ({"sha-512": b"other bytes"}, "Content-Digest does not match the body (sha-512)"),
    ({"sha-256": None, "sha-512": b"other bytes"}, "does not match the body (sha-512)"),
    ({"sha-512": None, "sha-256": b"other bytes"}, "does not match the body (sha-256)"),
    ({"md5": None}, "no sha-256 or sha-512 value"),
])
def test_every_algorithm_of_a_signed_content_digest_is_checked(
    node: NodeProcess, peer: HostilePeer, digests: dict[str, bytes | None], reason: str
) -> None:
    """(None stands for the true body.) A lying sha-512 beside a true sha-256 is refused too."""
    actor, follow = _follow(peer, node, f"cd{len(peer.actors)}")
    body = _body(follow)
    url = f"{node.base}/groups/{node.org}/inbox"
    resp = peer.post(actor, url, body, digest=None,
                     content_digest={alg: data or body for alg, data in digests.items()})
    _refused(resp, node, actor, follow, reason)


def test_a_post_must_sign_a_digest_that_matches(node: NodeProcess, peer: HostilePeer) -> None:
    actor, follow = _follow(peer, node, "nodigest")
    url = f"{node.base}/inbox"
    # A true Digest the signature does not cover.
    resp = peer.post(actor, url, follow, covered=["(request-target)", "host", "date"])
    _refused(resp, node, actor, follow, "must cover its digest")
    # A signed Digest of other bytes.
    body = _body(follow)
    lying = sign(actor, "POST", url, body + b" ")
    _refused(_send(url, body, lying), node, actor, follow, "Digest does not match the body")
    # A signed Digest naming only an algorithm this node does not check.
    md5 = "MD5=" + _b64(hashlib.md5(body).digest())
    resp = peer.post(actor, url, body, digest=None, headers={"Digest": md5},
                     covered=["(request-target)", "host", "date", "digest"])
    _refused(resp, node, actor, follow, "no sha-256 or sha-512 value")


@pytest.mark.parametrize("style", ["mastodon", "bovine", "sha-512", "rfc3230-sha-512",
                                   "unknown-beside-known", "unsigned-extra"])
def test_honest_ways_of_signing_a_body_are_accepted(
    node: NodeProcess, peer: HostilePeer, style: str
) -> None:
    actor, follow = _follow(peer, node, f"honest-{style}")
    body = _body(follow)
    url = f"{node.base}/groups/{node.org}/inbox"
    options: dict[str, Any] = {
        # Mastodon: Digest SHA-256 and the content type, signed.
        "mastodon": {"covered": ["(request-target)", "host", "date", "digest", "content-type"]},
        # bovine: RFC 9530 Content-Digest sha-256 alone.
        "bovine": {"digest": None, "content_digest": {"sha-256": body}},
        "sha-512": {"digest": None, "content_digest": {"sha-512": body}},
        "rfc3230-sha-512": {"digest": None,
                            "covered": ["(request-target)", "host", "date", "digest"],
                            "headers": {"Digest": "SHA-512=" + _b64(hashlib.sha512(body).digest())
                                        }},
        # An algorithm this node does not know, beside one it checks: the known one decides.
        "unknown-beside-known": {"digest": None,
                                 "content_digest": {"sha-256": body, "md5": b"anything"}},
        # A Content-Digest outside the signature is ignored, even a wrong one.
        "unsigned-extra": {"covered": ["(request-target)", "host", "date", "digest"],
                           "content_digest": {"sha-256": b"not the body"}},
    }[style]
    _accepted(peer.post(actor, url, body, **options), node, actor)


# --- the host and the path -----------------------------------------------------------------

def test_a_request_signed_for_another_server_does_not_replay_here(
    node: NodeProcess, peer: HostilePeer
) -> None:
    actor, follow = _follow(peer, node, "replayer")
    body = _body(follow)
    captured = sign(actor, "POST", f"http://{ELSEWHERE}/inbox", body)
    # As captured: Host names the other server.
    _refused(_send(f"{node.base}/inbox", body, captured), node, actor, follow,
             f"signed for host '{ELSEWHERE}'")
    # Host changed to ours: the signature no longer verifies.
    _refused(_send(f"{node.base}/inbox", body, {**captured, "Host": f"{NODE_IP}:{node.port}"}),
             node, actor, follow, "does not verify")
    # X-Forwarded-Host is not trusted unless the node is told to.
    spoofed = {**captured, "X-Forwarded-Host": f"{NODE_IP}:{node.port}"}
    _refused(_send(f"{node.base}/inbox", body, spoofed), node, actor, follow,
             f"signed for host '{ELSEWHERE}'")
    # Two Host headers: a proxy may route by one while the signature is checked on the other.
    ours = sign(actor, "POST", f"{node.base}/inbox", body)
    head = "".join(f"{k}: {v}\r\n" for k, v in [*ours.items(), ("Host", ELSEWHERE)])
    conn = _connect(node)  # by hand: httpx will not send two Host headers
    try:
        conn.sendall(f"POST /inbox HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        answer = _answer(conn).decode()
    finally:
        conn.close()
    assert answer.startswith("HTTP/1.1 401") and "repeats its host header" in answer, answer
    assert _stored(node, actor, follow) == []


def test_host_must_be_signed(node: NodeProcess, peer: HostilePeer) -> None:
    actor, follow = _follow(peer, node, "hostless")
    resp = peer.post(actor, f"{node.base}/inbox", follow,
                     covered=["(request-target)", "date", "digest"])
    _refused(resp, node, actor, follow, "must cover host")


def test_the_signed_target_is_the_path_actually_requested(
    node: NodeProcess, peer: HostilePeer
) -> None:
    actor, follow = _follow(peer, node, "pathless")
    body = _body(follow)
    # Signed for another inbox path than the one it is sent to.
    headers = sign(actor, "POST", f"{node.base}/users/bob/inbox", body)
    _refused(_send(f"{node.base}/inbox", body, headers), node, actor, follow, "does not verify")
    # Signed for /inbox, sent to /%69nbox: the router decodes it to /inbox, the signature
    # covers the bytes sent.
    headers = sign(actor, "POST", f"{node.base}/inbox", body)
    _refused(_send(f"{node.base}/%69nbox", body, headers), node, actor, follow,
             "does not verify")
    # The honest request, with a query string, goes through.
    url = f"{node.base}/inbox?from=test"
    _accepted(_send(url, body, sign(actor, "POST", url, body)), node, actor)


def test_a_signed_get_is_bound_to_this_host(node: NodeProcess, peer: HostilePeer) -> None:
    actor = peer.add_actor("reader")
    accept = {"Accept": AP_JSON}
    resp = httpx.get(node.org_uri, headers=sign(actor, "GET", node.org_uri, headers=accept))
    assert resp.status_code == 200 and resp.json()["id"] == node.org_uri
    elsewhere = f"http://{ELSEWHERE}/groups/{node.org}"
    resp = httpx.get(node.org_uri, headers=sign(actor, "GET", elsewhere, headers=accept))
    assert resp.status_code == 401 and "signed for host" in resp.text
    assert "preferredUsername" not in resp.text


def test_behind_a_proxy_that_rewrites_host(tmp_path: Path, peer: HostilePeer) -> None:
    """The node is reached at its public name, the proxy sends Host: the node's own address and
    the original in X-Forwarded-Host. Read only with NODE_TRUST_FORWARDED_HOST; the host it
    names must still be the node's own."""
    public = "entraide.example"
    proxied = NodeProcess(tmp_path, host=PROXIED_IP, NODE_TRUST_FORWARDED_HOST="1",
                          NODE_BIND_HOST=PROXIED_IP, NODE_ALLOW_PRIVATE_ADDRESSES="1",
                          NODE_ALLOW_HTTP="1")
    # Reached as entraide.example through the proxy; bound to a loopback address behind it.
    proxied.env["NODE_BASE_URL"] = f"http://{public}"
    proxied.env["NODE_BIND_PORT"] = str(proxied.port)
    try:
        proxied.start()
        inbox = f"http://{public}/groups/{proxied.org}/inbox"
        direct = f"http://{PROXIED_IP}:{proxied.port}/groups/{proxied.org}/inbox"
        actor, follow = _follow(peer, proxied, "proxied")
        follow["object"] = f"http://{public}/groups/{proxied.org}"
        body = _body(follow)
        headers = sign(actor, "POST", inbox, body)
        resp = _send(direct, body, {**headers, "Host": f"{PROXIED_IP}:{proxied.port}",
                                    "X-Forwarded-Host": public})
        assert resp.status_code == 202, resp.text
        # The forwarded host must still be this node's.
        liar, other = _follow(peer, proxied, "proxied-liar")
        body = _body(other)
        headers = sign(liar, "POST", f"http://{ELSEWHERE}/inbox", body)
        resp = _send(direct, body, {**headers, "Host": f"{PROXIED_IP}:{proxied.port}",
                                    "X-Forwarded-Host": ELSEWHERE})
        assert resp.status_code == 401 and f"signed for host '{ELSEWHERE}'" in resp.text
        assert _stored(proxied, liar, other) == []
        # Without a forwarded host, the proxy's Host is not this node's.
        resp = _send(direct, body, sign(liar, "POST", direct, body))
        assert resp.status_code == 401 and "but this node is 'entraide.example'" in resp.text
    finally:
        proxied.close()


# --- request heads -------------------------------------------------------------------------

def _connect(node: NodeProcess) -> socket.socket:
    return socket.create_connection((NODE_IP, node.port), timeout=3 * HEADER_TIMEOUT)


def _answer(conn: socket.socket) -> bytes:
    """What the server says before it closes the connection (b"" if it says nothing)."""
    chunks = []
    try:
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


@pytest.mark.parametrize("shape", ["one-header", "many-headers"])
def test_huge_request_heads_are_refused(node: NodeProcess, shape: str) -> None:
    big = (b"X-Big: " + b"a" * 2_000_000 + b"\r\n" if shape == "one-header"
           else b"".join(b"X-Many-%d: %s\r\n" % (i, b"b" * 2000) for i in range(1000)))
    conn = _connect(node)
    try:
        try:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: %s:%d\r\n" % (NODE_IP.encode(), node.port)
                         + big + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed while we were still sending: refused
        answer = _answer(conn)
    finally:
        conn.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert node.client.get("/.well-known/nodeinfo").status_code == 200


def test_a_large_body_is_not_taken_for_a_large_head(node: NodeProcess) -> None:
    resp = httpx.post(f"{node.base}/inbox", content=b"x" * 600_000, timeout=10,
                      headers={"Content-Type": AP_JSON})
    assert resp.status_code == 400 and "JSON" in resp.text


@pytest.mark.parametrize("how", ["stalls", "drips", "says nothing"])
def test_a_head_that_never_completes_is_closed(node: NodeProcess, how: str) -> None:
    """Liveness, not speed: the server closes the connection well before 3x its deadline,
    even while bytes keep coming one at a time."""
    conn = _connect(node)
    stop = threading.Event()
    try:
        if how == "stalls":
            conn.sendall(b"POST /inbox HTTP/1.1\r\nHost: %s\r\n" % NODE_IP.encode())
        elif how == "drips":
            def drip() -> None:
                for byte in b"POST /inbox HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100:
                    if stop.wait(0.1):
                        return
                    try:
                        conn.send(bytes([byte]))
                    except OSError:
                        return
            threading.Thread(target=drip, daemon=True).start()
        started = time.monotonic()
        try:
            answer = _answer(conn)  # socket timeout: 3x the deadline
        except TimeoutError:
            pytest.fail(f"the server still held the connection after {3 * HEADER_TIMEOUT}s")
        assert time.monotonic() - started < 3 * HEADER_TIMEOUT
    finally:
        stop.set()
        conn.close()
    if how == "stalls":
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    else:  # nothing to answer, or bytes still arriving make the close a reset
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert node.client.get("/.well-known/nodeinfo").status_code == 200


@pytest.mark.parametrize("path", ["/inbox", "/login"])
@pytest.mark.parametrize("how", ["stalls", "drips"])
def test_a_body_that_never_completes_is_closed(node: NodeProcess, path: str, how: str) -> None:
    """A complete head promising a body that stops coming (or comes a byte at a time, each
    inside the silence allowed) gets 408 and the connection closed: the handler waiting for it
    is released. Liveness, not speed: checked well before 3x the body deadline."""
    conn = socket.create_connection((NODE_IP, node.port), timeout=3 * BODY_TIMEOUT)
    stop = threading.Event()
    try:
        conn.sendall(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
                     b"Content-Length: 100000\r\n\r\n{" % (
                         path.encode(), NODE_IP.encode(), node.port,
                         (AP_JSON if path == "/inbox"
                          else "application/x-www-form-urlencoded").encode()))
        if how == "drips":
            def drip() -> None:
                while not stop.wait(BODY_IDLE_TIMEOUT / 4):
                    try:
                        conn.send(b"a")
                    except OSError:
                        return
            threading.Thread(target=drip, daemon=True).start()
        started = time.monotonic()
        try:
            answer = _answer(conn)
        except TimeoutError:
            pytest.fail(f"the server still held the connection after {3 * BODY_TIMEOUT}s")
        assert time.monotonic() - started < 3 * BODY_TIMEOUT
    finally:
        stop.set()
        conn.close()
    if how == "stalls":
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    else:  # bytes still arriving can turn the close into a reset before the answer is read
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert node.client.get("/.well-known/nodeinfo").status_code == 200


def test_a_slow_but_steady_body_within_the_deadlines_is_served(node: NodeProcess) -> None:
    conn = socket.create_connection((NODE_IP, node.port), timeout=10)
    body = b'{"not": "an activity"}'
    try:
        conn.sendall(b"POST /inbox HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (
                         NODE_IP.encode(), node.port, AP_JSON.encode(), len(body)))
        for part in (body[:8], body[8:16], body[16:]):
            time.sleep(BODY_IDLE_TIMEOUT / 3)
            conn.sendall(part)
        answer = _answer(conn)
    finally:
        conn.close()
    # Read whole and judged: refused for what it is, not for how slowly it came.
    assert answer.startswith(b"HTTP/1.1 4") and not answer.startswith(b"HTTP/1.1 408"), \
        answer[:100]
