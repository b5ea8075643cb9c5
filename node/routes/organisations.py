"""The organisations' settings pages (separate from the federation console at /admin) and the
images they upload, served from NODE_DATA_DIR/media."""

from __future__ import annotations

import asyncio

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from node import desk, images, organisations
from node.accounts.errors import FormError
from node.actors import LocalActor, actor_uri, by_username
from node.actors import organisations as all_organisations
from node.i18n import LOCALES, _
from node.notices import flash
from node.web_support import CsrfError, check_csrf, current_user, node_of, render

# Two images and the text fields: anything larger is refused before it is read.
MAX_BODY = 2 * images.MAX_UPLOAD_BYTES + 256 * 1024


async def _forbidden(request: Request, user: dict | None) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return await _render_forbidden(request)


async def _render_forbidden(request: Request) -> Response:
    return await render(request, "account/forbidden.html", status=403)


async def list_view(request: Request) -> Response:
    user = await current_user(request)
    node = node_of(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    orgs = [o for o in await all_organisations(node)
            if await organisations.may_edit(node, user, o)]
    if not orgs and user["role"] != "admin":
        return await _render_forbidden(request)
    errors: dict[str, str] = {}
    values = {"username": "", "name": ""}
    status = 200
    if request.method == "POST":
        form = await request.form()
        values = {k: str(form.get(k, "")) for k in values}
        try:
            check_csrf(request, form)
            org = await organisations.create_organisation(
                node, user, values["username"], values["name"])
        except CsrfError as exc:
            errors, status = {"form": str(exc)}, 403
        except FormError as exc:
            errors, status = exc.errors, 400
        else:
            flash(request, "saved")
            return RedirectResponse(f"/admin/organisations/{org.username}", status_code=303)
    return await render(request, "organisations/list.html", status=status, orgs=orgs,
                        errors=errors, values=values, host=node.settings.host)


def _form_values(org: LocalActor) -> dict:
    return {
        "name": org.name,
        "descriptions": {lang: org.summary_map.get(lang, org.summary if lang == LOCALES[0]
                                                   else "") for lang in LOCALES},
        "contact_phone": org.contact_phone, "contact_email": org.contact_email,
        "opening_hours": org.opening_hours, "desk_address": org.desk_address,
        "website": org.website, "neighbourhoods": list(org.neighbourhoods),
    }


def _submitted(form: FormData) -> dict:
    return {
        "name": str(form.get("name", "")),
        "descriptions": {lang: str(form.get(f"description_{lang}", "")) for lang in LOCALES},
        **{k: str(form.get(k, "")) for k in ("contact_phone", "contact_email", "opening_hours",
                                             "desk_address", "website")},
        "neighbourhoods": [v for v in form.getlist("neighbourhoods") if isinstance(v, str)],
    }


async def _upload(form: FormData, name: str) -> bytes | None:
    value = form.get(name)
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    data = await value.read(images.MAX_UPLOAD_BYTES + 1)
    return data or None


async def settings_view(request: Request) -> Response:
    node = node_of(request)
    user = await current_user(request)
    org = await by_username(node, request.path_params["username"], "Group")
    if org is None:
        return await render(request, "account/forbidden.html", status=404)
    if not await organisations.may_edit(node, user, org):
        return await _forbidden(request, user)
    values, errors, status = _form_values(org), {}, 200
    if request.method == "POST":
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            # A browser always declares the length of a form; an undeclared (chunked) body
            # would be spooled to disk whatever its size before anything could refuse it.
            return Response(_("Send the form with its length."), status_code=411)
        if int(declared) > MAX_BODY:
            errors = {"avatar": _("The image is too large (at most %(mb)s MB).")
                      % {"mb": images.MAX_UPLOAD_BYTES // (1024 * 1024)}}
            return await _page(request, org, values, errors, 413)
        form = await request.form(max_files=2, max_fields=40)
        values = _submitted(form)
        try:
            check_csrf(request, form)
            checked = organisations.check_profile(node, organisations.ProfileForm(
                values["name"], values["descriptions"], values["contact_phone"],
                values["contact_email"], values["opening_hours"], values["desk_address"],
                values["website"], tuple(values["neighbourhoods"])))
            stored = {}
            for purpose in ("avatar", "header"):
                data = await _upload(form, purpose)
                if data is None:
                    continue
                try:
                    # Decoding and resizing is CPU work: kept off the event loop.
                    stored[purpose] = await asyncio.to_thread(
                        images.store_image, node.settings.data_dir, data, purpose)
                except images.ImageError as exc:
                    raise FormError({purpose: str(exc)}) from None
        except CsrfError as exc:
            errors, status = {"form": str(exc)}, 403
        except FormError as exc:
            errors, status = exc.errors, 400
        else:
            # One Update for the whole change: the images first, then the text.
            for purpose, image in stored.items():
                await organisations.store_image_path(node, org, purpose, image.path)
            for purpose in ("avatar", "header"):
                if form.get(f"remove_{purpose}") and purpose not in stored:
                    await organisations.store_image_path(node, org, purpose, None)
            await organisations.save_profile(node, org, checked)
            flash(request, "saved")
            return RedirectResponse(f"/admin/organisations/{org.username}", status_code=303)
    return await _page(request, org, values, errors, status)


async def _page(request: Request, org: LocalActor, values: dict, errors: dict,
                status: int) -> Response:
    node = node_of(request)
    return await render(
        request, "organisations/settings.html", status=status, org=org, values=values,
        errors=errors, choices=organisations.neighbourhood_choices(node),
        handle=f"@{org.username}@{node.settings.host}", uri=actor_uri(node, org),
        people=await organisations.people(node, org), max_mb=images.MAX_UPLOAD_BYTES // 2**20,
        proxied_visibility=await desk.proxied_visibility(node, org))


async def media_view(request: Request) -> Response:
    name = request.path_params["name"]
    if not images.MEDIA_NAME.match(name):
        return Response(status_code=404)
    path = images.media_dir(node_of(request).settings.data_dir) / name
    if not path.is_file():
        return Response(status_code=404)
    # Named by their content: a file never changes under its name.
    return FileResponse(path, media_type=images.MEDIA_TYPES[name.rsplit(".", 1)[1]],
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})


routes = [
    Route("/admin/organisations", list_view, methods=["GET", "POST"]),
    Route("/admin/organisations/{username}", settings_view, methods=["GET", "POST"]),
    Route("/media/{name}", media_view),
]
