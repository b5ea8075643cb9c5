"""What every web page needs: the node, the signed-in user, CSRF tokens and templates."""

from __future__ import annotations

import dataclasses
import hmac
import math
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from node import i18n, notices
from node.actors import site_name
from node.config import REPO_ROOT
from node.context import Node
from node.generations import keep
from node.notifications import unread_count
from node.posts import places
from node.ratelimit import RateLimited

TEMPLATES = Environment(
    loader=FileSystemLoader(REPO_ROOT / "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)
# Translations, dates and numbers follow the locale of the request being rendered (node/i18n).
i18n.install(TEMPLATES)
# A place in the reader's language (Schaerbeek / Schaarbeek); a moment for <time datetime>.
TEMPLATES.filters["place"] = lambda name: places.local_name(name or "", i18n.current_locale())
TEMPLATES.filters["by_place_name"] = lambda choices: sorted(
    choices, key=lambda p: places.local_name(p.name, i18n.current_locale()).casefold())
TEMPLATES.filters["iso_date"] = lambda ts: (
    datetime.fromtimestamp(float(ts), i18n.TIMEZONE).date().isoformat() if ts is not None else "")


CARDS_HELD = 1024
_cards: dict[tuple[Any, ...], Markup] = {}


def post_card(card: Any, heading: str = "h3", extra: str = "") -> Markup:
    """One offer or need as every list shows it (the `card` macro of templates/_card.html),
    drawn once per process for each version of its row, byline, picture and excerpt, and
    each reader's language: the macro uses nothing else, and twenty of them cost a list page
    more than all its queries (bench/README.md)."""
    key = (i18n.current_locale(), heading, str(extra), tuple(card.post.items()), card.by,
           card.picture, card.excerpt, card.category)
    try:
        html = _cards.get(key)
    except TypeError:  # a value that cannot be a key: drawn, not kept
        key, html = None, None
    if html is None:
        html = Markup(TEMPLATES.get_template("_card.html").module.card(card, heading, extra))
        if key is not None:
            keep(_cards, key, html, CARDS_HELD)
    return html


TEMPLATES.globals["post_card"] = post_card


class CsrfError(Exception):
    """A form without this session's token. It carries the form, so that what was typed can
    be shown again (node/errors.py) by a route that does not draw its own form again."""

    def __init__(self, message: str, form: FormData | None = None) -> None:
        super().__init__(message)
        self.form = form


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
            "The form has expired or was not sent from this site; please try again."), form)


def local_path(value: str | None) -> str:
    """A page of this node to go back to (after signing in, from an error page); anything
    else gives "", so that no link of ours can send people to another site. Browsers read
    `//host`, `/\\host` and paths with tabs or line breaks in them as other sites."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return ""
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return ""
    return value[:500]


def login_target(request: Request) -> str:
    """The login page that brings the reader back to this very page, query included (for a
    form that was posted, to the page that held it)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method not in ("GET", "HEAD"):
        referer = urlsplit(request.headers.get("referer", ""))
        same_site = not referer.netloc or referer.netloc == request.url.netloc
        here = referer.path + (f"?{referer.query}" if referer.query else "") if same_site else ""
    return "/login?" + urlencode({"next": local_path(here) or "/"})


def login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(login_target(request), status_code=303)


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


async def branded_settings(node: Node) -> Any:
    """The settings as pages show them: `org_name` is the node's first organisation's name as
    its admin edited it (NODE_ORG_NAME only named the organisation at the first start)."""
    name = await site_name(node)
    if name == node.settings.org_name:
        return node.settings
    return dataclasses.replace(node.settings, org_name=name)


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
        settings=await branded_settings(node),
        lang=i18n.current_locale(),
        **context,
    )
    return HTMLResponse(page, status_code=status,
                        headers={"Vary": "Accept, Accept-Language, Cookie", **(headers or {})})


CONFIRMED = "yes"


async def confirm_first(request: Request, form: FormData, title: str, explanation: str,
                        button: str, back: str) -> Response | None:
    """None once the form says `confirm=yes`; else the page that asks first, without
    JavaScript: the same form again with `confirm=yes`, a button that looks destructive and a
    way out. `title`, `explanation` and `button` are already in the reader's language."""
    if form.get("confirm") == CONFIRMED:
        return None
    fields = [(name, value) for name, value in form.multi_items()
              if isinstance(value, str) and name not in ("csrf_token", "confirm")
              and "password" not in name.lower()]
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await render(request, "confirm_action.html", title=title, explanation=explanation,
                        button=button, fields=fields, action=here, back=local_path(back) or "/")
