"""An organisation's profile and the organisations of a node: who may change them, how a change
is checked and stored, and the `Update` of the Group that tells its followers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from activitypub.vocab import PUBLIC
from node.accounts.errors import FormError
from node.accounts.validation import email_problem, normalise_email
from node.actors import ActorError, LocalActor, by_id, create_actor, to_document
from node.context import Node
from node.db import new_id
from node.i18n import DEFAULT_LOCALE, LOCALES, _
from node.posts.places import parse_places
from outbox.publish import publish

MAX_NAME = 80
MAX_DESCRIPTION = 2000
MAX_FIELD = 200


@dataclass(frozen=True)
class ProfileForm:
    name: str
    descriptions: dict[str, str]  # language -> plain text
    contact_phone: str = ""
    contact_email: str = ""
    opening_hours: str = ""
    desk_address: str = ""
    website: str = ""
    neighbourhoods: tuple[str, ...] = ()


async def may_edit(node: Node, user: dict | None, org: LocalActor) -> bool:
    """An admin, or a coordinator of this organisation (not of another one)."""
    if user is None:
        return False
    if user["role"] == "admin":
        return True
    return user["role"] == "coordinator" and bool(await node.db.fetch_one(
        "SELECT 1 FROM memberships WHERE user_id = :u AND org_id = :o AND role = 'coordinator'",
        {"u": user["id"], "o": org.id}))


def neighbourhood_choices(node: Node) -> list[str]:
    return [p.name for p in parse_places(node.settings.neighbourhoods)]


def website_problem(url: str) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _("The website must be an address starting with https:// or http://.")
    if len(url) > MAX_FIELD or any(c.isspace() for c in url):
        return _("This website address cannot be used.")
    return None


def check_profile(node: Node, form: ProfileForm) -> ProfileForm:
    """Every problem of the form at once (FormError), else the cleaned form."""
    errors: dict[str, str] = {}
    name = " ".join(form.name.split())
    if not name:
        errors["name"] = _("The organisation needs a name.")
    elif len(name) > MAX_NAME:
        errors["name"] = _("The name holds at most %(n)s characters.") % {"n": MAX_NAME}
    descriptions = {}
    for lang in LOCALES:
        text = form.descriptions.get(lang, "").replace("\r\n", "\n").strip()
        if len(text) > MAX_DESCRIPTION:
            errors[f"description_{lang}"] = _("A description holds at most %(n)s characters.") \
                % {"n": MAX_DESCRIPTION}
        descriptions[lang] = text
    short = {k: " ".join(getattr(form, k).split()) for k in
             ("contact_phone", "opening_hours", "desk_address", "website")}
    for key, value in short.items():
        if len(value) > MAX_FIELD:
            errors[key] = _("At most %(n)s characters.") % {"n": MAX_FIELD}
    if problem := website_problem(short["website"]):
        errors["website"] = problem
    email = normalise_email(form.contact_email) if form.contact_email.strip() else ""
    if email and (problem := email_problem(email)):
        errors["contact_email"] = problem
    choices = neighbourhood_choices(node)
    if any(n not in choices for n in form.neighbourhoods):
        errors["neighbourhoods"] = _("Choose neighbourhoods from the list.")
    if errors:
        raise FormError(errors)
    return ProfileForm(name, descriptions, short["contact_phone"], email,
                       short["opening_hours"], short["desk_address"], short["website"],
                       tuple(n for n in choices if n in form.neighbourhoods))


async def save_profile(node: Node, org: LocalActor, form: ProfileForm) -> LocalActor:
    """Stores the checked profile and tells the organisation's followers."""
    await node.db.execute(
        "UPDATE actors SET name = :name, summary = :summary, summary_map = :map, "
        "contact_phone = :phone, contact_email = :email, opening_hours = :hours, "
        "desk_address = :address, website = :website, neighbourhoods = :places WHERE id = :id",
        {"name": form.name, "summary": default_description(form.descriptions),
         "map": json.dumps({k: v for k, v in form.descriptions.items() if v}),
         "phone": form.contact_phone, "email": form.contact_email,
         "hours": form.opening_hours, "address": form.desk_address, "website": form.website,
         "places": json.dumps(list(form.neighbourhoods)), "id": org.id})
    return await announce_profile(node, org.id)


def default_description(descriptions: dict[str, str]) -> str:
    """`summary`: the node's language, else the first language written (a reader of a
    language left empty sees this one)."""
    ordered = [DEFAULT_LOCALE, *(lang for lang in LOCALES if lang != DEFAULT_LOCALE)]
    return next((descriptions[lang] for lang in ordered if descriptions.get(lang)), "")


async def store_image_path(node: Node, org: LocalActor, purpose: str, path: str | None) -> None:
    """The avatar or header now served at `path` (None: the default); save_profile() then
    tells the followers of the whole change at once."""
    column = {"avatar": "icon_url", "header": "image_url"}[purpose]
    await node.db.execute(f"UPDATE actors SET {column} = :p WHERE id = :i",
                          {"p": path, "i": org.id})


async def announce_profile(node: Node, org_id: str) -> LocalActor:
    """An `Update` carrying the whole actor document, to the followers: Mastodon and other
    nodes refresh the name, description, avatar, header and fields from it."""
    org = await by_id(node, org_id)
    assert org is not None
    doc = to_document(node, org)
    update = {
        "@context": doc["@context"], "id": node.url(f"/activities/{new_id()}"),
        "type": "Update", "actor": doc["id"], "to": [PUBLIC], "cc": [doc["followers"]],
        "object": {k: v for k, v in doc.items() if k != "@context"},
    }
    await publish(node, org, update)
    return org


async def create_organisation(node: Node, user: dict | None, username: str,
                              name: str) -> LocalActor:
    """A further organisation on this node (admins only). Its coordinators and members come
    through its own invitations (node/accounts/invitations.py)."""
    if user is None or user["role"] != "admin":
        raise FormError({"username": _("Only an admin can create an organisation.")})
    errors = {}
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        errors["name"] = _("The organisation needs a name of at most %(n)s characters.") \
            % {"n": MAX_NAME}
    if errors:
        raise FormError(errors)
    try:
        org = await create_actor(node, "Group", username, name)
    except ActorError:
        raise FormError({"username": _(
            "This handle cannot be used or is taken: use lowercase letters, digits, dots, "
            "dashes or underscores.")}) from None
    return org


async def people(node: Node, org: LocalActor) -> list[dict]:
    """The organisation's members and coordinators, coordinators first."""
    return await node.db.fetch_all(
        "SELECT u.id, u.email, u.display_name, m.role FROM memberships m "
        "JOIN users u ON u.id = m.user_id WHERE m.org_id = :o "
        "ORDER BY CASE m.role WHEN 'admin' THEN 0 WHEN 'coordinator' THEN 1 ELSE 2 END, "
        "u.created_at", {"o": org.id})
