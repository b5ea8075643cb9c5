"""Every error answer in one place: an HTML page in the reader's language, with the status kept
and a way back, for a browser; JSON for ActivityPub and other programs.

Routes raise `PageError` (or starlette's `HTTPException`, as the router does for unknown
addresses and wrong methods); the handlers installed by `install` turn it into the answer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from node import i18n
from node.i18n import N_
from node.negotiation import json_response, wants_activity_json
from node.ratelimit import RateLimited
from node.web_support import (
    TEMPLATES,
    CsrfError,
    LazyCsrfToken,
    current_user,
    local_path,
    login_target,
    rate_limited_text,
    render,
)

log = logging.getLogger(__name__)

# Title and explanation of each status; msgids in English, shown translated.
TEXTS: dict[int, tuple[str, str]] = {
    400: (N_("This request could not be understood"),
          N_("Something in the address or in what was sent was not right. Go back and try "
             "again.")),
    401: (N_("Please sign in"), N_("This page is for the members of this node.")),
    403: (N_("Not allowed"), N_("Your account cannot do this here.")),
    404: (N_("Page not found"),
          N_("There is nothing at this address. The link may be mistyped, or what it showed "
             "was removed.")),
    405: (N_("This cannot be done here"),
          N_("This address does not take this kind of request. Use the links and buttons of "
             "the site.")),
    410: (N_("No longer available"), N_("What was here was removed by its author.")),
    413: (N_("Too large"), N_("What was sent is too large for this node.")),
    429: (N_("Too many attempts"), N_("Please wait a little before trying again.")),
    500: (N_("Something went wrong on our side"),
          N_("The problem is recorded and nothing you did caused it. Please try again in a "
             "moment.")),
}
# The JSON words of the former answers, kept for the programs that read them.
JSON_WORDS = {404: "not found", 500: "internal server error"}


class PageError(HTTPException):
    """An error answer with, optionally, a more precise explanation (an English msgid, shown
    translated to a browser and as it is to a program)."""

    def __init__(self, status: int, explanation: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, headers=headers)
        self.explanation = explanation


def not_found(explanation: str | None = None) -> NoReturn:
    raise PageError(404, explanation)


def forbidden(explanation: str | None = None) -> NoReturn:
    raise PageError(403, explanation)


def wants_json(request: Request) -> bool:
    """Programs get JSON: ActivityPub and JSON clients, and anything posted to an inbox."""
    return wants_activity_json(request) or request.url.path.endswith("/inbox")


def _previous_page(request: Request) -> str:
    """The page the reader came from, if it is a page of this node (never another site)."""
    referer = request.headers.get("referer", "")
    if not referer:
        return ""
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return ""
    path = local_path(parts.path + (f"?{parts.query}" if parts.query else ""))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "" if path == here else path


def _locale_of(request: Request) -> str:
    """The reader's language, also for answers given outside the locale middleware."""
    return i18n.negotiate(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE),
                          request.headers.get("accept-language", ""))


async def error_page(request: Request, status: int, explanation: str | None = None,
                     headers: Mapping[str, str] | None = None,
                     detail: str | None = None) -> Response:
    """The answer to an error: JSON for a program, else the page. `explanation` is an English
    msgid; `detail` an already translated sentence added below it (a wait, a reason)."""
    title, default = TEXTS.get(status, TEXTS[400] if status < 500 else TEXTS[500])
    if wants_json(request):
        word = explanation or JSON_WORDS.get(status) or title
        answer = json_response({"error": word}, status=status)
        answer.headers.update(headers or {})
        return answer
    token = i18n.set_locale(_locale_of(request))
    try:
        context: dict[str, Any] = {
            "code": status, "title": i18n.gettext(title),
            "explanation": i18n.gettext(explanation or default), "detail": detail,
            "previous": _previous_page(request), "login_next": None,
        }
        user = await _user_or_none(request)
        if status in (401, 403) and user is None:
            context["login_next"] = login_target(request)
        if status >= 500 or "session" not in request.scope:
            # Outside the session (a rate limit at the door) or while something is broken:
            # the page is drawn without the database.
            page = _bare_page(request, context)
        else:
            page = await render(request, "error.html", status=status, **context)
    finally:
        i18n.reset_locale(token)
    page.status_code = status
    page.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        page.headers[name] = value
    return page


async def _user_or_none(request: Request) -> dict | None:
    if "session" not in request.scope:
        return None
    try:
        return await current_user(request)
    except Exception:  # the database may be what failed
        return None


def _bare_page(request: Request, context: dict[str, Any]) -> HTMLResponse:
    node = request.app.state.node
    page = TEMPLATES.get_template("error.html").render(
        request=request, user=None, unread_notifications=0, notice=None,
        csrf_token=LazyCsrfToken(request), settings=node.settings, lang=i18n.current_locale(),
        **context)
    return HTMLResponse(page, headers={"Vary": "Accept, Accept-Language, Cookie"})


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    explanation = exc.explanation if isinstance(exc, PageError) else None
    return await error_page(request, exc.status_code, explanation, exc.headers)


async def rate_limited_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    token = i18n.set_locale(_locale_of(request))
    try:
        wait = rate_limited_text(exc)
    finally:
        i18n.reset_locale(token)
    return await error_page(request, 429, headers={"Retry-After": str(exc.retry_after)},
                            detail=wait)


async def server_error_handler(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log, never to the page.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return await error_page(request, 500)


async def csrf_handler(request: Request, exc: Exception) -> Response:
    """A form whose token expired (or that came from elsewhere), when its route does not draw
    its own form again: what was typed comes back in a form to send again with a new token."""
    if wants_json(request):
        return await error_page(request, 403, N_("The form has expired."))
    form = getattr(exc, "form", None)
    fields = [(name, value) for name, value in (form.multi_items() if form else [])
              if isinstance(value, str) and name != "csrf_token"
              and "password" not in name.lower()]
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await render(request, "form_expired.html", status=403, fields=fields, action=here,
                        previous=_previous_page(request))


def exception_handlers() -> dict[Any, Any]:
    """For `Starlette(exception_handlers=...)`."""
    return {
        HTTPException: http_exception_handler,
        RateLimited: rate_limited_handler,
        CsrfError: csrf_handler,
        Exception: server_error_handler,
    }
