"""node/db.GroupCommit, as the inbox uses it (inbox/runner.py): activities that arrive together
are stored by one statement, each caller learns its own outcome, a duplicate is told so, and an
activity the database refuses fails alone. Real database (SQLite, or PostgreSQL with
ENTRAIDE_TEST_DB=postgres), real inbox_log rows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from inbox import queue
from node.db import Database, GroupCommit, dumps
from node.migrations import migrate

pytestmark = pytest.mark.asyncio

WORKER = "test-worker"


@pytest.fixture
async def db(tmp_path: Path, database_url: str):
    database = Database(database_url)
    await database.connect()
    await migrate(database)
    try:
        yield database
    finally:
        await database.disconnect()


class FakeNode:
    """What inbox/queue.py reads of a node: its database."""

    def __init__(self, db: Database) -> None:
        self.db = db


def entry(n: int, payload: str | None = None) -> queue.Entry:
    ident = f"http://127.0.19.20/activities/{n}"
    return queue.Entry(ident, "http://127.0.19.20/users/ana", "Like",
                       payload or dumps({"id": ident, "type": "Like"}), None, 0)


def counting(node: FakeNode, runs: list[int]) -> GroupCommit[str, bool]:
    async def run(entries: dict[str, Any]) -> dict[str, bool]:
        runs.append(len(entries))
        return await queue.store_entries(node, entries, WORKER, 60)  # type: ignore[arg-type]

    return GroupCommit(run)


async def stored(db: Database) -> list[str]:
    return [r["activity_id"] for r in await db.fetch_all(
        "SELECT activity_id FROM inbox_log ORDER BY activity_id")]


async def test_activities_arriving_together_share_statements_and_each_learns_its_outcome(db):
    node, runs = FakeNode(db), []
    store = counting(node, runs)
    entries = [entry(n) for n in range(40)]
    results = await asyncio.gather(*(store(e.activity_id, e) for e in entries))
    assert results == [True] * 40
    assert sorted(await stored(db)) == sorted(e.activity_id for e in entries)
    assert sum(runs) == 40 and len(runs) < 40  # gathered, not one statement each
    # Batches of 1, 2, 4, ... only: a few statement texts, kept prepared by the drivers.
    assert all(n & (n - 1) == 0 for n in runs), runs
    # Received again: every caller is told it was there already, nothing is added.
    again = await asyncio.gather(*(store(e.activity_id, e) for e in entries))
    assert again == [None] * 40
    assert len(await stored(db)) == 40


async def test_the_same_activity_twice_in_one_batch_is_stored_once_and_the_second_told(db):
    node, runs = FakeNode(db), []
    store = counting(node, runs)
    first, other = entry(1), entry(2)
    results = await asyncio.gather(store(other.activity_id, other),
                                   store(first.activity_id, first),
                                   store(first.activity_id, first))
    assert results == [True, True, None]
    assert sorted(await stored(db)) == sorted([first.activity_id, other.activity_id])


async def test_an_activity_the_database_refuses_fails_alone(db):
    node, runs = FakeNode(db), []
    store = counting(node, runs)
    # A lone surrogate: valid in Python's JSON, refused by both databases' text encoding.
    bad = entry(99, payload='{"content": "\ud800"}')
    good = [entry(n) for n in range(10)]
    results = await asyncio.gather(*(store(e.activity_id, e) for e in [*good[:5], bad,
                                                                        *good[5:]]),
                                   return_exceptions=True)
    assert isinstance(results[5], Exception)
    assert [r for n, r in enumerate(results) if n != 5] == [True] * 10
    assert sorted(await stored(db)) == sorted(e.activity_id for e in good)


async def test_rows_are_marked_processed_together_only_by_their_lease_holder(db):
    node = FakeNode(db)
    mine = [entry(n) for n in range(5)]
    theirs = entry(50)
    await queue.store_entries(node, {e.activity_id: e for e in mine}, WORKER, 60)  # type: ignore[arg-type]
    await queue.store_entries(node, {theirs.activity_id: theirs}, "another", 60)  # type: ignore[arg-type]
    mark = GroupCommit(lambda ids: queue.mark_processed(node, ids, WORKER))  # type: ignore[arg-type]
    results = await asyncio.gather(*(mark(e.activity_id) for e in [*mine, theirs]))
    assert results == [True] * 5 + [None]
    rows = {r["activity_id"]: (r["status"], r["attempts"], r["locked_until"])
            for r in await db.fetch_all("SELECT * FROM inbox_log")}
    assert all(rows[e.activity_id] == ("processed", 1, None) for e in mine)
    assert rows[theirs.activity_id][0] == "pending"


# --- objects (node/objects.store_model): the inbox's own write, grouped the same way ----------

def note(n: int, text: str = "Soupe") -> Any:
    from activitypub.model import from_json

    return from_json({"id": f"http://127.0.19.21/notes/{n}", "type": "Note",
                      "attributedTo": "http://127.0.19.21/users/ana",
                      "content": f"<p>{text} {n}</p>",
                      "to": ["https://www.w3.org/ns/activitystreams#Public"]})


async def test_objects_arriving_together_share_statements_and_keep_the_ownership_rule(db):
    from node.objects import mark_deleted, store_model

    node = FakeNode(db)
    # Stored before: one on the other side (a node's own object: a peer may not take it over),
    # one deleted.
    assert await store_model(node, note(100, text="Ours"), True)  # type: ignore[arg-type]
    assert await store_model(node, note(101), False)  # type: ignore[arg-type]
    await mark_deleted(node, note(101).id)  # type: ignore[arg-type]
    statements = db.writes_to("objects")
    batch = [note(n) for n in range(30)] + [note(100), note(101)]
    results = await asyncio.gather(*(store_model(node, m, False) for m in batch))  # type: ignore[arg-type]
    assert results == [True] * 30 + [False, False]
    assert db.writes_to("objects") - statements < len(batch)  # gathered, not one each
    rows = {r["uri"]: r for r in await db.fetch_all("SELECT * FROM objects")}
    assert len(rows) == 32
    assert rows[note(100).id]["local"] == 1 and "Ours" in rows[note(100).id]["model"]
    assert rows[note(101).id]["deleted"] == 1 and rows[note(101).id]["model"] is None
    assert "Soupe 7" in rows[note(7).id]["model"]


async def test_the_same_object_twice_together_is_stored_and_the_later_version_stays(db):
    from node.objects import store_model

    node = FakeNode(db)
    first, edited = note(1, text="Soupe"), note(1, text="Potage")
    results = await asyncio.gather(store_model(node, note(2), False),  # type: ignore[arg-type]
                                   store_model(node, first, False),  # type: ignore[arg-type]
                                   store_model(node, edited, False))  # type: ignore[arg-type]
    assert results == [True, True, True]
    row = await db.fetch_one("SELECT model FROM objects WHERE uri = :u", {"u": first.id})
    assert "Potage" in row["model"]
    # Twice together and refused (another side's row): both callers are told so.
    assert await store_model(node, note(3), True)  # type: ignore[arg-type]
    refused = await asyncio.gather(store_model(node, note(3), False),  # type: ignore[arg-type]
                                   store_model(node, note(3), False))  # type: ignore[arg-type]
    assert refused == [False, False]


async def test_an_object_stored_inside_a_transaction_is_rolled_back_with_it(db):
    from node.objects import store_model

    node = FakeNode(db)
    with pytest.raises(RuntimeError):
        async with db.transaction():
            assert await store_model(node, note(5), False)  # type: ignore[arg-type]
            raise RuntimeError("the caller's work failed")
    assert await db.fetch_val("SELECT COUNT(*) FROM objects") == 0
    # The ownership rule's answer inside a transaction too: another side's row is refused.
    assert await store_model(node, note(6), True)  # type: ignore[arg-type]
    async with db.transaction():
        assert await store_model(node, note(6), False) is False  # type: ignore[arg-type]
