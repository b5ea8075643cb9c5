"""Reading posts: one post, the filtered and paged lists, and who may manage a post."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.context import Node
from node.db import now
from node.posts import nearby, places, provenance

PAGE_SIZE = 20
# Lists count their posts up to this many, then say "more than": an exact count visits every
# matching row on every view (2.6 ms at 10,000 open posts on SQLite), a capped one this many.
COUNT_CAP = 1000
LISTED = ("open", "in_progress")
MANAGERS = ("coordinator", "admin")


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    category: str = ""
    neighbourhood: str = ""
    language: str = ""
    scope: str = ""  # "" = this node and the network, "local", "network"
    org_uri: str = ""
    q: str = ""
    sort: str = "newest"  # or "urgent"
    page: int = 1
    near: str = ""        # a neighbourhood of the node's list...
    within_km: int = 0    # ...and how far from its centre (0: no distance filter)


async def get_post(node: Node, post_id: str) -> dict | None:
    return await node.db.fetch_one("SELECT * FROM posts WHERE id = :i", {"i": post_id})


async def get_post_by_uri(node: Node, uri: str) -> dict | None:
    return await node.db.fetch_one("SELECT * FROM posts WHERE uri = :u", {"u": uri})


def can_see(user: dict | None, post: dict) -> bool:
    """Public posts are for everyone; followers-only and local ones for signed-in members."""
    return post["visibility"] == "public" or user is not None


def open_posts_where(filters: Any) -> tuple[list[str], dict[str, Any]]:
    """The conditions of every list of open posts (the offers list, the paper list): open or
    in progress, not past their end, and of the filters' category, neighbourhood and spoken
    language where they name one."""
    where = ["status IN ('open', 'in_progress')", "(ends_at IS NULL OR ends_at >= :now)"]
    values: dict[str, Any] = {"now": now()}
    for column in ("category", "neighbourhood"):
        if getattr(filters, column):
            where.append(f"{column} = :{column}")
            values[column] = getattr(filters, column)
    if filters.language:
        # Languages are stored as "fr,nl": surround with commas to match whole codes only.
        where.append("(',' || languages || ',') LIKE :lang")
        values["lang"] = f"%,{filters.language},%"
    return where, values


@dataclass(frozen=True)
class Listing:
    """One page of a list of posts."""

    rows: list[dict[str, Any]]
    total: int      # how many match, or COUNT_CAP when there are more (`capped`)
    capped: bool
    has_next: bool  # another page follows

    @property
    def pages(self) -> int | None:
        """How many pages in all; None when the count was capped."""
        return None if self.capped else max(1, -(-self.total // PAGE_SIZE))


async def list_posts(node: Node, filters: Filters, signed_in: bool) -> Listing:
    """One page of open posts and how many there are (up to COUNT_CAP)."""
    where, values = open_posts_where(filters)
    if not signed_in:
        where.append("visibility = 'public'")
    if filters.kind in ("offer", "need"):
        where.append("kind = :kind")
        values["kind"] = filters.kind
    # A post of another node that came by a follow is listed while someone here follows its
    # organisation or its author, so that unfollowing takes it out of the lists (its page
    # stays); one passed on by a relay or looked up is listed on its own (provenance.py).
    where.append(provenance.listed_clause())
    centre = nearby.centre(places.parse_places(node.settings.neighbourhoods), filters.near)
    if centre is not None and filters.within_km > 0:
        clause, near_values = nearby.within_clause(*centre, filters.within_km)
        where.append(clause)
        values.update(near_values)
    if filters.scope == "local":
        where.append("remote = 0")
    elif filters.scope == "network":
        where.append("remote = 1")
    if filters.org_uri:
        where.append("org_uri = :org")
        values["org"] = filters.org_uri
    if filters.q:
        where.append("(LOWER(title) LIKE :q OR LOWER(description_md) LIKE :q "
                     "OR LOWER(description_html) LIKE :q)")
        escaped = filters.q.lower().replace("\\", "").replace("%", "").replace("_", " ")
        values["q"] = f"%{escaped}%"
    order = ("urgency DESC, CASE WHEN ends_at IS NULL THEN 1 ELSE 0 END, ends_at, "
             "created_at DESC" if filters.sort == "urgent" else "created_at DESC")
    clause = " AND ".join(where)
    total = int(await node.db.fetch_val(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM posts WHERE {clause} LIMIT :cap) matching",
        {**values, "cap": COUNT_CAP + 1}) or 0)
    # One row more than a page: whether a next page exists, even past the cap.
    rows = await node.db.fetch_all(
        f"SELECT * FROM posts WHERE {clause} ORDER BY {order} LIMIT :n OFFSET :o",
        {**values, "n": PAGE_SIZE + 1, "o": (max(filters.page, 1) - 1) * PAGE_SIZE},
    )
    return Listing(rows[:PAGE_SIZE], min(total, COUNT_CAP), total > COUNT_CAP,
                   len(rows) > PAGE_SIZE)
