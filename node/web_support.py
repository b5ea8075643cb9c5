"""What every web page needs: the node, the signed-in user, CSRF tokens and templates."""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse

from node import i18n, notices
from node.config import REPO_ROOT
from node.context import Node
from node.notifications import unread_count
from node.ratelimit import RateLimited

TEMPLATES = Environment(
    loader=FileSystemLoader(REPO_ROOT / "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)
# Translations, dates and numbers follow the locale of the request being rendered (node/i18n).
i18n.install(TEMPLATES)


class CsrfError(Exception):
    pass


def node_of(request: Request) -> Node:
    return request.app.state.node


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


class LazyCsrfToken:
    """`{{ csrf_token }}` in a template: the token is made (and a visitor's session stored)
    only by a page that really holds a form."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def __str__(self) -> str:
        return csrf_token(self.request)

    __html__ = __str__


def check_csrf(request: Request, form: FormData) -> None:
    expected = request.session.get("csrf")
    given = form.get("csrf_token")
    if not expected or not isinstance(given, str) or not hmac.compare_digest(expected, given):
        raise CsrfError(i18n.gettext(
            "The form has expired or was not sent from this site; please try again."))


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limited_text(exc: RateLimited) -> str:
    """What a form says when a rate limit refused it, in the reader's language."""
    minutes = max(1, math.ceil(exc.retry_after / 60))
    return i18n.ngettext("Too many attempts. Try again in %(n)s minute.",
                         "Too many attempts. Try again in %(n)s minutes.", minutes) % {
                             "n": minutes}


async def current_user(request: Request) -> dict | None:
    user_id = request.session.get("user_id")
    if not user_id:
        return None
    return await node_of(request).db.fetch_one(
        "SELECT id, email, role, actor_id, display_name, locale FROM users WHERE id = :i",
        {"i": user_id},
    )


async def render(
    request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
    **context: Any
) -> HTMLResponse:
    node = node_of(request)
    user = await current_user(request)
    unread = await unread_count(node, user["id"]) if user is not None else 0
    context.setdefault("notice", notices.take(request))
    page = TEMPLATES.get_template(template).render(
        request=request,
        user=user,
        unread_notifications=unread,
        csrf_token=LazyCsrfToken(request),
        settings=node.settings,
        lang=i18n.current_locale(),
        **context,
    )
    return HTMLResponse(page, status_code=status,
                        headers={"Vary": "Accept, Accept-Language, Cookie", **(headers or {})})
