"""Accounts through the ASGI app and a real SQLite (or PostgreSQL) database: sign-up, log in
and out, invitations, roles, settings, and every refused form storing nothing."""

from __future__ import annotations

import re

import httpx
import pytest

from node.actors import by_username
from node.context import Node
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.nodes import csrf_from

PASSWORD = "a long enough secret"


@pytest.fixture
def app_en(app_node):
    """The app read by an English-speaking browser, so that messages are checked as written."""
    node, client = app_node
    client.headers["Accept-Language"] = "en"
    return node, client


async def token_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return csrf_from(page.text)


async def sign_up(client: httpx.AsyncClient, email: str, **fields: str) -> httpx.Response:
    data = {"email": email, "password": PASSWORD, "confirm": PASSWORD,
            "display_name": "", "username": "", **fields}
    data["csrf_token"] = await token_of(client, "/signup")
    return await client.post("/signup", data=data)


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = await token_of(client, "/login")
    return await client.post("/login", data={"email": email, "password": password,
                                             "csrf_token": token})


async def counts(node: Node) -> tuple[int, int, int]:
    return (await node.db.fetch_val("SELECT COUNT(*) FROM users"),
            await node.db.fetch_val("SELECT COUNT(*) FROM actors"),
            await node.db.fetch_val("SELECT COUNT(*) FROM memberships"))


async def test_sign_up_makes_a_member_with_a_person_actor_in_the_organisation(app_en):
    node, client = app_en
    resp = await sign_up(client, "Marie.Dupont@Example.org", display_name="Marie D.")
    assert resp.status_code == 303 and resp.headers["location"] == "/account"
    user = await node.db.fetch_one("SELECT * FROM users WHERE email = 'marie.dupont@example.org'")
    assert user["role"] == "member" and user["display_name"] == "Marie D."
    assert user["password_hash"].startswith("$argon2")
    actor = await by_username(node, "marie.dupont", "Person")
    assert actor is not None and actor.id == user["actor_id"] and actor.name == "Marie D."
    org = await by_username(node, "voisins", "Group")
    membership = await node.db.fetch_one(
        "SELECT role FROM memberships WHERE user_id = :u AND org_id = :o",
        {"u": user["id"], "o": org.id})
    assert membership == {"role": "member"}
    # Signed in at once; the Person is a real ActivityPub actor.
    page = await client.get("/account")
    assert page.status_code == 200 and "marie.dupont@example.org" in page.text
    assert "Welcome! Your account is ready." in page.text  # a notice from the session, once
    assert "Welcome!" not in (await client.get("/account")).text
    assert "@marie.dupont@127.0.0.1:8999" in page.text
    doc = (await client.get("/users/marie.dupont",
                            headers={"Accept": "application/activity+json"})).json()
    assert doc["type"] == "Person" and doc["publicKey"]["publicKeyPem"].startswith("-----BEGIN")


async def test_usernames_are_derived_and_made_unique_or_chosen_and_checked(app_en):
    node, client = app_en
    assert (await sign_up(client, "sam@one.example")).status_code == 303
    client.cookies.clear()
    assert (await sign_up(client, "sam@two.example")).status_code == 303
    names = {r["username"] for r in await node.db.fetch_all(
        "SELECT a.username FROM users u JOIN actors a ON a.id = u.actor_id")}
    assert {"sam", "sam2"} <= names
    client.cookies.clear()
    before = await counts(node)
    taken = await sign_up(client, "other@x.example", username="sam")
    assert taken.status_code == 400 and "This username is taken" in taken.text
    bad = await sign_up(client, "other@x.example", username="Not Valid!")
    assert bad.status_code == 400 and "A username has 1 to 30 characters" in bad.text
    reserved = await sign_up(client, "other@x.example", username="admin")
    assert reserved.status_code == 400
    assert await counts(node) == before


async def test_refused_sign_ups_say_why_and_store_nothing(app_en):
    node, client = app_en
    await sign_up(client, "first@example.org")
    client.cookies.clear()
    before = await counts(node)
    cases = [
        ({"email": "FIRST@example.org"}, "An account with this email address exists already"),
        ({"email": "not-an-address"}, "Enter a valid email address"),
        ({"email": "b@example.org", "password": "short", "confirm": "short"},
         "The password needs at least 8 characters"),
        ({"email": "b@example.org", "confirm": "something else"},
         "The two passwords are different"),
        ({"email": "b@example.org", "display_name": "x" * 81}, "The name is too long"),
    ]
    for fields, message in cases:
        email = fields.pop("email")
        resp = await sign_up(client, email, **fields)
        assert resp.status_code == 400, (fields, resp.status_code)
        assert message in resp.text, message
        assert 'aria-invalid="true"' in resp.text
    assert await counts(node) == before


async def test_a_post_without_csrf_token_is_refused_and_changes_nothing(app_en):
    node, client = app_en
    await client.get("/signup")
    before = await counts(node)
    resp = await client.post("/signup", data={"email": "x@example.org", "password": PASSWORD,
                                              "confirm": PASSWORD})
    assert resp.status_code == 403 and "The form has expired" in resp.text
    forged = await client.post("/signup", data={"email": "x@example.org", "password": PASSWORD,
                                                "confirm": PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 403
    assert await counts(node) == before
    # Same for the settings of a signed-in member.
    await sign_up(client, "y@example.org", display_name="Y")
    resp = await client.post("/account", data={"display_name": "Hacked", "locale": "nl"})
    assert resp.status_code == 403
    row = await node.db.fetch_one("SELECT display_name, locale FROM users "
                                  "WHERE email = 'y@example.org'")
    assert row == {"display_name": "Y", "locale": "en"}


async def test_log_in_and_out(app_en):
    node, client = app_en
    await sign_up(client, "lou@example.org")
    client.cookies.clear()
    wrong = await log_in(client, "lou@example.org", "wrong password")
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    assert (await client.get("/account")).status_code == 303
    ok = await log_in(client, "LOU@example.org", PASSWORD)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    assert (await client.get("/account")).status_code == 200
    token = await token_of(client, "/account")
    out = await client.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert (await client.get("/account")).status_code == 303
    admin = await log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert admin.headers["location"] == "/admin"


async def test_settings_follow_categories_and_neighbourhoods_and_refuse_unknown_ones(app_en):
    node, client = app_en
    await sign_up(client, "nora@example.org", display_name="Nora")
    token = await token_of(client, "/account")
    resp = await client.post("/account", data={
        "csrf_token": token, "display_name": "Nora B", "locale": "nl",
        "categories": ["food", "shower"], "neighbourhoods": ["Ixelles"]})
    assert resp.status_code == 303
    assert resp.cookies.get("lang") == "nl"
    user = await node.db.fetch_one("SELECT id, display_name, locale, actor_id FROM users "
                                   "WHERE email = 'nora@example.org'")
    assert user["display_name"] == "Nora B" and user["locale"] == "nl"
    prefs = await node.db.fetch_all("SELECT kind, value FROM follow_preferences WHERE "
                                    "user_id = :u ORDER BY kind, value", {"u": user["id"]})
    assert prefs == [{"kind": "category", "value": "food"},
                     {"kind": "category", "value": "shower"},
                     {"kind": "neighbourhood", "value": "Ixelles"}]
    page = await client.get("/account")
    assert re.search(r'value="food" checked', page.text)
    for bad in ({"categories": ["weapons"]}, {"neighbourhoods": ["Atlantis"]},
                {"locale": "de"}, {"display_name": ""}):
        data = {"csrf_token": token, "display_name": "Changed", "locale": "fr",
                "categories": ["clothes"], **bad}
        refused = await client.post("/account", data=data)
        assert refused.status_code == 400, bad
        assert 'class="field-error"' in refused.text
    assert await node.db.fetch_all("SELECT kind, value FROM follow_preferences WHERE "
                                   "user_id = :u ORDER BY kind, value",
                                   {"u": user["id"]}) == prefs
    assert (await node.db.fetch_val("SELECT display_name FROM users WHERE id = :u",
                                    {"u": user["id"]})) == "Nora B"


async def make_invitation(client: httpx.AsyncClient, email: str, role: str) -> httpx.Response:
    token = await token_of(client, "/account/invitations")
    return await client.post("/account/invitations",
                             data={"csrf_token": token, "email": email, "role": role})


async def test_an_invitation_creates_the_account_in_the_organisation_once(app_en):
    node, client = app_en
    await log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    resp = await make_invitation(client, "Coord@Example.org", "coordinator")
    assert resp.status_code == 200
    link = re.search(r'href="http://127\.0\.0\.1:8999(/invite/[^"]+)"', resp.text).group(1)
    assert "coord@example.org" in resp.text
    row = await node.db.fetch_one("SELECT * FROM invitations")
    assert row["email"] == "coord@example.org" and row["role"] == "coordinator"
    client.cookies.clear()
    page = await client.get(link)
    assert page.status_code == 200 and "coord@example.org" in page.text
    short = await client.post(link, data={"csrf_token": csrf_from(page.text),
                                          "password": "short", "confirm": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.text
    assert await node.db.fetch_val("SELECT used_at FROM invitations") is None
    accepted = await client.post(link, data={"csrf_token": csrf_from(page.text),
                                             "password": PASSWORD, "confirm": PASSWORD,
                                             "display_name": "Camille"})
    assert accepted.status_code == 303
    user = await node.db.fetch_one("SELECT id, role FROM users WHERE email = 'coord@example.org'")
    assert user["role"] == "coordinator"
    org = await by_username(node, "voisins", "Group")
    assert await node.db.fetch_val("SELECT role FROM memberships WHERE user_id = :u AND "
                                   "org_id = :o", {"u": user["id"], "o": org.id}) == "coordinator"
    client.cookies.clear()
    again = await client.get(link)
    assert again.status_code == 404 and "has been used already" in again.text
    # The coordinator can invite members, but not coordinators.
    await log_in(client, "coord@example.org", PASSWORD)
    assert (await make_invitation(client, "m@example.org", "member")).status_code == 200
    refused = await make_invitation(client, "c2@example.org", "coordinator")
    assert refused.status_code == 400 and "You cannot invite someone with this role" in refused.text
    assert await node.db.fetch_val(
        "SELECT COUNT(*) FROM invitations WHERE email = 'c2@example.org'") == 0


async def test_bad_expired_and_refused_invitations(app_en):
    node, client = app_en
    assert (await client.get("/invite/nonsense")).status_code == 404
    assert "not valid" in (await client.get("/invite/nonsense")).text
    await log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    await make_invitation(client, "late@example.org", "member")
    await node.db.execute("UPDATE invitations SET expires_at = 1")
    token = await node.db.fetch_val("SELECT token FROM invitations")
    client.cookies.clear()
    expired = await client.get(f"/invite/{token}")
    assert expired.status_code == 404 and "has expired" in expired.text
    before = await counts(node)
    post = await client.post(f"/invite/{token}", data={
        "csrf_token": await token_of(client, "/signup"), "password": PASSWORD,
        "confirm": PASSWORD})
    assert post.status_code == 404 and await counts(node) == before
    # Existing accounts and bad addresses are refused at invitation time.
    await log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    dup = await make_invitation(client, ADMIN_EMAIL, "member")
    assert dup.status_code == 400 and "has an account already" in dup.text
    assert (await make_invitation(client, "nope", "member")).status_code == 400
    # A member cannot open the invitation page at all.
    client.cookies.clear()
    await sign_up(client, "plain@example.org")
    assert (await client.get("/account/invitations")).status_code == 403
    assert (await make_invitation_without_page(client)).status_code == 403


async def make_invitation_without_page(client: httpx.AsyncClient) -> httpx.Response:
    token = await token_of(client, "/account")
    return await client.post("/account/invitations",
                             data={"csrf_token": token, "email": "z@example.org"})


async def test_an_admin_sets_roles_and_others_cannot(app_en):
    node, client = app_en
    await sign_up(client, "worker@example.org")
    worker_id = await node.db.fetch_val("SELECT id FROM users WHERE email = 'worker@example.org'")
    token = await token_of(client, "/account")
    assert (await client.get("/account/members")).status_code == 403
    forbidden = await client.post(f"/account/members/{worker_id}/role",
                                  data={"csrf_token": token, "role": "admin"})
    assert forbidden.status_code == 403
    assert await node.db.fetch_val("SELECT role FROM users WHERE id = :i",
                                   {"i": worker_id}) == "member"
    client.cookies.clear()
    await log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = await client.get("/account/members")
    assert page.status_code == 200 and "worker@example.org" in page.text
    token = csrf_from(page.text)
    ok = await client.post(f"/account/members/{worker_id}/role",
                           data={"csrf_token": token, "role": "coordinator"})
    assert ok.status_code == 303
    assert await node.db.fetch_val("SELECT role FROM users WHERE id = :i",
                                   {"i": worker_id}) == "coordinator"
    assert await node.db.fetch_val("SELECT role FROM memberships WHERE user_id = :i",
                                   {"i": worker_id}) == "coordinator"
    unknown = await client.post(f"/account/members/{worker_id}/role",
                                data={"csrf_token": token, "role": "king"})
    assert unknown.status_code == 400 and "Unknown role" in unknown.text
    no_csrf = await client.post(f"/account/members/{worker_id}/role", data={"role": "member"})
    assert no_csrf.status_code == 403
    admin_id = await node.db.fetch_val("SELECT id FROM users WHERE email = :e",
                                       {"e": ADMIN_EMAIL})
    last = await client.post(f"/account/members/{admin_id}/role",
                             data={"csrf_token": token, "role": "member"})
    assert last.status_code == 400 and "last admin" in last.text
    assert await node.db.fetch_val("SELECT role FROM users WHERE id = :i",
                                   {"i": worker_id}) == "coordinator"
    assert await node.db.fetch_val("SELECT role FROM users WHERE id = :i",
                                   {"i": admin_id}) == "admin"


async def test_log_in_returns_to_the_page_asked_but_never_to_another_site(app_en):
    _node, client = app_en
    await sign_up(client, "back@example.org")
    client.cookies.clear()
    asked = await client.get("/account")
    assert asked.status_code == 303 and asked.headers["location"] == "/login?next=%2Faccount"
    page = await client.get("/login?next=/account")
    assert 'name="next" value="/account"' in page.text
    resp = await client.post("/login", data={"email": "back@example.org", "password": PASSWORD,
                                             "csrf_token": csrf_from(page.text),
                                             "next": "/account"})
    assert resp.headers["location"] == "/account"
    for hostile in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        client.cookies.clear()
        page = await client.get("/login")
        resp = await client.post("/login", data={
            "email": "back@example.org", "password": PASSWORD,
            "csrf_token": csrf_from(page.text), "next": hostile})
        assert resp.status_code == 303 and resp.headers["location"] == "/", hostile


async def test_two_sign_ups_with_one_address_at_once_make_one_account(app_en):
    import asyncio

    from node.accounts.errors import FormError
    from node.accounts.members import NewMember, create_member

    node, _client = app_en
    before = await counts(node)
    results = await asyncio.gather(*(
        create_member(node, NewMember(email="twice@example.org", password=PASSWORD,
                                      username=f"twice{n}", display_name="Twice"))
        for n in range(2)), return_exceptions=True)
    created = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, FormError)]
    assert len(created) == 1 and len(refused) == 1, results
    assert "email" in refused[0].errors
    users, actors, memberships = await counts(node)
    assert (users, actors, memberships) == (before[0] + 1, before[1] + 1, before[2] + 1)
