"""A member (not the admin) follows another node's organisation, by handle or by profile link,
and gets the open needs it posted before the follow (its outbox, read once the follow is
accepted), with the names of who posted them; following again adds nothing; unfollowing takes
them out of the list. Then a hostile server's outboxes: objects of other servers embedded,
10,000 items, pages in a circle or without end — bounded, and nothing forged is kept.

Two real nodes and a hostile peer on loopback addresses, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from node import backfill
from node.backfill import MAX_FETCHES, MAX_ITEMS, MAX_PAGES
from tests.hostile import PUBLIC, HostileActor, HostilePeer
from tests.nodes import NodeProcess, csrf_from

pytestmark = pytest.mark.e2e
PASSWORD = "long enough password"
AP = {"Accept": "application/activity+json"}
FEP = "https://w3id.org/valueflows/ont/vf#"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("member_follow")
    a = NodeProcess(tmp / "a", host="127.0.0.140", org="quartier").start()
    b = NodeProcess(tmp / "b", host="127.0.0.141", org="refuge").start()
    yield a, b
    a.close()
    b.close()


@pytest.fixture(scope="module")
def hostile():
    peer = HostilePeer("127.0.0.142").start()
    yield peer
    peer.stop()


def member(node: NodeProcess, email: str, name: str) -> httpx.Client:
    """Someone who signed up through the node's own form: a member, not an admin."""
    client = httpx.Client(base_url=node.base, timeout=15, headers={"Accept-Language": "en"})
    token = csrf_from(client.get("/signup").text)
    resp = client.post("/signup", data={"csrf_token": token, "email": email,
                                        "password": PASSWORD, "confirm": PASSWORD,
                                        "display_name": name})
    assert resp.status_code == 303, resp.text
    return client


def actor_of(node: NodeProcess, email: str) -> str:
    row = node.query("SELECT a.username, u.role FROM users u JOIN actors a ON a.id = u.actor_id "
                     "WHERE u.email = :e", {"e": email})[0]
    assert row["role"] == "member"
    return f"{node.base}/users/{row['username']}"


def post_need(client: httpx.Client, title: str) -> str:
    form = client.get("/posts/new?kind=need")
    resp = client.post("/posts/new?kind=need", data={
        "csrf_token": csrf_from(form.text), "kind": "need", "category": "housing",
        "title": title, "description": f"{title}, in Saint-Gilles.",
        "neighbourhood": "Saint-Gilles", "urgency": "2", "languages": ["fr"]})
    assert resp.status_code == 303, resp.text
    return resp.headers["location"].rsplit("/", 1)[-1]


def fulfil(client: httpx.Client, post_id: str) -> None:
    confirm = client.get(f"/posts/{post_id}/status?action=fulfil")
    resp = client.post(f"/posts/{post_id}/status", data={
        "csrf_token": csrf_from(confirm.text), "action": "fulfil", "confirm": "yes"})
    assert resp.status_code == 303, resp.text


def follow(client: httpx.Client, target: str) -> httpx.Response:
    page = client.get("/network")
    assert page.status_code == 200
    return client.post("/network/follow", data={"csrf_token": csrf_from(page.text),
                                                "target": target})


def unfollow(client: httpx.Client, target: str) -> httpx.Response:
    page = client.get("/network")
    return client.post("/network/unfollow", data={"csrf_token": csrf_from(page.text),
                                                  "confirm": "yes", "target": target})


def backfilled(node: NodeProcess, actor: str, since: float = 0.0) -> dict:
    return node.wait_until(
        "SELECT * FROM backfills WHERE actor_uri = :a AND state = 'done' AND finished_at > :t",
        {"a": actor, "t": since})[0]


def remote_titles(node: NodeProcess, org: str) -> list[str]:
    return sorted(r["title"] for r in node.query(
        "SELECT title FROM posts WHERE remote = 1 AND org_uri = :o", {"o": org}))


def test_a_member_follows_by_handle_and_gets_the_open_needs_posted_before(nodes):
    a, b = nodes
    # A: a member posts two open needs and one that is fulfilled, before anything else.
    nadia = member(a, "nadia@a.example", "Nadia Benali")
    nadia_uri = actor_of(a, "nadia@a.example")
    shelter = post_need(nadia, "Two nights of shelter for a family")
    post_need(nadia, "Help carrying boxes on Saturday")
    fulfil(nadia, post_need(nadia, "Winter coats for children"))

    # B: a member who is no admin finds the network page from the list and follows by handle.
    tom = member(b, "tom@b.example", "Tom Peeters")
    tom_uri = actor_of(b, "tom@b.example")
    page = tom.get("/account")  # Tom wants to hear of new housing needs
    assert tom.post("/account", data={
        "csrf_token": csrf_from(page.text), "display_name": "Tom Peeters", "locale": "en",
        "categories": ["housing"], "neighbourhoods": []}).status_code == 303
    assert 'href="/network"' in tom.get("/posts").text
    resp = follow(tom, a.handle)
    assert resp.status_code == 303 and resp.headers["location"] == "/network", resp.text

    # The follow is the member's own: A lists their Person among the organisation's followers.
    b.wait_until("SELECT 1 FROM follows WHERE follower_uri = :t AND followee_uri = :o "
                 "AND state = 'accepted'", {"t": tom_uri, "o": a.org_uri})
    followers = a.client.get(f"/groups/{a.org}/followers?page=1", headers=AP).json()
    assert followers["orderedItems"] == [tom_uri]

    # A's open needs from before the follow come from its outbox; the fulfilled one does not.
    done = backfilled(b, a.org_uri)
    assert done["stored"] == 2 and done["error"] is None
    assert remote_titles(b, a.org_uri) == ["Help carrying boxes on Saturday",
                                           "Two nights of shelter for a family"]
    assert b.query("SELECT COUNT(*) AS n FROM inbox_log WHERE type IN ('Create', 'Announce')"
                   )[0]["n"] == 0  # nothing was delivered: they came from the outbox alone
    # Posts from before the follow are no news: nobody is notified of them.
    assert b.query("SELECT * FROM notifications WHERE kind = 'new_post'") == []
    listing = tom.get("/posts?scope=network").text
    assert "Two nights of shelter for a family" in listing
    assert "Help carrying boxes on Saturday" in listing
    assert "Winter coats for children" not in listing

    # By name: the author and the organisation, never the host.
    assert "Nadia Benali" in listing and "Quartier" in listing
    assert f">{a.host}:{a.port}<" not in listing and f"from {a.host}" not in listing
    b_id = b.query("SELECT id FROM posts WHERE uri = :u",
                   {"u": f"{a.base}/posts/{shelter}"})[0]["id"]
    page = tom.get(f"/posts/{b_id}").text
    assert f'href="{nadia_uri}"' in page and "Nadia Benali" in page and "Quartier" in page
    assert f">{a.host}:{a.port}<" not in page
    network = tom.get("/network").text
    assert "Quartier" in network and "2 earlier open posts fetched" in network

    # Following again changes nothing: no second Follow, no post twice.
    resp = follow(tom, a.handle)
    assert resp.status_code == 303
    assert "You already follow" in tom.get("/network").text
    assert len(b.query("SELECT id FROM follows WHERE follower_uri = :t", {"t": tom_uri})) == 1
    assert b.query("SELECT COUNT(*) AS n FROM activities WHERE type = 'Follow'")[0]["n"] == 1

    # A second member follows by profile link (the organisation's actor URL): accepted, and
    # the outbox read again adds nothing.
    since = time.time()
    lea = member(b, "lea@b.example", "Léa Dubois")
    assert follow(lea, a.org_uri).status_code == 303
    again = backfilled(b, a.org_uri, since)
    assert again["stored"] == 0
    assert remote_titles(b, a.org_uri) == ["Help carrying boxes on Saturday",
                                           "Two nights of shelter for a family"]

    # Unfollowing: A drops the member from its followers; the posts stay while Léa follows,
    # and leave the list once nobody here follows A.
    assert unfollow(tom, a.org_uri).status_code == 303
    a.wait_until("SELECT 1 FROM inbox_log WHERE type = 'Undo' AND actor_uri = :t",
                 {"t": tom_uri})
    assert a.query("SELECT * FROM follows WHERE follower_uri = :t", {"t": tom_uri}) == []
    assert "You follow no organisation yet." in tom.get("/network").text
    assert "Two nights of shelter for a family" in tom.get("/posts?scope=network").text
    assert unfollow(lea, a.org_uri).status_code == 303
    assert "Two nights of shelter for a family" not in tom.get("/posts?scope=network").text
    assert tom.get(f"/posts/{b_id}").status_code == 200  # its page stays


def test_follow_refusals_say_why(nodes):
    a, b = nodes
    sam = member(b, "sam@b.example", "Sam")
    local = follow(sam, f"@refuge@{b.host}:{b.port}")
    assert local.status_code == 400 and "is on this node" in local.text
    nonsense = follow(sam, "not a handle")
    assert nonsense.status_code == 400 and "Write a handle such as" in nonsense.text
    nobody = follow(sam, f"http://{a.host}:{a.port}/nothing-here")
    assert nobody.status_code == 400 and "No organisation answered" in nobody.text
    assert b.query("SELECT * FROM follows WHERE follower_uri = :s",
                   {"s": actor_of(b, "sam@b.example")}) == []
    # Signed out: the page asks to log in.
    anonymous = httpx.get(f"{b.base}/network", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


# --- a hostile server's outboxes ------------------------------------------------------------

def need(peer: HostilePeer, author: str, title: str, ident: str | None = None,
         audience: str | None = None, **fields: Any) -> dict[str, Any]:
    """A Note carrying FEP-0837 fields, as a node of ours would publish it."""
    ident = ident or peer.new_id("notes")
    return {"id": ident, "type": "Note", "attributedTo": author, "audience": audience or author,
            "name": title, "content": f"<p>{title}</p>", "purpose": "request",
            "publishes": {"type": "Intent", "id": f"{ident}#primary", "action": "deliverService",
                          "receiver": author},
            "postStatus": "open", "to": [PUBLIC], "published": "2026-11-01T10:00:00Z",
            "url": ident, **fields}


def serve(peer: HostilePeer, obj: dict[str, Any]) -> dict[str, Any]:
    peer.objects[obj["id"].removeprefix(peer.base)] = obj
    return obj


def outbox(peer: HostilePeer, actor: HostileActor, pages: list[list[Any]],
           next_of: dict[int, int] | None = None) -> None:
    """The actor's outbox: a collection whose `first` is page 0; page i's `next` is page i+1
    unless `next_of` says otherwise."""
    path = f"/users/{actor.username}/outbox"
    peer.objects[path] = {"id": peer.base + path, "type": "OrderedCollection",
                          "first": f"{peer.base}{path}/p0"}
    links = next_of if next_of is not None else {i: i + 1 for i in range(len(pages) - 1)}
    for i, items in enumerate(pages):
        page = {"id": f"{peer.base}{path}/p{i}", "type": "OrderedCollectionPage",
                "orderedItems": items}
        if i in links:
            page["next"] = f"{peer.base}{path}/p{links[i]}"
        peer.objects[f"{path}/p{i}"] = page


def follow_hostile(b: NodeProcess, client: httpx.Client, peer: HostilePeer,
                   actor: HostileActor, target: str | None = None) -> dict:
    """Follow the hostile actor, answer the Follow with an Accept, wait for the backfill."""
    assert follow(client, target or f"@{actor.username}@{peer.host_ip}:{peer.port}"
                  ).status_code == 303
    deadline = time.monotonic() + 20
    while True:
        sent = [f for f in peer.received_of("Follow") if f.get("object") == actor.uri]
        if sent:
            break
        assert time.monotonic() < deadline, "no Follow arrived"
        time.sleep(0.05)
    accept = peer.activity(actor, "Accept", sent[-1])
    assert peer.post(actor, f"{b.base}/inbox", accept).status_code == 202
    return backfilled(b, actor.uri)


def test_a_profile_page_that_announces_its_actor_can_be_followed(nodes, hostile):
    _a, b = nodes
    atelier = hostile.add_actor("atelier", kind="Group", name="Atelier vélo")
    hostile.pages["/@atelier"] = (
        '<!doctype html><html><head><title>Atelier</title><link rel="alternate" '
        'type="application/activity+json" href="/users/atelier"></head><body></body></html>')
    outbox(hostile, atelier, [[hostile.create(atelier, serve(hostile, need(
        hostile, atelier.uri, "Bikes to repair for refugees")))]])
    ines = member(b, "ines@b.example", "Inès")
    done = follow_hostile(b, ines, hostile, atelier, target=f"{hostile.base}/@atelier")
    assert done["stored"] == 1
    assert remote_titles(b, atelier.uri) == ["Bikes to repair for refugees"]
    listing = ines.get("/posts?scope=network").text
    assert "Bikes to repair for refugees" in listing and "Atelier vélo" in listing


def test_a_hostile_outbox_cannot_make_us_keep_what_it_forged(nodes, hostile):
    a, b = nodes
    forger = hostile.add_actor("forger", kind="Group", name="Forger")
    bystander = hostile.add_actor("bystander")
    third = "http://127.0.0.143:9/notes/1"
    nadia = actor_of(a, "nadia@a.example")
    stale = need(hostile, forger.uri, "FORGED stale copy")
    serve(hostile, {**need(hostile, forger.uri, "unused", ident=stale["id"]),
                    "purpose": None, "publishes": None, "content": "<p>just a note</p>"})
    lying = need(hostile, forger.uri, "FORGED other id")
    hostile.objects[lying["id"].removeprefix(hostile.base)] = {
        **need(hostile, nadia, "FORGED other id", ident=f"{a.base}/posts/lie")}
    private = serve(hostile, need(hostile, forger.uri, "FORGED followers only",
                                  to=[f"{forger.uri}/followers"]))
    real = serve(hostile, need(hostile, forger.uri, "A real need of the forger"))
    outbox(hostile, forger, [[
        # Another node's post (A's), embedded: never trusted, never fetched from here.
        hostile.create(forger, need(hostile, nadia, "FORGED as A",
                                    ident=f"{a.base}/posts/forged", audience=a.org_uri)),
        {"type": "Announce", "actor": forger.uri,
         "object": need(hostile, nadia, "FORGED third", ident=third)},
        # Embedded as a need, but at its id only a plain note.
        hostile.activity(forger, "Announce", stale),
        # Its id answers with another object.
        hostile.create(forger, lying),
        # A need of someone else on that server, published in nobody's name we follow.
        hostile.create(bystander, serve(hostile, need(hostile, bystander.uri,
                                                      "FORGED bystander"))),
        hostile.create(forger, private),
        hostile.create(forger, real),
    ]])
    eve = member(b, "eve@b.example", "Eve")
    done = follow_hostile(b, eve, hostile, forger)
    assert done["stored"] == 1
    assert remote_titles(b, forger.uri) == ["A real need of the forger"]
    claimed = {"f": f"{a.base}/posts/forged", "l": f"{a.base}/posts/lie", "t": third}
    assert b.query("SELECT uri FROM posts WHERE title LIKE 'FORGED%' OR uri IN (:f, :l, :t)",
                   claimed) == []
    assert b.query("SELECT uri FROM objects WHERE uri IN (:f, :l, :t)", claimed) == []
    # The objects of other origins were not even asked for; the others from their id.
    assert stale["id"].removeprefix(hostile.base) in hostile.fetched


def test_huge_circular_and_endless_outboxes_are_read_within_bounds(nodes, hostile):
    _a, b = nodes
    fay = member(b, "fay@b.example", "Fay")

    flood = hostile.add_actor("flood", kind="Group")
    outbox(hostile, flood, [[f"{hostile.base}/notes/flood-{i}" for i in range(10_000)]])
    done = follow_hostile(b, fay, hostile, flood)
    asked = [p for p in hostile.fetched if p.startswith("/notes/flood-")]
    assert len(asked) == done["fetched"] == MAX_FETCHES and done["stored"] == 0
    assert done["error"] == "fetches"

    likes = hostile.add_actor("likes", kind="Group")
    outbox(hostile, likes, [[{"type": "Like", "object": "x"}] * 10_000])
    done = follow_hostile(b, fay, hostile, likes)
    assert done["items"] == MAX_ITEMS and done["fetched"] == 0 and done["error"] == "items"

    circle = hostile.add_actor("circle", kind="Group")
    in_circle = serve(hostile, need(hostile, circle.uri, "Once, though the pages loop"))
    outbox(hostile, circle, [[hostile.create(circle, in_circle)], []], next_of={0: 1, 1: 0})
    done = follow_hostile(b, fay, hostile, circle)
    path = "/users/circle/outbox"
    assert hostile.fetched.count(f"{path}/p0") == 1 and hostile.fetched.count(f"{path}/p1") == 1
    assert done["error"] == "loop" and done["stored"] == 1
    assert remote_titles(b, circle.uri) == ["Once, though the pages loop"]

    endless = hostile.add_actor("endless", kind="Group")
    outbox(hostile, endless, [[] for _ in range(50)])
    done = follow_hostile(b, fay, hostile, endless)
    pages = [p for p in hostile.fetched if p.startswith("/users/endless/outbox/")]
    assert len(pages) == MAX_PAGES - 1 and done["pages"] == MAX_PAGES  # the collection counts
    assert done["error"] == "pages"


async def test_a_backfill_ends_at_its_deadline_however_slow_the_outbox(app_node, hostile,
                                                                        monkeypatch):
    node, _client = app_node
    slow = hostile.add_actor("slow", kind="Group")
    outbox(hostile, slow, [[], []])
    hostile.hang_paths.add("/users/slow/outbox/p0")  # answers nothing, ever
    monkeypatch.setattr(backfill, "DEADLINE", 1.0)  # below the node's 3 s per request
    outcome = await backfill.backfill(node, slow.uri)
    assert outcome.walk.stopped == "deadline" and outcome.walk.pages == 1
    assert "/users/slow/outbox/p1" not in hostile.fetched
