"""Accounts that recover, through the ASGI app, a real database and a real SMTP server
(aiosmtpd on a loopback address): the emails are read as they arrive and their links used.

- "forgot my password": a link by email, in the member's language; it works once, ends every
  session and expires; the answer is the same for an address nobody uses;
- a coordinator makes a one-time link for a member of their organisation (never for a
  coordinator or an admin, never for another organisation's member);
- sign-up with an address that has an account answers exactly as with a new one; the owner is
  told by email; a new address gets a confirmation link that makes the account once.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from node import mailqueue
from node.accounts.members import NewMember, create_member
from node.accounts.sessions import COOKIE
from node.actors import create_actor
from node.context import Node
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, node_settings, running_app
from tests.databases import drop_postgres_database, make_database_url
from tests.mail import Mailbox, SmtpServer
from tests.nodes import csrf_from

pytestmark = pytest.mark.asyncio(loop_scope="module")

SMTP_HOST = "127.0.0.100"
BASE = "http://127.0.0.1:8999"
PASSWORD = "a long enough secret"
NEW_PASSWORD = "another long secret"


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def link_in(message: EmailMessage) -> str:
    """The path of the node's link in an email."""
    found = re.search(re.escape(BASE) + r"(/\S+)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


@pytest.fixture(scope="module")
def smtp():
    server = SmtpServer(SMTP_HOST)
    try:
        yield server.start(Mailbox()), server.port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("password_reset")
    url = make_database_url(tmp)
    yield tmp, url
    if url.startswith("postgresql"):
        drop_postgres_database(url)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def app(database: tuple[Path, str], smtp):
    tmp, url = database
    mailbox, port = smtp
    settings = node_settings(tmp, url, NODE_SMTP_HOST=SMTP_HOST, NODE_SMTP_PORT=str(port),
                             NODE_RATE_LOGIN_PER_ADDRESS="1000/60",
                             NODE_RATE_SIGNUP_PER_ADDRESS="1000/60")
    async with running_app(settings) as (node, client):
        yield node, client._transport.app, mailbox  # type: ignore[attr-defined]


def browser(asgi, address: str = "192.0.2.1", lang: str = "en") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi, client=(address, 40000)),
                             base_url=BASE, headers={"Accept-Language": lang})


async def sent(node: Node) -> None:
    """Sends what the node queued (the test node runs no sender of its own)."""
    await mailqueue.send_due(node)


async def member(node: Node, email: str, role: str = "member", locale: str = "",
                 org=None) -> str:
    return await create_member(node, NewMember(email=email, password=PASSWORD, locale=locale),
                               org=org, role=role)


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD
                 ) -> httpx.Response:
    token = csrf_from((await client.get("/login")).text)
    return await client.post("/login", data={"email": email, "password": password,
                                             "csrf_token": token})


async def form_post(client: httpx.AsyncClient, page: str, action: str | None = None,
                    **data: str) -> httpx.Response:
    token = csrf_from((await client.get(page)).text)
    return await client.post(action or page, data={"csrf_token": token, **data})


async def signed_in(client: httpx.AsyncClient) -> bool:
    return (await client.get("/account")).status_code == 200


async def password_hash(node: Node, email: str) -> str:
    return await node.db.fetch_val("SELECT password_hash FROM users WHERE email = :e",
                                   {"e": email})


# --- reset by email -------------------------------------------------------------------------------

async def test_a_reset_link_by_email_works_once_and_ends_every_session(app):
    node, asgi, mailbox = app
    await member(node, "anke@example.org", locale="nl")
    async with browser(asgi, "192.0.2.1") as phone, browser(asgi, "192.0.2.2") as other:
        await log_in(phone, "anke@example.org")
        stolen = phone.cookies.get(COOKIE)
        answer = await form_post(other, "/password/forgot", email="Anke@Example.org ")
        assert answer.status_code == 200
        assert "If an account uses Anke@Example.org, a link" in answer.text
        await sent(node)
        [email] = mailbox.to("anke@example.org")
        # In the member's language, not the language of the browser that asked.
        assert email["Subject"] == "Kies een nieuw wachtwoord voor Voisins solidaires"
        path = link_in(email)
        token = path.rsplit("/", 1)[-1]
        assert path.startswith("/password/reset/") and len(token) >= 40
        # Only the token's hash is stored.
        stored = await node.db.fetch_all("SELECT * FROM password_resets")
        assert stored and all(token not in str(row) for row in stored)
        # Opening the link (a mail scanner does) changes nothing.
        for _ in range(2):
            page = await other.get(path)
            assert page.status_code == 200 and "anke@example.org" in page.text
            assert page.headers["cache-control"] == "no-store"
        mismatch = await form_post(other, path, password=NEW_PASSWORD, confirm="not the same")
        assert mismatch.status_code == 400 and "The two passwords are different" in mismatch.text
        before = await password_hash(node, "anke@example.org")
        assert await signed_in(phone)
        done = await form_post(other, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/login"
        assert await password_hash(node, "anke@example.org") != before
        # Every session ended, the one a thief may have copied too.
        assert not await signed_in(phone)
        phone.cookies.set(COOKIE, stolen)
        assert not await signed_in(phone)
        login_page = await other.get("/login")
        assert 'value="anke@example.org"' in login_page.text
        assert "Log in with it." in login_page.text
        # The link worked once.
        again = await other.get(path)
        assert again.status_code == 404 and "does not work any more" in again.text
        reuse = await other.post(path, data={"csrf_token": csrf_from(login_page.text),
                                             "password": "a third password!",
                                             "confirm": "a third password!"})
        assert reuse.status_code == 404
        assert (await log_in(other, "anke@example.org")).status_code == 401
        assert (await log_in(other, "anke@example.org", NEW_PASSWORD)).status_code == 303


async def test_an_unknown_address_gets_the_same_answer_and_no_email(app):
    node, asgi, mailbox = app
    await member(node, "known@example.org")
    await sent(node)
    before = len(mailbox.messages)
    async with browser(asgi, "192.0.2.10") as client:
        known = await form_post(client, "/password/forgot", email="known@example.org")
        unknown = await form_post(client, "/password/forgot", email="nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("known@", "X@") == unknown.text.replace("nobody@", "X@")
    await sent(node)
    assert [m["To"] for m in mailbox.messages[before:]] == ["known@example.org"]


async def test_reset_emails_to_one_address_are_limited(app):
    node, asgi, mailbox = app
    await member(node, "flooded@example.org")
    async with browser(asgi, "192.0.2.20") as client:
        for _ in range(5):
            resp = await form_post(client, "/password/forgot", email="flooded@example.org")
            assert resp.status_code == 200 and "If an account uses" in resp.text
    await sent(node)
    assert len(mailbox.to("flooded@example.org")) == 3  # NODE_RATE_RESET_PER_ACCOUNT 3/3600


async def test_an_expired_link_is_refused(app):
    node, asgi, mailbox = app
    await member(node, "late@example.org")
    async with browser(asgi, "192.0.2.30") as client:
        await form_post(client, "/password/forgot", email="late@example.org")
        await sent(node)
        path = link_in(mailbox.to("late@example.org")[-1])
        assert (await client.get(path)).status_code == 200
        # An hour later.
        await node.db.execute("UPDATE password_resets SET expires_at = expires_at - 3601")
        page = await client.get(path)
        assert page.status_code == 404 and "expired" in page.text
        before = await password_hash(node, "late@example.org")
        resp = await client.post(path, data={"csrf_token": csrf_from(
            (await client.get("/login")).text), "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD})
        assert resp.status_code == 404
        assert await password_hash(node, "late@example.org") == before


# --- a link made by a coordinator -----------------------------------------------------------------

async def test_a_coordinator_makes_a_one_time_link_for_a_member_of_their_organisation(app):
    node, asgi, mailbox = app
    coordinator = await member(node, "coord@example.org", role="coordinator")
    helped = await member(node, "no-mailbox@example.org", locale="fr")
    colleague = await member(node, "coord2@example.org", role="coordinator")
    admin = await node.db.fetch_val("SELECT id FROM users WHERE email = :e", {"e": ADMIN_EMAIL})
    elsewhere_org = await create_actor(node, "Group", "ailleurs", "Ailleurs")
    elsewhere = await member(node, "elsewhere@example.org", org=elsewhere_org)
    async with browser(asgi, "192.0.2.40") as coord, browser(asgi, "192.0.2.41") as them:
        await log_in(them, "no-mailbox@example.org")
        # A member cannot make links.
        assert (await form_post(them, "/account", f"/account/members/{coordinator}/reset")
                ).status_code == 403
        await log_in(coord, "coord@example.org")
        page = await coord.get("/account/members")
        assert page.status_code == 200 and "no-mailbox@example.org" in page.text
        assert "elsewhere@example.org" not in page.text and ADMIN_EMAIL not in page.text
        for target in (admin, colleague, elsewhere, coordinator):
            refused = await form_post(coord, "/account/members",
                                      f"/account/members/{target}/reset")
            assert refused.status_code == 403, target
        assert await node.db.fetch_val("SELECT COUNT(*) FROM password_resets "
                                       "WHERE created_by = :c", {"c": coordinator}) == 0
        shown = await form_post(coord, "/account/members", f"/account/members/{helped}/reset")
        assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
        url = re.search(r'<a href="(http[^"]+/password/reset/[^"]+)"', shown.text).group(1)
        path = url.removeprefix(BASE)
        assert await node.db.fetch_val(
            "SELECT created_by FROM password_resets WHERE user_id = :u", {"u": helped}) \
            == coordinator
        # The member is told by email, in their language.
        await sent(node)
        [told] = mailbox.to("no-mailbox@example.org")
        assert told["Subject"].startswith("Une réinitialisation du mot de passe")
        assert "/password/reset/" not in text_of(told)  # the link itself goes by hand only
        # Handed over, it works once, and signs the member out everywhere.
        assert await signed_in(them)
        async with browser(asgi, "192.0.2.42") as kiosk:
            assert (await form_post(kiosk, path, password=NEW_PASSWORD,
                                    confirm=NEW_PASSWORD)).status_code == 303
            assert (await kiosk.get(path)).status_code == 404
            assert (await log_in(kiosk, "no-mailbox@example.org", NEW_PASSWORD)
                    ).status_code == 303
        assert not await signed_in(them)
    async with browser(asgi, "192.0.2.43") as admin_browser:
        await log_in(admin_browser, ADMIN_EMAIL, ADMIN_PASSWORD)
        # An admin may make one for a coordinator, never for themselves.
        assert (await form_post(admin_browser, "/account/members",
                                f"/account/members/{colleague}/reset")).status_code == 200
        assert (await form_post(admin_browser, "/account/members",
                                f"/account/members/{admin}/reset")).status_code == 403


async def test_a_password_change_is_told_to_the_owner_by_email(app):
    node, asgi, mailbox = app
    await member(node, "careful@example.org", locale="nl")
    async with browser(asgi, "192.0.2.50") as client:
        await log_in(client, "careful@example.org")
        resp = await form_post(client, "/account/password", current=PASSWORD,
                               password=NEW_PASSWORD, confirm=NEW_PASSWORD)
        assert resp.status_code == 303
    await sent(node)
    [told] = mailbox.to("careful@example.org")
    assert told["Subject"] == "Uw wachtwoord op Voisins solidaires is gewijzigd"
    assert f"{BASE}/password/forgot" in text_of(told)
    # Emails name the node as its pages do: by its organisation's name as the admin edited it.
    rename = "UPDATE actors SET name = :n WHERE username = :u"
    await node.db.execute(rename, {"n": "Buurtwerk Sint-Gillis", "u": node.settings.org_username})
    try:
        async with browser(asgi, "192.0.2.50") as client:
            await log_in(client, "careful@example.org", NEW_PASSWORD)
            resp = await form_post(client, "/account/password", current=NEW_PASSWORD,
                                   password=PASSWORD, confirm=PASSWORD)
            assert resp.status_code == 303
            assert "Buurtwerk Sint-Gillis" in (await client.get("/")).text
        await sent(node)
    finally:  # the node serves the whole module
        await node.db.execute(rename, {"n": "Voisins solidaires",
                                       "u": node.settings.org_username})
    assert mailbox.to("careful@example.org")[-1]["Subject"] == \
        "Uw wachtwoord op Buurtwerk Sint-Gillis is gewijzigd"


# --- sign-up never tells whether an address is known ----------------------------------------------

async def sign_up(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await form_post(client, "/signup", email=email, password=password,
                           confirm=password, display_name="Sam", username="")


async def test_sign_up_answers_the_same_for_a_known_and_a_new_address(app):
    node, asgi, mailbox = app
    await member(node, "taken@example.org", locale="nl")
    taken_hash = await password_hash(node, "taken@example.org")
    users = await node.db.fetch_val("SELECT COUNT(*) FROM users")
    async with browser(asgi, "192.0.2.60") as a, browser(asgi, "192.0.2.61") as b:
        known = await sign_up(a, "taken@example.org", "the attacker's pick")
        new = await sign_up(b, "fresh@example.org", "my own new secret")
    assert known.status_code == new.status_code == 200
    assert known.text.replace("taken@", "X@") == new.text.replace("fresh@", "X@")
    assert "Check your mailbox" in new.text
    assert sorted(known.headers.keys()) == sorted(new.headers.keys())
    # Nothing is made yet, and the known account is untouched.
    assert await node.db.fetch_val("SELECT COUNT(*) FROM users") == users
    assert await password_hash(node, "taken@example.org") == taken_hash
    await sent(node)
    [warning] = mailbox.to("taken@example.org")
    assert warning["Subject"] == ("Iemand heeft geprobeerd zich op Voisins solidaires te "
                                  "registreren met uw adres")
    assert f"{BASE}/password/forgot" in text_of(warning)
    assert "/signup/confirm/" not in text_of(warning)
    [confirm] = mailbox.to("fresh@example.org")
    path = link_in(confirm)
    assert path.startswith("/signup/confirm/")
    async with browser(asgi, "192.0.2.62") as c:
        assert (await c.get(path)).status_code == 200
        assert await node.db.fetch_val("SELECT COUNT(*) FROM users") == users  # a GET is not it
        made = await form_post(c, path)
        assert made.status_code == 303 and made.headers["location"] == "/account"
        page = await c.get("/account")
        assert "fresh@example.org" in page.text and "Welcome! Your account is ready." in page.text
        assert (await c.get(path)).status_code == 404
        assert (await form_post(c, "/account", path)).status_code == 400
    assert await node.db.fetch_val("SELECT COUNT(*) FROM users") == users + 1
    async with browser(asgi, "192.0.2.63") as d:
        assert (await log_in(d, "fresh@example.org", "my own new secret")).status_code == 303
        assert (await log_in(d, "taken@example.org", "the attacker's pick")).status_code == 401


async def test_form_problems_are_still_told_on_sign_up(app):
    node, asgi, mailbox = app
    async with browser(asgi, "192.0.2.70") as client:
        short = await sign_up(client, "shorty@example.org", "short")
        assert short.status_code == 400 and "at least 8 characters" in short.text
        bad = await sign_up(client, "not-an-address", "long enough here")
        assert bad.status_code == 400 and "Enter a valid email address" in bad.text
    assert await node.db.fetch_val(
        "SELECT COUNT(*) FROM signup_requests WHERE email = 'shorty@example.org'") == 0
