"""The network's posts are posts (issue 14): every public offer or need that reaches a running
node by a way it accepts — a Create of a followed organisation, a relay's Announce, a public
reply to one of our objects, a member's look-up — becomes an offer or need of the lists with
its fields, changes with its author's Update only and leaves with a Delete; a stranger's
unsolicited Create does not; other objects are not kept; the network view filters them.

Real HTTP throughout: a node process, and servers with their own signing code (tests/hostile.py)
that sign the activities and serve the objects the node fetches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.hostile import PUBLIC, HostileActor, HostilePeer
from tests.nodes import NodeProcess, csrf_from

pytestmark = pytest.mark.e2e

NODE_IP, PEER_IP, OTHER_IP = "127.0.12.1", "127.0.12.2", "127.0.12.3"


def _wait(probe, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("nothing arrived in time")


def _follow(node: NodeProcess, peer: HostilePeer, actor: HostileActor) -> None:
    """The organisation follows `actor`, as an admin does on /admin, and the actor accepts."""
    before = len(peer.received_of("Follow"))
    host = peer.base.split("//")[1]
    resp = node.admin_action("follow", target=f"@{actor.username}@{host}")
    assert resp.status_code in (200, 303), resp.text
    follow = _wait(lambda: peer.received_of("Follow")[before:])[0]
    assert peer.post(actor, f"{node.base}/inbox",
                     peer.activity(actor, "Accept", follow)).status_code == 202
    node.wait_until("SELECT 1 FROM follows WHERE followee_uri = :a AND state = 'accepted'",
                    {"a": actor.uri})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = NodeProcess(tmp_path_factory.mktemp("network-posts"), host=NODE_IP).start()
    peer = HostilePeer(PEER_IP).start()      # a node whose organisation is followed here
    other = HostilePeer(OTHER_IP).start()    # a server nobody here follows
    try:
        node.login()
        orgb = peer.add_actor("orgb", kind="Group")
        relay = peer.add_actor("relay", kind="Application")
        _follow(node, peer, orgb)
        _follow(node, peer, relay)  # as the node subscribes to a relay
        yield {"node": node, "peer": peer, "other": other, "orgb": orgb, "relay": relay,
               "spammer": other.add_actor("spammer"), "dave": other.add_actor("dave")}
    finally:
        node.close()
        peer.stop()
        other.stop()


def need(server: HostilePeer, actor: HostileActor, title: str, *, kind: str = "request",
         category: str = "housing", place: str = "Forest", lat: float | None = 50.811,
         lon: float | None = 4.324, language: str = "fr", **fields: Any) -> dict[str, Any]:
    """An offer or need as our nodes publish it (DESIGN.md), served at its id."""
    fields.setdefault("cc", [f"{actor.uri}/followers"])
    note = server.note(actor, f"<p>{title}: details</p>", name=title, purpose=kind,
                       contentMap={language: f"<p>{title}: details</p>"},
                       endTime="2099-12-31T23:00:00Z", startTime="2026-11-01T08:00:00Z",
                       **fields)
    role = "provider" if kind == "offer" else "receiver"
    note["publishes"] = {
        "type": "Intent", "id": note["id"] + "#primary", "action": "deliverService",
        "resourceClassifiedAs": [f"{server.base}/categories/{category}"], role: actor.uri,
        "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"},
        "availableQuantity": {"hasUnit": "one", "hasNumericalValue": "2"}}
    location: dict[str, Any] = {"type": "Place", "name": place}
    if lat is not None:
        location.update(latitude=lat, longitude=lon)
    note["location"] = location
    server.objects[note["id"].removeprefix(server.base)] = note
    return note


def _send(world: dict, actor: HostileActor, activity: dict) -> int:
    server = world["peer"] if actor.uri.startswith(world["peer"].base) else world["other"]
    return server.post(actor, f"{world['node'].base}/inbox", activity).status_code


def _post(node: NodeProcess, uri: str) -> dict | None:
    rows = node.query("SELECT * FROM posts WHERE uri = :u", {"u": uri})
    return rows[0] if rows else None


def _object(node: NodeProcess, uri: str) -> dict | None:
    rows = node.query("SELECT * FROM objects WHERE uri = :u", {"u": uri})
    return rows[0] if rows else None


def _listed(node: NodeProcess, path: str = "/network/posts") -> str:
    resp = node.client.get(path)
    assert resp.status_code == 200, resp.text
    return resp.text


# --- the four ways in ---------------------------------------------------------------------

def test_a_need_of_a_followed_organisation_becomes_a_need(world: dict) -> None:
    node, peer, orgb = world["node"], world["peer"], world["orgb"]
    note = need(peer, orgb, "Bed for a family of four")
    assert _send(world, orgb, peer.create(orgb, note)) == 202
    post = _post(node, note["id"])
    assert post is not None
    assert (post["kind"], post["category"], post["neighbourhood"]) == ("need", "housing",
                                                                        "Forest")
    assert (post["latitude"], post["longitude"]) == (50.81, 4.32)  # rounded, never exact
    assert post["status"] == "open" and post["languages"] == "fr" and post["remote"] == 1
    assert post["ends_at"] > post["starts_at"] > 0
    assert post["via"] == "follow"
    assert f"/posts/{post['id']}" in _listed(node, "/posts")
    assert "Bed for a family of four" in _listed(node)


def test_a_need_passed_on_by_a_relay_is_fetched_from_its_origin_and_listed(world: dict) -> None:
    node, peer, other = world["node"], world["peer"], world["other"]
    relay, dave = world["relay"], world["dave"]
    note = need(other, dave, "Winter coat, size M", category="clothes", place="Ixelles",
                lat=50.827, lon=4.372)
    # What the relay embeds is never trusted: the node asks dave's server.
    lie = {**note, "name": "Rewritten by the relay"}
    announce = peer.activity(relay, "Announce", lie, to=[PUBLIC])
    assert _send(world, relay, announce) == 202
    post = _wait(lambda: _post(node, note["id"]))
    assert post["title"] == "Winter coat, size M" and post["category"] == "clothes"
    assert post["via"] == "announce" and post["org_uri"] == dave.uri
    assert note["id"].removeprefix(other.base) in other.fetched
    # Nobody here follows dave: the post is listed because the relay passed it on.
    assert f"/posts/{post['id']}" in _listed(node, "/posts?scope=network")


def test_a_public_reply_to_our_object_becomes_a_post(world: dict) -> None:
    node, other, dave = world["node"], world["other"], world["dave"]
    resp = node.admin_action("note", text="Who can help this winter?")
    assert resp.status_code in (200, 303), resp.text
    ours = node.wait_until("SELECT uri FROM objects WHERE local = 1 AND deleted = 0 "
                           "AND payload LIKE :t", {"t": "%this winter%"})[0]["uri"]
    note = need(other, dave, "I can drive on Saturdays", kind="offer", category="transport",
                inReplyTo=ours)
    assert _send(world, dave, other.create(dave, note)) == 202
    post = _post(node, note["id"])
    assert post is not None and post["kind"] == "offer" and post["via"] == "reply"
    # The same post replying to nothing of ours is unsolicited (next tests).


def test_a_member_looks_a_need_up_by_its_link(world: dict) -> None:
    node, other, dave = world["node"], world["other"], world["dave"]
    note = need(other, dave, "Help with a CPAS form", category="paperwork",
                place="Schaerbeek", lat=50.867, lon=4.378, language="nl")
    page = node.client.get("/network")
    resp = node.client.post("/network/lookup", data={"csrf_token": csrf_from(page.text),
                                                     "url": note["id"]})
    assert resp.status_code == 303, resp.text
    post = _post(node, note["id"])
    assert post is not None and post["via"] == "fetch" and post["category"] == "paperwork"
    assert resp.headers["location"] == f"/posts/{post['id']}"
    assert "Help with a CPAS form" in node.client.get(resp.headers["location"]).text


def _look_up(node: NodeProcess, url: str) -> Any:
    page = node.client.get("/network?lang=en")
    return node.client.post("/network/lookup?lang=en", data={
        "csrf_token": csrf_from(page.text), "url": url})


def test_a_member_may_paste_the_web_page_of_a_post(world: dict) -> None:
    node, other, dave = world["node"], world["other"], world["dave"]
    # A web page that announces its ActivityPub object, as Mastodon's status pages do...
    page_need = need(other, dave, "Company for an old neighbour", category="company")
    other.pages["/@dave/page-1"] = (
        '<html><head><link rel="alternate" type="application/activity+json" '
        f'href="{page_need["id"]}"></head><body>a page</body></html>')
    # ...and a link whose JSON names another id on its server (a status' `url`).
    url_need = need(other, dave, "Someone to carry a sofa", category="moving")
    other.objects["/web/sofa"] = url_need
    for link, note in ((f"{other.base}/@dave/page-1", page_need),
                       (f"{other.base}/web/sofa", url_need)):
        resp = _look_up(node, link)
        assert resp.status_code == 303, resp.text
        post = _post(node, note["id"])
        assert post is not None and resp.headers["location"] == f"/posts/{post['id']}"
    # A page pointing at another server's object is not followed.
    other.pages["/@dave/elsewhere"] = (
        '<html><head><link rel="alternate" type="application/activity+json" '
        f'href="{world["peer"].base}/notes/x"></head></html>')
    assert _look_up(node, f"{other.base}/@dave/elsewhere").status_code == 400


def test_a_link_that_is_no_public_offer_or_need_is_refused_clearly(world: dict) -> None:
    node, other, dave = world["node"], world["other"], world["dave"]
    private = need(other, dave, "Private need", to=[dave.uri])
    relationship = {"id": f"{other.base}/rel/1", "type": "Relationship",
                    "attributedTo": dave.uri, "to": [PUBLIC]}
    other.objects["/rel/1"] = relationship
    for url in (private["id"], relationship["id"], f"{other.base}/missing", "not a link"):
        resp = _look_up(node, url)
        assert resp.status_code == 400, url
        assert "No public offer or need was found at this link" in resp.text
        assert f'value="{url}"' in resp.text  # what the member typed stays in the form
        assert _post(node, url) is None and _object(node, url) is None, url


# --- kept up to date by its author only, removed by Delete ---------------------------------

def test_update_by_the_author_changes_the_post_and_by_another_does_not(world: dict) -> None:
    node, peer, orgb = world["node"], world["peer"], world["orgb"]
    note = need(peer, orgb, "Soup for twenty", kind="offer", category="food")
    assert _send(world, orgb, peer.create(orgb, note)) == 202
    assert _post(node, note["id"])["status"] == "open"
    intruder = peer.add_actor("intruder")
    forged = {**note, "name": "Forged title", "postStatus": "fulfilled"}
    assert _send(world, intruder, peer.activity(intruder, "Update", forged)) == 422
    mine = {**forged, "attributedTo": intruder.uri}
    assert _send(world, intruder, peer.activity(intruder, "Update", mine)) == 422
    assert _post(node, note["id"])["title"] == "Soup for twenty"
    edited = {**note, "name": "Soup for thirty", "postStatus": "in_progress",
              "location": {"type": "Place", "name": "Uccle", "latitude": 50.802,
                           "longitude": 4.337}}
    assert _send(world, orgb, peer.activity(orgb, "Update", edited)) == 202
    post = _post(node, note["id"])
    assert (post["title"], post["status"], post["neighbourhood"]) == (
        "Soup for thirty", "in_progress", "Uccle")


def test_delete_removes_the_post_from_the_lists(world: dict) -> None:
    node, peer, orgb = world["node"], world["peer"], world["orgb"]
    note = need(peer, orgb, "Shower on Tuesdays", kind="offer", category="shower")
    assert _send(world, orgb, peer.create(orgb, note)) == 202
    post = _post(node, note["id"])
    assert f"/posts/{post['id']}" in _listed(node)
    tomb = {"id": note["id"], "type": "Tombstone"}
    assert _send(world, orgb, peer.activity(orgb, "Delete", tomb, to=[PUBLIC])) == 202
    assert _post(node, note["id"])["status"] == "withdrawn"
    assert f"/posts/{post['id']}" not in _listed(node)
    assert f"/posts/{post['id']}" not in _listed(node, "/posts")
    # A late Create of the same post does not bring it back, nor does a member's look-up.
    assert _send(world, orgb, peer.create(orgb, note)) == 202
    assert _look_up(node, note["id"]).status_code == 400
    assert _post(node, note["id"])["status"] == "withdrawn"


# --- what is not kept -------------------------------------------------------------------

def test_an_unsolicited_create_is_not_a_post(world: dict) -> None:
    node, other, spammer = world["node"], world["other"], world["spammer"]
    # Addressed to our organisation, and a reply to nothing of ours: still nobody asked.
    note = need(other, spammer, "Cheap loans, click here", cc=[node.org_uri])
    assert _send(world, spammer, other.create(spammer, note)) == 202
    assert _post(node, note["id"]) is None
    assert _object(node, note["id"]) is None
    assert "Cheap loans" not in _listed(node) + _listed(node, "/posts") + _listed(node, "/")


def test_objects_no_page_shows_are_not_kept(world: dict) -> None:
    node, peer, other = world["node"], world["peer"], world["other"]
    orgb, relay, dave = world["orgb"], world["relay"], world["dave"]
    for kind in ("Tombstone", "Relationship", "Profile"):
        obj = peer.note(orgb, "<p>not a post</p>", type=kind)
        assert _send(world, orgb, peer.create(orgb, obj)) in (202, 422)
        assert _object(node, obj["id"]) is None, kind
        served = other.note(dave, "<p>not a post</p>", type=kind)
        other.objects[served["id"].removeprefix(other.base)] = served
        assert _send(world, relay, peer.activity(relay, "Announce", served["id"])) == 202
        assert _object(node, served["id"]) is None, kind


# --- FEP-0837 proposals of other software ----------------------------------------------

def test_a_fep_0837_proposal_of_other_software_becomes_an_offer(world: dict) -> None:
    node, peer, orgb = world["node"], world["peer"], world["orgb"]
    # The FEP's full example (type Proposal, plain-text content, a Wikidata resource, a price
    # as reciprocal intent), placed in Brussels and published by the followed organisation.
    ident = f"{peer.base}/proposals/ddde9d6f-6f3b-4770-a966-3a18ef006930"
    proposal = {
        "@context": ["https://www.w3.org/ns/activitystreams",
                     {"om2": "http://www.ontology-of-units-of-measure.org/resource/om-2/",
                      "vf": "https://w3id.org/valueflows/ont/vf#", "Proposal": "vf:Proposal",
                      "Intent": "vf:Intent", "action": "vf:action", "purpose": "vf:purpose",
                      "unitBased": "vf:unitBased", "publishes": "vf:publishes",
                      "reciprocal": "vf:reciprocal",
                      "resourceConformsTo": "vf:resourceConformsTo",
                      "resourceQuantity": "vf:resourceQuantity",
                      "availableQuantity": "vf:availableQuantity", "hasUnit": "om2:hasUnit",
                      "hasNumericalValue": "om2:hasNumericalValue"}],
        "type": "Proposal", "id": ident, "purpose": "offer", "attributedTo": orgb.uri,
        "name": "Offering used bike", "content": "Blue one-speed bike, 15 years old, some rust",
        "published": "2026-11-18T19:22:03.918737Z",
        "location": {"type": "Place", "longitude": 4.3689, "latitude": 50.8661},
        "publishes": {
            "type": "Intent", "id": f"{ident}#primary", "action": "transfer",
            "resourceConformsTo": "https://www.wikidata.org/wiki/Q11442",
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "1"},
            "availableQuantity": {"hasUnit": "one", "hasNumericalValue": "1"}},
        "reciprocal": {
            "type": "Intent", "id": f"{ident}#reciprocal", "action": "transfer",
            "resourceConformsTo": "https://www.wikidata.org/wiki/Q4917",
            "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "30"}},
        "unitBased": False, "to": PUBLIC,
    }
    assert _send(world, orgb, peer.create(orgb, proposal)) == 202
    post = _post(node, ident)
    assert post is not None
    assert (post["kind"], post["title"], post["category"]) == ("offer", "Offering used bike",
                                                                "other")
    assert "Blue one-speed bike" in post["description_html"]
    assert post["neighbourhood"] == "Schaerbeek"  # the nearest, from its coordinates
    assert post["capacity"] == 1 and post["status"] == "open"
    # Nothing left: the same proposal says so by its quantity alone.
    gone = {**proposal, "publishes": {**proposal["publishes"], "availableQuantity": {
        "hasUnit": "one", "hasNumericalValue": "0"}}}
    assert _send(world, orgb, peer.activity(orgb, "Update", gone)) == 202
    assert _post(node, ident)["status"] == "fulfilled"


# --- the network view's filters -----------------------------------------------------------

def _titles(node: NodeProcess, query: str, wanted: set[str]) -> set[str]:
    page = _listed(node, f"/network/posts?{query}")
    return {t for t in wanted if t in page}


def test_the_network_view_filters_by_kind_category_language_place_and_distance(
        world: dict) -> None:
    node, peer, orgb = world["node"], world["peer"], world["orgb"]
    posts = [
        need(peer, orgb, "F-need-forest", category="food", place="Forest",
             lat=50.811, lon=4.324, language="fr"),
        need(peer, orgb, "F-offer-uccle", kind="offer", category="food", place="Uccle",
             lat=50.802, lon=4.337, language="nl"),
        need(peer, orgb, "F-need-schaerbeek", category="childcare", place="Schaerbeek",
             lat=50.867, lon=4.378, language="en"),
        # Only a name, in Dutch: the place is Saint-Gilles, at its centre.
        need(peer, orgb, "F-offer-saint-gilles", kind="offer", category="childcare",
             place="Sint-Gillis", lat=None, language="fr"),
    ]
    for note in posts:
        assert _send(world, orgb, peer.create(orgb, note)) == 202
    every = {p["name"] for p in posts}
    placed = _post(node, posts[3]["id"])
    assert (placed["neighbourhood"], placed["latitude"], placed["longitude"]) == (
        "Saint-Gilles", 50.83, 4.34)
    assert _titles(node, "", every) == every
    assert _titles(node, "kind=offer", every) == {"F-offer-uccle", "F-offer-saint-gilles"}
    assert _titles(node, "category=childcare", every) == {"F-need-schaerbeek",
                                                          "F-offer-saint-gilles"}
    assert _titles(node, "language=nl", every) == {"F-offer-uccle"}
    assert _titles(node, "neighbourhood=Uccle", every) == {"F-offer-uccle"}
    assert _titles(node, "neighbourhood=Saint-Gilles", every) == {"F-offer-saint-gilles"}
    # From Forest (50.81, 4.32): Uccle (50.80, 4.34) 1.8 km, Saint-Gilles (50.83, 4.34)
    # 2.6 km, Schaerbeek (50.87, 4.38) 7.9 km.
    assert _titles(node, "near=Forest&within=2", every) == {"F-need-forest", "F-offer-uccle"}
    assert _titles(node, "near=Forest&within=5", every) == every - {"F-need-schaerbeek"}
    assert _titles(node, "near=Forest&within=10", every) == every
    assert _titles(node, "near=Forest&within=5&kind=need&category=food",
                   every) == {"F-need-forest"}
    page = _listed(node, "/network/posts?near=Forest&within=2&lang=en")
    assert "about 1.8 km away" in page
    # A distance without a place, or one not offered, filters nothing.
    assert _titles(node, "within=2", every) == every
    assert _titles(node, "near=Forest&within=3", every) == every
    # The same filters on the list of /posts.
    assert "F-need-forest" not in _listed(node, "/posts?kind=offer")
