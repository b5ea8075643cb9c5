"""Impact pages: an organisation's figures (public summary; every figure for its coordinators
and the admins) and the whole node's for admins, each as a page with charts drawn on the
server and as a CSV download."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from node import impact
from node.actors import LocalActor, actor_uri, by_username, organisations
from node.i18n import N_
from node.posts import categories
from node.posts.queries import MANAGERS
from node.web_support import current_user, node_of, render

DIMENSION_TITLES = {
    "month": N_("By month"),
    "category": N_("By category"),
    "neighbourhood": N_("By neighbourhood"),
}


async def _coordinates(request: Request, user: dict | None, org: LocalActor) -> bool:
    """Admins, and the organisation's own coordinators, see every figure."""
    if user is None:
        return False
    if user["role"] == "admin":
        return True
    role = await node_of(request).db.fetch_val(
        "SELECT role FROM memberships WHERE user_id = :u AND org_id = :o",
        {"u": user["id"], "o": org.id})
    return role in MANAGERS


async def _organisation(request: Request) -> LocalActor:
    org = await by_username(node_of(request), request.path_params["username"], "Group")
    if org is None:
        raise HTTPException(404)
    return org


def _csv(figures: impact.Impact, name: str) -> Response:
    return Response(impact.to_csv(figures), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="impact-{name}.csv"',
        "Cache-Control": "private, no-store" if figures.full else "no-cache"})


async def _page(request: Request, figures: impact.Impact, org: LocalActor | None,
                csv_url: str, per_org: list | None = None) -> Response:
    return await render(
        request, "impact.html", figures=figures, org=org, csv_url=csv_url, per_org=per_org,
        small=impact.SMALL, dimensions=impact.DIMENSIONS, titles=DIMENSION_TITLES,
        charts={d: impact.chart(figures.groups[d]) for d in impact.DIMENSIONS},
        hours=impact.hours_shown, categories_by_key=categories.BY_KEY,
        headers={"Cache-Control": "private, no-store"} if figures.full else None)


async def organisation_view(request: Request) -> Response:
    node = node_of(request)
    org = await _organisation(request)
    full = await _coordinates(request, await current_user(request), org)
    figures = await impact.figures(node, actor_uri(node, org), full=full)
    return await _page(request, figures, org, f"/groups/{org.username}/impact.csv")


async def organisation_csv(request: Request) -> Response:
    node = node_of(request)
    org = await _organisation(request)
    full = await _coordinates(request, await current_user(request), org)
    return _csv(await impact.figures(node, actor_uri(node, org), full=full), org.username)


async def _admin(request: Request) -> Response | None:
    user = await current_user(request)
    if user is None:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}),
                                status_code=303)
    if user["role"] != "admin":
        raise HTTPException(403)
    return None


async def node_view(request: Request) -> Response:
    refusal = await _admin(request)
    if refusal is not None:
        return refusal
    node = node_of(request)
    per_org = [(org, (await impact.figures(node, actor_uri(node, org), full=True)).total)
               for org in await organisations(node)]
    return await _page(request, await impact.figures(node, None, full=True), None,
                       "/impact.csv", per_org)


async def node_csv(request: Request) -> Response:
    refusal = await _admin(request)
    if refusal is not None:
        return refusal
    return _csv(await impact.figures(node_of(request), None, full=True), "node")


routes = [
    Route("/impact", node_view),
    Route("/impact.csv", node_csv),
    Route("/groups/{username}/impact", organisation_view),
    Route("/groups/{username}/impact.csv", organisation_csv),
]
