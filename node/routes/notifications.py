"""Notification pages: the list (unread ones marked), opening one (read, then on to what it is
about), "mark all read", and which kinds of notification come by email. Every POST checks the
CSRF token first and changes nothing when it is wrong."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from node import matching, notifications
from node.context import Node
from node.i18n import _, current_locale
from node.notices import flash
from node.web_support import (
    CsrfError,
    check_csrf,
    current_user,
    login_redirect,
    node_of,
    render,
)

PAGE = 50


def _to_login(request: Request) -> Response:
    return login_redirect(request)


def _local_target(node: Node, url: str) -> str:
    """Where an opened notification leads: a page of this node only (never elsewhere)."""
    base = node.settings.base_url
    if url.startswith(base + "/"):
        url = url[len(base):]
    parts = urlsplit(url)
    if not url.startswith("/") or url.startswith("//") or parts.scheme or parts.netloc \
            or "\\" in url:
        return "/notifications"
    return url


async def _list_page(request: Request, user: dict, status: int = 200,
                     **context: object) -> Response:
    node = node_of(request)
    before = request.query_params.get("before")
    try:
        older_than = float(before) if before else None
    except ValueError:
        older_than = None
    items = await notifications.recent(node, user["id"], PAGE + 1, older_than)
    # The next page starts after the last one shown.
    older = items[PAGE - 1].created_at if len(items) > PAGE else None
    return await render(request, "notifications.html", status=status, items=items[:PAGE],
                        locale=current_locale(), older=older, **context)


async def notifications_page(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    return await _list_page(request, user)


async def notifications_read(request: Request) -> Response:
    """Mark all read."""
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _list_page(request, user, status=403, error=str(exc))
    await notifications.mark_all_read(node_of(request), user["id"])
    return RedirectResponse("/notifications", status_code=303)


async def open_notification(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    node = node_of(request)
    opened = await notifications.open_notification(
        node, user["id"], request.path_params["notification_id"])
    if opened is None:  # not theirs, or gone: the same answer either way
        return RedirectResponse("/notifications", status_code=303)
    return RedirectResponse(_local_target(node, opened.url), status_code=303)


async def email_settings(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    node = node_of(request)
    status = 200
    error = None
    if request.method == "POST":
        form = await request.form()
        try:
            check_csrf(request, form)
        except CsrfError as exc:
            status, error = 403, str(exc)
        else:
            frequency = form.get("match_frequency")
            if frequency is not None and frequency not in matching.FREQUENCIES:
                # A forged or stale form: nothing is saved, the page says why.
                status, error = 400, _("Choose how often you hear of matches from the list.")
            else:
                wanted = {v for v in form.getlist("email") if isinstance(v, str)}
                await notifications.set_email_opt_outs(
                    node, user["id"], [k for k in notifications.KIND_LABELS if k not in wanted])
                if isinstance(frequency, str):
                    await matching.set_frequency(node, user["id"], frequency)
                flash(request, "notification_choices_saved")
                return RedirectResponse("/notifications/settings", status_code=303)
    opted_out = await notifications.email_opt_outs(node, user["id"])
    return await render(request, "notification_settings.html", status=status,
                        kinds=list(notifications.KIND_LABELS.items()), opted_out=opted_out,
                        error=error, sends_email=bool(node.settings.smtp_host),
                        frequencies=list(matching.FREQUENCIES.items()),
                        match_frequency=await matching.frequency_of(node, user["id"]))


routes = [
    Route("/notifications", notifications_page),
    Route("/notifications/read", notifications_read, methods=["POST"]),
    Route("/notifications/settings", email_settings, methods=["GET", "POST"]),
    Route("/notifications/{notification_id:int}", open_notification),
]
