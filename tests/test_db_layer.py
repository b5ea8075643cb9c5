"""node/db.py's hot path: statements go to the driver connection `databases` holds, without a
SQLAlchemy compile, with the same results and return values; SQLite opens no more readers than
it may under a burst of concurrent reads. Both dialects (PostgreSQL skips where no server
answers)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from databases.core import Connection

from node import db as db_module
from node.db import Database
from node.migrations import _render
from tests.databases import drop_postgres_database, make_database_url

TABLE = "CREATE TABLE items (id {pk}, name TEXT NOT NULL UNIQUE, score {float})"


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request, tmp_path: Path):
    url = await asyncio.to_thread(make_database_url, tmp_path, request.param)
    database = Database(url)
    await database.connect()
    await database.execute(_render(TABLE, database.dialect))
    yield database
    await database.disconnect()
    if url.startswith("postgresql"):
        await asyncio.to_thread(drop_postgres_database, url)


@pytest.fixture
def no_compile(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement `databases` would compile is recorded and refused (a connection's
    opening PRAGMAs excepted: `databases` configures what it opens)."""
    compiled: list[str] = []
    original = Connection._build_query

    def build(query, values=None):
        if isinstance(query, str) and query.startswith("PRAGMA"):
            return original(query, values)
        compiled.append(str(query))
        raise AssertionError(f"compiled through SQLAlchemy: {query}")

    monkeypatch.setattr(Connection, "_build_query", staticmethod(build))
    return compiled


async def test_statements_skip_the_sqlalchemy_compile(db: Database, no_compile: list[str]) -> None:
    await db.execute_many("INSERT INTO items (name, score) VALUES (:n, :s)",
                          [{"n": f"soupe {i}", "s": i / 2} for i in range(5)])
    async with db.transaction():
        await db.execute("UPDATE items SET score = :s WHERE name = :n", {"n": "soupe 1", "s": 9.5})
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await db.execute("DELETE FROM items")
                raise RuntimeError("the savepoint rolls back")
    rows = await db.fetch_all("SELECT name, score FROM items WHERE name LIKE :p ORDER BY name",
                              {"p": "soupe%"})
    assert rows == [{"name": f"soupe {i}", "score": 9.5 if i == 1 else i / 2} for i in range(5)]
    # A repeated name is one value; a colon in a literal is no parameter.
    row = await db.fetch_one("SELECT name, '12:30' AS at FROM items WHERE name = :n OR name = :n",
                             {"n": "soupe 3"})
    assert row == {"name": "soupe 3", "at": "12:30"}
    assert await db.fetch_one("SELECT name FROM items WHERE name = :n", {"n": "none"}) is None
    assert await db.fetch_val("SELECT COUNT(*) FROM items WHERE score > :s", {"s": 1}) == 3
    assert no_compile == []


async def test_postgres_casts_stay_casts(db: Database, no_compile: list[str]) -> None:
    if not db.is_postgres:
        pytest.skip("`::type` is PostgreSQL's syntax")
    await db.execute("INSERT INTO items (name, score) VALUES (:n, CAST(:s AS float))",
                     {"n": "7", "s": 2.5})
    row = await db.fetch_one("SELECT name::int AS number, score::text AS s, "
                             "CAST(:n AS text)::int AS echo FROM items WHERE name = :n",
                             {"n": "7"})
    assert row == {"number": 7, "s": "2.5", "echo": 7}
    assert no_compile == []


async def test_execute_returns_what_it_always_returned(db: Database) -> None:
    if db.is_postgres:
        new = await db.execute("INSERT INTO items (name) VALUES (:n) RETURNING id", {"n": "a"})
        assert new == await db.fetch_val("SELECT id FROM items WHERE name = 'a'")
        assert await db.execute("UPDATE items SET score = 1 WHERE name = :n", {"n": "a"}) is None
        return
    first = await db.execute("INSERT INTO items (name) VALUES (:n)", {"n": "a"})
    second = await db.execute("INSERT INTO items (name) VALUES (:n)", {"n": "b"})
    assert (first, second) == (1, 2)
    # After an INSERT, an UPDATE answers its own row count, not the connection's last row id.
    assert await db.execute("UPDATE items SET score = 1") == 2
    assert await db.execute("UPDATE items SET score = 2 WHERE name = 'none'") == 0
    assert await db.execute("INSERT INTO items (name) VALUES ('a') "
                            "ON CONFLICT (name) DO NOTHING") == 0
    assert await db.execute("DELETE FROM items WHERE name = :n", {"n": "a"}) == 1


async def test_a_missing_value_is_a_clear_error(db: Database) -> None:
    with pytest.raises(ValueError, match=":gone"):
        await db.execute("INSERT INTO items (name) VALUES (:gone)", {})
    with pytest.raises(ValueError, match=":gone"):
        await db.execute_many("INSERT INTO items (name) VALUES (:gone)", [{"n": 1}])
    await db.execute("INSERT INTO items (name) VALUES (:n)", {"n": "after", "extra": 1})
    assert await db.fetch_val("SELECT COUNT(*) FROM items") == 1


async def test_a_burst_of_reads_opens_at_most_the_readers_allowed(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'burst.db'}")
    await db.connect()
    db._backend.loop_reader = None  # else these short reads never leave the loop's thread
    try:
        await db.execute(_render(TABLE, db.dialect))
        await db.execute_many("INSERT INTO items (name) VALUES (:n)",
                              [{"n": f"n{i}"} for i in range(40)])

        async def read(i: int) -> str:
            return await db.fetch_val("SELECT name FROM items WHERE name = :n", {"n": f"n{i}"})

        names = await asyncio.gather(*(read(i) for i in range(32)))
        assert names == [f"n{i}" for i in range(32)]
        readers = db._backend.readers
        assert 1 <= len(readers) <= db_module.READERS
        # Every reader opened is back in the idle queue, ready for the next burst.
        assert db._backend.idle.qsize() == len(readers)
        await asyncio.gather(*(read(i) for i in range(32)))
        assert len(db._backend.readers) == len(readers)
    finally:
        await db.disconnect()


@contextlib.asynccontextmanager
async def _items_db(path: Path) -> AsyncIterator[Database]:
    """A SQLite database at `path` holding the items table, connected for the block."""
    db = Database(f"sqlite:///{path}")
    await db.connect()
    try:
        await db.execute(_render(TABLE, db.dialect))
        yield db
    finally:
        await db.disconnect()


async def test_short_reads_stay_on_the_loop_and_a_long_one_goes_to_a_reader_thread(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 3600.0)  # its reader thread not counted
    async with _items_db(tmp_path / "loop.db") as db:
        await db.execute("INSERT INTO items (name) VALUES ('a')")
        assert await db.fetch_val("SELECT name FROM items") == "a"
        assert db._backend.readers == []  # answered without a thread trip
        # A write is seen by the next read on the loop's connection.
        await db.execute("UPDATE items SET name = 'b'")
        assert await db.fetch_val("SELECT name FROM items") == "b"

        long_read = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                     "WHERE i < :top) SELECT COUNT(*) AS c FROM n")
        assert await db.fetch_val(long_read, {"top": 3_000_000}) == 3_000_000
        # Interrupted on the loop, answered by a reader thread; its text stays with the threads.
        assert long_read in db._backend.loop_reader.slow
        assert len(db._backend.readers) == 1
        assert await db.fetch_val(long_read, {"top": 10}) == 10
        assert await db.fetch_val("SELECT name FROM items") == "b"


async def test_a_read_from_another_thread_does_not_use_the_loop_connection(
        tmp_path: Path) -> None:
    async with _items_db(tmp_path / "threads.db") as db:
        await db.execute("INSERT INTO items (name) VALUES ('a')")
        reader = db._backend.loop_reader
        assert reader is not None
        elsewhere = await asyncio.to_thread(reader.run, "SELECT name FROM items", (), True, True)
        assert elsewhere is db_module._ON_THREAD  # the caller falls back to a reader thread
        assert reader.run("SELECT name FROM items", (), True, True) == [{"name": "a"}]


def _size(path: Path) -> int:
    return path.stat().st_size


async def test_commits_leave_checkpoints_to_the_background(tmp_path: Path, monkeypatch) -> None:
    """No commit copies the write-ahead log into the database (it held the write lock while it
    did); the background checkpoint does, within its interval."""
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 3600.0)
    path = tmp_path / "wal.db"
    async with _items_db(path) as db:
        before = path.stat().st_size
        # About 6 MB of rows: past SQLite's own 1,000-page checkpoint mark.
        for batch in range(6):
            await db.execute_many("INSERT INTO items (name) VALUES (:n)",
                                  [{"n": f"{batch}-{i}-" + "x" * 1000} for i in range(1000)])
        assert _size(path.with_name(path.name + "-wal")) > 4_000_000
        assert path.stat().st_size == before  # nothing copied by a commit
        db._backend.checkpoints.cancel()
        monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 0.05)
        db._backend.checkpoints = asyncio.create_task(
            db._backend._checkpoint_regularly(db._backend.stopping))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if path.stat().st_size > 5_000_000:
                break
        assert path.stat().st_size > 5_000_000
        assert await db.fetch_val("SELECT COUNT(*) FROM items") == 6000


async def test_single_writes_stay_on_the_loop_and_a_long_one_is_rolled_back_and_redone(
        tmp_path: Path) -> None:
    async with _items_db(tmp_path / "writes.db") as db:
        writer = db._backend.loop_writer
        assert writer is not None
        assert await db.execute("INSERT INTO items (name) VALUES ('a')") == 1
        assert await db.fetch_val("INSERT INTO items (name) VALUES ('b') RETURNING id") == 2
        # Three million rows made by one statement: past the budget, interrupted on the loop
        # (nothing of it kept), then made on the writer's thread: each row once.
        long_write = ("INSERT INTO items (name) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                      "SELECT i + 1 FROM n WHERE i < :top) SELECT 'n' || i FROM n")
        assert await db.execute(long_write, {"top": 300_000}) > 0
        assert long_write in writer.slow
        assert await db.fetch_val("SELECT COUNT(*) FROM items") == 300_002
        # Constraints hold on the loop's writer as on the thread's.
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute("INSERT INTO items (name) VALUES ('a')")
        assert await db.fetch_val("SELECT COUNT(*) FROM items WHERE name = 'a'") == 1


async def test_a_write_meeting_another_process_lock_waits_on_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    async with _items_db(path) as db:
        other = sqlite3.connect(path, isolation_level=None)  # as another process would
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(db.execute("INSERT INTO items (name) VALUES ('later')"))
        await asyncio.sleep(0.3)
        assert not write.done()  # waiting on the writer's thread, the loop still free
        assert await db.fetch_val("SELECT COUNT(*) FROM items") == 0
        other.execute("COMMIT")
        other.close()
        assert await write == 1
        assert await db.fetch_val("SELECT name FROM items") == "later"


async def test_disconnecting_waits_for_the_checkpoint_under_way(tmp_path: Path,
                                                                 monkeypatch) -> None:
    """The background checkpoint is stopped, not cancelled: nothing of it runs on a reader's
    thread once the database is disconnected."""
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 0.01)
    async with _items_db(tmp_path / "stop.db") as db:
        await asyncio.sleep(0.1)  # a few checkpoints run meanwhile
        task = db._backend.checkpoints
    assert task is not None and task.done() and not task.cancelled()
    assert db._backend.readers == []
