"""Inbox ingest: signed Create activities per second accepted (202) and stored by a real node
process, from a load generator on loopback, against the raw RSA-2048 verify rate measured in
the same run.

    .venv/bin/python -m bench.inbox [--db sqlite,postgres] [--sizes 1000,10000] [--count 1500]
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path

from activitypub.signatures import sign_request
from activitypub.vocab import ACTIVITY_JSON
from bench.harness import (
    NodeServer,
    arguments,
    database,
    free_port,
    hammer,
    http_request,
    node_env,
    percentile,
    prepare_node,
    profiler,
    rsa_rates,
    stop_profiler,
)
from node.db import Database
from tests.peers import PeerActor, RemotePeer

PEER_ACTORS = 20


def _create(peer: RemotePeer, actor: PeerActor, org_uri: str) -> dict:
    note_id = f"{peer.base}/notes/{uuid.uuid4().hex}"
    note = {"id": note_id, "type": "Note", "attributedTo": actor.uri,
            "content": "<p>Je peux aider pour un déménagement samedi</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [org_uri],
            "published": "2026-11-28T10:00:00Z"}
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{note_id}/activity",
            "type": "Create", "actor": actor.uri, "object": note, "to": note["to"],
            "cc": note["cc"]}


def _signed(peer: RemotePeer, actor: PeerActor, inbox: str, org_uri: str) -> tuple[bytes, dict]:
    body = json.dumps(_create(peer, actor, org_uri)).encode()
    return body, sign_request("POST", inbox, actor.key, body=body,
                              headers={"Content-Type": ACTIVITY_JSON})


def _prepared(inbox: str, signed: list[tuple[bytes, dict]]) -> list[bytes]:
    path = "/" + inbox.split("/", 3)[3]
    return [http_request("POST", path, headers["Host"], headers, body) for body, headers in signed]


async def _count_stored(url: str, host: str) -> int:
    db = Database(url)
    await db.connect()
    try:
        return await db.fetch_val("SELECT COUNT(*) FROM objects WHERE uri LIKE :h",
                                  {"h": f"{host}/notes/%"})
    finally:
        await db.disconnect()


def run_one(kind: str, url: str, size: int, args, verify_rate: float) -> None:
    peer = RemotePeer("127.0.0.3").start()
    actors = [peer.add_actor(f"sender{n}") for n in range(PEER_ACTORS)]
    port = free_port("127.0.0.2")
    base = f"http://127.0.0.2:{port}"
    with tempfile.TemporaryDirectory(prefix="entraide-bench-") as tmp:
        # The benchmark measures capacity: the per-address and per-host limits are off.
        env = node_env(url, base, Path(tmp), NODE_RUN_WORKER="0",
                       NODE_RATE_INBOX_PER_ADDRESS="off", NODE_RATE_INBOX_PER_HOST="off")
        org_uri = asyncio.run(prepare_node(env, size))
        try:
            with NodeServer(env, base, workers=args.workers) as server:
                inbox = f"{base}/inbox"
                # Untimed warm-up: the node fetches and caches each sender's key once.
                address = ("127.0.0.2", port)
                warm = _prepared(inbox, [_signed(peer, a, inbox, org_uri) for a in actors])
                asyncio.run(hammer(address, warm, 4))
                batch = _prepared(inbox, [_signed(peer, actors[n % len(actors)], inbox, org_uri)
                                          for n in range(args.count)])
                spy = profiler(server, args.profile, f"inbox-{kind}-{size}")
                elapsed, latencies, statuses = asyncio.run(
                    hammer(address, batch, args.concurrency))
                stop_profiler(spy)
                stored = asyncio.run(_count_stored(url, peer.base)) - len(warm)
                server.stop()
        finally:
            peer.stop()
    rate = stored / elapsed
    print(f"  {kind:8} posts={size:>7} sent={args.count} 202s={statuses.get(202, 0)} "
          f"stored={stored} {rate:7.0f}/s  p50={percentile(latencies, 50) * 1000:6.1f}ms "
          f"p99={percentile(latencies, 99) * 1000:6.1f}ms  "
          f"ingest/verify = 1:{verify_rate / rate:.0f}", flush=True)
    other = {k: v for k, v in statuses.items() if k != 202}
    if other:
        print(f"           other statuses: {other}")


def main() -> None:
    args = arguments(__doc__, "1000,10000",
                     count=(int, 1500, "signed Creates sent per size"),
                     concurrency=(int, 32, "requests in flight"),
                     workers=(int, 1, "uvicorn web workers of the node"),
                     profile=(str, "", "directory for py-spy profiles of the node (optional)"))
    sign_rate, verify_rate = rsa_rates()
    print(f"inbox ingest; raw RSA-2048 on this machine: verify {verify_rate:,.0f}/s, "
          f"sign {sign_rate:,.0f}/s (one core); node web workers: {args.workers}")
    for kind in args.db:
        for size in args.sizes:
            with database(kind) as url:
                if url is None:
                    break
                run_one(kind, url, size, args, verify_rate)


if __name__ == "__main__":
    main()
