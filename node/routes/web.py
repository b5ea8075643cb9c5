"""Web pages of the node core: home and the organisation's federation admin."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from activitypub.transport import FetchError
from activitypub.webfinger import HandleError
from node import follows
from node.actors import actor_uri, by_username, organisations
from node.i18n import N_, _
from node.manifest import manifest
from node.notes import delete_note, publish_note
from node.notices import flash
from node.posts import queries
from node.posts.cards import cards as post_cards
from node.web_support import (
    CsrfError,
    check_csrf,
    confirm_first,
    current_user,
    node_of,
    render,
)

# The home page shows the newest open offers and needs, as the list's first cards.
HOME_CARDS = 6


async def home(request: Request) -> Response:
    """What the network is, the two ways in (I need help / I can help), then what is open."""
    node = node_of(request)
    user = await current_user(request)
    listing = await queries.list_posts(node, queries.Filters(), signed_in=user is not None)
    return await render(request, "home.html", orgs=await organisations(node), listing=listing,
                        cards=await post_cards(node, listing.rows[:HOME_CARDS]))


async def _admin_org(request: Request):
    user = await current_user(request)
    if user is None or user["role"] != "admin":
        return None, None
    node = node_of(request)
    name = request.query_params.get("org") or request.path_params.get("org")
    org = await by_username(node, name, "Group") if name else None
    if org is None:
        orgs = await organisations(node)
        org = orgs[0] if orgs else None
    return user, org


async def admin(request: Request) -> Response:
    user, org = await _admin_org(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return await _admin_page(request, org)


async def _admin_page(request: Request, org, error=None, status=200) -> Response:
    node = node_of(request)
    uri = actor_uri(node, org)
    return await render(
        request, "admin.html", status=status, org=org, uri=uri, error=error,
        handle=f"@{org.username}@{node.settings.host}",
        followers=await follows.followers(node, uri),
        requests=await follows.followers(node, uri, state="pending"),
        following=await follows.following(node, uri),
        orgs=await organisations(node),
        deliveries=await node.db.fetch_all(
            "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state ORDER BY state"),
    )


# Admin actions that ask first: title, explanation and button of the confirmation page.
DESTRUCTIVE = {
    "unfollow": (N_("Stop following this organisation?"),
                 N_("Its offers and needs will leave your lists. You can follow it again "
                    "later."), N_("Yes, unfollow")),
    "delete-note": (N_("Delete this note?"),
                    N_("It is deleted here, and the servers that have it are told to delete "
                       "it too. This cannot be undone."), N_("Yes, delete it")),
}


def _refusal(action: str, exc: Exception) -> str:
    """Why an admin action did nothing, in the reader's language (never the exception's
    English text)."""
    if action == "follow":
        return follows.why_not_followed(exc)
    if action == "note":
        return _("A note needs some text, at most 5000 characters.")
    return _("This could not be done: nothing was changed. Reload the page and try again.")


async def admin_action(request: Request) -> Response:
    user, org = await _admin_org(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    node = node_of(request)
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _admin_page(request, org, error=str(exc), status=403)
    action = request.path_params["action"]
    target = str(form.get("target", "")).strip()
    if action in DESTRUCTIVE:
        title, explanation, button = DESTRUCTIVE[action]
        asking = await confirm_first(request, form, _(title), _(explanation), _(button),
                                     "/admin?" + urlencode({"org": org.username}))
        if asking is not None:
            return asking
    try:
        if action == "follow":
            remote = await follows.follow_handle(node, org, target)
            flash(request, "follow_sent", handle=remote.handle)
        elif action == "unfollow":
            await follows.unfollow(node, org, target)
            flash(request, "unfollowed")
        elif action in ("accept", "reject"):
            await follows.answer_follow(node, org, target, accept=action == "accept")
            flash(request, "follow_accepted" if action == "accept" else "follow_refused")
        elif action == "note":
            note = await publish_note(node, org, str(form.get("text", "")))
            flash(request, "note_published", id=note["id"])
        elif action == "delete-note":
            await delete_note(node, org, target)
            flash(request, "note_deleted")
        else:
            return await _admin_page(request, org, error=_("Unknown action."), status=404)
    except (HandleError, ValueError, FetchError) as exc:
        return await _admin_page(request, org, error=_refusal(action, exc), status=400)
    return RedirectResponse("/admin?" + urlencode({"org": org.username}), status_code=303)


async def manifest_view(request: Request) -> Response:
    return JSONResponse(await manifest(node_of(request)), media_type="application/manifest+json")


routes = [
    Route("/", home),
    Route("/manifest.webmanifest", manifest_view),
    Route("/admin", admin),
    Route("/admin/{action}", admin_action, methods=["POST"]),
]
