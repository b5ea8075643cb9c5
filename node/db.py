"""Database access through `databases`: SQLite (WAL) by default, PostgreSQL for scale-out,
one API for both.

Queries are written once with `:name` parameters. `databases` opens, pools and configures the
connections (aiosqlite or asyncpg underneath); the statements themselves go to the driver
connection it holds, because `databases` compiles every statement through SQLAlchemy (a fifth
of an inbox request's time on the profile). sqlite3 takes `:name` itself; for asyncpg the names
become `$1..$n` once per query text. Around that, after a profile of the inbox:
- SQLite: `databases` opens a new connection (and thread) for every query made outside a
  connection block, and loses the per-connection PRAGMAs (synchronous, foreign_keys). So this
  layer holds `databases` connections open for the process's life: one writer, guarded by a lock
  for single statements and whole transactions (`BEGIN IMMEDIATE`, so that two processes never
  deadlock upgrading a read lock), and a few readers, which WAL lets run beside the writer.
  Short statements outside a transaction (reads, and single writes under the writer's lock)
  run on two more connections owned by the event loop's thread, with no thread trip at all (a
  trip cost more than the statement itself: a third of an outbox page's CPU); one that
  overruns a small time budget is interrupted (rolled back whole) and done again on a
  thread's connection, and its text keeps to the threads from then on; one that meets another
  process's lock goes to the threads, which wait for it.
- PostgreSQL: `databases`' asyncpg pool; each task gets its own connection, a transaction keeps
  it, and a nested transaction becomes a savepoint. A statement outside any transaction goes
  to the pool itself (acquire, run, release), without `databases`' per-task connection
  bookkeeping around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
import databases
import orjson
from databases.core import Connection

READERS = 4
# A statement run on the event loop's thread holds every other request back while it runs: past
# this (seconds) it is interrupted and sent to a thread's connection, and so is its query text
# afterwards.
LOOP_BUDGET = 0.002
LOOP_CHECK_EVERY = 2000  # SQLite virtual-machine instructions between two budget checks
# Every connection that writes, on a thread or on the loop: the node's durability and rules.
WRITER_PRAGMAS = ("PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON")
SLOW_QUERIES_KEPT = 256
POOL_SIZE = 10
# PostgreSQL connections a process keeps out of the pool for statements outside transactions:
# taking one from asyncpg's pool and giving it back costs more CPU than the statement itself
# (about 50 µs against 60 µs for a one-row read on this machine, bench/README.md).
HELD_CONNECTIONS = 2
# SQLite's planner needs statistics to prefer an ORDER BY index over a selective-looking
# equality (the offers list: 18 ms -> 0.5 ms at 10k posts). ANALYZE samples this many rows per
# index, runs when a process opens the database and again after this many writes.
ANALYSIS_LIMIT = 1000
ANALYZE_EVERY_WRITES = 5000
# Copying the write-ahead log into the database (a checkpoint, with its fsync) is left to a
# reader thread every this many seconds instead of to whichever commit crosses SQLite's
# 1,000-page mark: that commit held the write lock, and every write behind it, for as long.
CHECKPOINT_EVERY = 1.0
# The pattern SQLAlchemy's text() used for bind parameters, so that every query written for the
# `databases` layer keeps its meaning (`::type` casts are left alone).
_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)", re.UNICODE)
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
# The tables a statement writes, quoted or not. Clauses that only look alike (`DO UPDATE SET`,
# `FOR UPDATE SKIP LOCKED`) name no table of ours, so they count for nothing.
_TARGET = re.compile(r'\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)'
                     r'\s+"?(\w+)"?', re.IGNORECASE)


def now() -> float:
    return time.time()


def new_id() -> str:
    return uuid.uuid4().hex


def dumps(value: Any) -> str:
    """Compact JSON text for a column. orjson (a third of the json module's time on an inbox
    activity) writes the same text; what it refuses (a key that is not a string), json writes."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=2048)
def _names(query: str) -> frozenset[str]:
    return frozenset(_BIND.findall(query))


def _bind(query: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values the query names, no more (SQLAlchemy's text() refuses extra ones), and a clear
    error for a name without a value."""
    names = _names(query)
    missing = names - values.keys()
    if missing:
        raise ValueError(f"no value given for :{', :'.join(sorted(missing))}")
    return {name: values[name] for name in names}


@lru_cache(maxsize=2048)
def _numbered(query: str) -> tuple[str, tuple[str, ...]]:
    """The query with `:name` turned into asyncpg's `$1..$n` (a repeated name keeps its number),
    and the names in that order."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    return _BIND.sub(number, query), tuple(order)


def _args(query: str, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
    text, names = _numbered(query)
    missing = set(names) - values.keys()
    if missing:
        raise ValueError(f"no value given for :{', :'.join(sorted(missing))}")
    return text, [values[name] for name in names]


@lru_cache(maxsize=2048)
def _inserts(query: str) -> bool:
    return query.lstrip()[:7].upper().startswith(("INSERT", "REPLACE"))


@lru_cache(maxsize=2048)
def _written_tables(query: str) -> frozenset[str]:
    return frozenset(name.lower() for name in _TARGET.findall(query))


@lru_cache(maxsize=2048)
def _reads_only(query: str) -> bool:
    head = query.lstrip()[:6].upper()
    return head.startswith(("SELECT", "WITH")) and not _WRITES.search(query)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class GroupCommit(Generic[K, V]):
    """Group commit: calls made in the same turn of the event loop, or while one batch
    statement runs, go together into the next one. Alone, a call runs on the next turn
    (nothing waits for a timer); under load, one statement (one commit on SQLite, one round
    trip on PostgreSQL) serves up to `limit` callers. With `linger` (seconds), each batch
    waits that long for company first: for writes nobody waits for (`submit`).

    `run(items)` gets {key: payload} and returns {key: result}; a caller gets its key's result
    (None when absent). A key given twice in one batch: the first caller gets the result, the
    next ones None (for an INSERT, "it was there already")."""

    def __init__(self, run: Callable[[dict[K, Any]], Awaitable[Mapping[K, V]]],
                 limit: int = 64, linger: float = 0.0) -> None:
        self._run = run
        self._limit = limit
        self._linger = linger
        self._waiting: list[tuple[K, Any, asyncio.Future[V | None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, key: K, payload: Any = None) -> V | None:
        return await self.submit(key, payload)

    def submit(self, key: K, payload: Any = None) -> asyncio.Future[V | None]:
        """Queue one item without waiting for it: the future gets its result."""
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, payload, future))
        if self._task is None or self._task.done():
            # A context of its own: the batch must not run inside a caller's transaction.
            self._task = asyncio.create_task(self._drain(), context=contextvars.Context())
        return future

    async def settle(self, grace: float) -> None:
        """Wait (up to `grace` seconds) until what was queued has run: at shutdown."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=grace)

    async def _drain(self) -> None:
        batch: list[tuple[K, Any, asyncio.Future[V | None]]] = []
        try:
            while self._waiting:
                # One turn of the loop first (or the linger): callers made ready by the same
                # wake-up (a wave of requests read together) join this batch, not the next.
                await asyncio.sleep(self._linger)
                # A power of two at most (the rest go next): each batch statement has a few
                # texts only, which the drivers' statement caches keep prepared (asyncpg keeps
                # 100 per connection; one text per size would churn it).
                size = 1 << (min(len(self._waiting), self._limit).bit_length() - 1)
                batch, self._waiting = self._waiting[:size], self._waiting[size:]
                items: dict[K, Any] = {}
                for key, payload, _ in batch:
                    items.setdefault(key, payload)
                outcomes = await self._outcomes(items)
                first: set[K] = set()
                for key, _, future in batch:
                    outcome = outcomes[key]
                    if not future.done():
                        if isinstance(outcome, Exception):
                            future.set_exception(outcome)
                        else:
                            future.set_result(outcome if key not in first else None)
                    first.add(key)
                batch = []
        finally:  # cancelled (shutdown): nobody waits for ever
            for _, _, future in [*batch, *self._waiting]:
                if not future.done():
                    future.cancel()

    async def _outcomes(self, items: dict[K, Any]) -> dict[K, V | None | Exception]:
        try:
            results = await self._run(items)
            return {key: results.get(key) for key in items}
        except Exception as exc:
            if len(items) == 1:
                return {key: exc for key in items}
        # One bad item (a value the database refuses) must not fail the others: each alone.
        outcomes: dict[K, V | None | Exception] = {}
        for key, payload in items.items():
            outcomes.update(await self._outcomes({key: payload}))
        return outcomes


class Database:
    """The node's database; `transaction()` makes the queries of the task inside it atomic."""

    def __init__(self, url: str) -> None:
        self.url = url
        # Per table, a count that grows after every statement of this process that writes it,
        # or for a transaction once it has ended: a cache that sees the count of its table move
        # knows this process may have changed its rows (node/generations.py).
        self.writes: dict[str, int] = {}
        # The tables written inside this task's transaction, counted when it ends.
        self._written: contextvars.ContextVar[set[str] | None] = \
            contextvars.ContextVar(f"written_{id(self)}", default=None)
        self.dialect = "postgresql" if url.startswith(("postgres", "postgresql")) else "sqlite"
        self._backend: _Sqlite | _Postgres
        if self.dialect == "sqlite":
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._backend = _Sqlite(url, path or ":memory:")
        else:
            self._backend = _Postgres(url.replace("postgres://", "postgresql://", 1))

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def connect(self) -> None:
        await self._backend.connect()

    async def disconnect(self) -> None:
        await self._backend.disconnect()

    async def execute(self, query: str, values: Mapping[str, Any] | None = None) -> Any:
        """Runs a statement; returns the new row id of an SQLite INSERT, else its row count
        (on PostgreSQL: the first value a RETURNING clause gives, else None)."""
        try:
            return await self._backend.execute(query, values or {})
        finally:
            self._wrote(query)

    async def execute_many(self, query: str, values: list[Mapping[str, Any]]) -> None:
        if values:
            try:
                await self._backend.execute_many(query, values)
            finally:
                self._wrote(query)

    async def fetch_one(self, query: str, values: Mapping[str, Any] | None = None) -> dict | None:
        rows = await self._fetch(query, values, one=True)
        return rows[0] if rows else None

    async def fetch_all(self, query: str, values: Mapping[str, Any] | None = None) -> list[dict]:
        return await self._fetch(query, values, one=False)

    async def fetch_val(self, query: str, values: Mapping[str, Any] | None = None) -> Any:
        rows = await self._fetch(query, values, one=True)
        return next(iter(rows[0].values())) if rows else None

    async def _fetch(self, query: str, values: Mapping[str, Any] | None, one: bool
                     ) -> list[dict]:
        try:
            return await self._backend.fetch(query, values or {}, one=one)
        finally:
            self._wrote(query)  # UPDATE ... RETURNING, INSERT ... RETURNING

    def _wrote(self, query: str) -> None:
        tables = _written_tables(query)
        if tables:
            pending = self._written.get()
            if pending is not None:
                pending.update(tables)
            else:
                self._count(tables)

    def _count(self, tables: Iterable[str]) -> None:
        for table in tables:
            self.writes[table] = self.writes.get(table, 0) + 1

    def writes_to(self, table: str) -> int:
        return self.writes.get(table, 0)

    def writing(self, table: str) -> bool:
        """Whether this task's transaction has written `table` (what it reads of it may be
        its own change, not yet committed)."""
        return table in (self._written.get() or ())

    def transaction(self) -> Transaction:
        return Transaction(self)

    def in_transaction(self) -> bool:
        """Whether this task's statements run inside a transaction (what they read may not
        be committed yet)."""
        return self._backend.depth.get() > 0


class Transaction:
    """`async with db.transaction():` commits on success and rolls back on an exception.
    Nested inside another transaction of the same task, it becomes a savepoint."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._handle: Any = None
        self._written: contextvars.Token | None = None  # set by the outermost transaction

    async def __aenter__(self) -> Transaction:
        if self._db._written.get() is None:
            self._written = self._db._written.set(set())
        try:
            self._handle = await self._db._backend.begin()
        except BaseException:
            self._count_written()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            await self._db._backend.end(self._handle, commit=exc_type is None)
        finally:
            self._count_written()

    def _count_written(self) -> None:
        if self._written is not None:
            tables = self._db._written.get() or set()
            self._db._written.reset(self._written)
            self._written = None
            self._db._count(tables)


# --- SQLite -------------------------------------------------------------------------------------

class _Sqlite:
    def __init__(self, url: str, path: str) -> None:
        self.path = path
        self.shared_memory = path == ":memory:"  # one connection: readers would see another DB
        # `timeout` goes to sqlite3.connect: wait this long on another process's write lock.
        self.database = databases.Database(url, timeout=30)
        self.writer: Connection | None = None
        self.writes = 0
        self.write_lock = asyncio.Lock()
        self.readers: list[Connection] = []
        self.reader_slots = 0
        self.loop_reader: _LoopConnection | None = None
        self.loop_writer: _LoopConnection | None = None
        self.checkpoints: asyncio.Task[None] | None = None
        self.stopping: asyncio.Event | None = None
        self.idle: asyncio.Queue[Connection] = asyncio.Queue()
        self.in_tx: contextvars.ContextVar[Connection | None] = \
            contextvars.ContextVar(f"sqlite_tx_{id(self)}", default=None)
        self.depth: contextvars.ContextVar[int] = \
            contextvars.ContextVar(f"sqlite_depth_{id(self)}", default=0)

    async def _open(self) -> Connection:
        # A `databases` connection held open: its aiosqlite connection (autocommit; transactions
        # are begun explicitly below) and its PRAGMAs live as long as the process.
        conn = Connection(self.database, self.database._backend)
        await conn.__aenter__()
        for pragma in WRITER_PRAGMAS:
            await conn.execute(pragma)
        return conn

    async def connect(self) -> None:
        await self.database.connect()
        self.writer = await self._open()
        if not self.shared_memory:
            await self.writer.execute("PRAGMA journal_mode=WAL")
            await self.writer.execute("PRAGMA wal_autocheckpoint=0")
            self.loop_reader = _LoopConnection(self.path, "PRAGMA query_only=ON")
            self.loop_writer = _LoopConnection(
                self.path, *WRITER_PRAGMAS, "PRAGMA wal_autocheckpoint=0")
            self.stopping = asyncio.Event()  # made here: an Event belongs to one loop
            self.checkpoints = asyncio.create_task(self._checkpoint_regularly(self.stopping),
                                                   context=contextvars.Context())
        await self.writer.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        await self.writer.execute("ANALYZE")

    async def _refresh_statistics(self) -> None:
        # Only the tables whose statistics are far off (SQLite's own judgement: grown tenfold
        # and the like) are analysed again, so this is cheap when little changed; a full
        # ANALYZE here held the write lock for tens of milliseconds every 5,000 writes.
        assert self.writer is not None
        self.writes = 0
        await _sqlite(self.writer, "PRAGMA optimize")

    async def _checkpoint_regularly(self, stopping: asyncio.Event) -> None:
        # Stopped by an event, not cancelled: a cancel left its statement running in the
        # reader's thread with nobody waiting for it, which then answered a closed loop.
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), CHECKPOINT_EVERY)
            if stopping.is_set():
                return
            conn = await self._reader()
            try:
                # PASSIVE: copies what no reader still needs, never waits for a lock, and
                # lets writers go on meanwhile. Another process's checkpoint running: skipped.
                await _sqlite(conn, "PRAGMA wal_checkpoint(PASSIVE)", fetch=True)
            except sqlite3.OperationalError:
                pass
            finally:
                self.idle.put_nowait(conn)

    async def disconnect(self) -> None:
        if self.checkpoints is not None and self.stopping is not None:
            self.stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self.checkpoints
            self.checkpoints = self.stopping = None
        for loop_conn in (self.loop_reader, self.loop_writer):
            if loop_conn is not None:
                loop_conn.close()
        self.loop_reader = self.loop_writer = None
        for conn in self.readers:
            await conn.__aexit__()
        self.readers.clear()
        self.reader_slots = 0
        self.idle = asyncio.Queue()
        if self.writer is not None:
            await self.writer.__aexit__()
            self.writer = None
        await self.database.disconnect()

    async def _reader(self) -> Connection:
        # The slot is taken before `_open()` is awaited: checking `len(self.readers)` alone let
        # every request that arrived during an open start one more (20 readers under 32
        # concurrent requests).
        if self.idle.empty() and self.reader_slots < READERS:
            self.reader_slots += 1
            try:
                conn = await self._open()
            except BaseException:
                self.reader_slots -= 1
                raise
            self.readers.append(conn)
            return conn
        return await self.idle.get()

    async def _write(self, query: str, values: Any, many: bool = False,
                     fetch: bool = False, one: bool = False) -> Any:
        conn = self.in_tx.get()
        if conn is not None:
            return await self._run(conn, query, values, many, fetch, one)
        async with self.write_lock:
            assert self.writer is not None, "the database is not connected"
            self.writes += 1
            if self.writes >= ANALYZE_EVERY_WRITES:
                await self._refresh_statistics()
            if many:
                # One transaction for the batch: a commit per row would cost a WAL write each.
                await _sqlite(self.writer, "BEGIN IMMEDIATE")
                try:
                    await self._run(self.writer, query, values, many, fetch, one)
                except BaseException:
                    await _sqlite(self.writer, "ROLLBACK")
                    raise
                await _sqlite(self.writer, "COMMIT")
                return None
            if self.loop_writer is not None:
                result = self.loop_writer.run(query, _bind(query, values), fetch, one)
                if result is not _ON_THREAD:
                    return result
            return await self._run(self.writer, query, values, many, fetch, one)

    @staticmethod
    async def _run(conn: Connection, query: str, values: Any, many: bool,
                   fetch: bool, one: bool) -> Any:
        if many:
            return await _sqlite(conn, query, [_bind(query, v) for v in values], many=True)
        return await _sqlite(conn, query, _bind(query, values), fetch=fetch, one=one)

    async def execute(self, query: str, values: Mapping[str, Any]) -> Any:
        return await self._write(query, values)

    async def execute_many(self, query: str, values: list[Mapping[str, Any]]) -> None:
        await self._write(query, values, many=True)

    async def fetch(self, query: str, values: Mapping[str, Any], one: bool) -> list[dict]:
        if self.in_tx.get() is not None or self.shared_memory or not _reads_only(query):
            return await self._write(query, values, fetch=True, one=one)
        if self.loop_reader is not None:
            rows = self.loop_reader.run(query, _bind(query, values), True, one)
            if rows is not _ON_THREAD:
                return rows
        conn = await self._reader()
        try:
            return await self._run(conn, query, values, False, True, one)
        finally:
            self.idle.put_nowait(conn)

    async def begin(self) -> tuple[Any, ...]:
        depth = self.depth.get()
        if depth:
            conn = self.in_tx.get()
            assert conn is not None
            name = f"sp{depth}"
            await _sqlite(conn, f"SAVEPOINT {name}")
            return (conn, name, self.depth.set(depth + 1), None)
        await self.write_lock.acquire()
        try:
            assert self.writer is not None, "the database is not connected"
            await _sqlite(self.writer, "BEGIN IMMEDIATE")
        except BaseException:
            self.write_lock.release()
            raise
        return (self.writer, None, self.depth.set(1), self.in_tx.set(self.writer))

    async def end(self, handle: tuple[Any, ...], commit: bool) -> None:
        conn, savepoint, depth_token, tx_token = handle
        try:
            if savepoint is not None:
                if not commit:
                    await _sqlite(conn, f"ROLLBACK TO SAVEPOINT {savepoint}")
                await _sqlite(conn, f"RELEASE SAVEPOINT {savepoint}")
            elif commit:
                try:
                    await _sqlite(conn, "COMMIT")
                except BaseException:
                    # A failed COMMIT leaves the transaction open on the shared writer.
                    await _sqlite(conn, "ROLLBACK")
                    raise
            else:
                await _sqlite(conn, "ROLLBACK")
        finally:
            self.depth.reset(depth_token)
            if tx_token is not None:
                self.in_tx.reset(tx_token)
                self.write_lock.release()


async def _sqlite(conn: Connection, query: str, values: Any = (), *, many: bool = False,
                  fetch: bool = False, one: bool = False) -> Any:
    """One statement on the held connection's sqlite3 connection, in ONE trip to its aiosqlite
    thread (aiosqlite's own cursor API makes three: execute, fetch, close)."""
    raw = conn.raw_connection
    return await raw._execute(_sqlite_statement, raw._conn, query, values, many, fetch, one)


def _sqlite_statement(conn: sqlite3.Connection, query: str, values: Any, many: bool,
                      fetch: bool, one: bool) -> Any:
    cursor = conn.executemany(query, values) if many else conn.execute(query, values)
    try:
        if many:
            return None
        if not fetch:
            # sqlite3's lastrowid is the connection's last insert, whatever the statement.
            if _inserts(query):
                return cursor.lastrowid if cursor.rowcount > 0 else 0
            return cursor.rowcount
        rows = [cursor.fetchone()] if one else cursor.fetchall()
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in rows if row is not None]
    finally:
        cursor.close()


_ON_THREAD = object()  # a _LoopConnection's answer: run this statement on a thread instead


class _LoopConnection:
    """An sqlite3 connection used on the thread that opened it (the event loop's), for short
    statements: a reader (query_only) for reads outside a transaction, a writer for single
    statements outside one. `run` answers _ON_THREAD when the statement must go to a thread's
    connection instead: called from another thread, a query text that overran its budget
    before, or one that overruns it now (interrupted: a statement on its own is rolled back
    whole, so nothing of it stays) or meets another process's lock (timeout=0: a lock is never
    waited for on the loop; the threads' connections wait instead)."""

    def __init__(self, path: str, *pragmas: str) -> None:
        self.thread = threading.get_ident()
        self.conn = sqlite3.connect(path, timeout=0, isolation_level=None,
                                    check_same_thread=False)
        for pragma in pragmas:
            self.conn.execute(pragma)
        self.deadline = 0.0
        self.conn.set_progress_handler(self._overrun, LOOP_CHECK_EVERY)
        self.slow: dict[str, None] = {}

    def _overrun(self) -> bool:
        return time.perf_counter() > self.deadline

    def run(self, query: str, values: Any, fetch: bool, one: bool) -> Any:
        if query in self.slow or threading.get_ident() != self.thread:
            return _ON_THREAD
        self.deadline = time.perf_counter() + LOOP_BUDGET
        try:
            return _sqlite_statement(self.conn, query, values, False, fetch, one)
        except sqlite3.OperationalError as exc:
            code = exc.sqlite_errorcode & 0xFF  # the primary code of an extended one
            if self.conn.in_transaction:  # never expected in autocommit; never left open
                self.conn.rollback()
            if code == sqlite3.SQLITE_INTERRUPT:
                self.slow[query] = None
                if len(self.slow) > SLOW_QUERIES_KEPT:
                    del self.slow[next(iter(self.slow))]
                return _ON_THREAD
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return _ON_THREAD
            raise

    def close(self) -> None:
        self.conn.close()


# --- PostgreSQL ---------------------------------------------------------------------------------

async def _keep_session(conn: Any) -> None:
    """The pool's reset of a connection given back: nothing beyond asyncpg's own part."""


class _Postgres:
    def __init__(self, url: str) -> None:
        # asyncpg resets a connection given back to the pool with a round trip (RESET ALL,
        # UNLISTEN *, ...) after every statement made outside a transaction, which doubled
        # their cost. The node sets no session state, so only asyncpg's own part of the reset
        # stays (an open transaction is rolled back).
        self.database = databases.Database(url, min_size=1, max_size=POOL_SIZE,
                                           reset=_keep_session)
        self.depth: contextvars.ContextVar[int] = \
            contextvars.ContextVar(f"pg_depth_{id(self)}", default=0)
        self.held: list[Any] = []  # idle connections kept out of the pool (HELD_CONNECTIONS)
        self.holding = 0  # connections taken from the pool for holding, idle or in use

    async def connect(self) -> None:
        await self.database.connect()

    async def disconnect(self) -> None:
        held, self.held = self.held, []
        for conn in held:
            self.holding -= 1
            await self.database._backend._pool.release(conn)
        await self.database.disconnect()

    def _pool(self) -> Any:
        """asyncpg's pool for a statement outside any transaction of this task, else None (the
        statement belongs to the transaction's connection)."""
        return None if self.depth.get() else self.database._backend._pool

    async def _take(self, pool: Any) -> Any:
        """A held connection for one statement, or None when all are busy (the pool's then)."""
        while self.held:
            conn = self.held.pop()
            if not conn.is_closed():
                return conn
            self.holding -= 1  # closed under us (a server restart): the pool replaces it
            await pool.release(conn)
        if self.holding >= HELD_CONNECTIONS:
            return None
        self.holding += 1
        try:
            return await pool.acquire()
        except BaseException:
            self.holding -= 1
            raise

    async def _single(self, pool: Any, method: str, text: str, args: list[Any]) -> Any:
        """`method` (fetch, fetchrow, fetchval) of one statement outside a transaction."""
        conn = await self._take(pool)
        if conn is None:
            return await getattr(pool, method)(text, *args)
        try:
            result = await getattr(conn, method)(text, *args)
        except asyncpg.PostgresError:  # refused by the server: the connection is as it was
            self.held.append(conn)
            raise
        except BaseException:  # cut, cancelled or closed: the pool resets or replaces it
            self.holding -= 1
            await pool.release(conn)
            raise
        self.held.append(conn)
        return result

    async def execute(self, query: str, values: Mapping[str, Any]) -> Any:
        text, args = _args(query, values)
        # The first value a RETURNING clause gives, else None.
        pool = self._pool()
        if pool is not None:
            return await self._single(pool, "fetchval", text, args)
        async with self.database.connection() as conn:
            return await conn.raw_connection.fetchval(text, *args)

    async def execute_many(self, query: str, values: list[Mapping[str, Any]]) -> None:
        text, _ = _numbered(query)
        batch = [_args(query, v)[1] for v in values]
        handle = await self.begin()
        try:
            await handle[0].raw_connection.executemany(text, batch)
        except BaseException:
            await self.end(handle, commit=False)
            raise
        await self.end(handle, commit=True)

    async def fetch(self, query: str, values: Mapping[str, Any], one: bool) -> list[dict]:
        text, args = _args(query, values)
        pool = self._pool()
        if pool is not None:
            if one:
                row = await self._single(pool, "fetchrow", text, args)
                return [dict(row.items())] if row is not None else []
            return [dict(row.items()) for row in await self._single(pool, "fetch", text, args)]
        async with self.database.connection() as conn:
            raw = conn.raw_connection
            if one:
                row = await raw.fetchrow(text, *args)
                return [dict(row.items())] if row is not None else []
            return [dict(row.items()) for row in await raw.fetch(text, *args)]

    async def begin(self) -> tuple[Any, ...]:
        # The task's own `databases` connection is held for the whole transaction; statements
        # are explicit (as on SQLite) so that a COMMIT refused by a deferred constraint still
        # releases the connection, which `databases`' Transaction object does not do.
        conn = self.database.connection()
        await conn.__aenter__()
        depth = self.depth.get()
        name = f"sp{depth}" if depth else None
        try:
            await conn.raw_connection.execute(f"SAVEPOINT {name}" if name else "BEGIN")
        except BaseException:
            await conn.__aexit__()
            raise
        return (conn, name, self.depth.set(depth + 1))

    async def end(self, handle: tuple[Any, ...], commit: bool) -> None:
        conn, savepoint, depth_token = handle
        try:
            raw = conn.raw_connection
            if savepoint is not None:
                if not commit:
                    await raw.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                await raw.execute(f"RELEASE SAVEPOINT {savepoint}")
            elif commit:
                await raw.execute("COMMIT")  # a refused COMMIT ends the transaction too
            else:
                await raw.execute("ROLLBACK")
        finally:
            self.depth.reset(depth_token)
            await conn.__aexit__()
