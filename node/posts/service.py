"""Changing posts: create, edit, status changes, withdrawal and expiry. Each change is stored,
then federated (publishing.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from node.actors import actor_uri, by_id, organisations
from node.context import Node
from node.db import new_id, now
from node.posts import desk_refs, notify, places, publishing, queries
from node.posts.languages import Text, dump_texts
from node.posts.markup import render_markdown
from node.posts.photos import dump as dump_photos
from node.posts.text import _
from node.posts.validation import PostError, PostFields, validate

log = logging.getLogger(__name__)

# Which status may follow which; a change outside this table is refused with a reason.
TRANSITIONS = {
    "open": {"in_progress", "fulfilled", "withdrawn", "expired"},
    "in_progress": {"open", "fulfilled", "withdrawn", "expired"},
    "fulfilled": set(),
    "withdrawn": set(),
    "expired": set(),
}


def neighbourhoods(node: Node) -> tuple[places.Place, ...]:
    return places.parse_places(node.settings.neighbourhoods)


async def organisation_of(node: Node, user: dict) -> Any:
    """The organisation a member posts for: their membership, else the node's first one."""
    row = await node.db.fetch_one(
        "SELECT org_id FROM memberships WHERE user_id = :u ORDER BY org_id LIMIT 1",
        {"u": user["id"]})
    if row is not None:
        org = await by_id(node, row["org_id"])
        if org is not None and org.kind == "Group":
            return org
    orgs = await organisations(node)
    if not orgs:
        raise LookupError("this node has no organisation yet")
    return orgs[0]


async def person_of(node: Node, user: dict) -> Any:
    """The member's own Person actor, if they have one."""
    if not user.get("actor_id"):
        return None
    actor = await by_id(node, user["actor_id"])
    return actor if actor is not None and actor.kind == "Person" else None


def check(node: Node, form: Mapping[str, Any], languages: Sequence[str], kind: str,
          user: dict) -> PostFields:
    return validate(
        form, languages, kind, neighbourhoods=neighbourhoods(node), now=now(),
        need_expiry_days=node.settings.need_expiry_days,
        may_proxy=user["role"] in queries.MANAGERS,
    )


def _written(fields: PostFields) -> dict[str, str]:
    """The columns of the languages a post is written in (node/posts/languages.py) and of its
    photos (node/posts/photos.py)."""
    columns = {"written_in": fields.written_in, "translations": dump_texts({
        code: Text(title, md, render_markdown(md))
        for code, (title, md) in fields.translations.items()})}
    if fields.photos is not None:
        columns["attachments"] = dump_photos(fields.photos)
    return columns


async def create_post(node: Node, user: dict, fields: PostFields) -> dict:
    org = await organisation_of(node, user)
    person = None if fields.proxied else await person_of(node, user)
    post_id = new_id()[:16]
    stamp = now()
    row = {
        "id": post_id, "uri": node.url(f"/posts/{post_id}"),
        "org_uri": actor_uri(node, org),
        # A proxied need names the organisation only: the person helped is never an actor.
        "attributed_to": actor_uri(node, person or org),
        "author_user_id": user["id"], "proxied": int(fields.proxied),
        "kind": fields.kind, "category": fields.category, "title": fields.title,
        "description_md": fields.description_md,
        "description_html": render_markdown(fields.description_md),
        "neighbourhood": fields.neighbourhood, "latitude": fields.latitude,
        "longitude": fields.longitude, "starts_at": fields.starts_at,
        "ends_at": fields.ends_at, "capacity": fields.capacity, "unit": fields.unit,
        "urgency": fields.urgency, "languages": ",".join(fields.languages),
        **_written(fields),
        "visibility": fields.visibility, "status": "open", "remote": 0, "origin_host": None,
        "url": node.url(f"/posts/{post_id}"), "created_at": stamp, "updated_at": stamp,
    }
    columns = list(row)
    async with node.db.transaction():
        await node.db.execute(
            f"INSERT INTO posts ({', '.join(columns)}) VALUES "
            f"({', '.join(':' + c for c in columns)})", row)
        # Its name at the organisation's desk ("A12"), given once and kept.
        row["desk_seq"] = await desk_refs.assign(node, post_id, row["org_uri"])
        if fields.proxied and fields.beneficiary_notes:
            await node.db.execute(
                "INSERT INTO beneficiary_notes (post_id, notes, written_by, updated_at) "
                "VALUES (:p, :n, :u, :t)",
                {"p": post_id, "n": fields.beneficiary_notes, "u": user["id"], "t": stamp})
    await publishing.published(node, row)
    await notify.new_post(node, row)
    return row


async def edit_post(node: Node, post: dict, fields: PostFields) -> dict:
    if post["status"] not in ("open", "in_progress"):
        raise PostError({"status": _("A closed post cannot be edited.")})
    changes = {
        "category": fields.category, "title": fields.title,
        "description_md": fields.description_md,
        "description_html": render_markdown(fields.description_md),
        "neighbourhood": fields.neighbourhood, "latitude": fields.latitude,
        "longitude": fields.longitude, "starts_at": fields.starts_at, "ends_at": fields.ends_at,
        "capacity": fields.capacity, "unit": fields.unit, "urgency": fields.urgency,
        "languages": ",".join(fields.languages), **_written(fields), "updated_at": now(),
    }
    sets = ", ".join(f"{c} = :{c}" for c in changes)
    async with node.db.transaction():
        await node.db.execute(f"UPDATE posts SET {sets} WHERE id = :id",
                              {**changes, "id": post["id"]})
        if post["proxied"] and fields.beneficiary_notes:
            await save_notes(node, post["id"], fields.beneficiary_notes, None)
    updated = {**post, **changes}
    await publishing.updated(node, updated)
    await notify.post_changed(node, updated)
    return updated


async def save_notes(node: Node, post_id: str, notes: str, user_id: str | None) -> None:
    await node.db.execute(
        "INSERT INTO beneficiary_notes (post_id, notes, written_by, updated_at) "
        "VALUES (:p, :n, :u, :t) ON CONFLICT (post_id) DO UPDATE SET notes = excluded.notes, "
        "updated_at = excluded.updated_at",
        {"p": post_id, "n": notes, "u": user_id, "t": now()})


async def change_status(node: Node, post: dict, status: str) -> dict:
    """Move a local post to `status` and federate it: Update, or Delete when it goes away."""
    if post["remote"]:
        raise PostError({"status": _("Only the node of a post changes its status.")})
    if status not in TRANSITIONS.get(post["status"], set()):
        raise PostError({"status": _("This post cannot go from %(a)s to %(b)s.") % {
            "a": post["status"], "b": status}})
    stamp = now()
    changed = await node.db.fetch_val(
        "UPDATE posts SET status = :s, updated_at = :t WHERE id = :i AND status = :old "
        "RETURNING 1", {"s": status, "t": stamp, "i": post["id"], "old": post["status"]})
    if not changed:
        raise PostError({"status": _("The post changed meanwhile; reload the page.")})
    updated = {**post, "status": status, "updated_at": stamp}
    if status in ("withdrawn", "expired"):
        await publishing.deleted(node, updated)
    else:
        await publishing.updated(node, updated)
    return updated


def is_due(post: dict) -> bool:
    """A local post still open (or in progress) whose end has passed."""
    return (not post["remote"] and post["status"] in ("open", "in_progress")
            and post["ends_at"] is not None and post["ends_at"] < now())


async def _expire(node: Node, post: dict) -> dict | None:
    try:
        expired = await change_status(node, post, "expired")
    except PostError:
        return None  # another request expired it first
    await notify.post_status_changed(node, expired, "expired")
    return expired


async def expire_due(node: Node) -> int:
    """Expire local posts whose end has passed; returns how many expired now."""
    rows = await node.db.fetch_all(
        "SELECT * FROM posts WHERE remote = 0 AND status IN ('open', 'in_progress') "
        "AND ends_at IS NOT NULL AND ends_at < :now", {"now": now()})
    count = 0
    for post in rows:
        count += await _expire(node, post) is not None
    return count


async def expire_if_due(node: Node, post: dict) -> dict:
    """The post as it stands once expired if its end has passed (as `expire_due` would): a
    page or a peer reading one post need not look for every other post that is due."""
    if not is_due(post):
        return post
    # None: another request changed it first; what it made of it is what stands.
    return (await _expire(node, post)
            or await queries.get_post(node, post["id"])
            or post)
