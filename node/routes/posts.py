"""Pages of offers and needs: list, post page (also ActivityPub), new / edit forms, status
changes, responses, the author's view of responses and each response's conversation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlencode

import orjson
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from activitypub.vocab import AS_CONTEXT
from node import errors, matching, notifications
from node.actors import by_username
from node.desk import for_post_form, for_post_page, new_post_defaults
from node.generations import held, keep
from node.i18n import N_, current_locale
from node.moderation.blocks import hidden_from
from node.negotiation import activity_response, encode, wants_activity_json
from node.notices import flash
from node.posts import categories, parties, privacy, publishing, queries, responses, service, wire
from node.posts import languages as written_languages
from node.posts import photos as post_photos
from node.posts.cards import cards as post_cards
from node.posts.responses import ResponseError
from node.posts.text import _
from node.posts.validation import (
    KINDS,
    TIMEZONE,
    UNITS,
    VISIBILITIES,
    PostError,
)
from node.routes.signed_fetch import signed_fetch
from node.timeline import bylines
from node.web_support import (
    TEMPLATES,
    CsrfError,
    check_csrf,
    current_user,
    login_redirect,
    node_of,
    render,
)

LANGUAGES = ("fr", "nl", "en", "ar", "es", "pt", "ro", "ru", "tr", "uk", "de", "it", "pl")
STATUS_ACTIONS = {"withdraw": "withdrawn", "fulfil": "fulfilled"}
CONFIRMED = "yes"


def _fallback_date(value: Any, format: str = "medium") -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(float(value), UTC).astimezone(TIMEZONE).strftime("%d/%m/%Y")


# The i18n layer installs locale-aware filters; these keep pages working without it.
TEMPLATES.filters.setdefault("date", _fallback_date)
# A post's title and text in the reader's language, with the mark of the language shown.
TEMPLATES.globals["post_text"] = written_languages.shown


def _choices(node: Any) -> dict[str, Any]:
    return {
        "categories": categories.CATEGORIES, "categories_by_key": categories.BY_KEY,
        "neighbourhoods": service.neighbourhoods(node),
        "kinds": KINDS, "units": UNITS, "visibilities": VISIBILITIES, "languages": LANGUAGES,
        "written_languages": written_languages.WRITTEN,
    }


def _date_value(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).astimezone(TIMEZONE).strftime("%Y-%m-%d")


def _not_found() -> NoReturn:
    errors.not_found()


def _login_redirect(request: Request) -> Response:
    return login_redirect(request)


async def _form(request: Request) -> tuple[FormData, str | None]:
    """The posted form and a CSRF error message, if the form did not come from our page."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > post_photos.MAX_FORM_BYTES:
        raise errors.PageError(413, N_("The photos are too large together: send at most four "
                                       "photos of 5 MB each."))
    form = await request.form(max_files=post_photos.MAX_PHOTOS * 2)
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return form, str(exc)
    return form, None


# --- list --------------------------------------------------------------------------------------

def _filters(request: Request, org_uri: str = "") -> queries.Filters:
    q = request.query_params
    page = q.get("page", "1")
    return queries.Filters(
        kind=q.get("kind", ""), category=q.get("category", ""),
        neighbourhood=q.get("neighbourhood", ""), language=q.get("language", "")[:3],
        scope=q.get("scope", ""), org_uri=org_uri, q=q.get("q", "").strip()[:100],
        sort="urgent" if q.get("sort") == "urgent" else "newest",
        page=int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1,
    )


async def list_view(request: Request) -> Response:
    node = node_of(request)
    await service.expire_due(node)
    user = await current_user(request)
    org = None
    if request.query_params.get("org"):
        org = await by_username(node, request.query_params["org"], "Group")
    filters = _filters(request, node.url(f"/groups/{org.username}") if org else "")
    listing = await queries.list_posts(node, filters, signed_in=user is not None)
    params = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return await render(
        request, "posts/list.html", cards=await post_cards(node, listing.rows),
        listing=listing, filters=filters, org=org, page=filters.page, query=params,
        urlencode=urlencode, **_choices(node),
        # The kind tabs keep the other filters; clearing the filters keeps the kind and org.
        kindless={k: v for k, v in params.items() if k != "kind"},
        unfiltered={k: v for k, v in params.items() if k in ("kind", "org", "q")})


# --- one post ----------------------------------------------------------------------------------

async def _post_or_none(request: Request) -> dict | None:
    return await queries.get_post(node_of(request), request.path_params["post_id"])


async def post_view(request: Request) -> Response:
    node = node_of(request)
    post = await _post_or_none(request)
    if post is None:
        return _not_found()
    post = await service.expire_if_due(node, post)
    if wants_activity_json(request):
        return _post_document(node, post)
    user = await current_user(request)
    if not queries.can_see(user, post):
        return _login_redirect(request)
    if post["status"] == "withdrawn" and not await parties.may_manage(node, user, post):
        raise errors.PageError(410, N_("Its author withdrew this post: it is no longer shown."))
    return await _post_page(request, post, user)


def _post_document(node: Any, post: dict) -> Response:
    if post["remote"] or post["visibility"] != "public":
        return _not_found()
    if post["status"] in ("withdrawn", "expired"):
        return activity_response({"@context": AS_CONTEXT, "id": post["uri"], "type": "Tombstone",
                                  "formerType": "Note"}, status=410)
    return activity_response(_note(node, post))


NOTES_HELD = 1_000


def _note(node: Any, post: dict) -> orjson.Fragment:
    """The post's Note as peers fetch it, encoded once per version of its row: the Note is made
    of the row alone (and the node's address), and a post shared around is fetched by many
    servers in a short while (content rendered and cleaned each time: a third of the read)."""
    notes = held(node, "notes")
    key = tuple(post.items())
    note = notes.get(key)
    if note is None:
        note = orjson.Fragment(encode({"@context": wire.post_context(node.settings.base_url),
                                       **publishing.note_of(node, post)}))
        keep(notes, key, note, NOTES_HELD)
    return note


async def _post_page(request: Request, post: dict, user: dict | None, status: int = 200,
                     errors: dict | None = None, message: str = "",
                     typed: dict | None = None) -> Response:
    node = node_of(request)
    manage = await parties.may_manage(node, user, post)
    answers = await parties.speaks_for_post(node, user, post)
    mine = []
    if user is not None:
        mine = [r for r in await responses.responses_of(node, post["id"])
                if r["responder_user_id"] == user["id"]]
    # Desk reference and private notes: for the organisation's coordinators (node/desk.py).
    desk_extras = await for_post_page(node, user, post)
    late = responses.late_reason(post)
    return await render(
        request, "posts/post.html", status=status, post=post, manage=manage, answers=answers,
        by=(await bylines(node, [post]))[post["id"]],
        category=categories.get(post["category"]), my_responses=mine, **desk_extras,
        errors=errors or {}, message=message,
        form=typed or {}, late=late, post_side=await parties.post_side(node, post),
        needed=None if post["remote"] else await responses.still_needed(node, post),
        can_respond=user is not None and not answers and not late and not mine,
        matches=await matching.best_matches(node, post, user),
        pictures=await post_photos.pictures(node, post))


# --- new and edit ------------------------------------------------------------------------------

def _form_values(post: dict | None) -> dict[str, Any]:
    if post is None:
        return {"languages": [], "urgency": "1", "visibility": "public", "unit": "one",
                "written_in": current_locale()}
    return {
        "category": post["category"], "title": post["title"],
        "description": post["description_md"], "neighbourhood": post["neighbourhood"],
        "starts_at": _date_value(post["starts_at"]), "ends_at": _date_value(post["ends_at"]),
        "capacity": post["capacity"] or "", "unit": post["unit"], "urgency": str(post["urgency"]),
        "languages": [c for c in post["languages"].split(",") if c],
        "visibility": post["visibility"], "written_in": post["written_in"],
        "photos": post_photos.form_values(post_photos.photos_of(post)),
        **{f"{field}_{code}": getattr(text, attribute)
           for code, text in written_languages.translations_of(post).items()
           for field, attribute in (("title", "title"), ("description", "description_md"))},
    }


async def _edit_page(request: Request, kind: str, values: dict, errors: dict,
                     post: dict | None = None, status: int = 200,
                     hints: list[privacy.Finding] | None = None) -> Response:
    node = node_of(request)
    return await render(request, "posts/form.html", status=status, kind=kind, form=values,
                        errors=errors, post=post, hints=hints or [], **_choices(node),
                        **await for_post_form(node, await current_user(request), post))


def _privacy_hints(form: FormData, fields: Any, post: dict | None = None) -> list:
    """Personal details in the public text the author has not yet chosen to publish (an edit
    asks only about what the post did not already say)."""
    if str(form.get("publish_as_written", "")) in ("1", "on", "yes"):
        return []
    before = ""
    if post:
        before = "\n".join(f"{t.title}\n{t.description_md}" for t in [
            written_languages.Text(post["title"], post["description_md"], ""),
            *written_languages.translations_of(post).values()])
    # Every language the author wrote is public alike.
    titles = [fields.title, *(t for t, _ in fields.translations.values())]
    texts = [fields.description_md, *(d for _, d in fields.translations.values())]
    return privacy.find_in_post("\n".join(titles), "\n".join(texts), before)


async def _form_photos(request: Request, form: FormData, values: dict[str, Any],
                       uploads: bool) -> post_photos.Gathered:
    """The photos of a submitted post form, and the form values that show them again: an
    upload stored now comes back as a kept photo, so a refused form loses none."""
    gathered = await post_photos.gather(node_of(request), form, uploads=uploads)
    values["photos"] = gathered.shown
    for slot in gathered.uploaded:
        values.pop(f"new_alt_{slot}", None)
    return gathered


def _checked(node: Any, form: Any, kind: str, user: dict,
             gathered: post_photos.Gathered, languages: list[str]) -> Any:
    """The post's fields with its photos; every problem of both at once."""
    try:
        fields = service.check(node, form, languages, kind, user)
    except PostError as exc:
        raise PostError({**exc.errors, **gathered.errors}) from None
    if gathered.errors:
        raise PostError(gathered.errors)
    fields.photos = gathered.photos
    return fields


def _posted_values(form: FormData) -> dict[str, Any]:
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    values["languages"] = form.getlist("languages")
    return values


async def new_view(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login_redirect(request)
    node = node_of(request)
    kind = request.query_params.get("kind", "need")
    kind = kind if kind in KINDS else "need"
    if request.method == "GET":
        # A coordinator's need starts on behalf of someone, as their organisation chose.
        return await _edit_page(request, kind, {
            **_form_values(None), **await new_post_defaults(node, user, kind)}, {})
    form, csrf_error = await _form(request)
    kind = str(form.get("kind", kind))
    values = _posted_values(form)
    gathered = await _form_photos(request, form, values, uploads=csrf_error is None)
    if csrf_error:
        return await _edit_page(request, kind, values, {"form": csrf_error}, status=403)
    try:
        fields = _checked(node, form, kind, user, gathered, form.getlist("languages"))
        hints = _privacy_hints(form, fields)
        if hints:
            return await _edit_page(request, kind, values, {}, hints=hints)
        post = await service.create_post(node, user, fields)
    except PostError as exc:
        return await _edit_page(request, kind if kind in KINDS else "need", values, exc.errors,
                                status=400)
    await post_photos.delete_unused(node, gathered.removed)
    flash(request, "published")
    return RedirectResponse(f"/posts/{post['id']}", status_code=303)


async def edit_view(request: Request) -> Response:
    user, post, refusal = await _managed_post(request)
    if refusal is not None:
        return refusal
    node = node_of(request)
    if request.method == "GET":
        values = _form_values(post)
        if post["proxied"]:
            values["beneficiary_notes"] = (await for_post_page(node, user, post))["notes"]
            values["proxied"] = "1"
        return await _edit_page(request, post["kind"], values, {}, post=post)
    form, csrf_error = await _form(request)
    values = _posted_values(form)
    gathered = await _form_photos(request, form, values, uploads=csrf_error is None)
    if csrf_error:
        return await _edit_page(request, post["kind"], values, {"form": csrf_error}, post,
                                status=403)
    try:
        proxy = {"proxied": "1"} if post["proxied"] else {}
        if not await parties.may_read_notes(node, user, post):
            proxy["beneficiary_notes"] = ""  # who may not read the notes does not write them
        fields = _checked(node, {**dict(form.items()), **proxy}, post["kind"], user, gathered,
                          form.getlist("languages"))
        hints = _privacy_hints(form, fields, post)
        if hints:
            return await _edit_page(request, post["kind"], values, {}, post, hints=hints)
        await service.edit_post(node, post, fields)
    except PostError as exc:
        return await _edit_page(request, post["kind"], values, exc.errors, post, status=400)
    # A photo the post no longer shows goes, unless another post or profile shows it too.
    kept = {p.name for p in fields.photos or []}
    await post_photos.delete_unused(node, {p.name for p in post_photos.photos_of(post)} - kept
                               | set(gathered.removed) - kept)
    flash(request, "saved")
    return RedirectResponse(f"/posts/{post['id']}", status_code=303)


async def _managed_post(request: Request) -> tuple[dict | None, dict, Response | None]:
    """The post of the URL with the signed-in user who may manage it, or the answer to give
    instead (not found, sign in, forbidden)."""
    user = await current_user(request)
    post = await _post_or_none(request)
    if post is None:
        return user, {}, _not_found()
    if not await parties.may_manage(node_of(request), user, post):
        return user, post, _login_redirect(request) if user is None else _forbidden()
    return user, post, None


def _forbidden() -> NoReturn:
    errors.forbidden(N_("Only the author or a coordinator can do this."))


async def _status_confirmation(request: Request, post: dict, action: str) -> Response:
    waiting = [r for r in await responses.responses_of(node_of(request), post["id"])
               if r["status"] == "pending"]
    return await render(request, "posts/confirm.html", post=post, step=action,
                        action_url=f"/posts/{post['id']}/status", fields={"action": action},
                        waiting=len(waiting), back=f"/posts/{post['id']}", errors={})


async def status_view(request: Request) -> Response:
    """Close a post (fulfilled or withdrawn). GET asks for confirmation: a page with the
    consequences and one button that POSTs the change (no JavaScript needed)."""
    user, post, refusal = await _managed_post(request)
    if refusal is not None:
        return refusal
    if request.method == "GET":
        action = request.query_params.get("action", "")
        if action not in STATUS_ACTIONS:
            return await _post_page(request, post, user, 400, {"status": _("Unknown action.")})
        return await _status_confirmation(request, post, action)
    form, csrf_error = await _form(request)
    if csrf_error:
        return await _post_page(request, post, user, 403, {"status": csrf_error})
    action = str(form.get("action", ""))
    status = STATUS_ACTIONS.get(action)
    if status is None:
        return await _post_page(request, post, user, 400, {"status": _("Unknown action.")})
    # A form of another page (or a crafted one) posting straight here asks first too.
    if form.get("confirm") != CONFIRMED:
        return await _status_confirmation(request, post, action)
    try:
        await responses.close(node_of(request), post, status, user["id"])
    except PostError as exc:
        return await _post_page(request, post, user, 400, exc.errors)
    flash(request, "status_changed")
    return RedirectResponse(f"/posts/{post['id']}", status_code=303)


# --- responses ---------------------------------------------------------------------------------

async def respond_view(request: Request) -> Response:
    user = await current_user(request)
    post = await _post_or_none(request)
    if post is None:
        return _not_found()
    if user is None:
        return _login_redirect(request)
    form, csrf_error = await _form(request)
    if csrf_error:
        return await _post_page(request, post, user, 403, {"message": csrf_error},
                                typed={"message": str(form.get("message", ""))})
    try:
        row = await responses.respond(node_of(request), user, post, str(form.get("message", "")))
    except ResponseError as exc:
        return await _post_page(request, post, user, 400, exc.errors,
                                typed={"message": str(form.get("message", ""))})
    return RedirectResponse(f"/responses/{row['id']}", status_code=303)


async def _answered_post(request: Request) -> tuple[dict | None, dict, Response | None]:
    """The post of the URL and the signed-in member who answers its responses (its author, or
    a coordinator of the organisation of a proxied need: parties.py), or the refusal."""
    user = await current_user(request)
    post = await _post_or_none(request)
    if post is None:
        return user, {}, _not_found()
    if not await parties.speaks_for_post(node_of(request), user, post):
        return user, post, _login_redirect(request) if user is None else _not_a_party()
    return user, post, None


def _not_a_party() -> NoReturn:
    errors.forbidden(N_("Only the people taking part in this conversation can do this."))


async def responses_view(request: Request) -> Response:
    user, post, refusal = await _answered_post(request)
    if refusal is not None:
        return refusal
    return await _responses_page(request, post)


async def _responses_page(request: Request, post: dict, errors: dict | None = None,
                          status: int = 200) -> Response:
    node = node_of(request)
    user = await current_user(request)
    hidden = await hidden_from(node, user["id"] if user else None)
    shown = [{**r, "who": await parties.responder(node, r)}
             for r in await responses.responses_of(node, post["id"])
             if r["responder_uri"] not in hidden]
    return await render(request, "posts/responses.html", status=status, post=post,
                        responses=shown, errors=errors or {},
                        places=responses.places(post),
                        accepted=sum(r["status"] == "accepted" for r in shown),
                        needed=await responses.still_needed(node, post),
                        post_side=await parties.post_side(node, post))


async def _response_and_post(request: Request) -> tuple[dict | None, dict | None]:
    node = node_of(request)
    response = await responses.get_response(node, request.path_params["response_id"])
    post = await queries.get_post(node, response["post_id"]) if response else None
    return response, post


async def _answered_response(
    request: Request,
) -> tuple[dict | None, dict, dict, Response | None]:
    """The response of the URL, its post and the member who answers it, or the refusal."""
    user = await current_user(request)
    response, post = await _response_and_post(request)
    if response is None or post is None:
        return user, {}, {}, _not_found()
    if not await parties.speaks_for_post(node_of(request), user, post):
        return user, post, response, (_login_redirect(request) if user is None
                                      else _not_a_party())
    return user, post, response, None


def _back_to_responses(request: Request, post: dict, notice: str) -> Response:
    """Back to the responses page, which shows `notice` (a key of node/notices.py)."""
    flash(request, notice)
    return RedirectResponse(f"/posts/{post['id']}/responses", status_code=303)


async def accept_view(request: Request) -> Response:
    user, post, response, refusal = await _answered_response(request)
    if refusal is not None:
        return refusal
    form, csrf_error = await _form(request)
    if csrf_error:
        return await _responses_page(request, post, {"response": csrf_error}, 403)
    try:
        await responses.accept(node_of(request), user, post, response)
    except (ResponseError, PostError) as exc:
        return await _responses_page(request, post, exc.errors, 400)
    return _back_to_responses(request, post, "response_accepted")


async def _confirm_page(request: Request, post: dict, response: dict, step: str,
                        errors: dict | None = None, status: int = 200,
                        note: str = "") -> Response:
    return await render(
        request, "posts/confirm.html", status=status, post=post, step=step,
        action_url=f"/responses/{response['id']}/{step}", fields={}, errors=errors or {},
        who=await parties.responder(node_of(request), response), note=note,
        back=f"/posts/{post['id']}/responses")


async def decline_view(request: Request) -> Response:
    """Decline one response, with an optional kind note; GET asks for confirmation."""
    user, post, response, refusal = await _answered_response(request)
    if refusal is not None:
        return refusal
    if request.method == "GET":
        return await _confirm_page(request, post, response, "decline")
    form, csrf_error = await _form(request)
    note = str(form.get("note", ""))
    if csrf_error:
        return await _confirm_page(request, post, response, "decline", {"note": csrf_error},
                                   403, note)
    if form.get("confirm") != CONFIRMED:
        return await _confirm_page(request, post, response, "decline", note=note)
    try:
        await responses.decline(node_of(request), user, post, response, note)
    except (ResponseError, PostError) as exc:
        errors = {"note": exc.errors.get("message") or exc.errors.get("response") or str(exc)}
        return await _confirm_page(request, post, response, "decline", errors, 400, note)
    return _back_to_responses(request, post, "response_declined")


async def undo_view(request: Request) -> Response:
    """Take an acceptance back; GET asks for confirmation."""
    user, post, response, refusal = await _answered_response(request)
    if refusal is not None:
        return refusal
    if request.method == "GET":
        return await _confirm_page(request, post, response, "undo")
    form, csrf_error = await _form(request)
    if csrf_error:
        return await _confirm_page(request, post, response, "undo", {"note": csrf_error}, 403)
    if form.get("confirm") != CONFIRMED:
        return await _confirm_page(request, post, response, "undo")
    try:
        await responses.undo_acceptance(node_of(request), user, post, response)
    except (ResponseError, PostError) as exc:
        return await _confirm_page(request, post, response, "undo",
                                   {"note": exc.errors.get("response") or str(exc)}, 400)
    return _back_to_responses(request, post, "acceptance_undone")


async def conversation_view(request: Request) -> Response:
    user = await current_user(request)
    response, post = await _response_and_post(request)
    if response is None or post is None:
        return _not_found()
    if user is None:
        return _login_redirect(request)
    node = node_of(request)
    # The one rule (parties.py): the responder and the post's side, nobody else.
    if not await parties.may_take_part(node, user, post, response):
        return _not_a_party()
    problems: dict[str, str] = {}
    status = 200
    typed = ""
    if request.method == "POST":
        form, csrf_error = await _form(request)
        # Refused or not, what was typed stays in the box.
        typed = str(form.get("message", ""))
        if csrf_error:
            problems, status = {"message": csrf_error}, 403
        else:
            try:
                await responses.send_message(node, user, post, response, typed)
                return RedirectResponse(f"/responses/{response['id']}", status_code=303)
            except ResponseError as exc:
                problems, status = exc.errors, 400
    # What told the member about this conversation is read now.
    await notifications.mark_conversation_read(node, user["id"], response["id"])
    hidden = await hidden_from(node, user["id"])
    people = await parties.readers(node, post, response)
    messages = [{**m, "by": await parties.speaker(node, post, response, m, people)}
                for m in await responses.messages_of(node, response["id"])
                if m["sender_uri"] not in hidden]
    return await render(
        request, "posts/conversation.html", status=status, post=post, response=response,
        messages=messages, errors=problems, readers=people, typed=typed,
        answers=await parties.speaks_for_post(node, user, post))


async def mine_view(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login_redirect(request)
    node = node_of(request)
    posts = await node.db.fetch_all(
        "SELECT * FROM posts WHERE author_user_id = :u ORDER BY created_at DESC", {"u": user["id"]})
    return await render(request, "posts/mine.html", posts=posts,
                        responses=await responses.responses_by(node, user["id"]),
                        unread=await notifications.unread_conversations(node, user["id"]),
                        unread_posts=await notifications.unread_by_post(node, user["id"]))


routes = [
    Route("/posts", list_view),
    Route("/posts/new", new_view, methods=["GET", "POST"]),
    Route("/posts/mine", mine_view),
    Route("/posts/{post_id}", signed_fetch(post_view, json_only=True)),
    Route("/posts/{post_id}/edit", edit_view, methods=["GET", "POST"]),
    Route("/posts/{post_id}/status", status_view, methods=["GET", "POST"]),
    Route("/posts/{post_id}/respond", respond_view, methods=["POST"]),
    Route("/posts/{post_id}/responses", responses_view),
    Route("/responses/{response_id}", conversation_view, methods=["GET", "POST"]),
    Route("/responses/{response_id}/accept", accept_view, methods=["POST"]),
    Route("/responses/{response_id}/decline", decline_view, methods=["GET", "POST"]),
    Route("/responses/{response_id}/undo", undo_view, methods=["GET", "POST"]),
]
