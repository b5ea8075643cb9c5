"""Reads under concurrent load: p50/p99 latency and requests per second for WebFinger, the
organisation's actor document, its outbox (first, last and a middle page), one offer (its
Note as a peer fetches it, and its HTML page), the offers list (/posts) and the home page,
against a real node process holding N stored posts.

    .venv/bin/python -m bench.reads [--db sqlite,postgres] [--sizes 1000,10000] [--seconds 3]
        [--concurrency 32] [--workers 1] [--rate 1000 [--rounds 3]] [--only outbox,webfinger]

With `--rate R`, each endpoint gets an open-loop load instead (bench/harness.open_loop): R
requests per second due at fixed times, latency counted from each request's due time, so a
stall shows in the percentiles instead of slowing the client down.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path

from bench.harness import (
    NodeServer,
    arguments,
    database,
    free_port,
    group_cpu_seconds,
    hammer,
    hello_open_loop,
    http_request,
    machine_limits,
    named_cpu_seconds,
    node_env,
    open_loop,
    percentile,
    prepare_node,
    print_limits,
    profiler,
    stop_profiler,
)

AP = {"Accept": "application/activity+json"}


def _endpoints(host: str, org: str, size: int) -> list[tuple[str, bytes]]:
    return [
        ("webfinger", http_request(
            "GET", f"/.well-known/webfinger?resource=acct:{org}@{host}", host)),
        ("actor", http_request("GET", f"/groups/{org}", host, AP)),
        ("outbox first", http_request("GET", f"/groups/{org}/outbox?page=true", host, AP)),
        # Pages named by position (the collection's `last`, and one in the middle by `next`'s
        # max_id; the seeded activities are numbered 1..size).
        ("outbox last", http_request("GET", f"/groups/{org}/outbox?min_id=0&page=true", host,
                                     AP)),
        ("outbox middle", http_request(
            "GET", f"/groups/{org}/outbox?max_id={size // 2}&page=true", host, AP)),
        # One offer as a peer fetches it (its Note), and the same post's page for a person.
        ("post", http_request("GET", f"/posts/bench{size // 2}", host, AP)),
        ("its HTML page", http_request("GET", f"/posts/bench{size // 2}", host,
                                       {"Accept": "text/html"})),
        ("offers list", http_request("GET", "/posts", host, {"Accept": "text/html"})),
        ("home page", http_request("GET", "/", host, {"Accept": "text/html"})),
    ]


def _open_round(kind: str, size: int, name: str, port: int, request: bytes, pid: int,
                args) -> tuple[float, float]:
    """One open-loop round against one endpoint, printed; returns its p99 and CPU/request."""
    cpu = group_cpu_seconds(pid)
    pg_cpu = named_cpu_seconds("postgres")
    latencies, statuses, achieved = asyncio.run(
        open_loop(("127.0.0.2", port), request, args.rate, args.seconds))
    answered = max(1, len(latencies))
    cpu = (group_cpu_seconds(pid) - cpu) / answered
    # The server's share (shared by whatever else uses it meanwhile).
    pg_cpu = (named_cpu_seconds("postgres") - pg_cpu) / answered
    bad = {k: v for k, v in statuses.items() if k != 200}
    p99 = percentile(latencies, 99)
    print(f"  {kind:8} posts={size:>7} {name:13} due {args.rate:.0f}/s, answered "
          f"{achieved:6.0f}/s  p50={percentile(latencies, 50) * 1000:7.1f}ms"
          f"  p99={p99 * 1000:7.1f}ms"
          f"  p99.9={percentile(latencies, 99.9) * 1000:7.1f}ms"
          f"  CPU {cpu * 1e6:5.0f} µs/request"
          + (f" + PostgreSQL {pg_cpu * 1e6:4.0f} µs" if kind == "postgres" else "")
          + (f"  non-200: {bad}" if bad else ""), flush=True)
    return p99, cpu


def run_one(kind: str, url: str, size: int, args) -> None:
    port = free_port("127.0.0.2")
    base = f"http://127.0.0.2:{port}"
    host = f"127.0.0.2:{port}"
    with tempfile.TemporaryDirectory(prefix="entraide-bench-") as tmp:
        env = node_env(url, base, Path(tmp), NODE_RUN_WORKER="0")
        asyncio.run(prepare_node(env, size, offers=True))
        with NodeServer(env, base, workers=args.workers) as server:
            for name, request in _endpoints(host, "voisins", size):
                if args.only and not any(word in name for word in args.only.split(",")):
                    continue
                asyncio.run(hammer(("127.0.0.2", port), [request], 32, duration=0.5))  # warm
                label = name.replace(" ", "-")
                spy = profiler(server, args.profile, f"reads-{kind}-{size}-{label}")
                if args.rate:
                    assert server.proc is not None
                    rounds = [_open_round(kind, size, name, port, request, server.proc.pid,
                                          args) for _ in range(args.rounds)]
                    stop_profiler(spy)
                    if args.rounds > 1:
                        p99s = sorted(r[0] for r in rounds)
                        cpus = sorted(r[1] for r in rounds)
                        print(f"  {kind:8} posts={size:>7} {name:13} median of {args.rounds} "
                              f"rounds: p99={statistics.median(p99s) * 1000:7.1f}ms "
                              f"(best {p99s[0] * 1000:.1f}, worst {p99s[-1] * 1000:.1f})  "
                              f"CPU {statistics.median(cpus) * 1e6:5.0f} µs/request",
                              flush=True)
                    continue
                elapsed, latencies, statuses = asyncio.run(
                    hammer(("127.0.0.2", port), [request], args.concurrency,
                           duration=args.seconds))
                stop_profiler(spy)
                bad = {k: v for k, v in statuses.items() if k != 200}
                print(f"  {kind:8} posts={size:>7} {name:13} {len(latencies) / elapsed:7.0f} req/s"
                      f"  p50={percentile(latencies, 50) * 1000:7.1f}ms"
                      f"  p99={percentile(latencies, 99) * 1000:7.1f}ms"
                      + (f"  non-200: {bad}" if bad else ""), flush=True)


def main() -> None:
    args = arguments(__doc__, "1000,10000",
                     seconds=(float, 3.0, "seconds of load per endpoint"),
                     concurrency=(int, 32, "connections in flight"),
                     workers=(int, 1, "uvicorn web workers of the node"),
                     profile=(str, "", "directory for py-spy profiles of the node (optional)"),
                     rate=(float, 0.0, "open loop: requests per second due (0: closed loop)"),
                     rounds=(int, 1, "open loop: rounds per endpoint (the median is printed)"),
                     only=(str, "", "endpoints whose name contains one of these words "
                                    "(comma-separated), e.g. outbox,post"))
    print_limits(machine_limits())
    if args.rate:
        floor = hello_open_loop(args.rate, args.seconds)
        print(f"hello-world endpoint, same open loop at {args.rate:.0f}/s: "
              f"p50={percentile(floor, 50) * 1000:.1f}ms p99={percentile(floor, 99) * 1000:.1f}ms"
              f" p99.9={percentile(floor, 99.9) * 1000:.1f}ms (this machine's and the client's "
              "own share of every latency below)", flush=True)
    print(f"reads; node web workers: {args.workers}, {args.concurrency} connections, "
          f"{args.seconds:g}s per endpoint")
    for kind in args.db:
        for size in args.sizes:
            with database(kind) as url:
                if url is None:
                    break
                run_one(kind, url, size, args)


if __name__ == "__main__":
    main()
