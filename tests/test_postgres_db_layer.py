"""node/db.py on both dialects: one `:name` API, transactions that roll back, savepoints,
atomic batches, and tasks outside a transaction never caught inside another task's one.
The PostgreSQL cases skip, with the reason, where no server answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.db import Database
from node.migrations import _render
from tests.databases import drop_postgres_database, make_database_url

TABLE = ("CREATE TABLE items (id {pk}, name TEXT NOT NULL UNIQUE, score {float}, "
         "flag INTEGER NOT NULL DEFAULT 0)")


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request, tmp_path: Path):
    # Creating a PostgreSQL database runs its own event loop: keep it off this one.
    url = await asyncio.to_thread(make_database_url, tmp_path, request.param)
    database = Database(url)
    await database.connect()
    await database.execute(_render(TABLE, database.dialect))
    yield database
    await database.disconnect()
    if url.startswith("postgresql"):
        await asyncio.to_thread(drop_postgres_database, url)


async def test_round_trip_keeps_types(db: Database) -> None:
    await db.execute("INSERT INTO items (name, score, flag) VALUES (:n, :s, :f)",
                     {"n": "soupe", "s": 1.5, "f": 1})
    row = await db.fetch_one("SELECT name, score, flag FROM items WHERE name = :n", {"n": "soupe"})
    assert row == {"name": "soupe", "score": 1.5, "flag": 1}
    assert await db.fetch_val("SELECT COUNT(*) FROM items") == 1
    assert await db.fetch_one("SELECT * FROM items WHERE name = :n", {"n": "none"}) is None
    assert await db.fetch_val("SELECT score FROM items WHERE name = :n", {"n": "none"}) is None
    # A repeated name is one parameter; a colon inside a literal is no parameter.
    rows = await db.fetch_all("SELECT name, '12:30' AS at FROM items WHERE name = :n OR "
                              "name = :n ORDER BY id", {"n": "soupe"})
    assert rows == [{"name": "soupe", "at": "12:30"}]


async def test_conflict_returning_on_both(db: Database) -> None:
    sql = ("INSERT INTO items (name) VALUES (:n) ON CONFLICT (name) DO NOTHING RETURNING id")
    first = await db.fetch_val(sql, {"n": "lit"})
    assert first is not None
    assert await db.fetch_val(sql, {"n": "lit"}) is None  # the conflict returns no row
    changed = await db.fetch_val("UPDATE items SET flag = 1 WHERE name = :n AND flag = 0 "
                                 "RETURNING 1", {"n": "lit"})
    assert changed == 1
    assert await db.fetch_val("UPDATE items SET flag = 1 WHERE name = :n AND flag = 0 "
                              "RETURNING 1", {"n": "lit"}) is None


async def test_transaction_rolls_back_and_savepoints_nest(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.execute("INSERT INTO items (name) VALUES ('a')")
            raise RuntimeError("the handler failed")
    assert await db.fetch_val("SELECT COUNT(*) FROM items") == 0

    async with db.transaction():
        await db.execute("INSERT INTO items (name) VALUES ('outer')")
        with pytest.raises(ValueError):
            async with db.transaction():
                await db.execute("INSERT INTO items (name) VALUES ('inner')")
                raise ValueError("only the inner part fails")
        # Inside the transaction the task reads its own uncommitted write.
        assert await db.fetch_val("SELECT COUNT(*) FROM items") == 1
    assert [r["name"] for r in await db.fetch_all("SELECT name FROM items")] == ["outer"]


async def test_a_failed_batch_stores_nothing(db: Database) -> None:
    rows = [{"n": "x"}, {"n": "y"}, {"n": "x"}]
    with pytest.raises(Exception) as caught:
        await db.execute_many("INSERT INTO items (name) VALUES (:n)", rows)
    assert "unique" in str(caught.value).lower()
    assert await db.fetch_val("SELECT COUNT(*) FROM items") == 0
    await db.execute_many("INSERT INTO items (name) VALUES (:n)", rows[:2])
    assert await db.fetch_val("SELECT COUNT(*) FROM items") == 2


async def test_bad_sql_is_an_error_and_the_database_stays_usable(db: Database) -> None:
    with pytest.raises(Exception) as caught:
        await db.fetch_all("SELECT nope FROM items")
    assert "nope" in str(caught.value)
    with pytest.raises(Exception) as caught:
        await db.fetch_all("SELECT * FROM items WHERE name = :missing", {})
    assert "missing" in str(caught.value)
    await db.execute("INSERT INTO items (name) VALUES ('after')")
    assert await db.fetch_val("SELECT COUNT(*) FROM items") == 1


async def test_other_tasks_stay_out_of_a_transaction(db: Database) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def rolled_back() -> None:
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await db.execute("INSERT INTO items (name) VALUES ('in-tx')")
                inside.set()
                await release.wait()
                raise RuntimeError("roll back")

    async def bystander() -> None:
        await inside.wait()
        await db.execute("INSERT INTO items (name) VALUES ('outside')")

    task = asyncio.create_task(rolled_back())
    other = asyncio.create_task(bystander())
    await inside.wait()
    # While the transaction is open, readers see only committed rows.
    assert await db.fetch_val("SELECT COUNT(*) FROM items WHERE name = 'in-tx'") == 0
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(task, other)
    names = [r["name"] for r in await db.fetch_all("SELECT name FROM items")]
    assert names == ["outside"]


async def test_many_concurrent_writers_and_readers(db: Database) -> None:
    async def one(n: int) -> int:
        await db.execute("INSERT INTO items (name, score) VALUES (:n, :s)",
                         {"n": f"p{n}", "s": n / 2})
        return await db.fetch_val("SELECT score FROM items WHERE name = :n", {"n": f"p{n}"})

    scores = await asyncio.gather(*(one(n) for n in range(60)))
    assert scores == [n / 2 for n in range(60)]
    assert await db.fetch_val("SELECT COUNT(*) FROM items") == 60


async def test_a_commit_that_fails_leaves_the_database_usable(db: Database) -> None:
    await db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    await db.execute("CREATE TABLE child (pid INTEGER REFERENCES parent(id) "
                     "DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(Exception) as caught:
        async with db.transaction():
            await db.execute("INSERT INTO child (pid) VALUES (7)")  # checked at COMMIT
    assert "foreign key" in str(caught.value).lower()
    assert await db.fetch_val("SELECT COUNT(*) FROM child") == 0
    async with db.transaction():
        await db.execute("INSERT INTO parent (id) VALUES (7)")
        await db.execute("INSERT INTO child (pid) VALUES (7)")
    assert await db.fetch_val("SELECT COUNT(*) FROM child") == 1


async def test_statements_after_the_server_cut_every_connection(db: Database) -> None:
    """PostgreSQL: the connections kept out of the pool for single statements (HELD_CONNECTIONS)
    may be cut by the server (a restart, an administrator); each cut one fails its statement
    at most once, then is replaced, and nothing else is lost."""
    if not db.is_postgres:
        pytest.skip("PostgreSQL's own connections")
    await asyncio.gather(*(db.execute("INSERT INTO items (name) VALUES (:n)", {"n": f"i{n}"})
                           for n in range(8)))
    killer = Database(db.url)
    await killer.connect()
    try:
        cut = await killer.fetch_val(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await killer.disconnect()
    assert cut >= 1
    failures = 0
    for _ in range(2 * cut + 4):
        try:
            assert await db.fetch_val("SELECT COUNT(*) FROM items") == 8
        except Exception:
            failures += 1
    assert failures <= cut
    await db.execute("INSERT INTO items (name) VALUES ('after')")
    assert await db.fetch_val("SELECT COUNT(*) FROM items") == 9


async def test_a_cancelled_statement_leaves_the_connections_usable(db: Database) -> None:
    if not db.is_postgres:
        pytest.skip("PostgreSQL's own connections")
    slow = [asyncio.create_task(db.fetch_val("SELECT pg_sleep(5)")) for _ in range(3)]
    await asyncio.sleep(0.2)
    for task in slow:
        task.cancel()
    await asyncio.gather(*slow, return_exceptions=True)
    results = await asyncio.wait_for(asyncio.gather(
        *(db.fetch_val("SELECT CAST(:n AS INTEGER) + 1", {"n": n}) for n in range(10))), timeout=5)
    assert results == [n + 1 for n in range(10)]
