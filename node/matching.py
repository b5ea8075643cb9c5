"""Matching: a need fits an offer (and an offer a need) — one rule, used by every path.

They fit when, both being open:
- they are of the other kind and of the same category;
- they are near: within `match_radius_km` of each other on their rounded coordinates
  (node/posts/places.py; exact coordinates are never stored), or, for a post without
  coordinates, in the same named neighbourhood. A post with no place at all is near nothing;
- their dates overlap: one's start is not after the other's end (a missing start or end is
  open-ended), and the candidate has not ended already;
- they share a language: the candidate is written in or speaks one of the post's languages
  (a post that names no language shares any).

The rule is one SQL condition (`_fit_query`) built for both databases: the circle is
node/posts/nearby.py's `within_clause` (the network view's distance filter), a post of another
node counts where the lists show it (node/posts/provenance.py `listed_clause`). The indexes of
migration 20 serve it: (kind, category, status, latitude, longitude) for the box around the
circle and (kind, category, status, neighbourhood) for posts placed by name only. Fitting posts
are looked for nearest first in widening circles and cut to a few, so a need matched against
100,000 stored offers reads a few hundred index entries, never the table (bench/matching.py).

Who is told when a post arrives (written here, or received from a followed node; both go
through node/posts/notify.py `new_post`): the local authors of fitting posts, about the new
post; and the new post's own side, about those posts — its author, or for a need posted on
behalf of someone, every coordinator of its organisation (node/posts/parties.py). Each member
chooses how often (`match_preferences`): at once (a notification and its email), a daily digest
(a notification now, one email later listing them all) or never. `match_notices` keeps each
(member, their post, the fitting post) once, so a member is told of a match once, and a digest
mails each match once: its rows are claimed and its email queued in one transaction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from node import notifications as n
from node.context import Node
from node.db import now
from node.i18n import N_, gettext, ngettext, reset_locale, set_locale
from node.mailqueue import enqueue_email
from node.moderation.blocks import hidden_from
from node.posts import nearby, parties, provenance

log = logging.getLogger(__name__)

Row = Mapping[str, Any]

AT_ONCE, DIGEST, NEVER = "instant", "digest", "never"
FREQUENCIES = {
    AT_ONCE: N_("At once"),
    DIGEST: N_("In one email a day"),
    NEVER: N_("Never"),
}
DEFAULT_FREQUENCY = AT_ONCE
# The nearest fitting posts whose authors are told of a new post, and that its author is told
# of: a busy category must not turn one post into hundreds of notifications.
TELL_AT_MOST = 20
# The best matches a post page shows, and how far it counts them ("more than 50").
SHOWN = 5
COUNTED_AT_MOST = 50
# The circles (km) matching looks in before the whole radius, nearest first.
WIDENING_KM = (1.0, 2.0)
# The most a digest lists (the rest wait for the next one).
DIGEST_AT_MOST = 50
OTHER_KIND = {"need": "offer", "offer": "need"}


# --- the rule ----------------------------------------------------------------------------------

def _languages(post: Row) -> list[str]:
    return [code for code in str(post.get("languages") or "").split(",") if code]


def _has_place(post: Row) -> bool:
    lat, lon = post.get("latitude"), post.get("longitude")
    return lat is not None and lon is not None and math.isfinite(lat) and math.isfinite(lon)


def _fit_query(node: Node, post: Row, *, local_only: bool = False, public_only: bool = False,
               exclude_user: str | None = None, hidden: frozenset[str] = frozenset(),
               km: float | None = None) -> tuple[str, str, dict[str, Any]] | None:
    """The posts that fit `post`, as (FROM-WHERE clause, squared-distance expression, values),
    or None when nothing can fit (a post of no kind, or with no place)."""
    other = OTHER_KIND.get(str(post.get("kind")))
    if other is None:
        return None
    where = ["kind = :kind", "category = :category", "status = 'open'",
             "(ends_at IS NULL OR ends_at >= :now)", "id <> :self",
             # A post of another node counts where the lists show it.
             provenance.listed_clause()]
    values: dict[str, Any] = {"kind": other, "category": post.get("category") or "",
                              "now": now(), "self": post.get("id") or ""}
    if post.get("ends_at") is not None:
        where.append("(starts_at IS NULL OR starts_at <= :ends)")
        values["ends"] = float(post["ends_at"])
    if post.get("starts_at") is not None:
        where.append("(ends_at IS NULL OR ends_at >= :starts)")
        values["starts"] = float(post["starts_at"])
    codes = _languages(post)
    if codes:
        # Stored as "fr,nl": surrounded with commas, a code matches whole codes only.
        shared = [f"(',' || languages || ',') LIKE :lang{i}" for i in range(len(codes))]
        where.append(f"(languages = '' OR {' OR '.join(shared)})")
        values.update({f"lang{i}": f"%,{code},%" for i, code in enumerate(codes)})
    if local_only:
        where.append("remote = 0 AND author_user_id IS NOT NULL")
    if public_only:
        where.append("visibility = 'public'")
    if exclude_user:
        where.append("(author_user_id IS NULL OR author_user_id <> :me)")
        values["me"] = exclude_user
    if hidden:
        names = {f"h{i}": uri for i, uri in enumerate(sorted(hidden))}
        listed = ", ".join(":" + k for k in names)
        where.append(f"attributed_to NOT IN ({listed}) AND org_uri NOT IN ({listed})")
        values.update(names)
    if _has_place(post):
        lat, lon = float(post["latitude"]), float(post["longitude"])
        km = min(km or node.settings.match_radius_km, node.settings.match_radius_km)
        circle, near = nearby.within_clause(lat, lon, km)
        radius = km / nearby.KM_PER_DEGREE  # in degrees of latitude
        values.update(near)
        values.update({"lat0": near["near_lat"] - radius, "lat1": near["near_lat"] + radius,
                       "lon0": near["near_lon"] - radius / near["near_k"],
                       "lon1": near["near_lon"] + radius / near["near_k"]})
        distance = ("((latitude - :near_lat) * (latitude - :near_lat) + "
                    "(longitude - :near_lon) * :near_k * (longitude - :near_lon) * :near_k)")
        # The box lets the index answer; the circle inside it (node/posts/nearby.py) is the rule.
        place = f"latitude BETWEEN :lat0 AND :lat1 AND longitude BETWEEN :lon0 AND :lon1 " \
                f"AND {circle}"
        if post.get("neighbourhood"):
            # A candidate placed by name only is near when it names the same neighbourhood.
            values["area"] = post["neighbourhood"]
            place = f"(({place}) OR (latitude IS NULL AND neighbourhood = :area))"
            distance = f"COALESCE({distance}, 0)"
    elif post.get("neighbourhood"):
        values["area"] = post["neighbourhood"]
        place, distance = "neighbourhood = :area", "0"
    else:
        return None
    where.append(place)
    return "FROM posts WHERE " + " AND ".join(where), distance, values


async def fitting(node: Node, post: Row, *, limit: int, local_only: bool = False,
                  public_only: bool = False, exclude_user: str | None = None,
                  hidden: frozenset[str] = frozenset()) -> list[dict]:
    """The open posts that fit `post`, nearest first (then newest), at most `limit`; none by
    an actor in `hidden`. Looked for in widening circles: when the nearest circle holds
    `limit` of them they are the nearest of all, and a dense city never reads the thousands
    of rows a whole radius holds (bench/matching.py)."""
    radius = node.settings.match_radius_km
    steps = [km for km in WIDENING_KM if km < radius] + [radius] if _has_place(post) \
        else [radius]
    rows: list[dict] = []
    for km in steps:
        query = _fit_query(node, post, local_only=local_only, public_only=public_only,
                           exclude_user=exclude_user, hidden=hidden, km=km)
        if query is None:
            return []
        clause, distance, values = query
        # Placed by name only, every candidate is as near: newest first, in index order.
        order = "created_at DESC" if distance == "0" else "distance2, created_at DESC"
        rows = await node.db.fetch_all(
            f"SELECT *, {distance} AS distance2 {clause} ORDER BY {order} LIMIT :limit",
            {**values, "limit": limit})
        if len(rows) >= limit:
            break
    return rows


async def count_fitting(node: Node, post: Row, *, public_only: bool = False,
                        hidden: frozenset[str] = frozenset(), at_most: int = 1000) -> int:
    """How many posts fit, counted up to `at_most` (a page says "more than" past it)."""
    query = _fit_query(node, post, public_only=public_only, hidden=hidden)
    if query is None:
        return 0
    clause, _, values = query
    return int(await node.db.fetch_val(
        f"SELECT COUNT(*) FROM (SELECT 1 {clause} LIMIT :most) AS fits",
        {**values, "most": at_most}) or 0)


async def best_matches(node: Node, post: Row, reader: dict | None
                       ) -> tuple[list[dict], int, bool]:
    """What a post page shows: the best fitting posts the reader may see (public ones for a
    visitor, never one by an actor hidden from them), how many fit (counted up to
    COUNTED_AT_MOST) and whether more than that do."""
    if post.get("status") != "open":
        return [], 0, False
    public_only = reader is None
    hidden = frozenset(await hidden_from(node, reader["id"] if reader else None))
    shown = await fitting(node, post, limit=SHOWN, public_only=public_only, hidden=hidden)
    if len(shown) < SHOWN:
        return shown, len(shown), False
    total = await count_fitting(node, post, public_only=public_only, hidden=hidden,
                                at_most=COUNTED_AT_MOST + 1)
    return shown, min(total, COUNTED_AT_MOST), total > COUNTED_AT_MOST


# --- preferences -------------------------------------------------------------------------------

async def frequency_of(node: Node, user_id: str) -> str:
    value = await node.db.fetch_val(
        "SELECT frequency FROM match_preferences WHERE user_id = :u", {"u": user_id})
    return value if value in FREQUENCIES else DEFAULT_FREQUENCY


async def set_frequency(node: Node, user_id: str, frequency: str) -> None:
    if frequency not in FREQUENCIES:
        raise ValueError(f"unknown frequency {frequency!r}")
    await node.db.execute(
        "INSERT INTO match_preferences (user_id, frequency) VALUES (:u, :f) "
        "ON CONFLICT (user_id) DO UPDATE SET frequency = excluded.frequency",
        {"u": user_id, "f": frequency})


# --- telling -----------------------------------------------------------------------------------

async def _side_of(node: Node, post: Row) -> list[str]:
    """The local members who answer for a post: its author, or the coordinators of a need
    posted on behalf of someone."""
    return [p.user_id for p in await parties.post_side(node, dict(post)) if p.user_id]


async def _record(node: Node, user_id: str, own: Row, other: Row, state: str) -> bool:
    """Keeps that `user_id` was told `other` fits `own`; False if they were told already."""
    told = await node.db.fetch_val(
        "INSERT INTO match_notices (user_id, post_id, match_id, state, created_at) "
        "VALUES (:u, :p, :m, :s, :t) ON CONFLICT (user_id, post_id, match_id) DO NOTHING "
        "RETURNING id", {"u": user_id, "p": own["id"], "m": other["id"], "s": state, "t": now()})
    return told is not None


def _url(node: Node, post: Row) -> str:
    return node.url(f"/posts/{post['id']}")


async def _tell_one(node: Node, user_id: str, own: Row, other: Row) -> None:
    """`other` arrived and fits `user_id`'s post `own`."""
    frequency = await frequency_of(node, user_id)
    if frequency == NEVER:
        return
    async with node.db.transaction():
        if not await _record(node, user_id, own, other,
                             "told" if frequency == AT_ONCE else "pending"):
            return
        kind = n.NEED_FITS_OFFER if other["kind"] == "need" else n.OFFER_FITS_NEED
        await n.notify(node, user_id, kind,
                       {"title": other["title"], "url": _url(node, other), "mine": own["title"],
                        "excerpt": n.excerpt(other.get("description_html") or "")},
                       email=frequency == AT_ONCE)


async def _tell_author(node: Node, user_id: str, post: Row, found: list[dict]) -> None:
    """The new post's own side hears of the posts that already fit it, in one notification."""
    frequency = await frequency_of(node, user_id)
    if frequency == NEVER:
        return
    async with node.db.transaction():
        new = [other for other in found if await _record(
            node, user_id, post, other, "told" if frequency == AT_ONCE else "pending")]
        if not new:
            return
        await n.notify(node, user_id, n.MATCHES_FOUND,
                       {"title": post["title"], "url": _url(node, post), "num": len(new),
                        "kind": post["kind"],
                        "excerpt": "\n".join(f"- {other['title']}" for other in new)},
                       email=frequency == AT_ONCE)


async def post_arrived(node: Node, post: Row) -> None:
    """An open post, new or just edited: tell the authors of the local posts it fits, and its
    own side of the posts that fit it, each pair once. Never its own author about themselves;
    never a member about a post by an actor hidden from them."""
    if post.get("status", "open") != "open":
        return
    post = dict(post)
    side = [] if post.get("remote") else await _side_of(node, post)
    author = post.get("author_user_id")
    for other in await fitting(node, post, limit=TELL_AT_MOST, local_only=True,
                               exclude_user=author):
        for user_id in await _side_of(node, other):
            if user_id in side or post["attributed_to"] in await hidden_from(node, user_id):
                continue
            await _safely(_tell_one(node, user_id, other, post), post)
    for user_id in side:
        hidden = frozenset(await hidden_from(node, user_id))
        seen = await fitting(node, post, limit=TELL_AT_MOST, exclude_user=author, hidden=hidden)
        if seen:
            await _safely(_tell_author(node, user_id, post, seen), post)


async def _safely(coro: Any, post: Row) -> None:
    # A match that cannot be told must never undo the post it is about.
    try:
        await coro
    except Exception:
        log.exception("could not tell a match of post %s", post.get("id"))


# --- the daily digest ----------------------------------------------------------------------------

async def queue_due_digests(node: Node) -> int:
    """Queues one email per member whose oldest untold match has waited a digest period,
    listing all their waiting matches; returns how many emails were queued. Run by the email
    sender's loop (node/mailqueue.py) in whichever process runs it. Each member's rows are
    claimed and their email queued in one transaction, so a restart or a second sender never
    mails a match twice."""
    due = await node.db.fetch_all(
        "SELECT DISTINCT user_id FROM match_notices WHERE state = 'pending' "
        "AND created_at <= :cut", {"cut": now() - node.settings.match_digest_seconds})
    queued = 0
    for row in due:
        try:
            queued += await _digest_for(node, row["user_id"])
        except Exception:
            log.exception("could not queue the match digest of %s", row["user_id"])
    return queued


async def _digest_for(node: Node, user_id: str) -> int:
    async with node.db.transaction():
        claimed = await node.db.fetch_all(
            "UPDATE match_notices SET state = 'mailed', mailed_at = :t WHERE id IN ("
            " SELECT id FROM match_notices WHERE user_id = :u AND state = 'pending'"
            " ORDER BY created_at LIMIT :n) AND state = 'pending' RETURNING id",
            {"t": now(), "u": user_id, "n": DIGEST_AT_MOST})
        if not claimed:
            return 0  # another sender took them
        ids = {f"i{k}": r["id"] for k, r in enumerate(claimed)}
        # Only matches still worth telling: both posts exist and the fitting one is open.
        pairs = await node.db.fetch_all(
            "SELECT own.id AS own_id, own.title AS own_title, own.kind AS own_kind, "
            "other.id AS other_id, other.title AS other_title FROM match_notices m "
            "JOIN posts own ON own.id = m.post_id JOIN posts other ON other.id = m.match_id "
            f"WHERE m.id IN ({', '.join(':' + k for k in ids)}) AND other.status = 'open' "
            "ORDER BY m.created_at, m.id", ids)
        user = await node.db.fetch_one(
            "SELECT email, locale, display_name FROM users WHERE id = :u", {"u": user_id})
        if not pairs or user is None:
            return 0
        locale = n.locale_of(user)
        token = set_locale(locale)
        try:
            subject, text = digest_text(node, user, pairs)
        finally:
            reset_locale(token)
        try:
            await enqueue_email(node, user["email"], subject, text, locale=locale)
        except ValueError as exc:  # an address that cannot be written in a header
            log.warning("match digest to %r not queued: %s", user["email"], exc)
            return 0
    return 1


def digest_text(node: Node, user: Row, pairs: list[Row]) -> tuple[str, str]:
    """Subject and body of a digest, in the current locale: each of the member's posts with
    the posts that fit it."""
    subject = ngettext("%(num)d offer or need fits your posts",
                       "%(num)d offers or needs fit your posts", len(pairs)) % {"num": len(pairs)}
    name = user.get("display_name") or ""
    lines = [gettext("Hello %(name)s,") % {"name": name} if name else gettext("Hello,"), "",
             subject + "."]
    by_post: dict[str, list[Row]] = {}
    for pair in pairs:
        by_post.setdefault(pair["own_id"], []).append(pair)
    for own_id, found in by_post.items():
        first = found[0]
        heading = (gettext("For your offer “%(title)s”:") if first["own_kind"] == "offer"
                   else gettext("For your need “%(title)s”:"))
        lines += ["", heading % {"title": first["own_title"]}]
        lines += [f"- {pair['other_title']}: {node.url('/posts/' + pair['other_id'])}"
                  for pair in found]
        lines += [gettext("Your post: %(url)s") % {"url": node.url(f"/posts/{own_id}")}]
    lines += ["", "-- ", gettext(
        "You receive this email because you chose a daily summary of matches on %(node)s. "
        "Choose how often: %(url)s") % {
        "node": node.settings.base_url, "url": node.url("/notifications/settings")}]
    return subject, "\n".join(lines) + "\n"
