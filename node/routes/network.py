"""The network page: any member follows organisations of other nodes (by handle or profile link),
sees whom they follow and whom their organisation follows, and unfollows.

The follower is the member's own Person actor, so the follow is theirs: the remote organisation
lists them among its followers, and their unfollowing touches nobody else's. The organisation's
own follows (its Group actor) stay an admin matter on /admin. Once a follow is accepted, the
organisation's earlier open offers and needs are fetched in the background (node/backfill.py)
and join the list of posts."""

from __future__ import annotations

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
from node.timeline import author_of
from node.web_support import (
    CsrfError,
    check_csrf,
    confirm_first,
    current_user,
    node_of,
    render,
)

TARGET_MAX = 500


async def _followed(request: Request, follower: str) -> list[dict]:
    """Whom an actor of ours follows, by name, with how its backfill went."""
    node = node_of(request)
    rows = await follows.following(node, follower)
    done = await backfill.states(node, [r["uri"] for r in rows])
    return [{"uri": r["uri"], "state": r["state"], "who": await author_of(node, r["uri"]),
             "backfill": done.get(r["uri"])} for r in rows]


async def _page(request: Request, user: dict, error: str = "", target: str = "",
                status: int = 200) -> Response:
    node = node_of(request)
    me = await member_actor(node, user)
    mine = await _followed(request, actor_uri(node, me)) if me is not None else []
    orgs = [(org, await _followed(request, actor_uri(node, org)))
            for org, _role in await user_organisations(node, user["id"])]
    return await render(request, "network.html", status=status, mine=mine, orgs=orgs,
                        error=error, target=target)


def _login(request: Request) -> Response:
    return RedirectResponse("/login?" + urlencode({"next": "/network"}), status_code=303)


async def network(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login(request)
    return await _page(request, user)


def _why(exc: Exception) -> str:
    """What the member reads when a follow cannot be made (the exception's own text is for
    the log: it is in English and names internals)."""
    if isinstance(exc, follows.LocalTarget):
        return _("This organisation is on this node: its posts are already in the list.")
    if isinstance(exc, HandleError):
        return _("Write a handle such as @food@other.example, or paste the link of the "
                 "organisation's profile page.")
    return _("No organisation answered at this address. Check the handle or the link, or try "
             "again later.")


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
        return await _page(request, user, _why(HandleError(target)), target, status=400)
    try:
        remote, sent = await follows.follow(node, me, target)
    except (HandleError, FetchError, ValueError) as exc:
        return await _page(request, user, _why(exc), target, status=400)
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


routes = [
    Route("/network", network),
    Route("/network/follow", follow_action, methods=["POST"]),
    Route("/network/unfollow", unfollow_action, methods=["POST"]),
]
