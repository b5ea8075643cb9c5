"""The network page: any member follows organisations of other nodes (by handle or profile link),
sees whom they follow and whom their organisation follows, and unfollows.

The follower is the member's own Person actor, so the follow is theirs: the remote organisation
lists them among its followers, and their unfollowing touches nobody else's. The organisation's
own follows (its Group actor) stay an admin matter on /admin. Once a follow is accepted, the
organisation's earlier open offers and needs are fetched in the background (node/backfill.py)
and join the list of posts.

A member may also look an offer or need up by its link (it is fetched from its server and
joins the lists, node/posts/incoming.py `look_up`), and `/network/posts` shows the offers and
needs of other nodes, filtered by kind, category, language, neighbourhood and distance from a
chosen neighbourhood (node/posts/nearby.py, on the rounded coordinates)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from activitypub.transport import FetchError
from activitypub.webfinger import HandleError
from node import backfill, follows
from node.accounts.members import member_actor, user_organisations
from node.actors import actor_uri
from node.i18n import _
from node.notices import flash
from node.posts import categories, incoming, nearby, places, queries
from node.posts.cards import cards as post_cards
from node.posts.validation import KINDS
from node.routes.posts import LANGUAGES
from node.timeline import author_of
from node.web_support import (
    CsrfError,
    check_csrf,
    confirm_first,
    current_user,
    node_of,
    render,
)

log = logging.getLogger(__name__)

TARGET_MAX = 500


async def _followed(request: Request, follower: str) -> list[dict]:
    """Whom an actor of ours follows, by name, with how its backfill went."""
    node = node_of(request)
    rows = await follows.following(node, follower)
    done = await backfill.states(node, [r["uri"] for r in rows])
    return [{"uri": r["uri"], "state": r["state"], "who": await author_of(node, r["uri"]),
             "backfill": done.get(r["uri"])} for r in rows]


async def _page(request: Request, user: dict, error: str = "", target: str = "",
                status: int = 200, lookup_error: str = "", lookup: str = "") -> Response:
    node = node_of(request)
    me = await member_actor(node, user)
    mine = await _followed(request, actor_uri(node, me)) if me is not None else []
    orgs = [(org, await _followed(request, actor_uri(node, org)))
            for org, _role in await user_organisations(node, user["id"])]
    return await render(request, "network.html", status=status, mine=mine, orgs=orgs,
                        error=error, target=target, lookup_error=lookup_error, lookup=lookup)


def _login(request: Request) -> Response:
    return RedirectResponse("/login?" + urlencode({"next": "/network"}), status_code=303)


async def network(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login(request)
    return await _page(request, user)


async def follow_action(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login(request)
    node = node_of(request)
    form = await request.form()
    target = str(form.get("target", ""))[:TARGET_MAX].strip()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _page(request, user, str(exc), target, status=403)
    me = await member_actor(node, user)
    if me is None or not target:
        return await _page(request, user, follows.why_not_followed(HandleError(target)), target,
                           status=400)
    try:
        remote, sent = await follows.follow(node, me, target)
    except (HandleError, FetchError, ValueError) as exc:
        return await _page(request, user, follows.why_not_followed(exc), target, status=400)
    flash(request, "follow_sent" if sent else "already_following", handle=remote.handle)
    return RedirectResponse("/network", status_code=303)


async def unfollow_action(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login(request)
    node = node_of(request)
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _page(request, user, str(exc), status=403)
    asking = await confirm_first(
        request, form, _("Stop following this organisation?"),
        _("Its offers and needs will leave your lists. You can follow it again later."),
        _("Yes, unfollow"), "/network")
    if asking is not None:
        return asking
    me = await member_actor(node, user)
    # Only one's own follows: the target is looked up among them, never taken on trust.
    if me is not None and await follows.unfollow(node, me, str(form.get("target", ""))):
        flash(request, "unfollowed")
    return RedirectResponse("/network", status_code=303)


async def lookup_action(request: Request) -> Response:
    """A member pastes the link of an offer or need of another server: it is fetched from
    there (signed by the instance actor), kept as a post, and its page opens."""
    user = await current_user(request)
    if user is None:
        return _login(request)
    node = node_of(request)
    form = await request.form()
    url = str(form.get("url", ""))[:TARGET_MAX].strip()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _page(request, user, status=403, lookup_error=str(exc), lookup=url)
    me = await member_actor(node, user)
    looker = actor_uri(node, me) if me is not None else node.url("/actor")
    try:
        post = await incoming.look_up(node, looker, url)
    except (incoming.LookUpError, FetchError) as exc:
        log.info("look-up of %r by user %s: %s", url, user["id"], exc)
        return await _page(request, user, status=400, lookup=url, lookup_error=_(
            "No public offer or need was found at this link. Check it, or ask whoever gave "
            "it to you."))
    return RedirectResponse(f"/posts/{post['id']}", status_code=303)


def _network_filters(request: Request) -> queries.Filters:
    q = request.query_params
    page, within = q.get("page", "1"), q.get("within", "")
    return queries.Filters(
        kind=q.get("kind", ""), category=q.get("category", ""),
        neighbourhood=q.get("neighbourhood", ""), language=q.get("language", "")[:3],
        scope="network", near=q.get("near", "")[:100],
        within_km=int(within) if within.isdigit() and int(within) in nearby.CHOICES_KM else 0,
        page=int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1)


async def network_posts(request: Request) -> Response:
    """Offers and needs of other nodes, however they came (followed organisations, relays,
    replies, look-ups), with the distance from the chosen neighbourhood when there is one."""
    node = node_of(request)
    user = await current_user(request)
    filters = _network_filters(request)
    listing = await queries.list_posts(node, filters, signed_in=user is not None)
    rows = listing.rows
    known = places.parse_places(node.settings.neighbourhoods)
    centre = nearby.centre(known, filters.near)
    distances = {row["id"]: nearby.km_between(*centre, row["latitude"], row["longitude"])
                 for row in rows if centre is not None and row["latitude"] is not None
                 and row["longitude"] is not None}
    params = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return await render(
        request, "network_posts.html", cards=await post_cards(node, rows), km=distances,
        listing=listing, filters=filters, page=filters.page, query=params,
        urlencode=urlencode, kinds=KINDS, categories=categories.CATEGORIES,
        categories_by_key=categories.BY_KEY, neighbourhoods=known,
        distances=nearby.CHOICES_KM, languages=LANGUAGES)


routes = [
    Route("/network", network),
    Route("/network/posts", network_posts),
    Route("/network/lookup", lookup_action, methods=["POST"]),
    Route("/network/follow", follow_action, methods=["POST"]),
    Route("/network/unfollow", unfollow_action, methods=["POST"]),
]
