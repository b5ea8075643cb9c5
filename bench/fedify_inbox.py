"""Inbox head-to-head: the node against an inbox built on Fedify (bench/fedify_inbox.mjs, the
@fedify/fedify of the test suite's peer), fed the SAME pre-signed byte-identical Creates.

Both listen in turn on the same address (the signatures cover the Host header), so the very
same request bytes go to each. Per round, on SQLite and on PostgreSQL in turn, the two arms run
one after the other (which one first changes from round to round): each arm starts fresh,
fetches the 20 senders' keys in an untimed warm-up (the node keeps them in memory and in
remote_actors, Fedify in its key-value store), then takes the round's batch over 32 keep-alive
connections (bench/harness.hammer). Each round has its own batch: nothing is a duplicate.
Printed per arm: activities stored per second (202s and stored rows or
lines counted), p50/p99, and the server's CPU per stored activity (process_time of its whole
process group, a measure the machine's load barely moves; PostgreSQL's own CPU is not in it).
Medians of the rounds, then the ratio node/Fedify last.

With `--workers-arm N` the node also runs with N web workers, twice per round: in the closed
loop beside the others, and both it and one worker at the same fixed rate (an open loop, half
what one worker stored in that round unless `--fixed-rate` says), so that CPU per activity is
compared for the same work rather than for how each saturates the machine (beside it, the
machine's own figure: the hello-world endpoint storing each request, one worker against N at
that rate). On PostgreSQL each
arm also prints the transactions the server committed per activity (`pg_stat_database`): the
round trips the node made, a count the machine's speed does not move.

    .venv/bin/python -m bench.fedify_inbox [--db sqlite,postgres] [--count 3000] [--rounds 3]
        [--workers-arm 2] [--fixed-rate 500] [--baseline <another checkout>]
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from activitypub.signatures import sign_request
from activitypub.vocab import ACTIVITY_JSON
from bench.harness import (
    REPO,
    NodeServer,
    arguments,
    database,
    free_port,
    group_cpu_seconds,
    hammer,
    hello_load,
    http_request,
    machine_limits,
    node_env,
    open_loop,
    percentile,
    postgres_commits,
    prepare_node,
    print_limits,
    versus,
    wait_listening,
)
from node.db import Database
from tests.peers import PeerActor, RemotePeer

HOST = "127.0.19.2"  # both inboxes, in turn
PEER_HOST = "127.0.19.3"  # the senders' actors and keys
SENDERS = 20
FEDIFY = REPO / "bench" / "fedify_inbox.mjs"


@dataclass
class Arm:
    stored: int
    rate: float
    p50: float
    p99: float
    cpu_per_activity: float  # seconds
    other: dict[int, int]
    commits_per_activity: float | None = None  # PostgreSQL transactions (round trips)


def _create(peer: RemotePeer, actor: PeerActor, recipient: str) -> bytes:
    note_id = f"{peer.base}/notes/{uuid.uuid4().hex}"
    note = {"id": note_id, "type": "Note", "attributedTo": actor.uri,
            "content": "<p>Je peux aider pour un déménagement samedi</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [recipient],
            "published": "2026-11-28T10:00:00Z"}
    return json.dumps({"@context": "https://www.w3.org/ns/activitystreams",
                       "id": f"{note_id}/activity", "type": "Create", "actor": actor.uri,
                       "object": note, "to": note["to"], "cc": note["cc"]}).encode()


def signed_batch(peer: RemotePeer, actors: list[PeerActor], inbox: str, recipient: str,
                 count: int) -> list[bytes]:
    """`count` Creates, each signed once, as the exact bytes both arms receive."""
    out = []
    for n in range(count):
        actor = actors[n % len(actors)]
        body = _create(peer, actor, recipient)
        headers = sign_request("POST", inbox, actor.key, body=body,
                               headers={"Content-Type": ACTIVITY_JSON})
        out.append(http_request("POST", "/inbox", headers["Host"], headers, body))
    return out


def _measure(pgid: int, port: int, warm: list[bytes], batch: list[bytes],
             concurrency: int, count_stored: Callable[[], int], rate: float = 0.0,
             database_url: str = "") -> Arm:
    """Closed loop (`concurrency` connections, as fast as answered), or with `rate` an open
    loop: the batch sent at that fixed rate, whatever the server's speed."""
    address = (HOST, port)
    asyncio.run(hammer(address, warm, 4))
    before_rows = count_stored()
    commits = postgres_commits(database_url) if database_url.startswith("postgres") else None
    cpu = group_cpu_seconds(pgid)
    if rate:
        start = time.perf_counter()
        latencies, statuses, _ = asyncio.run(open_loop(address, batch, rate, len(batch) / rate))
        elapsed = time.perf_counter() - start
    else:
        elapsed, latencies, statuses = asyncio.run(hammer(address, batch, concurrency))
    # Handlers may still be finishing what was answered: let the server go idle first.
    time.sleep(0.3)
    cpu = group_cpu_seconds(pgid) - cpu
    stored = count_stored() - before_rows
    if commits is not None:
        time.sleep(1.2)  # PostgreSQL's processes report their counts when idle
        commits = postgres_commits(database_url) - commits
    return Arm(stored, stored / elapsed, percentile(latencies, 50) * 1000,
               percentile(latencies, 99) * 1000, cpu / max(stored, 1),
               {k: v for k, v in statuses.items() if k != 202},
               None if commits is None else commits / max(stored, 1))


def node_arm(env: dict[str, str], port: int, peer: RemotePeer, warm: list[bytes],
             batch: list[bytes], concurrency: int, tree: Path = REPO, workers: int = 1,
             rate: float = 0.0) -> Arm:
    def stored() -> int:
        return asyncio.run(_count_notes(env["NODE_DATABASE_URL"], peer.base))

    with NodeServer(env, f"http://{HOST}:{port}", workers=workers, tree=tree) as server:
        assert server.proc is not None
        return _measure(server.proc.pid, port, warm, batch, concurrency, stored, rate,
                        env["NODE_DATABASE_URL"])


async def _count_notes(url: str, peer_base: str) -> int:
    db = Database(url)
    await db.connect()
    try:
        return await db.fetch_val("SELECT COUNT(*) FROM objects WHERE uri LIKE :h",
                                  {"h": f"{peer_base}/notes/%"})
    finally:
        await db.disconnect()


def fedify_arm(port: int, tmp: Path, warm: list[bytes], batch: list[bytes],
               concurrency: int) -> Arm:
    store = tmp / f"fedify-{uuid.uuid4().hex}.jsonl"
    store.touch()
    log = open(tmp / "fedify.log", "ab")
    proc = subprocess.Popen(
        ["node", str(FEDIFY)], cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "BENCH_HOST": HOST, "BENCH_PORT": str(port),
             "BENCH_STORE": str(store)}, start_new_session=True,
    )
    try:
        wait_listening(HOST, port, proc=proc)
        return _measure(proc.pid, port, warm, batch, concurrency,
                        lambda: sum(1 for _ in open(store, "rb")))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()


def show(name: str, arm: Arm, limits: dict[str, float]) -> None:
    print(f"    {name:16} stored={arm.stored:5} {arm.rate:7.0f}/s  p50={arm.p50:6.1f}ms "
          f"p99={arm.p99:6.1f}ms  CPU {arm.cpu_per_activity * 1e6:6.0f} µs/activity  "
          + (f"{arm.commits_per_activity:.2f} commits/activity  "
             if arm.commits_per_activity is not None else "")
          + f"[{versus(arm.rate, limits, 'verify', 'hello', 'sqlite_commit')}]"
          + (f"  other statuses {arm.other}" if arm.other else ""), flush=True)


def main() -> None:
    args = arguments(__doc__, "1000",
                     count=(int, 3000, "signed Creates per arm and round"),
                     rounds=(int, 3, "alternating rounds (medians are printed)"),
                     concurrency=(int, 32, "requests in flight"),
                     workers_arm=(int, 0, "also run the node with this many web workers, as an "
                                  "arm of its own (CPU per activity against one worker)"),
                     fixed_rate=(float, 0.0, "the workers arm's open-loop rate (activities "
                                 "per second; by default half what one worker stored in the "
                                 "round)"),
                     fixed_seconds=(float, 6.0, "seconds of that open loop"),
                     baseline=(str, "", "another checkout of the node (e.g. a git worktree of "
                               "an older commit) run as a third arm on the same data"))
    limits = machine_limits(HOST)
    print_limits(limits)
    hello_penalty: dict[str, float] = {}
    steady_penalty: dict[str, list[float]] = {}
    if args.workers_arm:
        # The machine's own figure for two busy processes against one, in this run: the bare
        # endpoint, and the same storing each request in each kind of database.
        for kind in ("", *args.db):
            with database(kind or "sqlite") as url:
                if url is None:
                    continue
                store = url if kind else ""
                one = [hello_load(HOST, 20000, store_url=store)[1] for _ in range(3)]
                several = [hello_load(HOST, 20000, workers=args.workers_arm, store_url=store)[1]
                           for _ in range(3)]
            hello_penalty[kind] = statistics.median(
                s / o for o, s in zip(one, several, strict=True))
            print(f"hello-world{f' storing each request in {kind}' if kind else ''}, CPU per "
                  f"request: {statistics.median(one) * 1e6:.0f} µs with one worker, "
                  f"{statistics.median(several) * 1e6:.0f} µs with {args.workers_arm}",
                  flush=True)
    peer = RemotePeer(PEER_HOST).start()
    actors = [peer.add_actor(f"sender{n}") for n in range(SENDERS)]
    port = free_port(HOST)
    inbox = f"http://{HOST}:{port}/inbox"
    results: dict[str, list[Arm]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="entraide-bench-") as tmp_name:
            tmp = Path(tmp_name)
            with contextlib.ExitStack() as stack:
                urls = {kind: stack.enter_context(database(kind)) for kind in args.db}
                urls = {kind: url for kind, url in urls.items() if url is not None}
                # The baseline gets a database of its own: the same batch must be new to it.
                variants = ("node",) + (("baseline",) if args.baseline else ()) \
                    + (("workers",) if args.workers_arm else ())
                envs = {}
                recipient = ""
                for kind in urls:
                    for variant in variants:
                        url = urls[kind] if variant == "node" else \
                            stack.enter_context(database(kind))
                        env = node_env(url, f"http://{HOST}:{port}", tmp / f"{variant}-{kind}",
                                       NODE_RUN_WORKER="0", NODE_RATE_INBOX_PER_ADDRESS="off",
                                       NODE_RATE_INBOX_PER_HOST="off")
                        recipient = asyncio.run(prepare_node(env, args.sizes[0]))
                        envs[variant, kind] = env
                for round_no in range(1, args.rounds + 1):
                    print(f"  round {round_no} (load average {os.getloadavg()[0]:.1f})",
                          flush=True)
                    for kind in urls:
                        warm = signed_batch(peer, actors, inbox, recipient, SENDERS)
                        batch = signed_batch(peer, actors, inbox, recipient, args.count)
                        arms = {
                            f"node {kind}": functools.partial(
                                node_arm, envs["node", kind], port, peer, warm, batch,
                                args.concurrency),
                            f"fedify ({kind})": functools.partial(
                                fedify_arm, port, tmp, warm, batch, args.concurrency),
                        }
                        if args.workers_arm:
                            arms[f"node x{args.workers_arm} {kind}"] = functools.partial(
                                node_arm, envs["workers", kind], port, peer, warm, batch,
                                args.concurrency, REPO, args.workers_arm)
                        if args.baseline:
                            arms[f"baseline {kind}"] = functools.partial(
                                node_arm, envs["baseline", kind], port, peer, warm, batch,
                                args.concurrency, Path(args.baseline))
                        # Which arm goes first alternates from round to round.
                        for name in sorted(arms, reverse=round_no % 2 == 0):
                            arm = arms[name]()
                            results.setdefault(name, []).append(arm)
                            show(name, arm, limits)
                        if args.workers_arm:
                            # The same work offered to both: a fixed rate one worker keeps up
                            # with easily, so that neither is judged by how it saturates.
                            rate = args.fixed_rate or max(
                                50, round(results[f"node {kind}"][-1].rate / 2 / 50) * 50)
                            steady = signed_batch(peer, actors, inbox, recipient,
                                                  int(rate * args.fixed_seconds))
                            fixed = {
                                f"node {kind} at a fixed rate": (envs["node", kind], 1),
                                f"node x{args.workers_arm} {kind} at a fixed rate":
                                    (envs["workers", kind], args.workers_arm),
                            }
                            for name in sorted(fixed, reverse=round_no % 2 == 0):
                                env, workers = fixed[name]
                                arm = node_arm(env, port, peer, warm, steady, args.concurrency,
                                               REPO, workers, rate)
                                results.setdefault(name, []).append(arm)
                                show(name, arm, limits)
                            # The machine's own figure at that rate: the storing endpoint.
                            one, several = (hello_load(HOST, len(steady), workers=n,
                                                       store_url=urls[kind], rate=rate)[1]
                                            for n in (1, args.workers_arm))
                            steady_penalty.setdefault(kind, []).append(several / one)
                            print(f"    hello-world storing in {kind} at {rate:.0f}/s, CPU per "
                                  f"request: {one * 1e6:.0f} µs with one worker, "
                                  f"{several * 1e6:.0f} µs with {args.workers_arm}", flush=True)
    finally:
        peer.stop()
    print(f"medians of {args.rounds} rounds, {args.count} Creates each, "
          f"{args.concurrency} connections:")
    medians = {name: (statistics.median(a.rate for a in arms),
                      statistics.median(a.p99 for a in arms),
                      statistics.median(a.cpu_per_activity for a in arms))
               for name, arms in results.items()}
    for name, (rate, p99, cpu) in medians.items():
        print(f"  {name:16} {rate:7.0f}/s  p99 {p99:6.1f} ms  CPU {cpu * 1e6:6.0f} µs/activity"
              f"  [{versus(rate, limits, 'verify', 'hello', 'sqlite_commit')}]")
    # Each node arm against the Fedify arm that ran right after it, round by round (the load
    # of the machine moves between rounds), then the median of those per-round ratios.
    for kind in urls_done(results):
        pairs = list(zip(results[f"node {kind}"], results[f"fedify ({kind})"], strict=True))
        rate = statistics.median(n.rate / f.rate for n, f in pairs if f.rate)
        cpu = statistics.median(f.cpu_per_activity / n.cpu_per_activity for n, f in pairs)
        several = f"node x{args.workers_arm} {kind}"
        if several in results:
            pairs = list(zip(results[f"node {kind}"], results[several], strict=True))
            lighter = statistics.median(w.cpu_per_activity / n.cpu_per_activity
                                        for n, w in pairs)
            print(f"  node on {kind}, {args.workers_arm} web workers / one: "
                  f"{statistics.median(w.rate / n.rate for n, w in pairs):.2f}x activities/s, "
                  f"{lighter:.2f}x the CPU per activity; the machine's own figure for "
                  f"{args.workers_arm} busy processes in this run: "
                  f"{hello_penalty.get('', 1.0):.2f}x the CPU per request of a hello-world "
                  f"endpoint, {hello_penalty.get(kind, 1.0):.2f}x of the same storing each "
                  f"request in {kind}")
        several_fixed = f"node x{args.workers_arm} {kind} at a fixed rate"
        if several_fixed in results:
            pairs = list(zip(results[f"node {kind} at a fixed rate"], results[several_fixed],
                             strict=True))
            lighter = statistics.median(w.cpu_per_activity / n.cpu_per_activity
                                        for n, w in pairs)
            commits = ""
            if pairs[0][0].commits_per_activity is not None:  # PostgreSQL
                one = statistics.median(n.commits_per_activity or 0.0 for n, _ in pairs)
                several = statistics.median(w.commits_per_activity or 0.0 for _, w in pairs)
                commits = (f"; commits per activity {one:.2f} with one, {several:.2f} with "
                           f"{args.workers_arm}")
            print(f"  node on {kind} at the same fixed rate "
                  f"({', '.join(f'{n.rate:.0f}/s' for n, _ in pairs)}), {args.workers_arm} web "
                  f"workers / one: {lighter:.2f}x the CPU per activity{commits}; the machine's "
                  f"own figure at those rates: "
                  f"{statistics.median(steady_penalty[kind]):.2f}x the CPU per request of "
                  f"the hello-world endpoint storing each request in {kind}")
        if f"baseline {kind}" in results:
            pairs = list(zip(results[f"node {kind}"], results[f"baseline {kind}"], strict=True))
            faster = statistics.median(n.rate / b.rate for n, b in pairs if b.rate)
            lighter = statistics.median(b.cpu_per_activity / n.cpu_per_activity
                                        for n, b in pairs)
            print(f"  node on {kind} / baseline: {faster:.2f}x activities/s, {lighter:.2f}x "
                  "less CPU per activity")
        print(f"RATIO node on {kind} / Fedify: {rate:.2f}x activities/s, {cpu:.2f}x less CPU "
              f"per activity (medians of per-round ratios)")


def urls_done(results: dict[str, list[Arm]]) -> list[str]:
    kinds = [name.split(" ", 1)[1] for name in results if name.startswith("node ")]
    return [kind for kind in kinds if " " not in kind]  # not "node x2 sqlite"


if __name__ == "__main__":
    main()
