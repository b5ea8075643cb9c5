"""Sessions, password checks, security headers and notices, attacked through the ASGI app on a
real SQLite or PostgreSQL database, as a visitor with a browser (and a copied cookie) would:

- a cookie copied before logout, a password change, "sign out everywhere" or a suspension
  opens nothing afterwards; signing in gives a new session id (no fixation);
- every password check (login, account deletion, password change) is rate-limited per client
  address and per account, and only wrong passwords count;
- every HTML page carries the CSP, frame-ancestors, nosniff and Referrer-Policy headers, and
  holds no inline script or style that the CSP would block;
- `?msg=` and the old `?welcome=` / `?saved=` show nothing; notices come from the session, once,
  in the reader's language.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from node.accounts.members import NewMember, create_member
from node.accounts.sessions import COOKIE
from node.context import Node
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, node_settings, running_app
from tests.databases import drop_postgres_database, make_database_url
from tests.nodes import csrf_from

pytestmark = pytest.mark.asyncio(loop_scope="module")

PASSWORD = "a long enough secret"
BASE = "http://127.0.0.1:8999"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("sessions")
    url = make_database_url(tmp)
    yield tmp, url
    if url.startswith("postgresql"):
        drop_postgres_database(url)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def app(database: tuple[Path, str]):
    tmp, url = database
    settings = node_settings(
        tmp, url, NODE_RATE_PASSWORD_PER_ADDRESS="4/600", NODE_RATE_PASSWORD_PER_ACCOUNT="6/600",
        NODE_RATE_LOGIN_PER_ADDRESS="1000/60", NODE_RATE_SESSIONS_PER_ADDRESS="25/600")
    async with running_app(settings) as (node, client):
        yield node, client._transport.app  # type: ignore[attr-defined]


def browser(asgi, address: str, lang: str = "en") -> httpx.AsyncClient:
    """A browser on its own client address (each has its own rate-limit budget)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi, client=(address, 40000)),
                             base_url=BASE, headers={"Accept-Language": lang})


async def new_member(node: Node, email: str, role: str = "member", locale: str = "") -> str:
    user_id = await create_member(node, NewMember(email=email, password=PASSWORD,
                                                  locale=locale), role=role)
    return user_id


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD
                 ) -> httpx.Response:
    token = csrf_from((await client.get("/login")).text)
    return await client.post("/login", data={"email": email, "password": password,
                                             "csrf_token": token})


async def signed_in(client: httpx.AsyncClient) -> bool:
    """Whether the client's cookie opens a member's page."""
    resp = await client.get("/account")
    return resp.status_code == 200


def with_cookie(asgi, address: str, cookie: str) -> httpx.AsyncClient:
    """Another browser holding a copy of a cookie (a stolen or replayed one)."""
    other = browser(asgi, address)
    other.cookies.set(COOKIE, cookie)
    return other


NEED = {"category": "housing", "title": "A bed for two nights",
        "description": "A mother and her child need **a bed** for two nights. #soupe",
        "neighbourhood": "Saint-Gilles", "capacity": "2", "unit": "night", "urgency": "3",
        "languages": ["fr"]}


async def a_post(node: Node, asgi, address: str) -> str:
    """A need posted through the form by a new member; returns its id."""
    email = f"poster-{address}@example.org"
    await new_member(node, email)
    async with browser(asgi, address) as poster:
        await log_in(poster, email)
        token = csrf_from((await poster.get("/posts/new?kind=need")).text)
        resp = await poster.post("/posts/new?kind=need",
                                 data={"csrf_token": token, "kind": "need", **NEED})
        assert resp.status_code == 303, resp.text
        return resp.headers["location"].rsplit("/", 1)[-1]


async def form_post(client: httpx.AsyncClient, page: str, action: str, **data: str
                    ) -> httpx.Response:
    token = csrf_from((await client.get(page)).text)
    return await client.post(action, data={"csrf_token": token, **data})


# --- sessions end where they should --------------------------------------------------------------

async def test_a_cookie_replayed_after_logout_opens_nothing(app):
    node, asgi = app
    await new_member(node, "lea@example.org")
    async with browser(asgi, "192.0.2.1") as lea:
        before_login = (await lea.get("/login")).cookies.get(COOKIE)
        assert (await log_in(lea, "lea@example.org")).status_code == 303
        cookie = lea.cookies.get(COOKIE)
        # A new id at sign-in: an id planted before it (session fixation) is worth nothing.
        assert cookie and before_login and cookie != before_login
        async with with_cookie(asgi, "192.0.2.2", before_login) as planted:
            assert not await signed_in(planted)
        # The cookie is an opaque random id; the database keeps only its SHA-256.
        user_id = await node.db.fetch_val("SELECT id FROM users WHERE email = 'lea@example.org'")
        assert user_id not in cookie
        rows = await node.db.fetch_all("SELECT id_hash FROM web_sessions WHERE user_id = :u",
                                       {"u": user_id})
        assert [r["id_hash"] for r in rows] == [hashlib.sha256(cookie.encode()).hexdigest()]
        async with with_cookie(asgi, "192.0.2.3", cookie) as thief:
            assert await signed_in(thief)  # a live session works from anywhere...
            out = await form_post(lea, "/account", "/logout")
            assert out.status_code == 303
            assert not await signed_in(lea)
            # ... and the copy dies with it: the stateless cookie of before replayed for 14 days.
            assert not await signed_in(thief)
        assert await node.db.fetch_val("SELECT COUNT(*) FROM web_sessions WHERE user_id = :u",
                                       {"u": user_id}) == 0


async def test_a_password_change_ends_the_other_sessions(app):
    node, asgi = app
    await new_member(node, "omar@example.org")
    async with browser(asgi, "192.0.2.10") as laptop, browser(asgi, "192.0.2.11") as phone:
        await log_in(laptop, "omar@example.org")
        await log_in(phone, "omar@example.org")
        old_hash = await node.db.fetch_val(
            "SELECT password_hash FROM users WHERE email = 'omar@example.org'")
        wrong = await form_post(laptop, "/account/password", "/account/password",
                                current="not my password", password="a brand new secret",
                                confirm="a brand new secret")
        assert wrong.status_code == 400 and "Your current password is not right." in wrong.text
        short = await form_post(laptop, "/account/password", "/account/password",
                                current=PASSWORD, password="short", confirm="short")
        assert short.status_code == 400 and "at least 8 characters" in short.text
        assert await node.db.fetch_val(
            "SELECT password_hash FROM users WHERE email = 'omar@example.org'") == old_hash
        assert await signed_in(phone)
        done = await form_post(laptop, "/account/password", "/account/password",
                               current=PASSWORD, password="a brand new secret",
                               confirm="a brand new secret")
        assert done.status_code == 303 and done.headers["location"] == "/account"
        page = await laptop.get("/account")
        assert page.status_code == 200
        assert "Your password is changed. You are signed out everywhere else." in page.text
        assert not await signed_in(phone)
    async with browser(asgi, "192.0.2.12") as again:
        assert (await log_in(again, "omar@example.org")).status_code == 401
        assert (await log_in(again, "omar@example.org", "a brand new secret")).status_code == 303


async def test_sign_out_everywhere_ends_every_session(app):
    node, asgi = app
    user_id = await new_member(node, "ines@example.org")
    async with browser(asgi, "192.0.2.20") as one, browser(asgi, "192.0.2.21") as two:
        await log_in(one, "ines@example.org")
        await log_in(two, "ines@example.org")
        resp = await form_post(one, "/account", "/account/sign-out-everywhere")
        assert resp.status_code == 303 and resp.headers["location"] == "/login"
        page = await one.get("/login")
        assert "You are signed out on every device, this one included." in page.text
        assert not await signed_in(one) and not await signed_in(two)
    assert await node.db.fetch_val("SELECT COUNT(*) FROM web_sessions WHERE user_id = :u",
                                   {"u": user_id}) == 0


async def test_a_suspension_ends_every_session_at_once(app):
    node, asgi = app
    user_id = await new_member(node, "spam@example.org")
    async with browser(asgi, "192.0.2.30") as member, browser(asgi, "192.0.2.31") as admin:
        await log_in(member, "spam@example.org")
        cookie = member.cookies.get(COOKIE)
        await log_in(admin, ADMIN_EMAIL, ADMIN_PASSWORD)
        resp = await form_post(admin, "/moderation", "/moderation/suspend", user=user_id,
                               reason="spam")
        assert resp.status_code == 303
        # Gone from the database at once, not only at the member's next request.
        assert await node.db.fetch_val("SELECT COUNT(*) FROM web_sessions WHERE user_id = :u",
                                       {"u": user_id}) == 0
        async with with_cookie(asgi, "192.0.2.32", cookie) as copy:
            assert not await signed_in(copy)
        refused = await log_in(member, "spam@example.org")
        assert refused.status_code == 403 and "suspended" in refused.text
        assert not await signed_in(member)
        await form_post(admin, "/moderation", "/moderation/unsuspend", user=user_id)
        assert (await log_in(member, "spam@example.org")).status_code == 303


# --- every password check is rate-limited ---------------------------------------------------------

async def test_the_password_of_account_deletion_is_rate_limited_per_address(app):
    node, asgi = app
    user_id = await new_member(node, "del@example.org")
    async with browser(asgi, "198.51.100.1") as client:
        await log_in(client, "del@example.org")
        for _ in range(4):
            resp = await form_post(client, "/me/delete", "/me/delete", password="guess",
                                   confirm="yes")
            assert resp.status_code == 400
        limited = await form_post(client, "/me/delete", "/me/delete", password="guess",
                                  confirm="yes")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert "Too many attempts" in limited.text
        # Even the right password is not checked while the address is limited.
        right = await form_post(client, "/me/delete", "/me/delete", password=PASSWORD,
                                confirm="yes")
        assert right.status_code == 429
        assert await node.db.fetch_val("SELECT COUNT(*) FROM users WHERE id = :u",
                                       {"u": user_id}) == 1
        # The same budget covers the other forms that check a password from this address.
        change = await form_post(client, "/account/password", "/account/password",
                                 current=PASSWORD, password="another secret!",
                                 confirm="another secret!")
        assert change.status_code == 429


async def test_wrong_passwords_are_limited_per_account_whatever_the_address(app):
    node, asgi = app
    await new_member(node, "target@example.org")
    statuses = []
    for n in range(6):  # six addresses, one wrong guess each: the account's budget
        async with browser(asgi, f"203.0.113.{n + 1}") as attacker:
            statuses.append((await log_in(attacker, "target@example.org", f"guess {n}"))
                            .status_code)
    assert statuses == [401] * 6
    async with browser(asgi, "203.0.113.50") as attacker:
        resp = await log_in(attacker, "target@example.org", "guess 7")
        assert resp.status_code == 429 and "Too many attempts" in resp.text
        assert 'value="target@example.org"' in resp.text
    # Another account is not affected.
    await new_member(node, "other@example.org")
    async with browser(asgi, "203.0.113.51") as someone:
        assert (await log_in(someone, "other@example.org")).status_code == 303


async def test_right_passwords_do_not_count_and_the_form_keeps_the_email(app):
    node, asgi = app
    await new_member(node, "often@example.org")
    async with browser(asgi, "198.51.100.20") as client:
        for _ in range(8):  # more than either budget: successes are given back
            assert (await log_in(client, "often@example.org")).status_code == 303
            client.cookies.clear()
        wrong = await log_in(client, "often@example.org", "not it")
        assert wrong.status_code == 401 and "Wrong email or password." in wrong.text
        assert 'value="often@example.org"' in wrong.text


# --- security headers on every page ---------------------------------------------------------------

PUBLIC_PAGES = ["/", "/posts", "/login", "/signup", "/password/forgot", "/users/voisins",
                "/tags/soupe", "/password/reset/not-a-token", "/signup/confirm/nope",
                "/no/such/page"]
MEMBER_PAGES = ["/account", "/account/password", "/account/members", "/account/invitations",
                "/notifications", "/me/delete", "/blocks", "/report", "/posts/mine",
                "/posts/new?kind=offer", "/posts/new?kind=need", "/admin", "/moderation"]


def check_headers(path: str, resp: httpx.Response) -> None:
    csp = resp.headers.get("content-security-policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";")}
    assert directives.get("default-src") == "default-src 'none'", (path, csp)
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (path, csp)
    assert directives.get("style-src") == "style-src 'self'", (path, csp)
    assert "script-src" not in directives and "unsafe-inline" not in csp, (path, csp)
    assert resp.headers.get("x-content-type-options") == "nosniff", path
    assert resp.headers.get("referrer-policy") in ("same-origin", "no-referrer"), path


def check_no_inline_code(path: str, html: str) -> None:
    """What the CSP would block must not be in the page at all (it would silently break)."""
    assert "<script" not in html.lower(), path
    assert "<style" not in html.lower(), path
    assert not re.search(r"\sstyle\s*=", html, re.I), path
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), path
    for href in re.findall(r'<link rel="stylesheet" href="([^"]+)"', html):
        assert href.startswith("/static/"), (path, href)


async def test_every_html_page_carries_the_security_headers(app):
    node, asgi = app
    post_id = await a_post(node, asgi, "198.51.100.29")
    own_pages = [f"/posts/{post_id}", f"/posts/{post_id}/responses", f"/posts/{post_id}/edit"]
    for email, password, pages in [(ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PAGES),
                                   ("poster-198.51.100.29@example.org", PASSWORD, own_pages)]:
        async with browser(asgi, "198.51.100.30") as client:
            await log_in(client, email, password)
            for path in pages:
                resp = await client.get(path)
                assert resp.status_code == 200, (path, resp.status_code)
                assert resp.headers["content-type"].startswith("text/html"), path
                check_headers(path, resp)
                check_no_inline_code(path, resp.text)
    async with browser(asgi, "198.51.100.31") as visitor:
        for path in [*PUBLIC_PAGES, f"/posts/{post_id}"]:
            resp = await visitor.get(path)
            check_headers(path, resp)
            if resp.headers.get("content-type", "").startswith("text/html"):
                check_no_inline_code(path, resp.text)
        # Static files and JSON too (nosniff matters most there).
        for path in ["/static/style.css", "/static/posts.css", "/.well-known/nodeinfo"]:
            resp = await visitor.get(path)
            assert resp.status_code == 200, path
            check_headers(path, resp)


# --- notices come from the session, never from the address ----------------------------------------

async def test_the_query_string_never_becomes_a_notice(app):
    node, asgi = app
    hostile = ["<script>alert(1)</script>", "Official: your account is closed, call 0900"]
    post_id = await a_post(node, asgi, "198.51.100.39")
    for email, password, pages in [
            (ADMIN_EMAIL, ADMIN_PASSWORD, ["/", "/posts", "/account", "/account/members",
                                           "/admin", "/moderation", "/login"]),
            ("poster-198.51.100.39@example.org", PASSWORD,
             [f"/posts/{post_id}", f"/posts/{post_id}/responses", "/posts/mine",
              "/notifications", "/notifications/settings"])]:
        async with browser(asgi, "198.51.100.40") as client:
            await log_in(client, email, password)
            for path in pages:
                for text in hostile:
                    sep = "&" if "?" in path else "?"
                    resp = await client.get(f"{path}{sep}msg={text}&welcome=1&saved=1")
                    assert resp.status_code == 200, path
                    # (The language links keep the query, URL-encoded, inside their href.)
                    shown = re.sub(r"<[^>]*>", " ", resp.text)
                    assert "alert(1)" not in shown and "Official" not in shown, path
                    assert "<script>" not in resp.text, path
                    assert 'role="status"' not in resp.text, path
    # The old notices are gone from the address too.
    async with browser(asgi, "198.51.100.41") as client:
        await log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        page = await client.get("/account?welcome=1")
        assert "Welcome" not in page.text and "settings are saved" not in page.text


async def test_a_notice_is_shown_once_in_the_readers_language(app):
    node, asgi = app
    await new_member(node, "nl@example.org")
    async with browser(asgi, "198.51.100.50", lang="nl") as client:
        await log_in(client, "nl@example.org")
        resp = await form_post(client, "/account", "/account", display_name="Anke",
                               locale="")
        assert resp.status_code == 303 and resp.headers["location"] == "/account"
        page = await client.get("/account")
        assert '<p class="notice" role="status">Uw instellingen zijn opgeslagen.</p>' \
            in page.text
        assert 'role="status"' not in (await client.get("/account")).text


async def test_visitors_get_a_stored_session_only_for_a_form_and_within_a_budget(app):
    node, asgi = app
    before = await node.db.fetch_val("SELECT COUNT(*) FROM web_sessions")
    async with browser(asgi, "198.51.100.60") as visitor:
        for path in ["/", "/posts", "/users/voisins"]:
            assert COOKIE not in (await visitor.get(path)).cookies
        assert await node.db.fetch_val("SELECT COUNT(*) FROM web_sessions") == before
        assert COOKIE in (await visitor.get("/login")).cookies  # a form: a CSRF token
    # A crawler that never keeps cookies makes at most the address's budget of rows.
    async with browser(asgi, "198.51.100.61") as crawler:
        for _ in range(40):
            crawler.cookies.clear()
            await crawler.get("/login")
    assert await node.db.fetch_val("SELECT COUNT(*) FROM web_sessions") <= before + 1 + 25
