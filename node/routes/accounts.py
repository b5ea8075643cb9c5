"""Account pages: sign up, log in and out, invitations, roles, one's own settings (the
notification pages are node/routes/notifications.py). Every POST checks the CSRF token first
and changes nothing when it is wrong."""

from __future__ import annotations

from dataclasses import replace

from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from node.accounts import invitations, passwords, preferences, roles, signup_requests
from node.accounts.errors import FormError
from node.accounts.members import NewMember, create_member, member_actor, user_organisations
from node.actors import organisations
from node.auth import authenticate
from node.i18n import COOKIE, LOCALES, _, current_locale, language_cookie
from node.moderation.actions import is_suspended
from node.notices import flash
from node.ratelimit import RateLimited
from node.web_support import (
    CsrfError,
    check_csrf,
    client_address,
    current_user,
    local_path,
    login_redirect,
    node_of,
    rate_limited_text,
    render,
)


def _text(form: FormData, name: str, limit: int = 1000) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def _new_member(form: FormData) -> NewMember:
    return NewMember(
        email=_text(form, "email", 300), password=_text(form, "password", 1000),
        confirm=_text(form, "confirm", 1000), username=_text(form, "username", 100),
        display_name=_text(form, "display_name", 300), locale=_text(form, "locale", 10),
    )


def _sign_in(request: Request, user_id: str, response: Response, locale: str = "",
             notice: str | None = None) -> Response:
    # A new user in the session gives it a new id (node/accounts/sessions.py).
    request.session.clear()
    request.session["user_id"] = user_id
    if notice:
        flash(request, notice)
    if locale in LOCALES:
        response.set_cookie(**language_cookie(locale))
    return response


def _to_login(request: Request) -> Response:
    return login_redirect(request)


async def _csrf_refused(request: Request, template: str, **context: object) -> Response:
    return await render(request, template, status=403, errors={"form": _(
        "The form has expired or was not sent from this site; please try again.")}, **context)


# --- sign up, log in, log out ----------------------------------------------------------------

async def signup(request: Request) -> Response:
    node = node_of(request)
    orgs = await organisations(node)
    if request.method == "GET":
        return await render(request, "account/signup.html", errors={}, values={}, orgs=orgs)
    form = await request.form()
    values = {k: _text(form, k, 300) for k in ("email", "username", "display_name", "org")}
    try:
        check_csrf(request, form)
    except CsrfError:
        return await _csrf_refused(request, "account/signup.html", values=values, orgs=orgs)
    org = next((o for o in orgs if o.username == values["org"]), orgs[0] if orgs else None)
    new = _new_member(form)
    if not new.locale:
        new = replace(new, locale=current_locale())
    if node.settings.smtp_host:
        return await _signup_by_email(request, new, org, values, orgs)
    # No email: the node cannot check who owns an address, so the account is made at once.
    try:
        user_id = await create_member(node, new, org=org)
    except FormError as exc:
        return await render(request, "account/signup.html", status=400, errors=exc.errors,
                            values=values, orgs=orgs)
    return _sign_in(request, user_id, RedirectResponse("/account", status_code=303),
                    notice="welcome")


async def _signup_by_email(request: Request, new: NewMember, org, values: dict,
                           orgs: list) -> Response:
    """The same answer for a new address and a known one; the email makes the difference."""
    node = node_of(request)
    try:
        clean = await signup_requests.check(node, new)
    except FormError as exc:
        return await render(request, "account/signup.html", status=400, errors=exc.errors,
                            values=values, orgs=orgs)
    page = await render(request, "account/check_email.html", email=clean.email)
    page.background = BackgroundTask(signup_requests.request_signup, node, clean, org)
    return page


def _local_path(value: str | None) -> str:
    """A page of this node to go back to after signing in (never another site)."""
    return local_path(value)


async def login(request: Request) -> Response:
    if request.method == "GET":
        # After a password reset, the form waits with the member's address filled in.
        return await render(request, "login.html", error=None,
                            email=request.session.pop("login_email", ""),
                            next_path=_local_path(request.query_params.get("next")))
    form = await request.form()
    next_path = _local_path(_text(form, "next", 600))
    email = _text(form, "email", 300)
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await render(request, "login.html", error=str(exc), status=403,
                            next_path=next_path, email=email)
    node = node_of(request)
    try:
        user = await authenticate(node, email, _text(form, "password", 1000),
                                  address=client_address(request))
    except RateLimited as exc:
        page = await render(request, "login.html", error=rate_limited_text(exc), status=429,
                            next_path=next_path, email=email)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if user is None:
        return await render(request, "login.html", error=_("Wrong email or password."),
                            status=401, next_path=next_path, email=email)
    if await is_suspended(node, user["id"]):
        return await render(request, "login.html", status=403, next_path=next_path,
                            email=email, error=_("This account is suspended by the "
                                                 "moderators of this node."))
    locale = await node.db.fetch_val("SELECT locale FROM users WHERE id = :i", {"i": user["id"]})
    target = next_path or ("/admin" if user["role"] == "admin" else "/")
    return _sign_in(request, user["id"], RedirectResponse(target, status_code=303),
                    locale or "")


async def logout(request: Request) -> Response:
    if request.method == "POST":
        form = await request.form()
        try:
            check_csrf(request, form)
        except CsrfError:
            return RedirectResponse("/", status_code=303)
        request.session.clear()
    return RedirectResponse("/", status_code=303)


# --- one's own settings ----------------------------------------------------------------------

async def _account_page(request: Request, user: dict, errors: dict[str, str] | None = None,
                        status: int = 200) -> Response:
    node = node_of(request)
    actor = await member_actor(node, user)
    return await render(
        request, "account/profile.html", status=status, errors=errors or {},
        handle=f"@{actor.username}@{node.settings.host}" if actor else "",
        followed=await preferences.followed(node, user["id"]),
        categories=preferences.category_choices(),
        neighbourhoods=preferences.neighbourhood_choices(node),
        memberships=await user_organisations(node, user["id"]),
        role_labels=roles.ROLE_LABELS,
    )


async def account(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    if request.method == "GET":
        return await _account_page(request, user)
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _account_page(request, user, errors={"form": str(exc)}, status=403)
    locale = _text(form, "locale", 10)
    try:
        await preferences.save_settings(
            node_of(request), user["id"], display_name=_text(form, "display_name", 300),
            locale=locale,
            categories=[v for v in form.getlist("categories") if isinstance(v, str)],
            neighbourhoods=[v for v in form.getlist("neighbourhoods") if isinstance(v, str)],
        )
    except FormError as exc:
        return await _account_page(request, user, errors=exc.errors, status=400)
    flash(request, "settings_saved")
    response = RedirectResponse("/account", status_code=303)
    if locale:
        response.set_cookie(**language_cookie(locale))
    else:
        # "The language of my browser": forget an earlier explicit choice.
        response.delete_cookie(COOKIE, path="/")
    return response


# --- invitations -----------------------------------------------------------------------------

async def _inviting_org(request: Request, user: dict):
    """The organisation the coordinator invites into: one of their own (any, for an admin)."""
    node = node_of(request)
    mine = [org for org, _role in await user_organisations(node, user["id"])]
    if roles.is_admin(user):
        mine = await organisations(node)
    wanted = request.query_params.get("org")
    if wanted:
        return next((o for o in mine if o.username == wanted), None), mine
    return (mine[0] if mine else None), mine


async def _invitations_page(request: Request, user: dict, org, orgs, errors=None,
                            status: int = 200, created=None, values=None) -> Response:
    return await render(
        request, "account/invitations.html", status=status, errors=errors or {}, org=org,
        orgs=orgs, created=created, values=values or {},
        pending=await invitations.pending(node_of(request), org) if org else [],
        invitable=invitations.roles_invitable_by(user["role"]), role_labels=roles.ROLE_LABELS,
    )


async def invitations_page(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    if not roles.can_coordinate(user):
        return await render(request, "account/forbidden.html", status=403)
    org, orgs = await _inviting_org(request, user)
    if org is None:
        return await render(request, "account/forbidden.html", status=403)
    if request.method == "GET":
        return await _invitations_page(request, user, org, orgs)
    form = await request.form()
    values = {"email": _text(form, "email", 300), "role": _text(form, "role", 20)}
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _invitations_page(request, user, org, orgs, errors={"form": str(exc)},
                                       status=403, values=values)
    try:
        invitation = await invitations.create_invitation(
            node_of(request), org, values["email"], values["role"] or "member", user)
    except FormError as exc:
        return await _invitations_page(request, user, org, orgs, errors=exc.errors,
                                       status=400, values=values)
    return await _invitations_page(request, user, org, orgs, created=invitation)


async def accept_invite(request: Request) -> Response:
    node = node_of(request)
    token = request.path_params["token"]
    try:
        invitation = await invitations.find_usable(node, token)
    except FormError as exc:
        return await render(request, "account/invite.html", status=404, errors=exc.errors,
                            invitation=None, values={}, role_labels=roles.ROLE_LABELS)
    if request.method == "GET":
        return await render(request, "account/invite.html", errors={}, invitation=invitation,
                            values={}, role_labels=roles.ROLE_LABELS)
    form = await request.form()
    values = {k: _text(form, k, 300) for k in ("username", "display_name")}
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await render(request, "account/invite.html", status=403,
                            errors={"form": str(exc)}, invitation=invitation, values=values,
                            role_labels=roles.ROLE_LABELS)
    new = _new_member(form)
    new = replace(new, locale=new.locale or current_locale())
    try:
        user_id = await invitations.accept_invitation(node, token, new)
    except FormError as exc:
        return await render(request, "account/invite.html", status=400, errors=exc.errors,
                            invitation=invitation, values=values,
                            role_labels=roles.ROLE_LABELS)
    return _sign_in(request, user_id, RedirectResponse("/account", status_code=303),
                    notice="welcome")


# --- members: roles (admins) and reset links (coordinators and admins) ---------------------

async def _members_page(request: Request, user: dict, errors=None,
                        status: int = 200) -> Response:
    node = node_of(request)
    users = (await roles.all_users(node) if roles.is_admin(user)
             else await passwords.coordinated_members(node, user))
    return await render(request, "account/members.html", status=status, errors=errors or {},
                        users=users, role_labels=roles.ROLE_LABELS)


async def members(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    if not roles.can_coordinate(user):
        return await render(request, "account/forbidden.html", status=403)
    return await _members_page(request, user)


async def set_role(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    if not roles.is_admin(user):
        return await render(request, "account/forbidden.html", status=403)
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _members_page(request, user, errors={"form": str(exc)}, status=403)
    try:
        await roles.set_role(node_of(request), user, request.path_params["user_id"],
                             _text(form, "role", 20))
    except FormError as exc:
        return await _members_page(request, user, errors=exc.errors, status=400)
    flash(request, "role_changed")
    return RedirectResponse("/account/members", status_code=303)


routes = [
    Route("/signup", signup, methods=["GET", "POST"]),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["GET", "POST"]),
    Route("/account", account, methods=["GET", "POST"]),
    Route("/account/invitations", invitations_page, methods=["GET", "POST"]),
    Route("/account/members", members),
    Route("/account/members/{user_id}/role", set_role, methods=["POST"]),
    Route("/invite/{token}", accept_invite, methods=["GET", "POST"]),
]
