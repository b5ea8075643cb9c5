"""Creating a member: a user (argon2 password), a `Person` actor, and a membership of an
organisation, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace

from node.accounts.errors import FormError
from node.accounts.validation import (
    email_problem,
    name_problem,
    normalise_email,
    password_problem,
    username_from_email,
    username_problem,
)
from node.actors import LocalActor, by_id, create_actor, organisations
from node.auth import ROLES, hash_password
from node.context import Node
from node.db import new_id, now
from node.i18n import LOCALES, _


@dataclass(frozen=True)
class NewMember:
    email: str
    password: str
    confirm: str | None = None
    username: str = ""
    display_name: str = ""
    locale: str = ""


async def _username_taken(node: Node, username: str) -> bool:
    return bool(await node.db.fetch_one("SELECT id FROM actors WHERE username = :u",
                                        {"u": username}))


async def free_username(node: Node, base: str) -> str:
    """`base`, else `base2`, `base3`... the first one nobody has."""
    base = base[:27] if username_problem(base) is None else "member"
    candidate, n = base, 1
    while await _username_taken(node, candidate) or username_problem(candidate):
        n += 1
        candidate = f"{base}{n}"
    return candidate


async def check_new_member(node: Node, form: NewMember, *, email_may_be_known: bool = False,
                           password_hashed: bool = False) -> NewMember:
    """Every problem of a sign-up at once (FormError), else the cleaned form.
    `email_may_be_known`: the answer must not tell whether the address has an account (sign-up
    by confirmation link); `password_hashed`: the password was checked and hashed earlier."""
    errors: dict[str, str] = {}
    email = normalise_email(form.email)
    if problem := email_problem(email):
        errors["email"] = problem
    elif not email_may_be_known and await node.db.fetch_one(
            "SELECT id FROM users WHERE email = :e", {"e": email}):
        errors["email"] = _("An account with this email address exists already. Log in, or "
                            "use another address.")
    if not password_hashed and (problem := password_problem(form.password, form.confirm)):
        errors["password"] = problem
    username = form.username.strip().lower().lstrip("@")
    if username:
        if problem := username_problem(username):
            errors["username"] = problem
        elif await _username_taken(node, username):
            errors["username"] = _("This username is taken; choose another one.")
    display_name = " ".join(form.display_name.split())
    if problem := name_problem(display_name):
        errors["display_name"] = problem
    locale = form.locale if form.locale in LOCALES else ""
    if errors:
        raise FormError(errors)
    if not username:
        username = await free_username(node, username_from_email(email))
    return NewMember(email=email, password=form.password, username=username,
                     display_name=display_name or username, locale=locale)


async def create_member(
    node: Node, form: NewMember, org: LocalActor | None = None, role: str = "member",
    password_hash: str | None = None,
) -> str:
    """Validates, then creates the user, their `Person` actor and their membership of `org`
    (the node's first organisation when None). Returns the new user's id. `password_hash`:
    the password was hashed when the sign-up was asked (confirmed by email later)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    clean = await check_new_member(node, form, password_hashed=password_hash is not None)
    if org is None:
        orgs = await organisations(node)
        org = orgs[0] if orgs else None
    user_id = new_id()
    password_hash = password_hash or hash_password(clean.password)
    try:
        async with node.db.transaction():
            actor = await create_actor(node, "Person", clean.username, clean.display_name)
            await node.db.execute(
                "INSERT INTO users (id, email, password_hash, actor_id, role, created_at, "
                "display_name, locale) VALUES (:i, :e, :p, :a, :r, :t, :n, :l)",
                {"i": user_id, "e": clean.email, "p": password_hash, "a": actor.id, "r": role,
                 "t": now(), "n": clean.display_name, "l": clean.locale},
            )
            if org is not None:
                await node.db.execute(
                    "INSERT INTO memberships (user_id, org_id, role) VALUES (:u, :o, :r)",
                    {"u": user_id, "o": org.id, "r": role},
                )
    except Exception:
        # Two sign-ups with the same address or handle at once: the second one loses on a
        # unique constraint (or in create_actor) and is told why, like any other duplicate.
        await check_new_member(node, replace(form, username=clean.username),
                               password_hashed=password_hash is not None)
        raise
    return user_id


async def user_by_id(node: Node, user_id: str) -> dict | None:
    return await node.db.fetch_one(
        "SELECT id, email, role, actor_id, display_name, locale, created_at FROM users "
        "WHERE id = :i", {"i": user_id})


async def member_actor(node: Node, user: dict) -> LocalActor | None:
    return await by_id(node, user["actor_id"]) if user.get("actor_id") else None


async def user_organisations(node: Node, user_id: str) -> list[tuple[LocalActor, str]]:
    """The organisations a user belongs to, with their role in each."""
    rows = await node.db.fetch_all(
        "SELECT org_id, role FROM memberships WHERE user_id = :u ORDER BY org_id",
        {"u": user_id})
    found = []
    for row in rows:
        org = await by_id(node, row["org_id"])
        if org is not None:
            found.append((org, row["role"]))
    return found
