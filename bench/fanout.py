"""Fan-out: time and memory to deliver one new post to N followers spread over M hosts, against
the raw RSA-2048 sign rate measured in the same run. Followers on one host share its inbox, so
the node must make exactly one delivery per host; the sink (bench/sink.py, its own process,
listening on M loopback addresses) checks every signature and counts duplicates.

    .venv/bin/python -m bench.fanout [--db sqlite,postgres] [--sizes 1000,10000] [--per-host 10]
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import (
    REPO,
    arguments,
    bulk_insert,
    database,
    free_port,
    machine_limits,
    node_env,
    peak_rss_mb,
    print_limits,
    reset_peak_rss,
    versus,
)
from bench.sink import address
from node.actors import by_username
from node.bootstrap import bootstrap
from node.config import load_settings
from node.context import Node
from node.db import now
from outbox.publish import publish
from outbox.worker import DeliveryWorker


async def _seed_followers(node: Node, followee: str, followers: int, hosts: int, port: int
                          ) -> None:
    actors, follows = [], []
    stamp = now()
    for n in range(followers):
        base = f"http://{address(n % hosts)}:{port}"
        uri = f"{base}/users/f{n}"
        actors.append({"uri": uri, "type": "Person", "username": f"f{n}",
                       "host": f"{address(n % hosts)}:{port}", "inbox": f"{uri}/inbox",
                       "shared_inbox": f"{base}/inbox", "raw": "{}", "fetched_at": stamp})
        follows.append({"follower_uri": uri, "followee_uri": followee,
                        "activity_id": f"{uri}#follow", "state": "accepted",
                        "created_at": stamp})
    await bulk_insert(node.db, "remote_actors", actors)
    await bulk_insert(node.db, "follows", follows)


async def _worker_processes(env: dict[str, str], count: int) -> list[asyncio.subprocess.Process]:
    """`python -m node worker` processes, started before the post so that startup is not timed
    (they poll the queue every second, as in production)."""
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node", "worker", cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for _ in range(count)]
    await asyncio.sleep(3)
    return procs


async def _measure(node: Node, org, sender: str, env: dict[str, str] | None = None,
                   processes: int = 0) -> dict:
    note = {"id": node.url("/posts/fanout"), "type": "Note", "attributedTo": sender,
            "content": "<p>Distribution de colis ce samedi</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [f"{sender}/followers"]}
    activity = {"@context": "https://www.w3.org/ns/activitystreams",
                "id": node.url("/posts/fanout/activity"), "type": "Create", "actor": sender,
                "object": note, "to": note["to"], "cc": note["cc"]}
    procs = await _worker_processes(env or {}, processes) if processes else []
    reset_peak_rss()
    base_rss = peak_rss_mb()
    cpu = time.process_time()
    start = time.perf_counter()
    queued = await publish(node, org, activity)
    published = time.perf_counter() - start
    worker = DeliveryWorker(node)
    if not procs:
        task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        left = await node.db.fetch_val(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
        if left == 0:
            break
        await asyncio.sleep(0.05)
    delivered_in = time.perf_counter() - start
    cpu = time.process_time() - cpu  # this process: publishing and, in-process, the worker
    if procs:
        rss = max(peak_rss_mb(p.pid) for p in procs)
        for proc in procs:
            proc.terminate()
            await proc.wait()
    else:
        rss = peak_rss_mb() - base_rss
        await worker.stop()
        task.cancel()
    states = await node.db.fetch_all(
        "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
    return {"queued": queued, "publish_s": published, "total_s": delivered_in, "cpu_s": cpu,
            "rss_mb": rss, "states": {r["state"]: r["n"] for r in states}}


async def _prepare(env: dict[str, str], followers: int, hosts: int, sink_port: int) -> str:
    """Bootstrap the node and store its followers; returns the organisation's public key."""
    settings = load_settings(env)
    node = Node.create(settings)
    await node.start()
    try:
        await bootstrap(node)
        org = await by_username(node, settings.org_username, "Group")
        assert org is not None
        await _seed_followers(node, node.url(f"/groups/{org.username}"), followers, hosts,
                              sink_port)
        return org.public_key_pem
    finally:
        await node.stop()


async def _deliver(env: dict[str, str], concurrency: int, sink_url: str, processes: int
                   ) -> dict:
    settings = load_settings(env)
    if concurrency:  # else the production default (Settings.worker_concurrency)
        settings = dataclasses.replace(settings, worker_concurrency=concurrency)
    node = Node.create(settings)
    await node.start()
    try:
        org = await by_username(node, settings.org_username, "Group")
        assert org is not None
        result = await _measure(node, org, node.url(f"/groups/{org.username}"), env,
                                processes)
    finally:
        await node.stop()
    async with httpx.AsyncClient() as client:
        result["sink"] = (await client.get(sink_url)).json()
    return result


def run_one(kind: str, url: str, followers: int, args, limits: dict[str, float]) -> None:
    hosts = max(1, followers // args.per_host)
    sink_port = free_port(address(0))
    with tempfile.TemporaryDirectory(prefix="entraide-bench-") as tmp:
        base = f"http://127.0.0.2:{free_port('127.0.0.2')}"
        env = node_env(url, base, Path(tmp), NODE_DELIVERY_TIMEOUT="30")
        key_file = Path(tmp, "org.pem")
        key_file.write_text(asyncio.run(_prepare(env, followers, hosts, sink_port)))
        sink_log = Path(tmp, "sink.log")
        sink = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", "--hosts", str(hosts), "--port",
             str(sink_port), "--public-key", str(key_file)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=open(sink_log, "wb"), text=True,
        )
        try:
            if sink.stdout is None or sink.stdout.readline().strip() != "ready":
                raise RuntimeError(f"sink did not start: {sink_log.read_text()}")
            r = asyncio.run(_deliver(env, args.concurrency,
                                     f"http://{address(0)}:{sink_port}/count", args.processes))
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    sink_count = r["sink"]
    rate = sink_count["deliveries"] / r["total_s"] if r["total_s"] else 0
    cpu = "" if args.processes else \
        f"CPU {r['cpu_s'] / max(1, sink_count['deliveries']) * 1e6:5.0f} µs/delivery  "
    print(f"  {kind:8} followers={followers:>7} hosts={hosts:>6} queued={r['queued']:>6} "
          f"publish={r['publish_s'] * 1000:7.1f}ms deliver-all={r['total_s']:6.2f}s "
          f"{rate:6.0f} deliveries/s  {cpu}{'worker RSS' if args.processes else '+RSS'}="
          f"{r['rss_mb']:.0f}MB  [{versus(rate, limits, 'sign', 'hello')}]", flush=True)
    print(f"           sink: {sink_count['deliveries']} received, {sink_count['hosts']} hosts, "
          f"{sink_count['duplicates']} duplicates, {sink_count['bad_signatures']} bad "
          f"signatures; queue: {r['states']}")


def main() -> None:
    args = arguments(__doc__, "1000,10000",
                     per_host=(int, 10, "followers per host (hosts = followers / per-host)"),
                     concurrency=(int, 0, "local slots of the in-process worker (default: "
                                 "the production default, Settings.worker_concurrency)"),
                     processes=(int, 0, "deliver with this many `python -m node worker` "
                                "processes (16 in flight each) instead of one in-process worker"))
    limits = machine_limits()
    print_limits(limits)
    print("fan-out of one post")
    for kind in args.db:
        for size in args.sizes:
            with database(kind) as url:
                if url is None:
                    break
                run_one(kind, url, size, args, limits)


if __name__ == "__main__":
    main()
