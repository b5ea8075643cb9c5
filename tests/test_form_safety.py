"""Nothing typed is lost and nothing is destroyed by one click: an expired form comes back
filled in with a new token, a login returns to the exact page (never to another site), and
each destructive action asks first (node/web_support.py, node/errors.py)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from starlette.responses import Response
from starlette.routing import Route

from node.actors import actor_uri, by_username
from node.web_support import check_csrf
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.test_posts_pages import NEED, PASSWORD, csrf, login, member, post_form

pytestmark = pytest.mark.asyncio(loop_scope="module")
TYPED = "Bonjour, je peux venir samedi à 10 h avec la camionnette."


def location(resp: httpx.Response) -> str:
    assert resp.status_code in (302, 303), resp.text[:300]
    return resp.headers["location"]


async def open_post(node, client) -> str:
    await login(client, "author@example.org")
    resp = await post_form(client, "need", {**NEED, "title": f"Need {time.time_ns()}"})
    return location(resp).rsplit("/", 1)[-1]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def people(module_node):
    node, client = module_node
    await member(node, "author@example.org", person="author")
    await member(node, "helper@example.org", person="helper")
    return node, client


async def test_an_expired_conversation_message_comes_back_filled_in(people) -> None:
    node, client = people
    post = await open_post(node, client)
    await login(client, "helper@example.org")
    page = await client.get(f"/posts/{post}")
    # The response form first: refused for its token, the message stays.
    resp = await client.post(f"/posts/{post}/respond",
                             data={"csrf_token": "expired", "message": TYPED})
    assert resp.status_code == 403 and TYPED in resp.text
    resp = await client.post(f"/posts/{post}/respond",
                             data={"csrf_token": csrf(page), "message": "Je peux aider."})
    conversation = location(resp)
    resp = await client.post(conversation, data={"csrf_token": "expired", "message": TYPED})
    assert resp.status_code == 403
    assert f">{TYPED}</textarea>" in resp.text
    assert "Het formulier is verlopen" not in resp.text  # English page, English words
    assert "The form has expired" in resp.text
    # The page carries a new, working token: sending again succeeds and stores the message.
    again = await client.post(conversation, data={"csrf_token": csrf(resp), "message": TYPED})
    assert location(again) == conversation
    bodies = await node.db.fetch_all("SELECT body_html FROM conversation_messages")
    assert any("camionnette" in row["body_html"] for row in bodies)


async def test_an_expired_post_form_comes_back_filled_in(people) -> None:
    node, client = people
    await login(client, "author@example.org")
    before = await node.db.fetch_val("SELECT COUNT(*) FROM posts")
    resp = await client.post("/posts/new?kind=offer", data={
        "csrf_token": "expired", "kind": "offer", **NEED,
        "title": "Soupe du dimanche", "description": TYPED})
    assert resp.status_code == 403
    assert 'value="Soupe du dimanche"' in resp.text and TYPED in resp.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM posts") == before
    again = await client.post("/posts/new?kind=offer", data={
        "csrf_token": csrf(resp), "kind": "offer", **NEED,
        "title": "Soupe du dimanche", "description": TYPED})
    assert location(again).startswith("/posts/")


async def test_a_route_without_its_own_form_gets_the_typed_text_back(people) -> None:
    """The safety net of node/errors.py: a refused form is drawn again from what was sent,
    passwords left out, to send again with a new token."""
    node, client = people
    app = client._transport.app  # type: ignore[attr-defined]

    async def bare(request):
        check_csrf(request, await request.form())
        return Response(status_code=204)  # never reached in this test

    app.router.routes.append(Route("/bare-form", bare, methods=["POST"]))
    resp = await client.post("/bare-form?step=2", data={
        "csrf_token": "old", "note": TYPED, "password": "hunter2 secret"},
        headers={"Accept-Language": "nl"})
    assert resp.status_code == 403
    assert "Uw formulier is verlopen" in resp.text and TYPED in resp.text
    assert "hunter2" not in resp.text
    assert 'action="/bare-form?step=2"' in resp.text and csrf(resp) != "old"


async def test_a_login_returns_to_the_exact_page_query_included(people) -> None:
    node, client = people
    client.cookies.clear()
    resp = await client.get("/posts/new?kind=need")
    target = location(resp)
    assert parse_qs(urlsplit(target).query)["next"] == ["/posts/new?kind=need"]
    page = await client.get(target)
    assert 'name="next" value="/posts/new?kind=need"' in page.text
    resp = await client.post("/login", data={
        "csrf_token": csrf(page), "email": "author@example.org", "password": PASSWORD,
        "next": "/posts/new?kind=need"})
    assert location(resp) == "/posts/new?kind=need"
    assert (await client.get("/posts/new?kind=need")).status_code == 200


@pytest.mark.parametrize("evil", ["//evil.example/x", "https://evil.example/x",
                                  "/\\evil.example", "/\t/evil.example", "\\\\evil.example",
                                  "http:evil.example", "/%0a/evil.example".replace("%0a", "\n")])
async def test_a_login_never_sends_to_another_site(people, evil) -> None:
    node, client = people
    client.cookies.clear()
    page = await client.get("/login", params={"next": evil})
    assert 'name="next"' not in page.text  # the form does not carry it on
    resp = await client.post("/login", data={
        "csrf_token": csrf(page), "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
        "next": evil})
    target = location(resp)
    assert "evil" not in target and target.startswith("/") and not target.startswith("//")


async def test_withdraw_and_fulfil_ask_first_and_look_destructive(people) -> None:
    node, client = people
    post = await open_post(node, client)
    page = await client.get(f"/posts/{post}")
    assert page.text.count('class="danger"') >= 2  # "Mark fulfilled" and "Withdraw"
    for action in ("withdraw", "fulfil"):
        confirm = await client.get(f"/posts/{post}/status", params={"action": action})
        assert confirm.status_code == 200
        assert 'name="confirm" value="yes"' in confirm.text
        assert '<button type="submit" class="danger">' in confirm.text
    assert await node.db.fetch_val("SELECT status FROM posts WHERE id = :i",
                                   {"i": post}) == "open"


async def test_unfollow_asks_first_and_does_nothing_without_confirmation(people) -> None:
    node, client = people
    await login(client, "helper@example.org")
    me = actor_uri(node, await by_username(node, "helper", "Person"))
    remote = "https://far.example/groups/food"
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        {"f": me, "e": remote, "a": f"{me}#follow-1", "t": time.time()})
    page = await client.get("/network")
    assert '<button type="submit" class="danger">Unfollow</button>' in page.text
    asked = await client.post("/network/unfollow", data={"csrf_token": csrf(page),
                                                          "target": remote})
    assert asked.status_code == 200 and "Stop following this organisation?" in asked.text
    assert f'name="target" value="{remote}"' in asked.text and 'class="danger"' in asked.text
    assert 'href="/network"' in asked.text  # the way out
    still = "SELECT COUNT(*) FROM follows WHERE follower_uri = :f AND followee_uri = :e"
    assert await node.db.fetch_val(still, {"f": me, "e": remote}) == 1
    done = await client.post("/network/unfollow", data={"csrf_token": csrf(asked),
                                                        "target": remote, "confirm": "yes"})
    assert location(done) == "/network"
    assert await node.db.fetch_val(still, {"f": me, "e": remote}) == 0


async def admin_client(client) -> None:
    client.cookies.clear()
    page = await client.get("/login")
    resp = await client.post("/login", data={"csrf_token": csrf(page), "email": ADMIN_EMAIL,
                                             "password": ADMIN_PASSWORD})
    location(resp)


async def test_admin_unfollow_and_note_deletion_ask_first(people) -> None:
    node, client = people
    await admin_client(client)
    org = await node.db.fetch_val("SELECT username FROM actors WHERE kind = 'Group'")
    org_uri = actor_uri(node, await by_username(node, org, "Group"))
    remote = "https://far.example/groups/books"
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        {"f": org_uri, "e": remote, "a": f"{org_uri}#follow-2", "t": time.time()})
    page = await client.get(f"/admin?org={org}")
    assert 'class="danger">Unfollow' in page.text
    for action, words in (("unfollow", "Stop following this organisation?"),
                          ("delete-note", "Delete this note?")):
        asked = await client.post(f"/admin/{action}?org={org}",
                                  data={"csrf_token": csrf(page), "target": remote})
        assert asked.status_code == 200 and words in asked.text
        assert 'class="danger"' in asked.text
    assert await node.db.fetch_val(
        "SELECT COUNT(*) FROM follows WHERE follower_uri = :f AND followee_uri = :e",
        {"f": org_uri, "e": remote}) == 1


async def test_removing_a_post_and_deleting_an_account_ask_first(people) -> None:
    node, client = people
    post = await open_post(node, client)
    uri = await node.db.fetch_val("SELECT uri FROM posts WHERE id = :i", {"i": post})
    await admin_client(client)
    page = await client.get("/moderation")
    asked = await client.post("/moderation/remove-post",
                              data={"csrf_token": csrf(page), "target": uri})
    assert asked.status_code == 200 and "Remove this post?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and 'class="danger"' in asked.text
    assert await node.db.fetch_val("SELECT status FROM posts WHERE id = :i",
                                   {"i": post}) == "open"
    # The account: password and the ticked box, or nothing is deleted.
    await login(client, "helper@example.org")
    page = await client.get("/me/delete")
    assert '<button type="submit" class="danger">' in page.text
    resp = await client.post("/me/delete", data={"csrf_token": csrf(page),
                                                 "password": PASSWORD})
    assert resp.status_code == 400 and "Tick the box to confirm" in resp.text
    dutch = await client.post("/me/delete", headers={"Accept-Language": "nl"},
                              data={"csrf_token": csrf(page), "password": PASSWORD})
    assert "Vink het vakje aan om te bevestigen" in dutch.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM users WHERE email = :e",
                                   {"e": "helper@example.org"}) == 1
