"""OrderedCollection and OrderedCollectionPage documents, paged as Mastodon pages them."""

from __future__ import annotations

from typing import Any

from activitypub.vocab import AS_CONTEXT

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
