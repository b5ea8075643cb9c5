"""The matching rule's edges (node/matching.py) on stored posts, and the choice of how often a
member hears of matches, through the settings form (bad input refused, nothing saved)."""

from __future__ import annotations

import json
import time

import pytest

from node import matching
from node.accounts.members import NewMember, create_member
from node.db import new_id
from tests.nodes import csrf_from

pytestmark = pytest.mark.asyncio(loop_scope="module")

DAY = 86400.0
FOREST = (50.81, 4.32)
ANDERLECHT = (50.84, 4.31)
EVERE = (50.87, 4.40)
PASSWORD = "long enough password"


async def stored(node, kind: str, *, place=FOREST, neighbourhood="Forest", category="housing",
                 languages="fr", starts=None, ends=None, status="open", remote=False,
                 org="", visibility="public", title="", author=None, proxied=False) -> dict:
    post_id = new_id()[:16]
    org_uri = org or node.url("/groups/voisins")
    row = {"id": post_id, "uri": f"{org_uri}/posts/{post_id}", "org_uri": org_uri,
           "attributed_to": org_uri, "kind": kind, "category": category,
           "title": title or f"{kind} {post_id}", "neighbourhood": neighbourhood,
           "latitude": place[0] if place else None, "longitude": place[1] if place else None,
           "starts_at": starts, "ends_at": ends, "languages": languages,
           "visibility": visibility, "status": status, "remote": int(remote),
           "author_user_id": author, "proxied": int(proxied),
           "created_at": time.time(), "updated_at": time.time()}
    await node.db.execute(
        f"INSERT INTO posts ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)
    return row


async def fitting_ids(node, post: dict) -> set[str]:
    return {r["id"] for r in await matching.fitting(node, post, limit=50)}


@pytest.fixture
def node(module_node):
    return module_node[0]


async def test_the_rule_category_place_dates_language_and_status(node):
    need = await stored(node, "need", place=ANDERLECHT, neighbourhood="Anderlecht",
                        languages="fr,nl", starts=time.time() + 3 * DAY,
                        ends=time.time() + 5 * DAY)
    fits = {
        (await stored(node, "offer"))["id"],  # open-ended, nearby, French
        (await stored(node, "offer", languages=""))["id"],  # names no language: shares any
        (await stored(node, "offer", languages="en,nl"))["id"],
        (await stored(node, "offer", starts=time.time(), ends=time.time() + 4 * DAY))["id"],
        # Placed by name only, in the need's neighbourhood.
        (await stored(node, "offer", place=None, neighbourhood="Anderlecht"))["id"],
    }
    for misfit in (
        {"category": "food"}, {"place": EVERE, "neighbourhood": "Evere"},
        {"languages": "en"}, {"status": "fulfilled"},
        {"starts": time.time() + 6 * DAY}, {"ends": time.time() + 2 * DAY},
        {"ends": time.time() - DAY},  # over already
        {"place": None, "neighbourhood": "Forest"},  # no coordinates, another neighbourhood
        # From a node nobody here follows: not among the lists, not among the matches.
        {"remote": True, "org": "http://elsewhere.example/groups/x"},
    ):
        await stored(node, "offer", **misfit)
    assert await fitting_ids(node, need) == fits
    # The reverse: an offer finds the need.
    offer = await stored(node, "offer", title="reverse")
    assert need["id"] in await fitting_ids(node, offer)


async def test_a_post_with_no_place_fits_nothing_and_a_need_does_not_fit_a_need(node):
    nowhere = await stored(node, "need", place=None, neighbourhood="", category="moving")
    await stored(node, "offer", category="moving")
    assert await fitting_ids(node, nowhere) == set()
    need = await stored(node, "need", category="transport")
    await stored(node, "need", category="transport")
    assert await fitting_ids(node, need) == set()


async def test_a_visitor_sees_public_matches_only(node):
    need = await stored(node, "need", category="childcare")
    public = await stored(node, "offer", category="childcare")
    await stored(node, "offer", category="childcare", visibility="local")
    shown, total, more = await matching.best_matches(node, need, None)
    assert [r["id"] for r in shown] == [public["id"]] and total == 1 and not more
    member = {"id": "nobody-blocked"}
    shown, total, more = await matching.best_matches(node, need, member)
    assert total == 2 and len(shown) == 2 and not more


async def test_nearest_first_and_a_count_that_stops_at_fifty(node):
    """The widening circles give the nearest of all, and the page counts up to 50."""
    need = await stored(node, "need", category="language")
    near = [await stored(node, "offer", category="language", title=f"near {n}")
            for n in range(matching.SHOWN)]
    farther = await stored(node, "offer", category="language", place=(50.83, 4.35),
                           neighbourhood="Saint-Gilles")
    for _ in range(matching.COUNTED_AT_MOST):
        await stored(node, "offer", category="language", place=ANDERLECHT,
                     neighbourhood="Anderlecht")
    shown, total, more = await matching.best_matches(node, need, None)
    assert {r["id"] for r in shown} == {p["id"] for p in near}
    assert total == matching.COUNTED_AT_MOST and more
    found = await matching.fitting(node, need, limit=matching.SHOWN + 1)
    assert found[-1]["id"] == farther["id"]  # 3.1 km: found past the first circles


async def told(node, user_id: str) -> list[tuple[str, dict]]:
    rows = await node.db.fetch_all(
        "SELECT kind, payload FROM notifications WHERE user_id = :u ORDER BY id", {"u": user_id})
    return [(r["kind"], json.loads(r["payload"])) for r in rows]


async def test_a_proxied_need_tells_every_coordinator_and_no_one_who_blocked_its_author(node):
    async def person(name: str, role: str = "member") -> str:
        return await create_member(node, NewMember(f"{name}@n.example", PASSWORD, PASSWORD,
                                                   display_name=name.title()), role=role)

    offerer, blocker = await person("offerer"), await person("blocker")
    first, second = await person("coord1", "coordinator"), await person("coord2", "coordinator")
    org_uri = node.url("/groups/voisins")
    await node.db.execute("INSERT INTO actor_blocks (owner, actor_uri, created_at) "
                          "VALUES (:o, :a, :t)", {"o": blocker, "a": org_uri, "t": time.time()})
    offer = await stored(node, "offer", category="shower", author=offerer, title="A shower")
    await stored(node, "offer", category="shower", author=blocker, title="Another shower")
    # Written by the first coordinator on behalf of someone: the organisation speaks for it.
    need = await stored(node, "need", category="shower", author=first, proxied=True,
                        title="A shower for Mr. K")
    await matching.post_arrived(node, need)

    [(kind, payload)] = await told(node, offerer)
    assert kind == "need_fits_offer" and payload["title"] == "A shower for Mr. K"
    assert payload["mine"] == "A shower" and payload["url"].endswith(f"/posts/{need['id']}")
    assert await told(node, blocker) == []
    for coordinator in (first, second):
        [(kind, payload)] = await told(node, coordinator)
        assert kind == "matches_found" and payload["num"] == 2, coordinator
    # Told once: the same post arriving again (a redelivery) tells nobody anew.
    await matching.post_arrived(node, need)
    assert len(await told(node, offerer)) == 1 and len(await told(node, second)) == 1
    assert offer["id"] in {r["id"] for r in await matching.fitting(node, need, limit=5)}


async def test_the_frequency_form_refuses_what_is_not_offered(module_node):
    node, client = module_node
    await create_member(node, NewMember("freq@n.example", PASSWORD, PASSWORD,
                                        display_name="Freq", locale="en"))
    token = csrf_from((await client.get("/login")).text)
    resp = await client.post("/login", data={"csrf_token": token, "email": "freq@n.example",
                                             "password": PASSWORD})
    assert resp.status_code == 303
    user_id = await node.db.fetch_val("SELECT id FROM users WHERE email = 'freq@n.example'")
    assert await matching.frequency_of(node, user_id) == matching.AT_ONCE
    page = await client.get("/notifications/settings")
    assert 'name="match_frequency" value="instant" checked' in page.text
    resp = await client.post("/notifications/settings", data={
        "csrf_token": csrf_from(page.text), "match_frequency": "hourly"})
    assert resp.status_code == 400
    assert "Choose how often you hear of matches from the list." in resp.text
    assert await matching.frequency_of(node, user_id) == matching.AT_ONCE
    resp = await client.post("/notifications/settings", data={
        "csrf_token": csrf_from(page.text), "match_frequency": "digest"})
    assert resp.status_code == 303
    assert await matching.frequency_of(node, user_id) == matching.DIGEST
    page = await client.get("/notifications/settings")
    assert 'name="match_frequency" value="digest" checked' in page.text


async def test_an_edit_that_makes_a_need_fit_tells_the_offer_once(module_node):
    """Matching runs again when a post is edited: the need that did not fit (another category)
    tells the offer's author once it does, and a later edit tells nobody anew."""
    node, client = module_node
    giver = await create_member(node, NewMember("giver@n.example", PASSWORD, PASSWORD,
                                                display_name="Giver"))
    await stored(node, "offer", category="clothes", author=giver, title="Winter coats")
    await create_member(node, NewMember("asker@n.example", PASSWORD, PASSWORD,
                                        display_name="Asker", locale="en"))
    client.cookies.clear()
    token = csrf_from((await client.get("/login")).text)
    resp = await client.post("/login", data={"csrf_token": token, "email": "asker@n.example",
                                             "password": PASSWORD})
    assert resp.status_code == 303
    fields = {"kind": "need", "title": "Warm clothes for a child",
              "description": "Size 8, for the winter.", "neighbourhood": "Forest",
              "urgency": "2", "languages": ["fr"], "publish_as_written": "1"}
    page = await client.get("/posts/new?kind=need")
    resp = await client.post("/posts/new?kind=need", data={
        "csrf_token": csrf_from(page.text), **fields, "category": "food"})
    assert resp.status_code == 303, resp.text[-1500:]
    need_id = resp.headers["location"].rsplit("/", 1)[-1].split("?")[0]
    assert await told(node, giver) == []  # food does not fit coats

    for title in ("Warm clothes for a child", "Warm clothes for a child, size 8"):
        page = await client.get(f"/posts/{need_id}/edit")
        resp = await client.post(f"/posts/{need_id}/edit", data={
            "csrf_token": csrf_from(page.text), **fields, "title": title,
            "category": "clothes"})
        assert resp.status_code == 303, resp.text[-1500:]
        [(kind, payload)] = await told(node, giver)
        assert kind == "need_fits_offer" and payload["mine"] == "Winter coats"


async def test_a_remote_posts_withdrawal_reaches_a_responder_already_told_it_closed(node):
    """Another node sends its kind Reject ('closed') and the post's Delete apart; when the
    Reject comes first the response is no longer pending, and the responder must still hear
    that the post was withdrawn (node/posts/notify.post_status_changed)."""
    from node.posts.incoming import post_deleted

    helper = await create_member(node, NewMember("late@n.example", PASSWORD, PASSWORD,
                                                 display_name="Late"))
    post = await stored(node, "need", remote=True, org="http://b.example/groups/refuge",
                        title="A bed for two nights")
    await node.db.execute(
        "INSERT INTO responses (id, post_id, thread_uri, responder_uri, responder_user_id, "
        "responder_name, message_html, public, status, offer_uri, answer_uri, created_at, "
        "updated_at) VALUES (:i, :p, :th, :r, :u, 'Late', 'I can help', 0, 'not_needed', "
        ":o, NULL, :t, :t)",
        {"i": new_id()[:16], "p": post["id"], "th": node.url(f"/threads/{new_id()}"),
         "r": node.url("/users/late"), "u": helper, "o": node.url(f"/offers/{new_id()}"),
         "t": time.time()})
    await post_deleted(node, post["uri"], post["attributed_to"])
    [(kind, payload)] = await told(node, helper)
    assert kind == "post_status_changed" and payload["status"] == "withdrawn"
