"""What every benchmark needs: a database of either kind, a real node process, bulk rows,
the machine's raw RSA rates, percentiles. Benchmarks print figures; nothing here asserts a time."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from keys.keypair import generate_keypair, load_private_key, load_public_key
from node.db import Database

REPO = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("ENTRAIDE_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ENTRAIDE_PG_PORT", "5432"))
PG_USER = os.environ.get("ENTRAIDE_PG_USER", "postgres")
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def arguments(description: str, sizes: str, **extra: tuple[type, object, str]
              ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--db", default="sqlite,postgres",
                        help="comma-separated: sqlite, postgres (default both)")
    parser.add_argument("--sizes", default=sizes,
                        help=f"comma-separated stored-row counts to grow through (default {sizes})")
    for name, (kind, default, text) in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=text)
    args = parser.parse_args()
    args.db = [d.strip() for d in args.db.split(",") if d.strip()]
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    return args


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def database(kind: str) -> Iterator[str | None]:
    """A fresh database URL of that kind, removed afterwards; None if PostgreSQL is absent."""
    if kind == "postgres":
        if not postgres_reachable():
            print(f"  (skipped: no PostgreSQL server at {PG_HOST}:{PG_PORT})")
            yield None
            return
        name = f"entraide_bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        try:
            yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        with tempfile.TemporaryDirectory(prefix="entraide-bench-") as tmp:
            yield f"sqlite:///{tmp}/node.db"


def node_env(database_url: str, base_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "NODE_BASE_URL": base_url,
        "NODE_DATABASE_URL": database_url,
        "NODE_DATA_DIR": str(data_dir),
        "NODE_SECRET_KEY": "bench",
        "NODE_ADMIN_PASSWORD": "bench-password",
        "NODE_LOG_LEVEL": "WARNING",
        **extra,
    }


class NodeServer:
    """`python -m node serve` in its own process group, as production would run it."""

    def __init__(self, env: dict[str, str], base_url: str, workers: int = 1,
                 tree: Path = REPO) -> None:
        self.env = env
        self.base = base_url
        self.workers = workers
        self.tree = tree  # another checkout (a baseline) runs its own code on the same data
        self.proc: subprocess.Popen | None = None
        self.log = Path(env["NODE_DATA_DIR"]) / "node.log"

    def start(self, timeout: float = 60) -> NodeServer:
        Path(self.env["NODE_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--workers", str(self.workers)],
            cwd=self.tree, env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/.well-known/nodeinfo", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> NodeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def bulk_insert(db: Database, table: str, rows: list[dict], batch: int = 400) -> None:
    """Many rows per INSERT statement, in one transaction: how a benchmark fills a database."""
    if not rows:
        return
    columns = list(rows[0])
    async with db.transaction():
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            values, params = [], {}
            for n, row in enumerate(chunk):
                values.append("(" + ", ".join(f":{c}{n}" for c in columns) + ")")
                params.update({f"{c}{n}": row[c] for c in columns})
            await db.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(values)}", params
            )


async def seed_posts(db: Database, author: str, count: int, tag: str = "seed") -> None:
    """`count` public Notes by `author`, each with its Create activity (objects + activities)."""
    import json

    stamp = time.time() - count
    objects, activities = [], []
    for n in range(count):
        uri = f"{author}/posts/{tag}-{n}"
        note = {"id": uri, "type": "Note", "attributedTo": author, "to": [PUBLIC],
                "content": f"<p>Offre {n}: soupe, douche, lit · Saint-Gilles</p>",
                "published": "2026-11-01T10:00:00Z"}
        objects.append({"uri": uri, "type": "Note", "attributed_to": author, "local": 1,
                        "in_reply_to": None, "payload": json.dumps(note), "deleted": 0,
                        "published": stamp + n, "updated": None})
        activity = {"id": f"{uri}/activity", "type": "Create", "actor": author,
                    "object": note, "to": [PUBLIC]}
        activities.append({"uri": f"{uri}/activity", "actor_uri": author, "type": "Create",
                           "object_uri": uri, "public": 1, "payload": json.dumps(activity),
                           "created_at": stamp + n})
    await bulk_insert(db, "objects", objects)
    await bulk_insert(db, "activities", activities)


def rsa_rates(seconds: float = 1.0) -> tuple[float, float]:
    """RSA-2048 (PKCS#1 v1.5, SHA-256) sign and verify per second on one core, right now."""
    pair = generate_keypair()
    private, public = load_private_key(pair.private_pem), load_public_key(pair.public_pem)
    message = b"(request-target): post /inbox\nhost: bench\ndate: now\ndigest: SHA-256=x"
    signature = private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    rates = []
    for op in ("sign", "verify"):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            for _ in range(50):
                if op == "sign":
                    private.sign(message, padding.PKCS1v15(), hashes.SHA256())
                else:
                    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            count += 50
        rates.append(count / (time.perf_counter() - start))
    return rates[0], rates[1]


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def peak_rss_mb(pid: int | None = None) -> float:
    """High-water resident memory (VmHWM) of a process, in MB."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Linux lets a process reset its own high-water mark (write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def profiler(server: NodeServer, directory: str, name: str) -> subprocess.Popen | None:
    """py-spy sampling the node's processes while the load runs (when asked and installed)."""
    spy = Path(sys.executable).parent / "py-spy"
    if not directory or server.proc is None:
        return None
    if not spy.exists():
        print("  (no profile: `.venv/bin/pip install py-spy` first)")
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    out = Path(directory) / f"{name}.txt"
    proc = subprocess.Popen(
        # --gil: only the thread running Python is sampled, so idle database threads do not
        # pass for work.
        [str(spy), "record", "--pid", str(server.proc.pid), "--subprocesses", "--gil",
         "--format", "raw", "--rate", "250", "--nonblocking", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let it attach before the load starts
    return proc


def stop_profiler(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def http_request(method: str, path: str, host: str, headers: dict[str, str] | None = None,
                 body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 request, built ahead so that the load costs the generator
    almost nothing while it runs."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items() if k.lower() != "host"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def hammer(address: tuple[str, int], requests: list[bytes], concurrency: int,
                 duration: float | None = None) -> tuple[float, list[float], dict[int, int]]:
    """A small wrk: `concurrency` keep-alive connections send the prepared requests (each once,
    or round and round for `duration` seconds). Returns elapsed seconds, latencies, statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    position = 0
    stop_at = None

    def take() -> bytes | None:
        nonlocal position
        if duration is None:
            if position >= len(requests):
                return None
        elif time.perf_counter() >= stop_at:
            return None
        item = requests[position % len(requests)]
        position += 1
        return item

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(*address)
        try:
            while (request := take()) is not None:
                start = time.perf_counter()
                try:
                    writer.write(request)
                    status = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    # Counted as status 0; a fresh connection carries on.
                    statuses[0] = statuses.get(0, 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(*address)
                    continue
                latencies.append(time.perf_counter() - start)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    start = time.perf_counter()
    stop_at = start + (duration or 0)
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, statuses


async def prepare_node(env: dict[str, str], size: int, offers: bool = False) -> str:
    """Create the node's schema and organisation and store `size` posts before the node process
    starts, as a node restarting on its data would find them. Returns the organisation URI."""
    from node.bootstrap import bootstrap
    from node.config import load_settings
    from node.context import Node

    node = Node.create(load_settings(env))
    await node.start()
    try:
        await bootstrap(node)
        org_uri = node.url(f"/groups/{node.settings.org_username}")
        await seed_posts(node.db, org_uri, size)
        if offers:
            await seed_offers(node.db, org_uri, size)
        if node.db.is_postgres:
            # What autovacuum does within a minute of a bulk load: statistics for the planner
            # and a visibility map for index-only scans.
            await node.db.execute("VACUUM ANALYZE")
        return org_uri
    finally:
        await node.stop()


async def seed_offers(db: Database, org_uri: str, count: int) -> None:
    """`count` open offers and needs in the posts table (the /posts list)."""
    stamp = time.time() - count
    kinds = ("offer", "need")
    await bulk_insert(db, "posts", [
        {"id": f"bench{n}", "uri": f"{org_uri}/posts/bench{n}", "org_uri": org_uri,
         "attributed_to": org_uri, "kind": kinds[n % 2], "category": "food",
         "title": f"Repas chaud {n}", "description_md": "Soupe et pain",
         "description_html": "<p>Soupe et pain</p>", "neighbourhood": "Saint-Gilles",
         "status": "open", "visibility": "public", "remote": 0,
         "created_at": stamp + n, "updated_at": stamp + n}
        for n in range(count)
    ])


def sqlite_commit_rate(seconds: float = 0.5) -> float:
    """One-row INSERT + COMMIT per second in WAL mode with synchronous=NORMAL (the node's
    settings), on one core, right now."""
    import sqlite3

    with tempfile.TemporaryDirectory(prefix="entraide-bench-") as tmp:
        conn = sqlite3.connect(f"{tmp}/commit.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(100):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t (payload) VALUES (?)", ("x" * 600,))
                conn.execute("COMMIT")
            count += 100
        rate = count / (time.perf_counter() - start)
        conn.close()
    return rate


def hello_rate(host: str = "127.0.0.1", count: int = 4000, concurrency: int = 32) -> float:
    """Requests per second a hello-world endpoint (bench/hello.py) answers under uvicorn with
    the node's HTTP protocol class, one worker, with the same small wrk as the benchmarks."""
    return hello_load(host, count, concurrency)[0]


@contextlib.contextmanager
def hello_server(host: str = "127.0.0.1", workers: int = 1, store_url: str = ""
                 ) -> Iterator[tuple[int, int]]:
    """The hello-world endpoint (bench/hello.py) under uvicorn with the node's HTTP protocol
    class: yields (its port, its process group)."""
    port = free_port(host)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.hello:app", "--host", host, "--port", str(port),
         "--http", "httptools", "--log-level", "warning", "--no-access-log",
         "--workers", str(workers)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "HELLO_DATABASE_URL": store_url},
    )
    try:
        wait_listening(host, port)
        yield port, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def hello_load(host: str = "127.0.0.1", count: int = 4000, concurrency: int = 32,
               workers: int = 1, store_url: str = "", rate: float = 0.0
               ) -> tuple[float, float]:
    """The hello-world endpoint under `workers` uvicorn workers: (requests per second, CPU
    seconds of its processes per request). With 2 workers against 1 in the same run, the
    second figure is what this machine charges for running two busy Python processes at
    once, beside the load generator, on its cores: the floor for the node's own ratio.
    With `store_url`, each request POSTs a body of an activity's size that the endpoint
    stores in that database (bench/hello.py `/store`), as the inbox does. With `rate`, the
    `count` requests go at that fixed rate (open loop) instead of as fast as answered."""
    with hello_server(host, workers, store_url) as (port, pgid):
        if store_url:
            request = http_request("POST", "/store", f"{host}:{port}",
                                   {"Content-Type": "application/json"}, b"{}" * 300)
        else:
            request = http_request("GET", "/", f"{host}:{port}")
        asyncio.run(hammer((host, port), [request] * 200 * workers, 8 * workers))
        cpu = group_cpu_seconds(pgid)
        start = time.perf_counter()
        if rate:
            statuses = asyncio.run(open_loop((host, port), request, rate, count / rate))[1]
        else:
            statuses = asyncio.run(hammer((host, port), [request] * count, concurrency))[2]
        elapsed = time.perf_counter() - start
        answered = statuses.get(202 if store_url else 200, 0)
        return answered / elapsed, (group_cpu_seconds(pgid) - cpu) / max(1, answered)


def hello_open_loop(rate: float, seconds: float, host: str = "127.0.0.1") -> list[float]:
    """Latencies of the hello-world endpoint under the open-loop client at `rate`: what this
    machine and the client itself add to every request's latency (the floor of a p99)."""
    with hello_server(host) as (port, _):
        request = http_request("GET", "/", f"{host}:{port}")
        asyncio.run(hammer((host, port), [request], 32, duration=0.5))
        return asyncio.run(open_loop((host, port), request, rate, seconds))[0]


def wait_listening(host: str, port: int, timeout: float = 30,
                   proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def machine_limits(host: str = "127.0.0.1") -> dict[str, float]:
    """The machine's own ceilings, right now: RSA-2048 sign and verify, a SQLite commit (one
    core each), a hello-world HTTP endpoint (uvicorn, one worker). Every figure of a benchmark
    is printed beside these, measured in the same run, because the machine is shared."""
    sign, verify = rsa_rates()
    return {"sign": sign, "verify": verify, "sqlite_commit": sqlite_commit_rate(),
            "hello": hello_rate(host)}


def print_limits(limits: dict[str, float]) -> None:
    print(f"machine limits now: RSA-2048 sign {limits['sign']:,.0f}/s, verify "
          f"{limits['verify']:,.0f}/s, SQLite commit {limits['sqlite_commit']:,.0f}/s, "
          f"hello-world HTTP {limits['hello']:,.0f} req/s; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)


def versus(rate: float, limits: dict[str, float], *names: str) -> str:
    """`rate` as a fraction of each named machine limit (1:N)."""
    return " ".join(f"{name} 1:{limits[name] / rate:.0f}" if rate else f"{name} -"
                    for name in names)


def named_cpu_seconds(name: str) -> float:
    """User + system CPU seconds of every living process whose command is `name` (the
    PostgreSQL server's processes: "postgres"), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.find("(") + 1:text.rfind(")")] == name:
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def postgres_commits(url: str) -> int:
    """Transactions committed in that PostgreSQL database so far (each statement outside a
    transaction is one): a count of round trips that the machine's speed does not move.
    A server process reports its counts when idle, at most a second late: read after a pause."""
    import asyncpg

    async def read() -> int:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT xact_commit FROM pg_stat_database "
                                       "WHERE datname = current_database()")
        finally:
            await conn.close()
    return asyncio.run(read())


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every living process in a process group (a server started
    with start_new_session, its workers included), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state ppid pgrp ... utime(12) stime(13).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


async def open_loop(address: tuple[str, int], request: bytes | list[bytes], rate: float,
                    duration: float, connections: int = 64
                    ) -> tuple[list[float], dict[int, int], float]:
    """An open-loop client: request n is DUE at start + n/rate whether or not earlier answers
    came back, and its latency is counted from that due time (a closed loop, which waits for
    an answer before sending the next, hides every stall: coordinated omission). Up to
    `connections` keep-alive connections send what is due: the same request every time, or
    from a list the next one each time (round and round). Returns latencies, statuses and the
    rate actually achieved."""
    due_times: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    requests = [request] if isinstance(request, bytes) else request

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(*address)
        try:
            while (slot := await due_times.get()) is not None:
                due, request = slot
                try:
                    writer.write(request)
                    status = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    statuses[0] = statuses.get(0, 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(*address)
                    continue
                latencies.append(time.perf_counter() - due)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    start = time.perf_counter()
    total = int(rate * duration)
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due_times.put_nowait((due, requests[n % len(requests)]))
    for _ in workers:
        due_times.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies, statuses, len(latencies) / (time.perf_counter() - start)
