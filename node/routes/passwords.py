"""Password pages: change one's password, "sign out everywhere", forgot my password (a link by
email), the reset link's page, the link a coordinator makes for a member, and the sign-up
confirmation link. Every POST checks the CSRF token first and changes nothing when it is
wrong; the answers to "forgot" and to sign-up never tell whether an address has an account."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from node.accounts import passwords, roles, sessions, signup_requests
from node.accounts.errors import FormError
from node.i18n import _, current_locale
from node.notices import flash
from node.ratelimit import RateLimited, limiter_of
from node.web_support import (
    CsrfError,
    check_csrf,
    client_address,
    current_user,
    node_of,
    rate_limited_text,
    render,
)

NO_STORE = {"Cache-Control": "no-store"}


def _text(form: FormData, name: str, limit: int = 1000) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def _to_login(request: Request) -> Response:
    return RedirectResponse("/login", status_code=303)


def _csrf_text() -> str:
    return _("The form has expired or was not sent from this site; please try again.")


# --- one's own password and sessions ---------------------------------------------------------

async def change_password(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    if request.method == "GET":
        return await render(request, "account/password.html", errors={})
    form = await request.form()
    try:
        check_csrf(request, form)
        await passwords.change_password(
            node_of(request), user, _text(form, "current"), _text(form, "password"),
            _text(form, "confirm"), address=client_address(request),
            session=request.session)  # type: ignore[arg-type]
    except CsrfError:
        return await render(request, "account/password.html", status=403,
                            errors={"form": _csrf_text()})
    except RateLimited as exc:
        page = await render(request, "account/password.html", status=429,
                            errors={"form": rate_limited_text(exc)})
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    except FormError as exc:
        return await render(request, "account/password.html", status=400, errors=exc.errors)
    flash(request, "password_changed")
    return RedirectResponse("/account", status_code=303)


async def sign_out_everywhere(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError:
        return RedirectResponse("/account", status_code=303)
    await sessions.end_all(node_of(request), user["id"])
    request.session.clear()
    flash(request, "signed_out_everywhere")
    return RedirectResponse("/login", status_code=303)


# --- forgot my password, and the reset link ---------------------------------------------------

async def forgot(request: Request) -> Response:
    if request.method == "GET":
        return await render(request, "account/forgot.html", errors={}, sent_to=None)
    form = await request.form()
    email = _text(form, "email", 300).strip()
    try:
        check_csrf(request, form)
        limiter_of(node_of(request)).check_reset(client_address(request))
    except CsrfError:
        return await render(request, "account/forgot.html", status=403, sent_to=None,
                            errors={"form": _csrf_text()})
    except RateLimited as exc:
        page = await render(request, "account/forgot.html", status=429, sent_to=None,
                            errors={"form": rate_limited_text(exc)})
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    # The answer leaves before the address is even looked up: same page, same time for all.
    page = await render(request, "account/forgot.html", errors={}, sent_to=email)
    page.background = BackgroundTask(passwords.request_reset, node_of(request), email,
                                     current_locale())
    return page


async def reset(request: Request) -> Response:
    node = node_of(request)
    token = request.path_params["token"]
    # Opening the link changes nothing (mail scanners open links); only the form uses it.
    owner = await passwords.usable_reset(node, token)
    if owner is None:
        return await render(request, "account/reset.html", status=404, errors={},
                            invalid=passwords.invalid_link_text(), headers=NO_STORE)
    if request.method == "GET":
        return await render(request, "account/reset.html", errors={}, invalid=None,
                            email=owner["email"], headers=NO_STORE)
    form = await request.form()
    try:
        check_csrf(request, form)
        user = await passwords.use_reset(node, token, _text(form, "password"),
                                         _text(form, "confirm"))
    except CsrfError:
        return await render(request, "account/reset.html", status=403, invalid=None,
                            email=owner["email"], errors={"form": _csrf_text()})
    except FormError as exc:
        return await render(request, "account/reset.html", status=400, invalid=None,
                            email=owner["email"], errors=exc.errors)
    # Every session of the member ended, this browser's too; the login form waits with the
    # address filled in.
    request.session.clear()
    request.session["login_email"] = user["email"]
    flash(request, "password_reset_done")
    return RedirectResponse("/login", status_code=303)


async def start_reset_for_member(request: Request) -> Response:
    """A coordinator or admin makes a one-time link for a member, shown once on this page."""
    user = await current_user(request)
    if user is None:
        return _to_login(request)
    if not roles.can_coordinate(user):
        return await render(request, "account/forbidden.html", status=403)
    form = await request.form()
    try:
        check_csrf(request, form)
        link, member = await passwords.start_reset_for(node_of(request), user,
                                                       request.path_params["user_id"])
    except CsrfError:
        return RedirectResponse("/account/members", status_code=303)
    except FormError:
        return await render(request, "account/forbidden.html", status=403)
    return await render(request, "account/reset_link.html", member=member,
                        url=node_of(request).url(link.path), expires_at=link.expires_at,
                        headers=NO_STORE)


# --- sign-up confirmation link -----------------------------------------------------------------

async def confirm_signup(request: Request) -> Response:
    node = node_of(request)
    token = request.path_params["token"]
    if request.method == "GET":
        waiting = await signup_requests.pending(node, token)
        return await render(request, "account/confirm_signup.html",
                            status=200 if waiting else 404, waiting=waiting, errors={},
                            headers=NO_STORE)
    form = await request.form()
    try:
        check_csrf(request, form)
        user_id = await signup_requests.confirm(node, token)
    except CsrfError:
        return await render(request, "account/confirm_signup.html", status=403,
                            waiting=await signup_requests.pending(node, token),
                            errors={"form": _csrf_text()})
    except FormError as exc:
        return await render(request, "account/confirm_signup.html", status=400, waiting=None,
                            errors=exc.errors)
    request.session.clear()
    request.session["user_id"] = user_id
    flash(request, "welcome")
    return RedirectResponse("/account", status_code=303)


routes = [
    Route("/account/password", change_password, methods=["GET", "POST"]),
    Route("/account/sign-out-everywhere", sign_out_everywhere, methods=["POST"]),
    Route("/password/forgot", forgot, methods=["GET", "POST"]),
    Route("/password/reset/{token}", reset, methods=["GET", "POST"]),
    Route("/account/members/{user_id}/reset", start_reset_for_member, methods=["POST"]),
    Route("/signup/confirm/{token}", confirm_signup, methods=["GET", "POST"]),
]
