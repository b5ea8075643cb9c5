"""Every error a browser gets is a page in its language (FR, NL, EN) with the status kept and
a way back; ActivityPub clients still get JSON (node/errors.py). One in-process node for the
module, with one extra route that fails, to see a 500 without its traceback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from starlette.routing import Route

from node.app import create_app
from node.context import Node
from tests.conftest import node_settings
from tests.test_posts_pages import NEED, csrf, login, member, post_form

pytestmark = pytest.mark.asyncio(loop_scope="module")
AP = {"Accept": "application/activity+json"}
LANGS = ("fr", "nl", "en")


async def boom(request):  # the one route that fails, as a bug would
    raise RuntimeError("secret detail of the failure")


@contextlib.asynccontextmanager
async def failing_app(settings) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    app = create_app(settings)
    app.router.routes.append(Route("/boom", boom, methods=["GET", "POST"]))
    async with app.router.lifespan_context(app):
        # As a server would: the 500 is answered, not raised into the client.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False,
                                        client=("127.0.0.160", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
            yield app.state.node, client


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def site(module_database):
    tmp, url = module_database
    settings = node_settings(tmp, url, NODE_RATE_LOGIN_PER_ADDRESS="2/600")
    async with failing_app(settings) as (node, client):
        await member(node, "author@example.org", person="author")
        await member(node, "other@example.org", person="other")
        await login(client, "author@example.org")
        resp = await post_form(client, "need", NEED)
        post_id = resp.headers["location"].rsplit("/", 1)[-1]
        gone = await post_form(client, "need", {**NEED, "title": "A bed no longer needed"})
        gone_id = gone.headers["location"].rsplit("/", 1)[-1]
        page = await client.get(f"/posts/{gone_id}/status?action=withdraw")
        resp = await client.post(f"/posts/{gone_id}/status", data={
            "csrf_token": csrf(page), "action": "withdraw", "confirm": "yes"})
        assert resp.status_code == 303
        await login(client, "other@example.org")
        yield node, client, post_id, gone_id


def in_lang(lang: str) -> dict[str, str]:
    return {"Accept-Language": lang, "Accept": "text/html"}


def assert_page(resp: httpx.Response, status: int, words: str) -> None:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith("text/html")
    assert words in resp.text, resp.text
    assert 'href="/"' in resp.text  # a way back home
    assert '{"error"' not in resp.text


NOT_FOUND = {"fr": "Page introuvable", "nl": "Pagina niet gevonden", "en": "Page not found"}


@pytest.mark.parametrize("lang", LANGS)
async def test_unknown_addresses_and_posts_are_404_pages(site, lang) -> None:
    _node, client, _post, _gone = site
    for path in ("/no/such/page", "/posts/999999", "/static/nothing.css", "/users/nobody"):
        assert_page(await client.get(path, headers=in_lang(lang)), 404, NOT_FOUND[lang])
    # Coming from one of our pages, the page also leads back to it; never to another site.
    back = await client.get("/no/such", headers={**in_lang(lang), "Referer":
                                                 "http://127.0.0.1:8999/posts?kind=need"})
    assert 'href="/posts?kind=need"' in back.text
    elsewhere = await client.get("/no/such", headers={**in_lang(lang),
                                                      "Referer": "https://evil.example/x"})
    assert "evil.example" not in elsewhere.text


async def test_activitypub_clients_still_get_json(site) -> None:
    _node, client, _post, gone = site
    for path in ("/no/such/page", "/posts/999999", "/users/nobody"):
        resp = await client.get(path, headers=AP)
        assert resp.status_code == 404 and resp.json() == {"error": "not found"}
    tomb = await client.get(f"/posts/{gone}", headers=AP)
    assert tomb.status_code == 410 and tomb.json()["type"] == "Tombstone"
    bad = await client.get("/tags/a-b", headers={"Accept": "application/ld+json"})
    assert bad.status_code == 400 and "hashtag" in bad.json()["error"]


FORBIDDEN = {"fr": "Seul l’auteur ou un coordinateur peut faire cela.",
             "nl": "Alleen de auteur of een coördinator kan dit doen.",
             "en": "Only the author or a coordinator can do this."}
MODERATION = {"fr": "La modération est réservée aux administrateurs du nœud.",
              "nl": "Moderatie is voor de beheerders van het knooppunt.",
              "en": "Moderation is for the node&#39;s admins."}


@pytest.mark.parametrize("lang", LANGS)
async def test_forbidden_is_a_403_page_that_says_why(site, lang) -> None:
    _node, client, post, _gone = site
    assert_page(await client.get(f"/posts/{post}/edit", headers=in_lang(lang)), 403,
                FORBIDDEN[lang])
    assert_page(await client.get("/moderation", headers=in_lang(lang)), 403, MODERATION[lang])
    resp = await client.get(f"/posts/{post}/edit", headers=AP)
    assert resp.status_code == 403 and resp.json()["error"].startswith("Only the author")


WRONG_METHOD = {"fr": "Impossible de faire cela ici", "nl": "Dit kan hier niet",
                "en": "This cannot be done here"}


@pytest.mark.parametrize("lang", LANGS)
async def test_a_wrong_method_is_a_405_page(site, lang) -> None:
    _node, client, post, _gone = site
    resp = await client.get(f"/posts/{post}/respond", headers=in_lang(lang))
    assert_page(resp, 405, WRONG_METHOD[lang])
    assert "POST" in resp.headers["allow"]


WITHDRAWN = {"fr": "Son auteur a retiré cette annonce", "nl": "De auteur heeft dit zoekertje "
             "ingetrokken", "en": "Its author withdrew this post"}


@pytest.mark.parametrize("lang", LANGS)
async def test_a_withdrawn_post_is_a_410_page_saying_so(site, lang) -> None:
    _node, client, _post, gone = site
    resp = await client.get(f"/posts/{gone}", headers=in_lang(lang))
    assert_page(resp, 410, WITHDRAWN[lang])
    assert 'href="/posts"' in resp.text


BAD = {"fr": "Un mot-dièse compte de 1 à 64 lettres", "nl": "Een hashtag bestaat uit 1 tot 64",
       "en": "A hashtag is 1 to 64 letters"}


@pytest.mark.parametrize("lang", LANGS)
async def test_a_bad_request_is_a_400_page(site, lang) -> None:
    _node, client, _post, _gone = site
    assert_page(await client.get("/tags/a-b", headers=in_lang(lang)), 400, BAD[lang])


BROKEN = {"fr": "Un problème est survenu de notre côté", "nl": "Er ging bij ons iets mis",
          "en": "Something went wrong on our side"}


@pytest.mark.parametrize("lang", LANGS)
async def test_a_server_error_is_a_500_page_without_its_traceback(site, lang) -> None:
    _node, client, _post, _gone = site
    resp = await client.get("/boom", headers=in_lang(lang))
    assert_page(resp, 500, BROKEN[lang])
    assert "secret detail" not in resp.text and "Traceback" not in resp.text
    assert f'lang="{lang}"' in resp.text
    data = await client.get("/boom", headers=AP)
    assert data.status_code == 500 and "secret" not in data.text
    assert data.json() == {"error": "internal server error"}


TOO_MANY = {"fr": "Trop de tentatives", "nl": "Te veel pogingen", "en": "Too many attempts"}


async def test_too_many_sign_ins_is_a_429_page_with_retry_after(site) -> None:
    node, _client, _post, _gone = site
    for number, lang in enumerate(LANGS, start=161):
        # Each language from its own address: the limit counts per address.
        transport = httpx.ASGITransport(app=_client._transport.app,  # type: ignore[attr-defined]
                                        client=(f"127.0.0.{number}", 40000))
        async with httpx.AsyncClient(transport=transport,
                                     base_url=node.settings.base_url) as visitor:
            page = await visitor.get("/login")
            form = {"email": "other@example.org", "password": "wrong one",
                    "csrf_token": csrf(page)}
            for _ in range(2):
                assert (await visitor.post("/login", data=form)).status_code == 401
            resp = await visitor.post("/login", data=form, headers=in_lang(lang))
            assert_page(resp, 429, TOO_MANY[lang])
            assert int(resp.headers["retry-after"]) >= 1
            assert "attempts from this address" not in resp.text  # not the English reason
