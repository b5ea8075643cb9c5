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
