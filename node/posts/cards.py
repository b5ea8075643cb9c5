"""Posts as every list shows them (/posts, home, hashtags, profiles): one card per post with its
category, first lines, byline and picture, drawn by the one macro of templates/_card.html.

A page that lists objects of the federation (hashtags, profiles) gets a card for each object
that is an offer or a need known here, and the plain object view for anything else (notes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from activitypub.html import plain_text
from node.context import Node
from node.objects import load_model
from node.posts import categories
from node.posts.languages import shown as shown_text
from node.timeline import Byline, ShownObject, bylines

# About three lines of a phone screen: enough to know what is offered or asked.
EXCERPT_CHARS = 180
_BLOCK_END = re.compile(r"</(p|li|h[1-6]|blockquote|pre)>|<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Picture:
    url: str
    alt: str


@dataclass(frozen=True)
class Card:
    post: dict[str, Any]
    by: Byline
    category: categories.Category | None
    excerpt: str
    picture: Picture | None


def excerpt(description_html: str, limit: int = EXCERPT_CHARS) -> str:
    """The first words of a description as plain text (escaped by the template), cut at a
    word and marked with an ellipsis when there is more."""
    text = _SPACES.sub(" ", plain_text(_BLOCK_END.sub(" \\g<0>", description_html))).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(" ,;:.-–") + "…"


async def first_pictures(node: Node, posts: list[dict[str, Any]]) -> dict[str, Picture]:
    """The first image attached to each post (by post id), read from the post's Note as this
    node stores it (node/objects.py): ours as published, another node's as received. The one
    place a card asks for a picture, so that photos added to posts show on every list."""
    if not posts:
        return {}
    names = {f"u{i}": p["uri"] for i, p in enumerate(posts)}
    rows = await node.db.fetch_all(
        "SELECT uri, payload, model, local, deleted FROM objects "
        f"WHERE uri IN ({', '.join(':' + n for n in names)})", names)
    by_uri = {p["uri"]: p["id"] for p in posts}
    found: dict[str, Picture] = {}
    for row in rows:
        model = load_model(row)
        if model is None or model.has_warning:
            continue
        image = next((a for a in model.attachments if a.is_image and a.url), None)
        if image is not None and image.url.startswith(("https://", "http://", "/")):
            found[by_uri[row["uri"]]] = Picture(image.url, image.alt)
    return found


async def cards(node: Node, posts: list[dict[str, Any]]) -> list[Card]:
    """Rows of `posts` as cards, in the same order."""
    names = await bylines(node, posts)
    pictures = await first_pictures(node, posts)
    return [Card(post=p, by=names[p["id"]], category=categories.get(p["category"]),
                 excerpt=excerpt(shown_text(p).description_html), picture=pictures.get(p["id"]))
            for p in posts]


async def cards_of_objects(node: Node, shown: list[ShownObject]) -> list[Card | ShownObject]:
    """Objects as a page lists them: an offer or a need known here as its card (when it is
    still listed: open or in progress), any other object as it is."""
    uris = {f"u{i}": item.model.id for i, item in enumerate(shown)}
    posts: dict[str, dict[str, Any]] = {}
    if uris:
        rows = await node.db.fetch_all(
            f"SELECT * FROM posts WHERE uri IN ({', '.join(':' + n for n in uris)}) "
            "AND visibility = 'public'", uris)
        posts = {r["uri"]: r for r in rows}
    made = {c.post["uri"]: c for c in await cards(node, list(posts.values()))}
    out: list[Card | ShownObject] = []
    for item in shown:
        post = posts.get(item.model.id)
        if post is None:
            out.append(item)
        elif post["status"] in ("open", "in_progress", "fulfilled"):
            out.append(made[post["uri"]])
    return out
