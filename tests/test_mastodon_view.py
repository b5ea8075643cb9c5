"""What a Mastodon user sees of what this node publishes, judged by Mastodon's own rules.

`mastodon_status()` reads an activity the way Mastodon does (app/lib/activitypub/activity.rb:
only `Note` and `Question` are shown in full; parser/status_parser.rb: `content`, else the first
`contentMap` value, is the text; `summary` becomes a content warning; the language is the first
`contentMap` key; `published`/`updated` give the dates, and an Update is shown as an edit only
with an `updated` later than what Mastodon has; visibility comes from `to`/`cc`;
activity/create.rb: `Hashtag` tags with a name become the status' tags). The tests publish
through the real pages (the admin's note form, the members' offer-and-need form) on the
in-process app with a real database, then read what the outbox stored for delivery."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from activitypub.vocab import PUBLIC_ALIASES, as_list, id_of, types_of
from node.actors import create_actor
from node.auth import create_user
from node.context import Node
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
AP = {"Accept": "application/activity+json"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "a long member password"
# Mastodon's HASHTAG_NAME_RE, simplified: word characters and the middle dot, one letter at least.
MASTODON_TAG = re.compile(r"^(?=[\w·]*[^\W\d_])[\w·]+$")
NEED = {"category": "housing", "title": "Un lit pour deux nuits",
        "description": "Une mère et son enfant cherchent **un lit** pour deux nuits.",
        "neighbourhood": "Saint-Gilles", "capacity": "2", "unit": "night", "urgency": "3",
        "languages": ["fr", "nl"]}


def mastodon_status(activity: dict[str, Any], followers: str) -> dict[str, Any]:
    """The status Mastodon would make of a Create or Update, or an AssertionError saying why
    Mastodon would not show it in full."""
    obj = activity["object"]
    assert isinstance(obj, dict), "Mastodon wants the object embedded"
    assert types_of(obj) & {"Note", "Question"}, f"{obj.get('type')} is not shown in full"
    assert id_of(obj.get("attributedTo")) == id_of(activity["actor"]), "invalid origin"
    assert urlsplit(obj["id"]).netloc == urlsplit(id_of(activity["actor"])).netloc
    content_map = obj.get("contentMap") if isinstance(obj.get("contentMap"), dict) else {}
    to = [id_of(a) for a in as_list(obj.get("to"))]
    cc = [id_of(a) for a in as_list(obj.get("cc"))]
    if any(a in PUBLIC_ALIASES for a in to):
        visibility = "public"
    elif any(a in PUBLIC_ALIASES for a in cc):
        visibility = "unlisted"
    elif followers in to:
        visibility = "private"
    else:
        visibility = "direct"
    return {
        "text": obj.get("content") or next(iter(content_map.values()), None),
        "spoiler_text": obj.get("summary") or next(iter((obj.get("summaryMap") or {}).values()),
                                                   None),
        "language": next(iter(content_map), None),
        "url": obj.get("url"),
        "created_at": datetime.fromisoformat(obj["published"].replace("Z", "+00:00")),
        "edited_at": (datetime.fromisoformat(obj["updated"].replace("Z", "+00:00"))
                      if obj.get("updated") else None),
        "visibility": visibility,
        "tags": [t for t in as_list(obj.get("tag"))
                 if isinstance(t, dict) and "Hashtag" in types_of(t) and t.get("name")],
        "reply": bool(obj.get("inReplyTo")),
    }


def csrf(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text[:300]
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> None:
    client.headers["Accept-Language"] = "en"
    token = csrf(await client.get("/login"))
    resp = await client.post("/login", data={"email": email, "password": password,
                                             "csrf_token": token})
    assert resp.status_code == 303, resp.text


async def member_posts(node: Node, client: httpx.AsyncClient, fields: dict[str, Any],
                       kind: str = "need") -> dict[str, Any]:
    """A member with her own Person actor posts through the form; returns the posts row."""
    person = await create_actor(node, "Person", "amina", "Amina")
    user_id = await create_user(node, "amina@example.org", PASSWORD, role="member",
                                actor_id=person.id)
    org_id = await node.db.fetch_val("SELECT id FROM actors WHERE username = 'voisins'")
    await node.db.execute(
        "INSERT INTO memberships (user_id, org_id, role) VALUES (:u, :o, 'member')",
        {"u": user_id, "o": org_id})
    await sign_in(client, "amina@example.org", PASSWORD)
    token = csrf(await client.get(f"/posts/new?kind={kind}"))
    resp = await client.post(f"/posts/new?kind={kind}",
                             data={"csrf_token": token, "kind": kind, **fields})
    assert resp.status_code == 303, resp.text
    return await node.db.fetch_one("SELECT * FROM posts ORDER BY created_at DESC LIMIT 1")


async def activities(node: Node, kind: str) -> list[dict[str, Any]]:
    rows = await node.db.fetch_all(
        "SELECT payload FROM activities WHERE type = :t ORDER BY seq", {"t": kind})
    return [json.loads(r["payload"]) for r in rows]


# --- the organisation's announcements (admin note form) ---------------------------------------

async def test_admin_note_reads_as_a_public_status_and_its_delete_as_tombstone(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    node, client = app_node
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = csrf(await client.get("/admin"))
    resp = await client.post("/admin/note", data={
        "csrf_token": token, "text": "Soupe <b>populaire</b> ce soir\n\nÀ 19h, rue Haute"})
    assert resp.status_code == 303
    create = (await activities(node, "Create"))[0]
    status = mastodon_status(create, f"{ORG}/followers")
    assert status["text"] == ("<p>Soupe &lt;b&gt;populaire&lt;/b&gt; ce soir</p>"
                              "<p>À 19h, rue Haute</p>")
    assert status["spoiler_text"] is None
    assert status["visibility"] == "public" and not status["reply"]
    assert status["url"] == create["object"]["id"]
    page = await client.get(urlsplit(status["url"]).path)
    assert page.status_code == 200 and "populaire" in page.text

    token = csrf(await client.get("/admin"))
    resp = await client.post("/admin/delete-note", data={"csrf_token": token, "confirm": "yes",
                                                         "target": create["object"]["id"]})
    assert resp.status_code == 303
    delete = (await activities(node, "Delete"))[0]
    assert delete["object"] == {"id": create["object"]["id"], "type": "Tombstone"}
    assert delete["actor"] == create["actor"] == ORG


# --- offers and needs -------------------------------------------------------------------------

async def test_need_reads_as_a_readable_tagged_status(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    node, client = app_node
    post = await member_posts(node, client, NEED)
    create = (await activities(node, "Create"))[0]
    person = f"{BASE}/users/amina"
    assert create["actor"] == person
    status = mastodon_status(create, f"{person}/followers")
    assert status["visibility"] == "public"
    assert status["spoiler_text"] is None  # no content warning hides the need
    assert status["language"] == "fr"
    text = status["text"]
    assert "Un lit pour deux nuits" in text and "Besoin" in text  # in the need's language
    assert "Saint-Gilles" in text and "jusqu’au " in text  # place and expiry are readable
    assert status["url"] == post["uri"]
    assert abs(status["created_at"].timestamp() - post["created_at"]) < 2

    names = [t["name"] for t in status["tags"]]
    assert names == ["#need", "#housing", "#SaintGilles"]
    for tag in status["tags"]:
        assert MASTODON_TAG.match(tag["name"][1:]), tag["name"]
        assert tag["href"] == f"{BASE}/tags/{tag['name'][1:].lower()}"
        # The tag is linked in the text too, as Mastodon links the hashtags it writes.
        assert f'href="{tag["href"]}"' in text
        page = await client.get(urlsplit(tag["href"]).path)
        assert page.status_code == 200 and "Un lit pour deux nuits" in page.text

    # The organisation's followers see it through the Group's Announce (FEP-1b12).
    announce = (await activities(node, "Announce"))[0]
    assert announce["actor"] == ORG and id_of(announce["object"]) == post["uri"]
    # The post page behind `url` is a web page a Mastodon user can open.
    page = await client.get(urlsplit(post["uri"]).path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Un lit pour deux nuits" in page.text


async def test_edit_is_shown_as_an_edit(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    node, client = app_node
    post = await member_posts(node, client, NEED)
    # Edits come later than publication; Mastodon takes an Update as an edit only when
    # `updated` is present and later than `published`.
    await node.db.execute("UPDATE posts SET created_at = created_at - 600, "
                          "updated_at = updated_at - 600 WHERE id = :i", {"i": post["id"]})
    page = await client.get(f"/posts/{post['id']}/edit")
    resp = await client.post(f"/posts/{post['id']}/edit", data={
        "csrf_token": csrf(page), **NEED, "title": "Un lit pour trois nuits"})
    assert resp.status_code == 303, resp.text
    update = (await activities(node, "Update"))[0]
    create = (await activities(node, "Create"))[0]
    assert update["object"]["id"] == create["object"]["id"]
    before = mastodon_status(create, f"{BASE}/users/amina/followers")
    after = mastodon_status(update, f"{BASE}/users/amina/followers")
    assert after["edited_at"] is not None and after["edited_at"] > after["created_at"]
    assert before["edited_at"] is None
    assert "trois nuits" in after["text"] and "deux nuits" in before["text"]


async def test_withdrawn_need_is_deleted_and_leaves_the_tag_page(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    node, client = app_node
    post = await member_posts(node, client, NEED)
    assert "Un lit" in (await client.get("/tags/housing")).text
    page = await client.get(f"/posts/{post['id']}")
    resp = await client.post(f"/posts/{post['id']}/status",
                             data={"csrf_token": csrf(page),
                                   "action": "withdraw", "confirm": "yes"})
    assert resp.status_code == 303
    delete = (await activities(node, "Delete"))[0]
    assert delete["object"]["type"] == "Tombstone" and delete["object"]["id"] == post["uri"]
    assert "Un lit" not in (await client.get("/tags/housing")).text
    assert (await client.get(urlsplit(post["uri"]).path, headers=AP)).status_code == 410


async def test_followers_only_need_is_private_and_not_on_tag_pages(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    node, client = app_node
    # The admin has no Person actor: the need is the organisation's own.
    await sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = csrf(await client.get("/posts/new?kind=need"))
    resp = await client.post("/posts/new?kind=need", data={
        "csrf_token": token, "kind": "need", **NEED, "visibility": "followers"})
    assert resp.status_code == 303, resp.text
    create = (await activities(node, "Create"))[0]
    assert create["actor"] == ORG
    assert mastodon_status(create, f"{ORG}/followers")["visibility"] == "private"
    client.cookies.clear()
    assert "Un lit" not in (await client.get("/tags/housing")).text
    listing = (await client.get("/tags/housing", headers=AP)).json()
    assert listing["totalItems"] == 0 and listing["orderedItems"] == []


# A member's followers-only post is also addressed to the member's own followers collection,
# so that Mastodon reads it as followers-only (it judges visibility against the sender's own
# followers), not as a direct message to nobody. Mastodon still refuses the Group's Announce of
# a non-public status, so the organisation's Mastodon followers see only public posts.
async def test_member_followers_only_need_reaches_the_organisation_followers(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    node, client = app_node
    await member_posts(node, client, {**NEED, "visibility": "followers"})
    create = (await activities(node, "Create"))[0]
    assert mastodon_status(create, f"{BASE}/users/amina/followers")["visibility"] == "private"


async def test_tag_pages_answer_json_and_refuse_bad_names(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    node, client = app_node
    post = await member_posts(node, client, NEED)
    listing = (await client.get("/tags/SaintGilles", headers=AP)).json()
    assert listing["id"] == f"{BASE}/tags/SaintGilles"
    assert listing["type"] == "OrderedCollection" and listing["orderedItems"] == [post["uri"]]
    # A tag merely written in the text, not carried as a Hashtag, does not count.
    assert "Un lit" not in (await client.get("/tags/lit")).text
    for bad in ("two%20words", "a-b", "x" * 65, "%3Cscript%3E"):
        resp = await client.get(f"/tags/{bad}", headers=AP)
        assert resp.status_code == 400, bad
        assert "hashtag" in resp.json()["error"]
        # A browser gets the same refusal as a page in its language (node/errors.py).
        page = await client.get(f"/tags/{bad}", headers={"Accept-Language": "nl"})
        assert page.status_code == 400 and "hashtag" in page.text and 'href="/"' in page.text
