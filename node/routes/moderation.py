"""Moderation pages (admins: queue of reports, blocks, removals, suspensions), members' own
blocks and reports, and a member's data: export and account deletion. Every POST checks the
CSRF token first; every refusal says why and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from node import errors, i18n
from node.accounts import sessions
from node.auth import authenticate
from node.i18n import N_
from node.moderation import account_data, actions, blocks, domains, reports
from node.moderation.domains import ModerationError
from node.notices import flash
from node.ratelimit import RateLimited
from node.web_support import (
    CsrfError,
    check_csrf,
    client_address,
    confirm_first,
    current_user,
    node_of,
    rate_limited_text,
    render,
)

# An action returns the notice to show next (a key of node/notices.py) and its values.
Action = Callable[[Request, FormData, dict], Awaitable[tuple[str, dict[str, str]]]]


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def _login() -> Response:
    return RedirectResponse("/login", status_code=303)


# --- admins --------------------------------------------------------------------------------------

async def _queue_page(request: Request, error: str | None = None,
                      status: int = 200) -> Response:
    node = node_of(request)
    suspended = await node.db.fetch_all(
        "SELECT s.user_id, s.reason, u.email FROM suspensions s JOIN users u ON u.id = s.user_id "
        "ORDER BY s.created_at")
    return await render(
        request, "moderation/queue.html", status=status, error=error,
        reports=await reports.open_reports(node),
        domain_blocks=await domains.blocked_domains(node),
        actor_blocks=await blocks.blocked_by(node, blocks.NODE_WIDE),
        suspended=suspended,
    )


async def queue_view(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login()
    if user["role"] != "admin":
        errors.forbidden(N_("Moderation is for the node's admins."))
    return await _queue_page(request)


async def _block_domain(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    domain = await domains.block_domain(node_of(request), _text(form, "domain"),
                                        _text(form, "reason", 500), by=user["id"])
    return "domain_blocked", {"domain": domain}


async def _unblock_domain(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    if not await domains.unblock_domain(node_of(request), _text(form, "domain")):
        raise ModerationError("that domain was not blocked")
    return "domain_unblocked", {}


async def _block_actor(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    uri = await blocks.block_actor(node_of(request), blocks.NODE_WIDE, _text(form, "actor"))
    return "actor_blocked", {"actor": uri}


async def _unblock_actor(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    if not await blocks.unblock_actor(node_of(request), blocks.NODE_WIDE, _text(form, "actor")):
        raise ModerationError("that account was not blocked")
    return "actor_unblocked", {}


async def _resolve(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    await reports.resolve(node_of(request), _text(form, "report"), by=user["id"])
    return "report_closed", {}


async def _forward(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    await reports.forward(node_of(request), _text(form, "report"))
    return "report_forwarded", {}


# What actions.remove_post says it did, as a notice.
REMOVAL_NOTICES = {
    "withdrawn, and a Delete was sent to those who had it": "post_withdrawn",
    "hidden on this node": "post_hidden",
    "removed, and a Delete was sent to the author's followers": "post_removed",
}


async def _remove_post(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    done = await actions.remove_post(node_of(request), _text(form, "target"))
    return REMOVAL_NOTICES.get(done, "post_removed"), {}


async def _suspend(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    await actions.suspend(node_of(request), _text(form, "user"), _text(form, "reason", 500),
                          by=user["id"])
    return "account_suspended", {}


async def _unsuspend(request: Request, form: FormData, user: dict) -> tuple[str, dict]:
    await actions.unsuspend(node_of(request), _text(form, "user"))
    return "suspension_lifted", {}


ADMIN_ACTIONS: dict[str, Action] = {
    "block-domain": _block_domain, "unblock-domain": _unblock_domain,
    "block-actor": _block_actor, "unblock-actor": _unblock_actor,
    "resolve": _resolve, "forward": _forward, "remove-post": _remove_post,
    "suspend": _suspend, "unsuspend": _unsuspend,
}


async def admin_action(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login()
    if user["role"] != "admin":
        errors.forbidden(N_("Moderation is for the node's admins."))
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _queue_page(request, error=str(exc), status=403)
    action = ADMIN_ACTIONS.get(request.path_params["action"])
    if action is None:
        return await _queue_page(request, error=i18n.gettext("Unknown action."), status=404)
    if action is _remove_post:
        asking = await confirm_first(
            request, form, i18n.gettext("Remove this post?"),
            i18n.gettext("It leaves this node, and the servers that have it are told so when "
                         "it was written here. This cannot be undone."),
            i18n.gettext("Yes, remove it"), "/moderation")
        if asking is not None:
            return asking
    try:
        notice, values = await action(request, form, user)
    except ModerationError as exc:
        return await _queue_page(request, error=str(exc), status=400)
    flash(request, notice, **values)
    return RedirectResponse("/moderation", status_code=303)


# --- members: reports and their own blocks -------------------------------------------------------

async def report_view(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login()
    target = request.query_params.get("target", "")
    if request.method == "GET":
        return await render(request, "moderation/report.html", target=target, error=None,
                            done=False)
    form = await request.form()
    target = _text(form, "target")
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await render(request, "moderation/report.html", status=403, target=target,
                            error=str(exc), done=False)
    try:
        await reports.file_report(node_of(request), user["id"], target, _text(form, "reason"))
    except ModerationError as exc:
        return await render(request, "moderation/report.html", status=400, target=target,
                            error=str(exc), done=False)
    return await render(request, "moderation/report.html", target="", error=None, done=True)


async def blocks_view(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login()
    node = node_of(request)
    error, status = None, 200
    if request.method == "POST":
        form = await request.form()
        try:
            check_csrf(request, form)
            if form.get("unblock"):
                await blocks.unblock_actor(node, user["id"], _text(form, "actor"))
            else:
                await blocks.block_actor(node, user["id"], _text(form, "actor"))
            return RedirectResponse("/blocks", status_code=303)
        except CsrfError as exc:
            error, status = str(exc), 403
        except ModerationError as exc:
            error, status = str(exc), 400
    return await render(request, "moderation/blocks.html", status=status, error=error,
                        blocked=await blocks.blocked_by(node, user["id"]))


# --- members: their data -------------------------------------------------------------------------

async def data_export(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login()
    data = await account_data.export(node_of(request), user["id"])
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False, default=str),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-data.json"',
                 "Cache-Control": "no-store"},
    )


async def delete_view(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login()
    if request.method == "GET":
        return await render(request, "moderation/delete_account.html", error=None)
    form = await request.form()
    node = node_of(request)
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await render(request, "moderation/delete_account.html", error=str(exc),
                            status=403)
    # The password again: a borrowed, still signed-in phone must not erase someone's account.
    # Rate-limited like every password check (node/auth.py).
    try:
        checked = await authenticate(node, user["email"], _text(form, "password", 1000),
                                     address=client_address(request))
    except RateLimited as exc:
        page = await render(request, "moderation/delete_account.html", status=429,
                            error=rate_limited_text(exc))
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if checked is None:
        return await render(request, "moderation/delete_account.html", status=400,
                            error=i18n.gettext("The password is not right; nothing was deleted."))
    if form.get("confirm") != "yes":
        return await render(request, "moderation/delete_account.html", status=400,
                            error=i18n.gettext("Tick the box to confirm; nothing was deleted."))
    try:
        await account_data.delete_account(node, user["id"])
    except ModerationError as exc:
        return await render(request, "moderation/delete_account.html", status=400,
                            error=str(exc))
    await sessions.end_all(node, user["id"])
    request.session.clear()
    flash(request, "account_deleted")
    return RedirectResponse("/", status_code=303)


routes = [
    Route("/moderation", queue_view),
    Route("/moderation/{action}", admin_action, methods=["POST"]),
    Route("/report", report_view, methods=["GET", "POST"]),
    Route("/blocks", blocks_view, methods=["GET", "POST"]),
    Route("/me/data", data_export),
    Route("/me/delete", delete_view, methods=["GET", "POST"]),
]
