"""A delivery sink for the fan-out benchmark: one small HTTP/1.1 server listening on many
loopback addresses (127.0.a.b, one per simulated host, same port) that answers every inbox POST
with 202, checks its signature against the sender's public key, and counts what arrived.

    .venv/bin/python -m bench.sink --hosts 1000 --port 18080 --public-key key.pem
GET /count on any of its addresses answers the tally as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter

from activitypub.signatures import SignatureError, parse_signature, verify_request


def address(n: int) -> str:
    """The loopback address of simulated host n (127.0.0.x is left to the tests)."""
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


class Tally:
    def __init__(self, public_pem: str) -> None:
        self.public_pem = public_pem
        self.received: Counter[tuple[str, str, str]] = Counter()
        self.bad_signatures = 0

    def record(self, host: str, path: str, headers: dict[str, str], body: bytes) -> None:
        try:
            verify_request(parse_signature(headers.get("signature")), "POST", path, headers,
                           self.public_pem, body)
        except SignatureError:
            self.bad_signatures += 1
        activity_id = json.loads(body).get("id", "")
        self.received[(host, path, activity_id)] += 1

    def summary(self) -> dict:
        return {
            "deliveries": sum(self.received.values()),
            "distinct": len(self.received),
            "hosts": len({host for host, _, _ in self.received}),
            "duplicates": sum(n - 1 for n in self.received.values() if n > 1),
            "bad_signatures": self.bad_signatures,
        }


async def _serve(tally: Tally, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                 ) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "GET" and path == "/count":
                out = json.dumps(tally.summary()).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
            else:
                tally.record(headers.get("host", ""), path, headers, body)
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main_async(hosts: int, port: int, public_pem: str) -> None:
    tally = Tally(public_pem)
    servers = []
    for n in range(hosts):
        servers.append(await asyncio.start_server(
            lambda r, w: _serve(tally, r, w), address(n), port, backlog=64))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--public-key", required=True, help="PEM file of the sender's key")
    args = parser.parse_args()
    with open(args.public_key) as handle:
        public_pem = handle.read()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(args.hosts, args.port, public_pem))


if __name__ == "__main__":
    main()
