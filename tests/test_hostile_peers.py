"""A hostile server attacks a running node over HTTP, with its own signing code
(tests/hostile.py); then we read the pages it could affect, as a visitor would.

What was found (issue 10): stored script through `content` of another shape, notes that are
not public listed on the home page, content warnings ignored, forged posts in the
organisation's name through an Announce, another server's post rewritten through an Announce,
other accounts' objects overwritten, deleted objects brought back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import PUBLIC, HostileActor, HostilePeer
from tests.nodes import NodeProcess

pytestmark = pytest.mark.e2e

NODE_IP, HOSTILE_IP, THIRD_IP = "127.0.0.61", "127.0.0.66", "127.0.0.67"
DANGEROUS = ("<script", "onerror", "onload", "javascript:", "alert(")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = NodeProcess(tmp_path_factory.mktemp("hostile-node"), host=NODE_IP).start()
    evil = HostilePeer(HOSTILE_IP).start()
    third = HostilePeer(THIRD_IP).start()
    mallory = evil.add_actor("mallory")
    accomplice = evil.add_actor("accomplice")
    carol = third.add_actor("carol")
    try:
        node.login()
        # The organisation follows mallory, as an admin would, and mallory accepts.
        resp = node.admin_action("follow", target=f"@mallory@{evil.base.split('//')[1]}")
        assert resp.status_code in (200, 303), resp.text
        follow = _wait(lambda: evil.received_of("Follow"))[0]
        accept = evil.activity(mallory, "Accept", follow)
        assert evil.post(mallory, f"{node.base}/inbox", accept).status_code == 202
        node.wait_until("SELECT 1 FROM follows WHERE followee_uri = :m AND state = 'accepted'",
                        {"m": mallory.uri})
        yield {"node": node, "evil": evil, "third": third, "mallory": mallory,
               "accomplice": accomplice, "carol": carol}
    finally:
        node.close()
        evil.stop()
        third.stop()


def _wait(probe, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("nothing arrived in time")


def _send(world: dict, actor: HostileActor, activity: dict) -> int:
    peer = world["evil"] if actor.uri.startswith(world["evil"].base) else world["third"]
    return peer.post(actor, f"{world['node'].base}/inbox", activity).status_code


def _pages(node: NodeProcess, *extra: str) -> str:
    paths = ["/", f"/groups/{node.org}", "/tags/offer", "/tags/evil", "/posts", *extra]
    texts = []
    for path in paths:
        resp = node.client.get(path)
        assert resp.status_code < 500, (path, resp.status_code)
        texts.append(resp.text)
    return "\n".join(texts)


def _assert_harmless(page: str) -> None:
    lowered = page.lower()
    for needle in DANGEROUS:
        assert needle not in lowered, needle


def _row(node: NodeProcess, uri: str) -> dict | None:
    rows = node.query("SELECT * FROM objects WHERE uri = :u", {"u": uri})
    return rows[0] if rows else None


# --- 1. content of another shape, audience, content warnings --------------------------------

@pytest.mark.parametrize("content", [
    ["<script>alert(1)</script>"],
    {"en": "<img src=x onerror=alert(1)>"},
    {"type": "Note", "content": "<script>alert(2)</script>"},
    12345,
])
def test_content_of_another_shape_is_never_printed(world: dict, content: Any) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    note = evil.note(mallory, content, cc=[node.org_uri], tag=[
        {"type": "Hashtag", "name": "#evil"}])
    assert _send(world, mallory, evil.create(mallory, note)) in (202, 422)
    _assert_harmless(_pages(node))
    row = _row(node, note["id"])
    if row is not None:  # kept, but without the content that had no usable shape
        for needle in DANGEROUS:
            assert needle not in (row["model"] or "").lower()


def test_every_text_field_is_cleaned_before_a_page_shows_it(world: dict) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    note = evil.note(
        mallory, '<p>Soupe ce soir <a href="javascript:alert(1)">ici</a></p>',
        name="<img src=x onerror=alert(3)>Titre",
        contentMap={"fr": "<p>Soupe<script>alert(4)</script></p>", "x y": "<script>"},
        url="javascript:alert(5)",
        attachment=[{"type": "Image", "url": "javascript:alert(6)", "name": "x"},
                    {"type": "Image", "mediaType": "image/png", "url": "https://img.example/a.png",
                     "name": "<b>a pot of soup</b>"}],
        tag=[{"type": "Hashtag", "name": "#evil"}])
    assert _send(world, mallory, evil.create(mallory, note)) == 202
    page = _pages(node)
    _assert_harmless(page)
    # A French reader gets the French text of the map; the title is plain text.
    assert "<p>Soupe</p>" in page and "Titre" in page
    assert 'alt="a pot of soup"' in page  # the picture is shown with its description


def test_only_public_objects_are_listed(world: dict) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    secret = evil.note(mallory, "<p>only for the group: secret plan</p>", to=[node.org_uri])
    assert _send(world, mallory, evil.create(mallory, secret, to=[node.org_uri])) == 202
    assert _row(node, secret["id"]) is not None  # it concerns us, so it is kept...
    assert "secret plan" not in _pages(node)    # ...but never listed for everyone


def test_a_content_warning_hides_the_text_behind_its_summary(world: dict) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    note = evil.note(mallory, "<p>details of a hard story</p>", summary="violence",
                     sensitive=True, tag=[{"type": "Hashtag", "name": "#evil"}])
    assert _send(world, mallory, evil.create(mallory, note)) == 202
    # (The home page lists open offers and needs; a note is seen where its hashtag is.)
    page = node.client.get("/tags/evil").text
    assert "<summary>violence</summary>" in page
    before, _, after = page.partition("<summary>violence</summary>")
    assert "details of a hard story" in after.split("</details>")[0]


def test_objects_of_other_types_are_not_kept(world: dict) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    for kind in ("Tombstone", "Relationship", "Profile", "Person"):
        obj = evil.note(mallory, "<p>not a post</p>", type=kind)
        assert _send(world, mallory, evil.create(mallory, obj)) in (202, 422)
        assert _row(node, obj["id"]) is None, kind


# --- 2. forged posts through Announce -----------------------------------------------------

def test_an_announce_cannot_forge_a_post_in_our_name(world: dict) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    forged_ids = [f"{node.base}?forged=1", f"{node.base}/objects/forged",
                  f"http://{NODE_IP.upper()}:{node.port}/x",
                  f"{node.base.replace('http://', 'http://user@')}/y"]
    for forged in forged_ids:
        statement = {"id": forged, "type": "Note", "attributedTo": node.org_uri,
                     "content": "<p>OFFICIAL STATEMENT</p>", "url": "javascript:alert(1)",
                     "to": [PUBLIC]}
        assert _send(world, mallory, evil.activity(mallory, "Announce", statement,
                                                   to=[PUBLIC])) in (202, 422)
        assert _row(node, forged) is None, forged
    page = _pages(node)
    assert "OFFICIAL STATEMENT" not in page
    _assert_harmless(page)


def test_an_announce_cannot_rewrite_another_servers_post(world: dict) -> None:
    node, evil, third, mallory, carol = (world[k] for k in
                                         ("node", "evil", "third", "mallory", "carol"))
    original = third.note(carol, "<p>Repair café on Saturday</p>")
    third.objects[original["id"].removeprefix(third.base)] = original
    # First a genuine boost: the note is fetched from its origin and kept as it is there.
    assert _send(world, mallory, evil.activity(mallory, "Announce", original["id"])) == 202
    row = node.wait_until("SELECT model FROM objects WHERE uri = :u", {"u": original["id"]})
    assert "Repair café on Saturday" in row[0]["model"]
    # Then a boost that embeds the same id with words carol never wrote.
    lie = {**original, "content": "<p>Repair café cancelled, send money to mallory</p>"}
    assert _send(world, mallory, evil.activity(mallory, "Announce", lie)) == 202
    time.sleep(0.3)
    stored = _row(node, original["id"])
    assert "send money" not in stored["model"] and "Repair café on Saturday" in stored["model"]
    # And an embedded note the third server does not have at all is dropped.
    ghost = third.note(carol, "<p>carol never wrote this</p>")
    assert _send(world, mallory, evil.activity(mallory, "Announce", ghost)) == 202
    time.sleep(0.3)
    assert _row(node, ghost["id"]) is None
    assert "carol never wrote this" not in _pages(node)


# --- 6. ownership: ids of other accounts, deleted objects -----------------------------------

def test_another_account_cannot_overwrite_or_delete_an_object(world: dict) -> None:
    node, evil, mallory, accomplice = (world[k] for k in
                                       ("node", "evil", "mallory", "accomplice"))
    note = evil.note(mallory, "<p>Soup kitchen tonight at 19h</p>")
    assert _send(world, mallory, evil.create(mallory, note)) == 202
    # The same id, claimed by another account of the same server.
    stolen = {**note, "attributedTo": accomplice.uri, "content": "<p>cancelled</p>"}
    assert _send(world, accomplice, evil.create(accomplice, stolen)) in (202, 422)
    assert _send(world, accomplice, evil.activity(accomplice, "Update", stolen)) in (202, 422)
    assert _send(world, accomplice, evil.activity(accomplice, "Delete", note["id"])) == 202
    row = _row(node, note["id"])
    assert row["attributed_to"] == mallory.uri and not row["deleted"]
    assert "19h" in row["model"] and "cancelled" not in row["model"]


def test_a_deleted_object_stays_deleted(world: dict) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    note = evil.note(mallory, "<p>Coats to give away</p>")
    assert _send(world, mallory, evil.create(mallory, note)) == 202
    assert _send(world, mallory, evil.activity(mallory, "Delete", note["id"])) == 202
    assert _row(node, note["id"])["deleted"] == 1
    # A replayed Create (new activity id) and an Update do not bring it back.
    assert _send(world, mallory, evil.create(mallory, note)) in (202, 422)
    assert _send(world, mallory, evil.activity(mallory, "Update", note)) in (202, 422)
    assert _row(node, note["id"])["deleted"] == 1
    # A Delete that arrives before its Create wins too (Mastodon's delete_arrived_first?).
    early = evil.note(mallory, "<p>never shown</p>")
    assert _send(world, mallory, evil.activity(mallory, "Delete", early["id"])) == 202
    assert _send(world, mallory, evil.create(mallory, early)) in (202, 422)
    assert _row(node, early["id"])["deleted"] == 1
    page = _pages(node)
    assert "Coats to give away" not in page and "never shown" not in page


def test_a_server_cannot_create_for_another_server(world: dict) -> None:
    node, evil, mallory, carol = world["node"], world["evil"], world["mallory"], world["carol"]
    fake = world["third"].note(carol, "<p>carol says hi</p>")
    activity = evil.create(mallory, {**fake, "attributedTo": carol.uri})
    assert _send(world, mallory, activity) == 422
    assert _row(node, fake["id"]) is None


def test_the_pages_survive_every_shape(world: dict, tmp_path: Path) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    odd_values: list[Any] = [None, 0, True, [], {}, ["x"], {"x": 1}, "x" * 5000, "\u0000"]
    for field in ("name", "summary", "url", "published", "inReplyTo", "tag", "attachment",
                  "contentMap", "to", "sensitive", "context"):
        for value in odd_values:
            note = evil.note(mallory, "<p>shape test</p>", cc=[node.org_uri], **{field: value})
            assert _send(world, mallory, evil.create(mallory, note)) in (202, 400, 422), field
    _assert_harmless(_pages(node))
    assert "Traceback" not in node.log()


def _need(evil: HostilePeer, actor: HostileActor, text: str, **fields: Any) -> dict:
    note = evil.note(actor, text, purpose="request", **fields)
    note["publishes"] = {"type": "Intent", "id": note["id"] + "#primary",
                         "action": "deliverService", "receiver": actor.uri}
    return note


def test_a_remote_need_behind_a_content_warning_stays_behind_it(world: dict) -> None:
    node, evil, mallory = world["node"], world["evil"], world["mallory"]
    need = _need(evil, mallory, "<p>my landlord threw us out last night</p>",
                 summary="eviction, hard story")
    assert _send(world, mallory, evil.create(mallory, need)) == 202
    post = node.wait_until("SELECT id, title FROM posts WHERE uri = :u", {"u": need["id"]})[0]
    assert "landlord" not in post["title"]  # lists show the warning, not the hidden text
    page = node.client.get(f"/posts/{post['id']}").text
    before, _, hidden = page.partition("<summary>eviction, hard story</summary>")
    assert hidden and "landlord" not in before and "landlord" in hidden.split("</details>")[0]
    sensitive = _need(evil, mallory, "<p>photos of the damage</p>", sensitive=True)
    assert _send(world, mallory, evil.create(mallory, sensitive)) == 202
    post = node.wait_until("SELECT id FROM posts WHERE uri = :u", {"u": sensitive["id"]})[0]
    page = node.client.get(f"/posts/{post['id']}?lang=en").text
    assert "<summary>Sensitive content</summary>" in page
