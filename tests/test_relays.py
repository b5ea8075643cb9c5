"""Relays, end to end: two real nodes subscribe to a real LitePub relay (PyPI `activityrelay`,
run from its own virtualenv: tests/litepub_relay.py), one by the relay's actor (LitePub style),
the other by its inbox (Mastodon style); a need posted on A reaches B through the relay's
Announce, becomes a need in B's lists, tells the member of B whose offer fits it, and leaves B
when A withdraws it. A hostile peer then plays a relay and a stranger:
what they announce or forward changes nothing unless the origin confirms it."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from activitypub.vocab import PUBLIC
from node.relays import style_of
from outbox.addressing import relay_inboxes
from tests.hostile import HostilePeer
from tests.litepub_relay import RelayProcess
from tests.nodes import NodeProcess, csrf_from
from tests.test_e2e_posts import add_member, post_id_of, signed_in
from tests.test_matching_e2e import post, told
from tests.test_notifications_e2e import member

pytestmark = pytest.mark.e2e

RELAY_IP, A_IP, B_IP = "127.0.11.1", "127.0.11.2", "127.0.11.3"
FAKE_RELAY_IP, ORIGIN_IP, NODE_IP = "127.0.11.9", "127.0.11.10", "127.0.11.11"


def subscribe(node: NodeProcess, url: str) -> httpx.Response:
    token = csrf_from(node.client.get("/admin/relays").text)
    return node.client.post("/admin/relays/subscribe", data={"csrf_token": token, "url": url})


def relay_state(node: NodeProcess, url: str, state: str, timeout: float = 60) -> dict:
    return node.wait_until("SELECT * FROM relays WHERE url = :u AND state = :s",
                           {"u": url, "s": state}, timeout=timeout)[0]


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def relay(tmp_path):
    process = RelayProcess(tmp_path / "relay", RELAY_IP).start()
    yield process
    process.stop()


@pytest.fixture
def nodes(tmp_path):
    a = NodeProcess(tmp_path / "a", host=A_IP, org="anderlecht").start()
    b = NodeProcess(tmp_path / "b", host=B_IP, org="forest").start()
    yield a, b
    a.close()
    b.close()


def test_a_need_travels_through_a_litepub_relay_and_is_withdrawn(relay, nodes):
    a, b = nodes
    a.login()
    b.login()
    assert 'href="/admin/relays"' in a.client.get("/admin").text
    # A names the relay by its actor (LitePub), B by its inbox (Mastodon's relay settings).
    assert subscribe(a, relay.actor).status_code == 303
    assert subscribe(b, relay.inbox).status_code == 303
    on_a = relay_state(a, relay.actor, "subscribed")
    on_b = relay_state(b, relay.inbox, "subscribed")
    assert on_a["style"] == "litepub" and on_b["style"] == "mastodon"
    assert on_b["actor_uri"] == relay.actor  # learnt from the relay's Accept
    # The relay follows /actor back; each node accepted it (it was refused before relays).
    for node in (a, b):
        node.wait_until("SELECT 1 FROM follows WHERE follower_uri = :r AND followee_uri = :m "
                        "AND state = 'accepted'", {"r": relay.actor, "m": f"{node.base}/actor"},
                        timeout=60)
    subscribers = httpx.get(f"{relay.base}/followers").json()["items"]
    assert {f"{a.base}/actor", f"{b.base}/actor"} <= set(subscribers)
    page = a.client.get("/admin/relays", headers={"Accept-Language": "fr"}).text
    assert relay.actor in page and "abonné" in page and "relais LitePub" in page

    # A member of B offers a room nearby; a member of A posts a need that fits it. The need
    # reaches B by the relay's Announce, fetched from A, and B's member is told.
    helper = member(b, "olivia@b.example")
    post(helper, "offer", title="A room in Forest", category="housing", neighbourhood="Forest",
         languages=["fr", "en"])
    add_member(a, "amina@a.example", "amina")
    author = signed_in(a, "amina@a.example")
    form = author.get("/posts/new?kind=need")
    resp = author.post("/posts/new?kind=need", data={
        "csrf_token": csrf_from(form.text), "kind": "need", "category": "housing",
        "title": "A bed for three nights", "description": "For a young man arriving Friday.",
        "neighbourhood": "Saint-Gilles", "capacity": "1", "unit": "night", "urgency": "3",
        "languages": ["fr", "en"]})
    assert resp.status_code == 303, resp.text
    a_id = post_id_of(resp.headers["location"])
    post_uri = f"{a.base}/posts/{a_id}"
    announced = b.wait_until(
        "SELECT payload FROM inbox_log WHERE type = 'Announce' AND actor_uri = :r",
        {"r": relay.actor}, timeout=60)
    assert any(json.loads(r["payload"])["object"] == post_uri for r in announced)
    row = b.wait_until("SELECT * FROM posts WHERE uri = :u", {"u": post_uri}, timeout=60)[0]
    assert row["remote"] == 1 and row["kind"] == "need" and row["status"] == "open"
    assert row["title"] == "A bed for three nights"
    reader = httpx.Client(base_url=b.base, timeout=10, headers={"Accept-Language": "en"})
    wait_for(lambda: "A bed for three nights" in reader.get("/posts?scope=network").text,
             "the need listed in B's /posts")
    b.wait_until("SELECT 1 FROM notifications n JOIN users u ON u.id = n.user_id "
                 "WHERE u.email = 'olivia@b.example' AND n.kind = 'need_fits_offer'")
    [fits] = told(b, "olivia@b.example")
    assert json.loads(fits["payload"])["title"] == "A bed for three nights"

    # A withdraws it: the Delete goes through the relay, B checks it with A and withdraws it.
    page = author.get(f"/posts/{a_id}")
    resp = author.post(f"/posts/{a_id}/status", data={
        "csrf_token": csrf_from(page.text), "action": "withdraw", "confirm": "yes"})
    assert resp.status_code == 303, resp.text
    b.wait_until("SELECT 1 FROM posts WHERE uri = :u AND status <> 'open'", {"u": post_uri},
                 timeout=60)
    wait_for(lambda: "A bed for three nights" not in reader.get("/posts?scope=network").text,
             "the need gone from B's /posts")

    # A unsubscribes (after confirming): Undo{Follow}; the relay drops A, B stays.
    token = csrf_from(a.client.get("/admin/relays").text)
    asked = a.client.post("/admin/relays/unsubscribe",
                          data={"csrf_token": token, "relay": str(on_a["id"])})
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
    assert a.query("SELECT 1 FROM relays") != []
    done = a.client.post("/admin/relays/unsubscribe",
                         data={"csrf_token": token, "relay": str(on_a["id"]), "confirm": "yes"})
    assert done.status_code == 303
    assert a.query("SELECT 1 FROM relays") == []
    wait_for(lambda: f"{a.base}/actor" not in httpx.get(f"{relay.base}/followers").json()["items"],
             "the relay forgot A")
    assert f"{b.base}/actor" in httpx.get(f"{relay.base}/followers").json()["items"]
    author.close()
    reader.close()
    helper.close()


# --- hostile peers -------------------------------------------------------------------------

def need_note(peer: HostilePeer, author, title: str) -> dict:
    note = peer.note(author, f"<p>{title}</p>", name=title, purpose="request",
                     publishes={"type": "Intent", "id": "", "action": "deliverService",
                                "receiver": author.uri})
    note["publishes"]["id"] = note["id"] + "#primary"
    return note


def deliver(node: NodeProcess, peer: HostilePeer, actor, activity: dict) -> None:
    """POST the activity to the node's inbox and wait until its handler has run."""
    resp = peer.post(actor, f"{node.base}/inbox", activity)
    assert resp.status_code == 202, resp.text
    node.wait_until("SELECT 1 FROM inbox_log WHERE activity_id = :a AND status = 'processed'",
                    {"a": activity["id"]})


@pytest.fixture
def guarded(tmp_path):
    node = NodeProcess(tmp_path / "node", host=NODE_IP, org="saint-gilles").start()
    fake_relay = HostilePeer(FAKE_RELAY_IP).start()
    origin = HostilePeer(ORIGIN_IP).start()
    yield node, fake_relay, origin
    node.close()
    fake_relay.stop()
    origin.stop()


def test_what_relays_and_strangers_send_counts_only_as_the_origin_confirms(guarded):
    node, fake_relay, origin = guarded
    node.login()
    inbox = f"{node.base}/inbox"
    relay = fake_relay.add_actor("relay", kind="Application")
    stranger = fake_relay.add_actor("stranger", kind="Application")
    author = origin.add_actor("nadia")

    # Bad addresses: a clear error, nothing stored.
    assert subscribe(node, "ftp://relay.example/actor").status_code == 400
    assert "Aucun relais n’a répondu" in subscribe(node, f"http://{FAKE_RELAY_IP}:1/actor").text
    assert node.client.post("/admin/relays/subscribe",
                            data={"url": relay.uri}).status_code == 403
    assert node.query("SELECT 1 FROM relays") == []

    # Subscribed once the relay accepts.
    assert subscribe(node, relay.uri).status_code == 303
    wait_for(lambda: fake_relay.received_of("Follow"), "the Follow reaches the relay")
    follow = fake_relay.received_of("Follow")[0]
    assert follow["actor"] == f"{node.base}/actor" and follow["object"] == relay.uri
    assert fake_relay.post(relay, inbox, fake_relay.activity(
        relay, "Accept", {"id": follow["id"], "type": "Follow"})).status_code == 202
    relay_state(node, relay.uri, "subscribed")

    # A relay that refuses, and an inbox that cannot take the Follow: each shown as it stands.
    closed = fake_relay.add_actor("closed", kind="Application")
    assert subscribe(node, closed.uri).status_code == 303
    wait_for(lambda: [f for f in fake_relay.received_of("Follow") if f["object"] == closed.uri],
             "the second Follow")
    [second] = [f for f in fake_relay.received_of("Follow") if f["object"] == closed.uri]
    deliver(node, fake_relay, closed, fake_relay.activity(
        closed, "Reject", {"id": second["id"], "type": "Follow"}))
    relay_state(node, closed.uri, "refused")
    dead = f"{fake_relay.base}/closed/inbox"  # answers 405: the Follow is given up at once
    assert subscribe(node, dead).status_code == 303
    node.wait_until("SELECT 1 FROM deliveries WHERE inbox_url = :i AND state = 'failed'",
                    {"i": dead})
    page = node.client.get("/admin/relays").text
    assert "refusé par le relais" in page and "relais Mastodon" in page and "HTTP 405" in page

    # A relay that never answers stays pending; the admin asks again: a new Follow goes out.
    silent = fake_relay.add_actor("silent", kind="Application")
    assert subscribe(node, silent.uri).status_code == 303
    wait_for(lambda: [f for f in fake_relay.received_of("Follow") if f["object"] == silent.uri],
             "the Follow to the silent relay")
    assert subscribe(node, silent.uri).status_code == 303  # a second subscribe sends nothing
    assert "Redemander" in node.client.get("/admin/relays").text
    token = csrf_from(node.client.get("/admin/relays").text)
    assert node.client.post("/admin/relays/subscribe", data={
        "csrf_token": token, "url": silent.uri, "again": "1"}).status_code == 303
    wait_for(lambda: len([f for f in fake_relay.received_of("Follow")
                          if f["object"] == silent.uri]) == 2, "the Follow asked again")
    first, again = [f["id"] for f in fake_relay.received_of("Follow")
                    if f["object"] == silent.uri]
    assert first != again and relay_state(node, silent.uri, "pending")["follow_id"] == again
    assert node.query("SELECT style, state FROM relays WHERE url = :u", {"u": dead}) == [
        {"style": "mastodon", "state": "failed"}]

    # Mastodon style, the relay following /actor back before its Accept: accepted, since it
    # is on the origin of the inbox the node subscribed to; the Accept then names its actor.
    masto = fake_relay.add_actor("masto", kind="Application")
    assert subscribe(node, f"{fake_relay.base}/inbox").status_code == 303
    wait_for(lambda: [f for f in fake_relay.received_of("Follow") if f["object"] == PUBLIC],
             "the Follow of Public")
    [of_public] = [f for f in fake_relay.received_of("Follow") if f["object"] == PUBLIC]
    back = fake_relay.activity(masto, "Follow", f"{node.base}/actor")
    deliver(node, fake_relay, masto, back)
    wait_for(lambda: [a for a in fake_relay.received_of("Accept")
                      if a["object"]["id"] == back["id"]], "the follow-back accepted")
    deliver(node, fake_relay, masto, fake_relay.activity(masto, "Accept", of_public["id"]))
    assert relay_state(node, f"{fake_relay.base}/inbox", "subscribed")["actor_uri"] == masto.uri

    # A stranger following /actor is refused with a Reject, not followed.
    assert fake_relay.post(stranger, inbox, fake_relay.activity(
        stranger, "Follow", f"{node.base}/actor")).status_code == 202
    wait_for(lambda: fake_relay.received_of("Reject"), "the stranger's Reject")
    assert node.query("SELECT 1 FROM follows WHERE follower_uri = :s",
                      {"s": stranger.uri}) == []

    # A stranger's Announce of a need: nothing fetched, nothing stored.
    genuine = need_note(origin, author, "Help with papers")
    origin.objects[genuine["id"].removeprefix(origin.base)] = genuine
    deliver(node, fake_relay, stranger, fake_relay.activity(
        stranger, "Announce", genuine["id"], to=[PUBLIC]))
    assert node.query("SELECT 1 FROM posts WHERE uri = :u", {"u": genuine["id"]}) == []
    assert f"{genuine['id'].removeprefix(origin.base)}" not in origin.fetched
    # The relay announces a forged copy of it: the origin's own text is what is kept.
    forged = {**genuine, "name": "Send money to this account", "content": "<p>Send money</p>"}
    deliver(node, fake_relay, relay, fake_relay.activity(relay, "Announce", forged, to=[PUBLIC]))
    row = node.query("SELECT * FROM posts WHERE uri = :u", {"u": genuine["id"]})[0]
    assert row["title"] == "Help with papers" and "money" not in row["description_html"]
    # An announced object its origin does not have is not kept at all.
    invented = need_note(origin, author, "Invented need")
    deliver(node, fake_relay, relay, fake_relay.activity(relay, "Announce", invented,
                                                         to=[PUBLIC]))

    # The relay forwards a Delete the origin does not confirm: refused, the post stays.
    delete = origin.activity(author, "Delete", genuine["id"], to=[PUBLIC])
    assert fake_relay.post(relay, inbox, delete).status_code == 401
    # ... and a forwarded Update: the origin's version is taken, not the forwarded one.
    update = origin.activity(author, "Update", forged, to=[PUBLIC])
    deliver(node, fake_relay, relay, update)
    assert node.query("SELECT title, status FROM posts WHERE uri = :u", {"u": genuine["id"]}) == [
        {"title": "Help with papers", "status": "open"}]
    # The stranger is no relay of ours: what it forwards is refused as before.
    other = origin.activity(author, "Delete", genuine["id"], to=[PUBLIC])
    assert fake_relay.post(stranger, inbox, other).status_code == 401
    # Once the origin has deleted it, the forwarded Delete counts.
    del origin.objects[genuine["id"].removeprefix(origin.base)]
    deliver(node, fake_relay, relay, delete)
    assert node.query("SELECT status FROM posts WHERE uri = :u", {"u": genuine["id"]}) == [
        {"status": "withdrawn"}]
    assert node.query("SELECT 1 FROM objects WHERE uri = :u", {"u": invented["id"]}) == []
    assert node.query("SELECT 1 FROM posts WHERE uri = :u", {"u": invented["id"]}) == []

    # Our public posts go to the subscribed relay's inbox; unsubscribing sends Undo{Follow}.
    token = csrf_from(node.client.get("/admin").text)
    assert node.client.post(f"/admin/note?org={node.org}", data={
        "csrf_token": token, "text": "Open on Sunday"}).status_code == 303
    wait_for(lambda: any(a["object"].get("content", "").find("Open on Sunday") >= 0
                         for a in fake_relay.received_of("Create")), "the note at the relay")
    token = csrf_from(node.client.get("/admin/relays").text)
    relay_id = node.query("SELECT id FROM relays WHERE url = :u", {"u": relay.uri})[0]["id"]
    assert node.client.post("/admin/relays/unsubscribe", data={
        "csrf_token": token, "relay": str(relay_id), "confirm": "yes"}).status_code == 303
    wait_for(lambda: fake_relay.received_of("Undo"), "the Undo at the relay")
    undo = fake_relay.received_of("Undo")[0]
    assert undo["object"]["id"] == follow["id"] and undo["object"]["type"] == "Follow"
    # No longer subscribed: its announces are ignored again.
    later = need_note(origin, author, "After unsubscribing")
    origin.objects[later["id"].removeprefix(origin.base)] = later
    deliver(node, fake_relay, relay, fake_relay.activity(relay, "Announce", later["id"],
                                                         to=[PUBLIC]))
    assert node.query("SELECT 1 FROM posts WHERE uri = :u", {"u": later["id"]}) == []


# --- what goes to relays ------------------------------------------------------------------------

async def test_only_public_posts_their_edits_and_removal_go_to_relays(app_node):
    node, client = app_node
    # Only an admin subscribes: anyone else is sent to log in, and nothing is stored.
    resp = await client.post("/admin/relays/subscribe", data={"url": "https://r.example/actor"})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    assert await node.db.fetch_all("SELECT 1 FROM relays") == []
    for url, state in (("https://relay.example/inbox", "subscribed"),
                       ("https://slow.example/inbox", "pending")):
        await node.db.execute(
            "INSERT INTO relays (url, style, inbox, follow_id, state, state_at, created_at) "
            "VALUES (:u, 'mastodon', :u, :f, :s, 0, 0)", {"u": url, "f": url + "#f", "s": state})
    group = node.url("/groups/voisins")
    note = {"id": node.url("/posts/1"), "type": "Note"}
    create = {"type": "Create", "actor": group, "object": note, "to": [PUBLIC]}
    assert style_of("https://relay.example/inbox") == "mastodon"
    assert style_of("https://relay.example/actor") == "litepub"
    for kind in ("Create", "Update", "Delete"):
        assert await relay_inboxes(node, {**create, "type": kind}) == [
            "https://relay.example/inbox"]
    # Not public, not a post (a profile, a reaction, a follow): nothing to the relays.
    assert await relay_inboxes(node, {**create, "to": [f"{group}/followers"]}) == []
    assert await relay_inboxes(node, {**create, "type": "Update",
                                      "object": {"id": group, "type": "Group"}}) == []
    assert await relay_inboxes(node, {**create, "type": "Like", "object": note["id"]}) == []
    assert await relay_inboxes(node, {**create, "type": "Delete", "object": group}) == []
