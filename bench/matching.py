"""Matching a need against N stored offers (node/matching.py): p50/p99 of the two queries a new
need runs — the nearest fitting local offers whose authors are told, and a post page's best
matches with their count — on a database holding N offers and N/10 needs spread over the 19
Brussels municipalities, the 11 categories, three languages and a year of dates (a fifth of
them closed, a fifth from followed nodes). Also prints the query plan, to show the indexes of
migration 20 answer it (no scan of the posts table).

    .venv/bin/python -m bench.matching [--db sqlite,postgres] [--sizes 1000,10000,100000]
        [--queries 300]
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time

from bench.harness import arguments, bulk_insert, database, percentile
from node import matching
from node.accounts.members import NewMember, create_member
from node.config import load_settings
from node.context import Node
from node.posts.categories import CATEGORIES
from node.posts.places import BRUSSELS, round_coordinate

LANGUAGES = ("fr", "nl", "en")
DAY = 86400.0
FOLLOWED = "http://followed.example/groups/org"


def _post(rng: random.Random, n: int, kind: str, org_uri: str, stamp: float,
          author: str | None = None) -> dict:
    place = rng.choice(BRUSSELS)
    if rng.random() < 0.3:  # placed by coordinates of its own, rounded as the form does
        lat = round_coordinate(place.latitude + rng.uniform(-0.02, 0.02))
        lon = round_coordinate(place.longitude + rng.uniform(-0.02, 0.02))
    else:
        lat, lon = round_coordinate(place.latitude), round_coordinate(place.longitude)
    starts = ends = None
    if rng.random() < 0.5:
        starts = stamp + rng.uniform(-180, 180) * DAY
        ends = starts + rng.uniform(1, 60) * DAY
    remote = rng.random() < 0.2
    return {
        "id": f"{kind}{n}", "uri": f"{org_uri}/posts/{kind}{n}",
        "org_uri": FOLLOWED if remote else org_uri,
        "attributed_to": FOLLOWED if remote else org_uri,
        "author_user_id": None if remote else author, "kind": kind,
        "category": rng.choice(CATEGORIES).key,
        "title": f"{kind} {n}", "description_md": "", "description_html": "",
        "neighbourhood": place.name, "latitude": lat, "longitude": lon,
        "starts_at": starts, "ends_at": ends,
        "languages": ",".join(sorted(rng.sample(LANGUAGES, rng.randint(1, 3)))),
        "visibility": rng.choice(("public", "public", "followers", "local")),
        "status": "open" if rng.random() < 0.8 else rng.choice(("fulfilled", "withdrawn")),
        "remote": int(remote), "created_at": stamp - n, "updated_at": stamp - n,
    }


async def _seed(node: Node, size: int, rng: random.Random) -> None:
    org_uri = node.url("/groups/bench")
    stamp = time.time()
    # Local posts have an author (those are the ones whose authors are told).
    author = await create_member(node, NewMember("bench@example.org", "bench password long",
                                                 "bench password long"))
    await bulk_insert(node.db, "posts", [_post(rng, n, "offer", org_uri, stamp, author)
                                         for n in range(size)])
    await bulk_insert(node.db, "posts", [_post(rng, n, "need", org_uri, stamp, author)
                                         for n in range(size // 10)])
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:a, :b, :a, 'accepted', :t)", {"a": org_uri, "b": FOLLOWED, "t": stamp})
    if node.db.is_postgres:
        # What autovacuum does within a minute of a bulk load.
        await node.db.execute("VACUUM ANALYZE")
    else:
        await node.db.execute("ANALYZE")


async def _plan(node: Node, need: dict) -> str:
    clause, distance, values = matching._fit_query(node, need, local_only=True)
    sql = (f"SELECT *, {distance} AS distance2 {clause} ORDER BY distance2, "
           "created_at DESC LIMIT :limit")
    prefix = "EXPLAIN" if node.db.is_postgres else "EXPLAIN QUERY PLAN"
    rows = await node.db.fetch_all(f"{prefix} {sql}", {**values, "limit": 20})
    lines = [str(r.get("QUERY PLAN") or r.get("detail") or r) for r in rows]
    return "\n".join("      " + line for line in lines)


async def _timed(coro) -> float:
    started = time.perf_counter()
    await coro
    return time.perf_counter() - started


async def run_one(kind: str, url: str, size: int, queries: int) -> None:
    rng = random.Random(size)
    with tempfile.TemporaryDirectory(prefix="entraide-bench-") as tmp:
        settings = load_settings({
            "NODE_DATABASE_URL": url, "NODE_DATA_DIR": tmp, "NODE_SECRET_KEY": "bench",
            "NODE_BASE_URL": "http://127.0.0.2:8000"})
        # Stored in bulk, then read by a node started afresh on its data (as bench/reads.py).
        node = Node.create(settings)
        await node.start()
        try:
            await _seed(node, size, rng)
        finally:
            await node.stop()
        node = Node.create(settings)
        await node.start()
        try:
            needs = [_post(rng, n, "need", "http://127.0.0.2:8000/groups/x", time.time())
                     for n in range(queries)]
            for need in needs:
                need.update(status="open", id=f"probe{need['id']}")
            told, page, found = [], [], []
            for need in needs[:20]:  # warm the caches
                await matching.fitting(node, need, limit=matching.TELL_AT_MOST,
                                       local_only=True)
            for need in needs:
                told.append(await _timed(matching.fitting(
                    node, need, limit=matching.TELL_AT_MOST, local_only=True)))
                started = time.perf_counter()
                _, total, _ = await matching.best_matches(node, need, None)
                page.append(time.perf_counter() - started)
                found.append(total)
            for name, latencies in (("tell (20 nearest)", told),
                                    ("page (5 + count)", page)):
                print(f"  {kind:8} offers={size:>7} {name:18}"
                      f"  p50={percentile(latencies, 50) * 1000:6.2f}ms"
                      f"  p99={percentile(latencies, 99) * 1000:6.2f}ms", flush=True)
            print(f"  {kind:8} offers={size:>7} public offers fitting a need (counted "
                  f"up to {matching.COUNTED_AT_MOST}): median {sorted(found)[len(found) // 2]},"
                  f" max {max(found)}")
            print(f"    plan:\n{await _plan(node, needs[0])}", flush=True)
        finally:
            await node.stop()


def main() -> None:
    args = arguments(__doc__, "1000,10000,100000",
                     queries=(int, 300, "needs matched per size"))
    radius = load_settings({"NODE_DATA_DIR": tempfile.gettempdir(),
                            "NODE_SECRET_KEY": "bench"}).match_radius_km
    print(f"matching; {args.queries} needs per size, radius {radius:g} km")
    for kind in args.db:
        for size in args.sizes:
            with database(kind) as url:
                if url is None:
                    break
                asyncio.run(run_one(kind, url, size, args.queries))


if __name__ == "__main__":
    main()
