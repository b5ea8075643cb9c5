"""OrderedCollection and OrderedCollectionPage documents, paged as Mastodon pages them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from activitypub.origin import same_origin
from activitypub.vocab import AS_CONTEXT, as_list, id_of

PAGE_SIZE = 20


def collection(uri: str, total: int) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": uri,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    # Always a first page, even an empty one: Mastodon takes a collection without `first` for
    # a hidden one and would not show the count.
    doc["first"] = f"{uri}?page=1"
    doc["last"] = f"{uri}?page={max(1, -(-total // PAGE_SIZE))}"
    return doc


def collection_page(uri: str, page: int, total: int, items: list[Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": f"{uri}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": uri,
        "totalItems": total,
        "orderedItems": items,
    }
    if page * PAGE_SIZE < total:
        doc["next"] = f"{uri}?page={page + 1}"
    if page > 1:
        doc["prev"] = f"{uri}?page={page - 1}"
    return doc


# --- cursor paging, as Mastodon pages an outbox ------------------------------------------------
# A page is named by a position in the collection's order (a sequence number), never by an
# offset: reading page 1,000 costs what reading page 1 does, and an item added meanwhile shifts
# nothing, so a walk through `next` links meets every item exactly once.

@dataclass(frozen=True)
class Cursor:
    """Which page: the newest items (neither bound), those older than `max_id`, or those just
    newer than `min_id` (`min_id=0`: the oldest page)."""

    max_id: int | None = None
    min_id: int | None = None

    def query(self) -> str:
        if self.max_id is not None:
            return f"max_id={self.max_id}&page=true"
        if self.min_id is not None:
            return f"min_id={self.min_id}&page=true"
        return "page=true"


def cursor_collection(uri: str, total: int) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": uri,
        "type": "OrderedCollection",
        "totalItems": total,
        "first": f"{uri}?{Cursor().query()}",
        "last": f"{uri}?{Cursor(min_id=0).query()}",
    }


def cursor_page(uri: str, cursor: Cursor, total: int, items: list[Any], newest: int | None,
                oldest: int | None, newer: bool, older: bool) -> dict[str, Any]:
    """A page of `items`, newest first, whose positions run from `newest` down to `oldest`;
    `newer` / `older`: whether items lie beyond them (then `prev` / `next` lead there)."""
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": f"{uri}?{cursor.query()}",
        "type": "OrderedCollectionPage",
        "partOf": uri,
        "totalItems": total,
        "orderedItems": items,
    }
    if older and oldest is not None:
        doc["next"] = f"{uri}?{Cursor(max_id=oldest).query()}"
    if newer and newest is not None:
        doc["prev"] = f"{uri}?{Cursor(min_id=newest).query()}"
    return doc


# --- reading another server's collection -------------------------------------------------------

@dataclass
class Walk:
    """What a walk through a remote collection did, and why it stopped early (empty: it reached
    the end): "pages", "items", "origin" (a page on another server), "loop"."""

    pages: int = 0
    items: int = 0
    stopped: str = ""


async def walk_items(fetch: Callable[[str], Awaitable[Any]], uri: str, walk: Walk, *,
                     max_pages: int, max_items: int) -> AsyncIterator[Any]:
    """The items of a collection, page after page, as its server orders them (an outbox: the
    newest first). `first` and `next` may be ids or embedded pages; a page is read only from
    the collection's own origin and at most once, so that a collection that points elsewhere
    or in a circle ends; at most `max_pages` pages and `max_items` items. `fetch` GETs a URL
    and answers its JSON; its errors end the walk with them."""
    seen: set[str] = set()
    page: Any = uri
    while page is not None:
        if walk.pages >= max_pages:
            walk.stopped = "pages"
            return
        if isinstance(page, str):
            if not same_origin(page, uri):
                walk.stopped = "origin"
                return
            if page in seen:
                walk.stopped = "loop"
                return
            seen.add(page)
            page = await fetch(page)
        if not isinstance(page, dict):
            return
        walk.pages += 1
        if isinstance(page.get("id"), str):
            seen.add(page["id"])
        for item in as_list(page.get("orderedItems", page.get("items"))):
            if walk.items >= max_items:
                walk.stopped = "items"
                return
            walk.items += 1
            yield item
        following = page.get("next")
        if following is None and walk.pages == 1:
            following = page.get("first")  # the collection itself: its pages begin there
        page = following if isinstance(following, dict) else id_of(following)
