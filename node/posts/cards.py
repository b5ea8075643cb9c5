"""Posts as every list shows them (/posts, home, hashtags, profiles): one card per post with its
category, first lines, byline and picture, drawn by the one macro of templates/_card.html.

A page that lists objects of the federation (hashtags, profiles) gets a card for each object
that is an offer or a need known here, and the plain object view for anything else (notes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from activitypub.html import plain_text
from activitypub.origin import is_http_url
from node.context import Node
from node.objects import load_model
from node.posts import categories, photos
from node.posts.languages import shown as shown_text
from node.posts.photos import Picture
from node.timeline import Byline, ShownObject, bylines

# About three lines of a phone screen: enough to know what is offered or asked.
EXCERPT_CHARS = 180
_BLOCK_END = re.compile(r"</(p|li|h[1-6]|blockquote|pre)>|<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


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
    """The first picture of each post that has one (by post id): ours from the post's photos
    (node/posts/photos.py), another server's from its Note as received (http(s) images only,
    none behind a content warning)."""
    found: dict[str, Picture] = {}
    for post in posts:
        own = photos.photos_of(post) if not post["remote"] else []
        if own:
            found[post["id"]] = Picture(own[0].path, own[0].alt, own[0].width, own[0].height)
    remote = {f"u{i}": p["uri"] for i, p in enumerate(
        p for p in posts if p["remote"] and not p.get("content_warning"))}
    if not remote:
        return found
    rows = await node.db.fetch_all(
        "SELECT uri, payload, model, local, deleted FROM objects "
        f"WHERE uri IN ({', '.join(':' + n for n in remote)})", remote)
    by_uri = {p["uri"]: p["id"] for p in posts}
    for row in rows:
        model = load_model(row)
        if model is None or model.has_warning:
            continue
        image = next((a for a in model.attachments if a.is_image and is_http_url(a.url)), None)
        if image is not None:
            found[by_uri[row["uri"]]] = Picture(image.url, image.alt, image.width, image.height)
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
