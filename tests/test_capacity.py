"""A post takes as many helpers as its capacity: capacity 2 with three responders, through the
pages (accept two, the third is told kindly that the post is full; undo one acceptance, one
more is needed; decline one with a note; close; a late responder is told kindly), each text
in its reader's language (French, Dutch, English). Then the same on a real node process with
a RemotePeer: remote responders get Accept / Reject / Undo and a private Note in their
language, with contentMap in French, Dutch and English when their language is unknown."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
import pytest_asyncio

from node.context import Node
from node.posts import wire
from tests.conftest import node_settings, running_app
from tests.nodes import NodeProcess, csrf_from
from tests.peers import RemotePeer
from tests.test_e2e_posts import add_member, signed_in
from tests.test_posts_pages import CSRF, NEED, PASSWORD, member


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def app(module_database):
    tmp, url = module_database
    async with running_app(node_settings(tmp, url, NODE_RATE_LOGIN_PER_ADDRESS="0")) as pair:
        yield pair


async def login(client: httpx.AsyncClient, email: str, lang: str = "en") -> None:
    client.cookies.clear()
    client.headers["Accept-Language"] = lang
    page = await client.get("/login")
    resp = await client.post("/login", data={"email": email, "password": PASSWORD,
                                             "csrf_token": CSRF.search(page.text).group(1)})
    assert resp.status_code == 303, resp.text


def token(page: httpx.Response) -> str:
    return CSRF.search(page.text).group(1)


async def status_of(node: Node, response_id: str) -> str:
    return await node.db.fetch_val("SELECT status FROM responses WHERE id = :i",
                                   {"i": response_id})


async def messages(node: Node, response_id: str) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT * FROM conversation_messages WHERE response_id = :r ORDER BY id",
        {"r": response_id})


async def kinds_for(node: Node, user_id: str) -> list[str]:
    rows = await node.db.fetch_all(
        "SELECT kind FROM notifications WHERE user_id = :u ORDER BY id", {"u": user_id})
    return [r["kind"] for r in rows]


@pytest.mark.asyncio(loop_scope="module")
async def test_capacity_two_with_three_responders_in_their_languages(app):
    node, client = app
    people = {}
    for name, locale in (("nadia", "en"), ("tom", "nl"), ("eve", "fr"), ("sam", "en"),
                         ("lotte", "nl")):
        people[name] = await member(node, f"{name}@example.org", person=name)
        await node.db.execute("UPDATE users SET locale = :l WHERE id = :u",
                              {"l": locale, "u": people[name]})
    await login(client, "nadia@example.org")
    page = await client.get("/posts/new?kind=need")
    resp = await client.post("/posts/new?kind=need", data={
        "csrf_token": token(page), "kind": "need", **{**NEED, "title": "Two beds for Friday",
                                                      "unit": "person"}})
    assert resp.status_code == 303
    post = await node.db.fetch_one("SELECT * FROM posts")
    assert post["capacity"] == 2
    ids = {}
    # Each reads the page in their own language, plurals included.
    needed = {"tom": ("Nog 2 personen nodig", "2 personen"),
              "eve": ("Encore 2 personnes recherchées", "2 personnes"),
              "sam": ("2 more people needed", "2 people")}
    for name in ("tom", "eve", "sam"):
        await login(client, f"{name}@example.org")
        page = await client.get(f"/posts/{post['id']}")
        assert all(words in page.text for words in needed[name]), name
        resp = await client.post(f"/posts/{post['id']}/respond", data={
            "csrf_token": token(page), "message": f"{name.title()} can host"})
        assert resp.status_code == 303
        ids[name] = resp.headers["location"].rsplit("/", 1)[1]

    async def accept(name: str) -> httpx.Response:
        listing = await client.get(f"/posts/{post['id']}/responses")
        return await client.post(f"/responses/{ids[name]}/accept",
                                 data={"csrf_token": token(listing)})

    # Accept the first: nobody is declined, one more person is needed.
    await login(client, "nadia@example.org")
    assert (await accept("tom")).status_code == 303
    assert [await status_of(node, ids[n]) for n in ("tom", "eve", "sam")] == [
        "accepted", "pending", "pending"]
    assert await node.db.fetch_val("SELECT status FROM posts") == "open"
    listing = (await client.get(f"/posts/{post['id']}/responses")).text
    assert "1 more person needed" in listing and "1 accepted" in listing
    # Tom reads the acceptance in Dutch, his language, and is notified.
    assert "werd aanvaard" in (await messages(node, ids["tom"]))[-1]["body_html"]
    assert "response_accepted" in await kinds_for(node, people["tom"])

    # Accept the second: the post is full; Sam is told kindly, in English, not declined.
    assert (await accept("eve")).status_code == 303
    assert [await status_of(node, ids[n]) for n in ("tom", "eve", "sam")] == [
        "accepted", "accepted", "not_needed"]
    assert await node.db.fetch_val("SELECT status FROM posts") == "in_progress"
    assert "a été acceptée" in (await messages(node, ids["eve"]))[-1]["body_html"]
    told = (await messages(node, ids["sam"]))[-1]
    assert "It now has all the help it needs" in told["body_html"]
    assert told["sender_user_id"] is None  # the node's automatic message
    assert "new_message" in await kinds_for(node, people["sam"])
    assert "response_declined" not in await kinds_for(node, people["sam"])
    listing = await client.get(f"/posts/{post['id']}/responses")
    assert "Every place is taken." in listing.text and "Not needed this time" in listing.text
    assert f"/responses/{ids['sam']}/accept" not in listing.text
    resp = await accept("sam")
    assert resp.status_code == 400 and "Every place is taken" in resp.text
    assert await status_of(node, ids["sam"]) == "not_needed"
    update = json.loads(await node.db.fetch_val(
        "SELECT payload FROM activities WHERE type = 'Update' ORDER BY seq DESC LIMIT 1"))
    assert update["object"]["postStatus"] == "in_progress"
    # Someone answering now is told at once, kindly, and nothing is stored.
    await login(client, "lotte@example.org", "nl")
    page = await client.get(f"/posts/{post['id']}")
    assert "heeft al alle hulp die nodig is" in page.text and 'name="message"' not in page.text
    resp = await client.post(f"/posts/{post['id']}/respond",
                             data={"csrf_token": token(page), "message": "Ik ook"})
    assert resp.status_code == 400 and "Dank u voor uw aanbod" in resp.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM responses") == 3

    # Undo an acceptance: a confirmation page first, then the post needs one more person.
    await login(client, "nadia@example.org")
    page = await client.get(f"/responses/{ids['tom']}/undo")
    assert page.status_code == 200 and "Undo the acceptance of Tom?" in page.text
    resp = await client.post(f"/responses/{ids['tom']}/undo", data={"csrf_token": token(page)})
    assert resp.status_code == 200 and await status_of(node, ids["tom"]) == "accepted"
    resp = await client.post(f"/responses/{ids['tom']}/undo",
                             data={"csrf_token": token(page), "confirm": "yes"})
    assert resp.status_code == 303 and await status_of(node, ids["tom"]) == "pending"
    assert await node.db.fetch_val("SELECT status FROM posts") == "open"
    assert "1 more person needed" in (await client.get(f"/posts/{post['id']}/responses")).text
    assert "ongedaan gemaakt" in (await messages(node, ids["tom"]))[-1]["body_html"]
    assert "acceptance_undone" in await kinds_for(node, people["tom"])

    # Decline one with a short kind note (too long a note is refused, nothing changes).
    page = await client.get(f"/responses/{ids['sam']}/decline")
    assert "Decline the response of Sam?" in page.text and 'name="note"' in page.text
    resp = await client.post(f"/responses/{ids['sam']}/decline", data={
        "csrf_token": token(page), "confirm": "yes", "note": "x" * 1001})
    assert resp.status_code == 400 and await status_of(node, ids["sam"]) == "not_needed"
    resp = await client.post(f"/responses/{ids['sam']}/decline", data={
        "csrf_token": token(page), "confirm": "yes", "note": "Thank you Sam, next time!"})
    assert resp.status_code == 303 and await status_of(node, ids["sam"]) == "declined"
    told, note = (await messages(node, ids["sam"]))[-2:]
    assert "will not take it up this time" in told["body_html"] and "Nadia" in told["body_html"]
    assert "next time" in note["body_html"] and note["sender_user_id"] == people["nadia"]
    assert "response_declined" in await kinds_for(node, people["sam"])
    await login(client, "sam@example.org")
    conversation = (await client.get(f"/responses/{ids['sam']}")).text
    item = conversation[conversation.rindex("<li", 0, conversation.index("next time")):]
    assert "Nadia</strong>" in item and "author of the post" in item

    # Close: the confirmation says who will be told; the one still waiting hears it in Dutch.
    await login(client, "nadia@example.org")
    page = await client.get(f"/posts/{post['id']}/status?action=fulfil")
    assert "1 person still waiting for an answer will be told kindly" in page.text
    resp = await client.post(f"/posts/{post['id']}/status",
                             data={"csrf_token": token(page), "action": "fulfil", "confirm": "yes"})
    assert resp.status_code == 303
    assert await status_of(node, ids["tom"]) == "not_needed"
    assert "is nu gesloten" in (await messages(node, ids["tom"]))[-1]["body_html"]
    assert "post_status_changed" in await kinds_for(node, people["tom"])
    # A late responder after closing: told kindly in their language, nothing stored.
    await login(client, "lotte@example.org")
    page = await client.get(f"/posts/{post['id']}")
    resp = await client.post(f"/posts/{post['id']}/respond",
                             data={"csrf_token": token(page), "message": "Ik ook"})
    assert resp.status_code == 400 and "is nu gesloten. Dank u dat u wilde helpen!" in resp.text
    client.cookies.clear()
    client.headers["Accept-Language"] = "fr"
    page = await client.get(f"/posts/{post['id']}")
    assert "est maintenant fermée. Merci d’avoir voulu aider" in page.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM responses") == 3


# --- remote responders, on a real node process ------------------------------------------------

@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    node = NodeProcess(tmp_path_factory.mktemp("capacity"), host="127.0.0.131")
    node.start()
    peer = RemotePeer("127.0.0.132")
    peer.add_actor("joost", language="nl")
    peer.add_actor("amira")  # names no language
    peer.add_actor("emma", **{"@context": ["https://www.w3.org/ns/activitystreams",
                                           "https://w3id.org/security/v1",
                                           {"@language": "en"}]})
    peer.add_actor("pieter", summaryMap={"nl": "Buurman"})
    peer.add_actor("wim", language="nl-BE")
    peer.start()
    yield node, peer
    peer.stop()
    node.close()


def send_offer(node: NodeProcess, peer: RemotePeer, name: str, post: dict) -> dict:
    actor = peer.actors[name]
    offer = wire.offer(f"{peer.base}/responses/{name}/offer", actor.uri, post["uri"],
                       post["attributed_to"], [post["attributed_to"]], f"<p>{name} helps</p>")
    offer["context"] = f"{peer.base}/responses/{name}"
    assert peer.post(actor, f"{node.base}/inbox", offer).status_code == 202
    return offer


def to(peer: RemotePeer, name: str, kind: str, count: int = 1) -> list[dict]:
    """What the peer received of one kind for one of its actors, in arrival order."""
    uri = peer.actors[name].uri
    for _ in range(300):
        found = [a for a in peer.inbox_activities(kind) if a.get("to") == [uri]]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{name} did not receive {count} {kind}: {peer.inbox_activities()}")


def notes_to(peer: RemotePeer, name: str, count: int) -> list[dict]:
    return [a["object"] for a in to(peer, name, "Create", count)]


def note_saying(notes: list[dict], words: str) -> dict:
    """Deliveries to one host run in parallel: find a Note by what it says, not its rank."""
    found = [n for n in notes if words in n["content"]]
    assert len(found) == 1, (words, [n["content"] for n in notes])
    return found[0]


@pytest.mark.e2e
def test_remote_responders_hear_in_their_language(remote):
    node, peer = remote
    add_member(node, "nadia@remote.example", "nadia")
    author = signed_in(node, "nadia@remote.example")
    form = author.get("/posts/new?kind=need")
    resp = author.post("/posts/new?kind=need", data={
        "csrf_token": csrf_from(form.text), "kind": "need", "category": "housing",
        "title": "Un lit pour une nuit", "description": "Pour une mère et son enfant.",
        "neighbourhood": "Schaerbeek", "capacity": "1", "unit": "night", "urgency": "2",
        "languages": ["ar"]})  # a language the node does not write
    assert resp.status_code == 303, resp.text
    post_id = re.match(r"/posts/([0-9a-f]+)", resp.headers["location"]).group(1)
    post = node.query("SELECT * FROM posts WHERE id = :i", {"i": post_id})[0]
    offers = {name: send_offer(node, peer, name, post) for name in ("joost", "amira")}
    rows = {}
    for name in ("joost", "amira"):
        rows[name] = node.wait_until("SELECT * FROM responses WHERE responder_uri = :a",
                                     {"a": peer.actors[name].uri})[0]

    # Accept Joost: capacity 1, so the post is full and Amira is told kindly.
    listing = author.get(f"/posts/{post_id}/responses")
    assert "Joost" in listing.text and peer.actors["joost"].uri not in listing.text
    assert author.post(f"/responses/{rows['joost']['id']}/accept",
                       data={"csrf_token": csrf_from(listing.text)}).status_code == 303
    accept = to(peer, "joost", "Accept")[0]
    assert accept["object"] == offers["joost"]["id"] and accept["result"]["type"] == "Agreement"
    note = notes_to(peer, "joost", 1)[0]
    assert "werd aanvaard" in note["content"] and note["contentMap"] == {"nl": note["content"]}
    assert note["to"] == [peer.actors["joost"].uri] and note["cc"] == []
    assert note["context"] == offers["joost"]["context"]
    reject = to(peer, "amira", "Reject")[0]
    assert reject["object"] == offers["amira"]["id"] and reject["answerReason"] == "full"
    note = notes_to(peer, "amira", 1)[0]
    # Amira's language is unknown, and so is the post's: all three, French as `content`.
    assert set(note["contentMap"]) == {"fr", "nl", "en"}
    assert note["content"] == note["contentMap"]["fr"]
    assert "all the help it needs" in note["contentMap"]["en"]
    assert "alle hulp die nodig is" in note["contentMap"]["nl"]
    assert {"type": "Mention", "href": peer.actors["amira"].uri,
            "name": f"@amira@127.0.0.132:{peer.port}"} in note["tag"]
    assert node.query("SELECT status FROM responses WHERE id = :i",
                      {"i": rows["amira"]["id"]}) == [{"status": "not_needed"}]

    # A responder who comes while the post is full: kept, and told at once in English.
    send_offer(node, peer, "emma", post)
    reject = to(peer, "emma", "Reject")[0]
    assert reject["answerReason"] == "full"
    note = notes_to(peer, "emma", 1)[0]
    assert note["contentMap"] == {"en": note["content"]} and "all the help" in note["content"]

    # Undo Joost's acceptance: Undo{Accept} and a Note in Dutch; then decline with a note.
    page = author.get(f"/responses/{rows['joost']['id']}/undo")
    assert author.post(f"/responses/{rows['joost']['id']}/undo", data={
        "csrf_token": csrf_from(page.text), "confirm": "yes"}).status_code == 303
    undo = to(peer, "joost", "Undo")[0]
    assert undo["object"]["type"] == "Accept" and undo["object"]["id"] == accept["id"]
    note_saying(notes_to(peer, "joost", 2), "ongedaan")
    page = author.get(f"/responses/{rows['joost']['id']}/decline")
    assert author.post(f"/responses/{rows['joost']['id']}/decline", data={
        "csrf_token": csrf_from(page.text), "confirm": "yes",
        "note": "Merci Joost, une autre fois !"}).status_code == 303
    reject = to(peer, "joost", "Reject")[0]
    assert reject["object"] == offers["joost"]["id"] and reject["answerReason"] == "declined"
    notes = notes_to(peer, "joost", 4)
    assert "Nadia" in note_saying(notes, "gaat er deze keer niet op in")["content"]
    assert "contentMap" not in note_saying(notes, "une autre fois")

    # Closed: a late Offer with its Note (same thread) is answered once, in Dutch.
    page = author.get(f"/posts/{post_id}/status?action=withdraw")
    assert author.post(f"/posts/{post_id}/status", data={
        "csrf_token": csrf_from(page.text),
        "action": "withdraw", "confirm": "yes"}).status_code == 303
    offer = send_offer(node, peer, "wim", post)
    wim = peer.actors["wim"]
    late_note = {"id": f"{peer.base}/notes/wim1", "type": "Note", "attributedTo": wim.uri,
                 "inReplyTo": post["uri"], "context": offer["context"],
                 "content": "<p>wim helps</p>", "to": [post["attributed_to"]]}
    assert peer.post(wim, f"{node.base}/inbox", {
        "@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
        "type": "Create", "actor": wim.uri, "object": late_note,
        "to": late_note["to"]}).status_code == 202
    reject = to(peer, "wim", "Reject")[0]
    assert reject["object"] == offer["id"] and reject["answerReason"] == "closed"
    note = notes_to(peer, "wim", 1)[0]
    assert "is nu gesloten" in note["content"] and note["contentMap"] == {"nl": note["content"]}
    # A Mastodon-style reply (no Offer) after closing gets its kind Note too.
    pieter = peer.actors["pieter"]
    reply = {"id": f"{peer.base}/statuses/p1", "type": "Note", "attributedTo": pieter.uri,
             "inReplyTo": post["uri"], "content": "<p>@nadia ik kan helpen</p>",
             "to": [post["attributed_to"]]}
    assert peer.post(pieter, f"{node.base}/inbox", {
        "@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
        "type": "Create", "actor": pieter.uri, "object": reply,
        "to": reply["to"]}).status_code == 202
    note = notes_to(peer, "pieter", 1)[0]
    assert "is nu gesloten" in note["content"] and note["inReplyTo"] == reply["id"]
    # No response was kept for the closed post, and Wim was answered only once.
    assert node.query("SELECT COUNT(*) AS n FROM responses WHERE post_id = :p",
                      {"p": post_id}) == [{"n": 3}]
    assert len([a for a in peer.inbox_activities("Create")
                if a["object"]["to"] == [wim.uri]]) == 1
    author.close()
