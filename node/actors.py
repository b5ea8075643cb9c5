"""Local actors: the instance `Application`, organisation `Group`s and member `Person`s."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from activitypub.signatures import SigningKey
from activitypub.vocab import actor_document
from keys.keypair import generate_keypair
from node.context import Node
from node.db import new_id, now
from node.generations import watched_cache

USERNAME = re.compile(r"^[a-z0-9_][a-z0-9_.\-]{0,29}$")
RESERVED = {"actor", "instance", "admin", "inbox", "groups", "users", "posts", "objects"}
INSTANCE_USERNAME = "instance"
PATH_PREFIX = {"Group": "/groups/", "Person": "/users/"}


class ActorError(ValueError):
    pass


@dataclass(frozen=True)
class LocalActor:
    id: str
    kind: str
    username: str
    name: str
    summary: str
    icon_url: str | None
    manually_approves: bool
    discoverable: bool
    public_key_pem: str
    private_key_pem: str
    created_at: float
    # The organisation's public profile (migration 15, node/organisations.py).
    summary_map: dict[str, str] = field(default_factory=dict)
    image_url: str | None = None
    contact_phone: str = ""
    contact_email: str = ""
    opening_hours: str = ""
    desk_address: str = ""
    website: str = ""
    neighbourhoods: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"LocalActor({self.kind} {self.username!r})"

    @classmethod
    def from_row(cls, row: dict) -> LocalActor:
        return cls(
            id=row["id"], kind=row["kind"], username=row["username"], name=row["name"],
            summary=row["summary"], icon_url=row["icon_url"],
            manually_approves=bool(row["manually_approves"]),
            discoverable=bool(row["discoverable"]), public_key_pem=row["public_key_pem"],
            private_key_pem=row["private_key_pem"], created_at=row["created_at"],
            summary_map=_json_of(row.get("summary_map"), dict),
            image_url=row.get("image_url"),
            contact_phone=row.get("contact_phone") or "",
            contact_email=row.get("contact_email") or "",
            opening_hours=row.get("opening_hours") or "",
            desk_address=row.get("desk_address") or "",
            website=row.get("website") or "",
            neighbourhoods=tuple(_json_of(row.get("neighbourhoods"), list)),
        )

    def summary_in(self, locale: str) -> str:
        """The description in `locale`, else in the node's default language (`summary`)."""
        return self.summary_map.get(locale) or self.summary


def _json_of(raw: str | None, kind: type) -> dict | list:
    try:
        value = json.loads(raw or "null")
    except ValueError:
        value = None
    return value if isinstance(value, kind) else kind()


def actor_path(actor: LocalActor) -> str:
    if actor.kind == "Application":
        return "/actor"
    return PATH_PREFIX[actor.kind] + actor.username


def actor_uri(node: Node, actor: LocalActor) -> str:
    return node.url(actor_path(actor))


def signing_key(node: Node, actor: LocalActor) -> SigningKey:
    uri = actor_uri(node, actor)
    return SigningKey(key_id=f"{uri}#main-key", private_pem=actor.private_key_pem)


def summary_html(text: str) -> str:
    """The plain-text description as the HTML Mastodon expects in `summary`."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def _link(url: str) -> str:
    shown = html.escape(url.split("://", 1)[-1])
    return f'<a href="{html.escape(url)}" rel="me nofollow noopener noreferrer" ' \
           f'target="_blank">{shown}</a>'


def profile_fields(node: Node, actor: LocalActor) -> list[tuple[str, str]]:
    """Profile fields a Mastodon user sees under the description: the web page (the same URL
    as the actor), and for an organisation the pages of its needs and offers."""
    if actor.kind == "Application":
        return []
    fields = [("Web", _link(actor_uri(node, actor)))]
    if actor.kind == "Group":
        fields += [("Needs", _link(node.url("/tags/need"))),
                   ("Offers", _link(node.url("/tags/offer")))]
        if actor.website:
            fields.insert(0, ("Website", _link(actor.website)))
        fields += [(label, html.escape(value)) for label, value in (
            ("Phone", actor.contact_phone), ("Email", actor.contact_email),
            ("Hours", actor.opening_hours), ("Address", actor.desk_address),
        ) if value]
    return fields


def media_url(node: Node, path: str | None) -> str | None:
    """Uploaded images are stored as paths of this node (`/media/...`), so that they follow
    the node if its address changes."""
    if path and path.startswith("/"):
        return node.url(path)
    return path


def to_document(node: Node, actor: LocalActor) -> dict:
    uri = actor_uri(node, actor)
    doc = actor_document(
        uri=uri, kind=actor.kind, username=actor.username, name=actor.name or actor.username,
        summary=summary_html(actor.summary), url=uri, public_key_pem=actor.public_key_pem,
        shared_inbox=node.url("/inbox"),
        icon_url=media_url(node, actor.icon_url) or node.url("/static/icon.png"),
        image_url=media_url(node, actor.image_url),
        manually_approves=actor.manually_approves, discoverable=actor.discoverable,
        published=datetime.fromtimestamp(actor.created_at, UTC).isoformat().replace("+00:00", "Z"),
        fields=profile_fields(node, actor),
        featured_tags=f"{uri}/tags" if actor.kind == "Group" else None,
    )
    if actor.kind == "Application":
        # Mastodon names its instance actor this way; it should not be suggested to people.
        doc["discoverable"] = doc["indexable"] = False
        doc["manuallyApprovesFollowers"] = True
    if actor.summary_map:
        doc["summaryMap"] = {lang: summary_html(text)
                             for lang, text in actor.summary_map.items() if text}
    return doc


async def create_actor(
    node: Node, kind: str, username: str, name: str, summary: str = "",
    manually_approves: bool = False,
) -> LocalActor:
    username = username.strip().lower()
    if kind != "Application" and (not USERNAME.match(username) or username in RESERVED):
        raise ActorError(f"{username!r} cannot be used as a handle")
    if await node.db.fetch_one("SELECT id FROM actors WHERE username = :u", {"u": username}):
        raise ActorError(f"the handle {username!r} is taken")
    keys = generate_keypair()
    row = {
        "id": new_id(), "kind": kind, "username": username, "name": name, "summary": summary,
        "icon_url": None, "manually_approves": int(manually_approves), "discoverable": 1,
        "public_key_pem": keys.public_pem, "private_key_pem": keys.private_pem,
        "created_at": now(),
    }
    await node.db.execute(
        "INSERT INTO actors (id, kind, username, name, summary, icon_url, manually_approves, "
        "discoverable, public_key_pem, private_key_pem, created_at) VALUES (:id, :kind, "
        ":username, :name, :summary, :icon_url, :manually_approves, :discoverable, "
        ":public_key_pem, :private_key_pem, :created_at)",
        row,
    )
    return LocalActor.from_row(row)


async def by_username(node: Node, username: str, kind: str | None = None) -> LocalActor | None:
    actor = await _held_or_read(node, "username", username.lower())
    return actor if actor is not None and (kind is None or actor.kind == kind) else None


async def by_id(node: Node, actor_id: str) -> LocalActor | None:
    return await _held_or_read(node, "id", actor_id)


# Nearly every federation read (WebFinger, an actor, its outbox, its followers) and every
# delivery starts from a local actor, and on PostgreSQL reading its row is a round trip to the
# server (about a quarter of an outbox page's CPU at 1,000 reads a second): each process keeps
# them, following the `local_actors` counter that triggers move (migration 26).
ACTORS_HELD = 4096  # the organisations and the members whose documents are read most


async def _held_or_read(node: Node, column: str, value: str) -> LocalActor | None:
    cache = watched_cache(node, "local_actors", "actors", ACTORS_HELD)
    epoch = await cache.fresh(node)
    held = cache.get((column, value), epoch)
    if held is not None:
        return held
    row = await node.db.fetch_one(f"SELECT * FROM actors WHERE {column} = :v", {"v": value})
    if row is None:
        return None
    actor = LocalActor.from_row(row)
    for key in (("username", actor.username), ("id", actor.id)):
        cache.put(node, key, actor, epoch)
    return actor


async def by_uri(node: Node, uri: str) -> LocalActor | None:
    """The local actor behind a URI of this node, if there is one."""
    if not node.is_local(uri):
        return None
    path = uri[len(node.settings.base_url):]
    if path == "/actor":
        return await instance_actor(node)
    for kind, prefix in PATH_PREFIX.items():
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            return await by_username(node, path[len(prefix):], kind)
    return None


async def instance_actor(node: Node) -> LocalActor:
    actor = await by_username(node, INSTANCE_USERNAME, "Application")
    if actor is None:
        actor = await create_actor(node, "Application", INSTANCE_USERNAME, node.settings.host)
    return actor


async def organisations(node: Node) -> list[LocalActor]:
    rows = await node.db.fetch_all(
        "SELECT * FROM actors WHERE kind = 'Group' ORDER BY created_at"
    )
    return [LocalActor.from_row(r) for r in rows]


async def gone_for_good(node: Node, actor: LocalActor) -> bool:
    """A deleted member whose key is erased: nothing it signed waits for delivery any more, so
    its documents answer 410 Gone (as Mastodon's do). Until then the shell actor stays served:
    servers verifying its `Delete` fetch the key from it."""
    if actor.kind != "Person":
        return False
    return bool(await node.db.fetch_val(
        "SELECT 1 FROM gone_actors WHERE actor_id = :i AND key_erased_at IS NOT NULL",
        {"i": actor.id}))


async def site_name(node: Node) -> str:
    """The name people know this node by, on its pages, emails and NodeInfo: its first
    organisation's name as its admin edited it (NODE_ORG_NAME named it at the first start)."""
    name = await node.db.fetch_val(
        "SELECT name FROM actors WHERE username = :u AND kind = 'Group'",
        {"u": node.settings.org_username})
    return name or node.settings.org_name
