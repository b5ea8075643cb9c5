"""An organisation's desk: what a social worker of the organisation works from. Every offer and
need the organisation manages (its members' and those its coordinators posted on behalf of
someone without an account), with its desk reference, status, responses waiting and last
activity; the paper list of its open posts for people without internet; and the organisation's
choice of who sees a need posted on behalf of someone.

Who may use the desk is the rule of node/organisations.may_edit (the organisation's
coordinators, and admins); who may read private notes is parties.may_read_notes."""

from __future__ import annotations

import functools
import html
import io
import re
from dataclasses import dataclass

import segno

from node import organisations
from node.actors import LocalActor, actor_uri, by_id, by_uri
from node.context import Node
from node.posts import parties, queries, service
from node.posts.desk_refs import format_ref, parse_ref
from node.posts.validation import VISIBILITIES

STATUSES = ("open", "in_progress", "fulfilled", "withdrawn", "expired")
# "active": what still needs work (open or in progress), the desk's first view.
STATUS_FILTERS = ("active", "all", *STATUSES)
MAX_ROWS = 500
MAX_PAPER = 200

may_use_desk = organisations.may_edit


@dataclass(frozen=True)
class DeskFilters:
    status: str = "active"
    kind: str = ""
    waiting: bool = False
    q: str = ""

    @classmethod
    def from_query(cls, query: dict[str, str]) -> DeskFilters:
        status = query.get("status", "active")
        kind = query.get("kind", "")
        return cls(status=status if status in STATUS_FILTERS else "active",
                   kind=kind if kind in ("offer", "need") else "",
                   waiting=query.get("waiting", "") in ("1", "on", "yes"),
                   q=query.get("q", "").strip()[:100])


@dataclass(frozen=True)
class DeskRow:
    post: dict
    ref: str
    waiting: int
    responses: int
    last_activity: float
    posted_by: str
    answers: bool  # the viewer answers its responses (parties.speaks_for_post)


async def desk_rows(node: Node, org: LocalActor, filters: DeskFilters,
                    user: dict) -> list[DeskRow]:
    """The organisation's posts, those with responses waiting first, then the most recently
    active; `answers` tells which of them the viewer answers (the rule of
    parties.speaks_for_post: the author, or for a need posted on behalf of someone the
    organisation's coordinators), so the page links their responses only there."""
    await service.expire_due(node)
    where = ["p.org_uri = :org", "p.remote = 0"]
    values: dict = {"org": actor_uri(node, org)}
    if filters.status == "active":
        where.append("p.status IN ('open', 'in_progress')")
    elif filters.status in STATUSES:
        where.append("p.status = :status")
        values["status"] = filters.status
    if filters.kind:
        where.append("p.kind = :kind")
        values["kind"] = filters.kind
    if filters.waiting:
        where.append("EXISTS (SELECT 1 FROM responses w WHERE w.post_id = p.id "
                     "AND w.status = 'pending')")
    if filters.q:
        # A reference as said on the phone ("a 12"), else words of the title or description.
        text = ["LOWER(p.title) LIKE :q", "LOWER(p.description_md) LIKE :q"]
        values["q"] = "%" + re.sub(r"[\\%_]", " ", filters.q.lower()) + "%"
        seq = parse_ref(filters.q)
        if seq is not None:
            text.append("p.desk_seq = :seq")
            values["seq"] = seq
        where.append("(" + " OR ".join(text) + ")")
    rows = await node.db.fetch_all(
        "SELECT p.*, (SELECT COUNT(*) FROM responses r WHERE r.post_id = p.id "
        "AND r.status = 'pending') AS waiting_count, "
        "(SELECT COUNT(*) FROM responses r WHERE r.post_id = p.id) AS response_count, "
        "(SELECT MAX(r.updated_at) FROM responses r WHERE r.post_id = p.id) AS last_response "
        f"FROM posts p WHERE {' AND '.join(where)} ORDER BY p.updated_at DESC LIMIT :n",
        {**values, "n": MAX_ROWS})
    names: dict[str, str] = {}
    coordinates = any(c["id"] == user["id"]
                      for c in await parties.coordinators(node, values["org"]))
    result = []
    for row in rows:
        author = row["author_user_id"]
        if author and author not in names:
            names[author] = await parties.user_name(node, author)
        result.append(DeskRow(
            post=row, ref=format_ref(row["desk_seq"]), waiting=int(row["waiting_count"]),
            responses=int(row["response_count"]),
            last_activity=max(float(row["updated_at"]), float(row["last_response"] or 0)),
            posted_by=names.get(author, "") if author else "",
            answers=coordinates if row["proxied"] else author == user["id"]))
    result.sort(key=lambda r: (r.waiting == 0, -r.last_activity))
    return result


async def managed_organisations(node: Node, user: dict | None) -> list[LocalActor]:
    """The organisations whose desk the member may open."""
    if user is None:
        return []
    if user["role"] == "admin":
        rows = await node.db.fetch_all("SELECT id FROM actors WHERE kind = 'Group' "
                                       "ORDER BY created_at")
    else:
        rows = await node.db.fetch_all(
            "SELECT a.id FROM memberships m JOIN actors a ON a.id = m.org_id WHERE "
            "m.user_id = :u AND m.role = 'coordinator' AND a.kind = 'Group' "
            "ORDER BY a.created_at", {"u": user["id"]})
    return [org for r in rows if (org := await by_id(node, r["id"])) is not None]


# --- private notes and the post page -----------------------------------------------------------

async def notes_readers(node: Node, org_uri: str) -> tuple[str, list[str]]:
    """Who reads the private notes of the organisation's needs posted on behalf of someone, as
    the pages say it: its name and its coordinators' names (the people parties.may_read_notes
    lets in: the side that answers a proxied need)."""
    side = await parties.post_side(node, {"remote": 0, "proxied": 1, "org_uri": org_uri,
                                          "attributed_to": org_uri, "author_user_id": None})
    return await parties.name_of(node, org_uri), [p.name for p in side]


async def for_post_page(node: Node, user: dict | None, post: dict) -> dict:
    """What the post page shows a coordinator of the post's organisation: its desk reference,
    and for a need posted on behalf of someone its private notes and who can read them."""
    extras: dict = {"desk_ref": "", "notes": "", "notes_org": "", "notes_names": []}
    if user is None or post["remote"]:
        return extras
    org = await by_uri(node, post["org_uri"])
    if org is not None and await may_use_desk(node, user, org):
        extras["desk_ref"] = format_ref(post.get("desk_seq"))
    if await parties.may_read_notes(node, user, post):
        extras["notes"] = await read_notes(node, post)
        extras["notes_org"], extras["notes_names"] = await notes_readers(node, post["org_uri"])
    return extras


async def read_notes(node: Node, post: dict) -> str:
    row = await node.db.fetch_one(
        "SELECT notes FROM beneficiary_notes WHERE post_id = :p", {"p": post["id"]})
    return row["notes"] if row else ""


async def for_post_form(node: Node, user: dict | None, post: dict | None) -> dict:
    """What the post form needs about private notes: whether this member may read and write
    them, their text for an edit, and who will read them (for a new need, the coordinators of
    the organisation the member posts for)."""
    if user is None or user["role"] not in parties.MANAGERS:
        return {"notes_allowed": False}
    if post is not None:
        if not await parties.may_read_notes(node, user, post):
            return {"notes_allowed": False}
        org_uri = post["org_uri"]
    else:
        try:
            org_uri = actor_uri(node, await service.organisation_of(node, user))
        except LookupError:
            return {"notes_allowed": False}
    org_name, names = await notes_readers(node, org_uri)
    return {"notes_allowed": True, "notes_org": org_name, "notes_names": names}


# --- what a need posted on behalf of someone starts with --------------------------------------

async def proxied_visibility(node: Node, org: LocalActor) -> str:
    value = await node.db.fetch_val("SELECT proxied_visibility FROM actors WHERE id = :i",
                                    {"i": org.id})
    return value if value in VISIBILITIES else "local"


async def set_proxied_visibility(node: Node, org: LocalActor, value: str) -> bool:
    if value not in VISIBILITIES:
        return False
    await node.db.execute("UPDATE actors SET proxied_visibility = :v WHERE id = :i",
                          {"v": value, "i": org.id})
    return True


async def new_post_defaults(node: Node, user: dict, kind: str) -> dict:
    """A coordinator's new need starts as posted on behalf of someone, with the visibility
    their organisation chose for such needs."""
    if kind != "need" or user["role"] not in parties.MANAGERS:
        return {}
    try:
        org = await service.organisation_of(node, user)
    except LookupError:
        return {}
    return {"proxied": "1", "visibility": await proxied_visibility(node, org)}


# --- the paper list ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PaperFilters:
    neighbourhood: str = ""
    category: str = ""
    language: str = ""

    @classmethod
    def from_query(cls, query: dict[str, str]) -> PaperFilters:
        language = query.get("language", "")
        return cls(query.get("neighbourhood", "")[:100], query.get("category", "")[:50],
                   language if re.fullmatch(r"[a-z]{2,3}", language) else "")


async def paper_posts(node: Node, org: LocalActor, filters: PaperFilters) -> list[dict]:
    """The organisation's open public posts: offers first (what a person can go and get), then
    needs, the most urgent first. Only public posts: paper leaves the node."""
    await service.expire_due(node)
    where, values = queries.open_posts_where(filters)
    where += ["org_uri = :org", "remote = 0", "visibility = 'public'"]
    values["org"] = actor_uri(node, org)
    rows = await node.db.fetch_all(
        f"SELECT * FROM posts WHERE {' AND '.join(where)} "
        "ORDER BY CASE kind WHEN 'offer' THEN 0 ELSE 1 END, urgency DESC, created_at DESC "
        "LIMIT :n", {**values, "n": MAX_PAPER})
    return [{**row, "ref": format_ref(row["desk_seq"]),
             "text": plain_text(row["description_html"])} for row in rows]


def plain_text(fragment: str) -> str:
    """The sanitised HTML of a description as paragraphs of plain text (for the PDF)."""
    text = re.sub(r"</(p|li|h\d|blockquote)>|<br\s*/?>", "\n", fragment or "")
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def qr_code(url: str) -> segno.QRCode:
    # Level M survives a fold or a coffee stain on paper.
    return segno.make(url, error="m")


# A post's address never changes, so neither does its code: drawn once per process.
@functools.lru_cache(maxsize=2048)
def qr_svg(url: str) -> str:
    """The QR code of a post's address, inline SVG sized in millimetres for print."""
    return qr_code(url).svg_inline(scale=1, border=2, unit="mm", title=url,
                                   svgclass="qr", lineclass="qr-line")


@functools.lru_cache(maxsize=2048)
def qr_png(url: str) -> bytes:
    out = io.BytesIO()
    qr_code(url).save(out, kind="png", scale=8, border=2)
    return out.getvalue()
