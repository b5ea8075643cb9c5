"""The desk of an organisation (its coordinators' workspace), its paper list of open offers
and needs (a printable page and a PDF), and the organisation's choice of who sees a need posted
on behalf of someone."""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from node import desk, errors, paper_pdf
from node.actors import LocalActor, actor_uri, by_username
from node.db import now
from node.i18n import N_, TIMEZONE, current_locale
from node.notices import flash
from node.posts import categories, parties, service
from node.routes.posts import LANGUAGES
from node.web_support import CsrfError, check_csrf, current_user, login_redirect, node_of, render

NOT_YOURS = N_("Only the coordinators of this organisation can open its desk.")
RECENT_PDFS = paper_pdf.RecentPdfs()


async def _organisation(request: Request) -> LocalActor:
    org = await by_username(node_of(request), request.path_params["username"], "Group")
    if org is None:
        errors.not_found()
    return org


async def _desk_user(request: Request, org: LocalActor) -> tuple[dict | None, Response | None]:
    user = await current_user(request)
    if user is None:
        return None, login_redirect(request)
    if not await desk.may_use_desk(node_of(request), user, org):
        errors.forbidden(NOT_YOURS)
    return user, None


async def choose_view(request: Request) -> Response:
    """/desk: the member's own desk, or the list when they coordinate several organisations."""
    user = await current_user(request)
    if user is None:
        return login_redirect(request)
    orgs = await desk.managed_organisations(node_of(request), user)
    if not orgs and user["role"] in parties.MANAGERS:
        # The menu shows "Desk" to every coordinator; one of no organisation yet is told why
        # the page is empty and who can change it, not refused.
        return await render(request, "desk_choose.html", orgs=[])
    if not orgs:
        errors.forbidden(NOT_YOURS)
    if len(orgs) == 1:
        return RedirectResponse(f"/groups/{orgs[0].username}/desk", status_code=303)
    return await render(request, "desk_choose.html", orgs=orgs)


async def desk_view(request: Request) -> Response:
    org = await _organisation(request)
    user, refusal = await _desk_user(request, org)
    if refusal is not None:
        return refusal
    node = node_of(request)
    filters = desk.DeskFilters.from_query(dict(request.query_params))
    rows = await desk.desk_rows(node, org, filters, user)
    _, names = await desk.notes_readers(node, actor_uri(node, org))
    return await render(
        request, "desk.html", org=org, rows=rows, filters=filters, notes_names=names,
        statuses=desk.STATUS_FILTERS, waiting_total=sum(1 for r in rows if r.waiting),
        headers={"Cache-Control": "private, no-store"})


async def visibility_view(request: Request) -> Response:
    """The organisation settings page's form: who sees a need posted on behalf of someone."""
    org = await _organisation(request)
    user, refusal = await _desk_user(request, org)
    if refusal is not None:
        return refusal
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        raise errors.PageError(403, str(exc)) from None
    if not await desk.set_proxied_visibility(node_of(request), org,
                                             str(form.get("proxied_visibility", ""))):
        raise errors.PageError(400, N_("Choose who can see the post."))
    flash(request, "saved")
    return RedirectResponse(f"/admin/organisations/{org.username}#desk-settings",
                            status_code=303)


def _paper_query(request: Request, filters: desk.PaperFilters) -> str:
    values = {"neighbourhood": filters.neighbourhood, "category": filters.category,
              "language": filters.language, "lang": current_locale()}
    return urlencode({k: v for k, v in values.items() if v})


async def paper_view(request: Request) -> Response:
    """The printable list (public: it holds only public posts)."""
    node = node_of(request)
    org = await _organisation(request)
    filters = desk.PaperFilters.from_query(dict(request.query_params))
    posts = await desk.paper_posts(node, org, filters)
    return await render(
        request, "paper.html", org=org, posts=posts, filters=filters,
        qr={p["id"]: desk.qr_svg(p["url"]) for p in posts}, printed_on=now(),
        categories=categories.CATEGORIES, neighbourhoods=service.neighbourhoods(node),
        languages=LANGUAGES, pdf_url=f"/groups/{org.username}/paper.pdf?"
        + _paper_query(request, filters),
        may_desk=await desk.may_use_desk(node, await current_user(request), org))


def _pdf(org: LocalActor, posts: list[dict]) -> bytes:
    return paper_pdf.build(paper_pdf.desk_of(org), posts,
                           {p["id"]: desk.qr_png(p["url"]) for p in posts}, now())


async def paper_pdf_view(request: Request) -> Response:
    node = node_of(request)
    org = await _organisation(request)
    posts = await desk.paper_posts(node, org,
                                   desk.PaperFilters.from_query(dict(request.query_params)))
    key = (org.id, paper_pdf.desk_of(org), current_locale(),
           datetime.now(TIMEZONE).date().isoformat(),
           tuple((p["id"], p["updated_at"]) for p in posts))
    pdf = RECENT_PDFS.get(key)
    if pdf is None:
        # Drawing the codes and pages is CPU work: off the event loop (the reader's locale
        # goes along with the context).
        pdf = await asyncio.to_thread(_pdf, org, posts)
        RECENT_PDFS.put(key, pdf)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{org.username}-{current_locale()}.pdf"'})


routes = [
    Route("/desk", choose_view),
    Route("/groups/{username}/desk", desk_view),
    Route("/groups/{username}/desk/visibility", visibility_view, methods=["POST"]),
    Route("/groups/{username}/paper", paper_view),
    Route("/groups/{username}/paper.pdf", paper_pdf_view),
]
