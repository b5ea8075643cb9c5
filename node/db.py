"""Database access: SQLite (WAL) by default, PostgreSQL for scale-out, one API for both.

Queries are written once with `:name` parameters. The layer talks to aiosqlite and asyncpg
directly; it replaced `databases` after a profile of the inbox showed that library opening a new
SQLite connection (and thread) for every query outside a transaction, which cost most of the
time of a request and dropped the per-connection PRAGMAs (synchronous, foreign_keys).

- SQLite: one writer connection, guarded by a lock for single statements and for whole
  transactions (`BEGIN IMMEDIATE`, so that two processes never deadlock upgrading a read lock),
  and a few reader connections, which WAL lets run beside the writer.
- PostgreSQL: an asyncpg pool; `:name` is rewritten once per query text to `$n`, and asyncpg
  keeps each connection's prepared statements, so a hot query is parsed and planned once.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiosqlite

READERS = 4
POOL_SIZE = 10
# SQLite's planner needs statistics to prefer an ORDER BY index over a selective-looking
# equality (the offers list: 18 ms -> 0.5 ms at 10k posts). ANALYZE samples this many rows per
# index, runs when a process opens the database and again after this many writes.
ANALYSIS_LIMIT = 1000
ANALYZE_EVERY_WRITES = 5000
# The pattern SQLAlchemy's text() used for bind parameters, so that every query written for the
# `databases` layer keeps its meaning (`::type` casts are left alone).
_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)", re.UNICODE)
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def now() -> float:
    return time.time()


def new_id() -> str:
    return uuid.uuid4().hex


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=2048)
def _numbered(query: str) -> tuple[str, tuple[str, ...]]:
    """`:name` placeholders to PostgreSQL's `$n`, with the names in order (cached per text)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _BIND.sub(number, query), tuple(names)


@lru_cache(maxsize=2048)
def _reads_only(query: str) -> bool:
    head = query.lstrip()[:6].upper()
    return head.startswith(("SELECT", "WITH")) and not _WRITES.search(query)


class Database:
    """The node's database; `transaction()` makes the queries of the task inside it atomic."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "postgresql" if url.startswith(("postgres", "postgresql")) else "sqlite"
        self._backend: _Sqlite | _Postgres
        if self.dialect == "sqlite":
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._backend = _Sqlite(path or ":memory:")
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
        return await self._backend.execute(query, values or {})

    async def execute_many(self, query: str, values: list[Mapping[str, Any]]) -> None:
        if values:
            await self._backend.execute_many(query, values)

    async def fetch_one(self, query: str, values: Mapping[str, Any] | None = None) -> dict | None:
        rows = await self._backend.fetch(query, values or {}, one=True)
        return rows[0] if rows else None

    async def fetch_all(self, query: str, values: Mapping[str, Any] | None = None) -> list[dict]:
        return await self._backend.fetch(query, values or {}, one=False)

    async def fetch_val(self, query: str, values: Mapping[str, Any] | None = None) -> Any:
        rows = await self._backend.fetch(query, values or {}, one=True)
        return next(iter(rows[0].values())) if rows else None

    def transaction(self) -> Transaction:
        return Transaction(self._backend)


class Transaction:
    """`async with db.transaction():` commits on success and rolls back on an exception.
    Nested inside another transaction of the same task, it becomes a savepoint."""

    def __init__(self, backend: _Sqlite | _Postgres) -> None:
        self._backend = backend
        self._handle: Any = None

    async def __aenter__(self) -> Transaction:
        self._handle = await self._backend.begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await self._backend.end(self._handle, commit=exc_type is None)


# --- SQLite -------------------------------------------------------------------------------------

class _Sqlite:
    def __init__(self, path: str) -> None:
        self.path = path
        self.shared_memory = path == ":memory:"  # one connection: readers would see another DB
        self.writer: aiosqlite.Connection | None = None
        self.writes = 0
        self.write_lock = asyncio.Lock()
        self.readers: list[aiosqlite.Connection] = []
        self.idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self.in_tx: contextvars.ContextVar[aiosqlite.Connection | None] = \
            contextvars.ContextVar(f"sqlite_tx_{id(self)}", default=None)
        self.depth: contextvars.ContextVar[int] = \
            contextvars.ContextVar(f"sqlite_depth_{id(self)}", default=0)

    async def _open(self) -> aiosqlite.Connection:
        # isolation_level=None: autocommit; transactions are begun explicitly below.
        conn = await aiosqlite.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        return conn

    async def connect(self) -> None:
        self.writer = await self._open()
        if not self.shared_memory:
            await self.writer.execute("PRAGMA journal_mode=WAL")
        await self._analyze()

    async def _analyze(self) -> None:
        assert self.writer is not None
        self.writes = 0
        await self.writer.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        await self.writer.execute("ANALYZE")

    async def disconnect(self) -> None:
        for conn in self.readers:
            await conn.close()
        self.readers.clear()
        self.idle = asyncio.Queue()
        if self.writer is not None:
            await self.writer.close()
            self.writer = None

    async def _reader(self) -> aiosqlite.Connection:
        if self.idle.empty() and len(self.readers) < READERS:
            conn = await self._open()
            self.readers.append(conn)
            return conn
        return await self.idle.get()

    @staticmethod
    def _rows(cursor_rows: list[sqlite3.Row]) -> list[dict]:
        return [dict(zip(row.keys(), tuple(row), strict=True)) for row in cursor_rows]

    async def _write(self, query: str, values: Mapping[str, Any], many: bool = False,
                     fetch: bool = False, one: bool = False) -> Any:
        conn = self.in_tx.get()
        if conn is not None:
            return await self._run(conn, query, values, many, fetch, one)
        async with self.write_lock:
            assert self.writer is not None, "the database is not connected"
            self.writes += 1
            if self.writes >= ANALYZE_EVERY_WRITES:
                await self._analyze()
            if many:
                # One transaction for the batch: a commit per row would cost a WAL write each.
                await self.writer.execute("BEGIN IMMEDIATE")
                try:
                    await self._run(self.writer, query, values, many, fetch, one)
                except BaseException:
                    await self.writer.execute("ROLLBACK")
                    raise
                await self.writer.execute("COMMIT")
                return None
            return await self._run(self.writer, query, values, many, fetch, one)

    async def _run(self, conn: aiosqlite.Connection, query: str, values: Any, many: bool,
                   fetch: bool, one: bool) -> Any:
        if many:
            await conn.executemany(query, [dict(v) for v in values])
            return None
        async with conn.execute(query, dict(values)) as cursor:
            if fetch and one:
                row = await cursor.fetchone()
                return self._rows([row]) if row is not None else []
            if fetch:
                return self._rows(await cursor.fetchall())
            # As `databases` did: the new row id after an INSERT, else the row count.
            return cursor.rowcount if not cursor.lastrowid else cursor.lastrowid

    async def execute(self, query: str, values: Mapping[str, Any]) -> Any:
        return await self._write(query, values)

    async def execute_many(self, query: str, values: list[Mapping[str, Any]]) -> None:
        await self._write(query, values, many=True)

    async def fetch(self, query: str, values: Mapping[str, Any], one: bool) -> list[dict]:
        if self.in_tx.get() is not None or self.shared_memory or not _reads_only(query):
            return await self._write(query, values, fetch=True, one=one)
        conn = await self._reader()
        try:
            async with conn.execute(query, dict(values)) as cursor:
                if one:
                    row = await cursor.fetchone()
                    return self._rows([row]) if row is not None else []
                return self._rows(await cursor.fetchall())
        finally:
            self.idle.put_nowait(conn)

    async def begin(self) -> tuple[Any, ...]:
        depth = self.depth.get()
        if depth:
            conn = self.in_tx.get()
            assert conn is not None
            name = f"sp{depth}"
            await conn.execute(f"SAVEPOINT {name}")
            return (conn, name, self.depth.set(depth + 1), None)
        await self.write_lock.acquire()
        try:
            assert self.writer is not None, "the database is not connected"
            await self.writer.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.write_lock.release()
            raise
        return (self.writer, None, self.depth.set(1), self.in_tx.set(self.writer))

    async def end(self, handle: tuple[Any, ...], commit: bool) -> None:
        conn, savepoint, depth_token, tx_token = handle
        try:
            if savepoint is not None:
                if not commit:
                    await conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                await conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            elif commit:
                try:
                    await conn.execute("COMMIT")
                except BaseException:
                    # A failed COMMIT leaves the transaction open on the shared writer.
                    await conn.execute("ROLLBACK")
                    raise
            else:
                await conn.execute("ROLLBACK")
        finally:
            self.depth.reset(depth_token)
            if tx_token is not None:
                self.in_tx.reset(tx_token)
                self.write_lock.release()


# --- PostgreSQL ---------------------------------------------------------------------------------

class _Postgres:
    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: Any = None
        self.in_tx: contextvars.ContextVar[Any] = \
            contextvars.ContextVar(f"pg_tx_{id(self)}", default=None)

    async def connect(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=POOL_SIZE)

    async def disconnect(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    @staticmethod
    def _args(query: str, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        sql, names = _numbered(query)
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"no value given for :{', :'.join(missing)}")
        return sql, [values[n] for n in names]

    async def _call(self, method: str, query: str, *args: Any) -> Any:
        conn = self.in_tx.get()
        if conn is not None:
            return await getattr(conn, method)(query, *args)
        assert self.pool is not None, "the database is not connected"
        async with self.pool.acquire() as conn:
            return await getattr(conn, method)(query, *args)

    async def execute(self, query: str, values: Mapping[str, Any]) -> Any:
        sql, args = self._args(query, values)
        return await self._call("fetchval", sql, *args)

    async def execute_many(self, query: str, values: list[Mapping[str, Any]]) -> None:
        sql, names = _numbered(query)
        rows = [[v[n] for n in names] for v in values]
        conn = self.in_tx.get()
        if conn is not None:
            await conn.executemany(sql, rows)
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(sql, rows)

    async def fetch(self, query: str, values: Mapping[str, Any], one: bool) -> list[dict]:
        sql, args = self._args(query, values)
        if one:
            row = await self._call("fetchrow", sql, *args)
            return [dict(row)] if row is not None else []
        return [dict(r) for r in await self._call("fetch", sql, *args)]

    async def begin(self) -> tuple[Any, ...]:
        outer = self.in_tx.get()
        if outer is not None:
            tx = outer.transaction()  # asyncpg makes a nested transaction a savepoint
            await tx.start()
            return (tx, None, None)
        assert self.pool is not None, "the database is not connected"
        conn = await self.pool.acquire()
        try:
            tx = conn.transaction()
            await tx.start()
        except BaseException:
            await self.pool.release(conn)
            raise
        return (tx, conn, self.in_tx.set(conn))

    async def end(self, handle: tuple[Any, ...], commit: bool) -> None:
        tx, conn, token = handle
        try:
            if commit:
                await tx.commit()
            else:
                await tx.rollback()
        finally:
            if conn is not None:
                self.in_tx.reset(token)
                await self.pool.release(conn)
