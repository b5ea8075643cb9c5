"""The organisation's profile as a Mastodon user sees it.

Each assertion follows what Mastodon's ActivityPub::ProcessAccountService reads from an actor
(app/services/activitypub/process_account_service.rb): `inbox` must be present; `name` is the
display name; `summary` is the HTML note; `url` (a text/html href on the actor's own host, else
the id is used) is the profile link; `manuallyApprovesFollowers` locks the account;
`attachment` items of type `PropertyValue` become the profile fields (name, value); `icon` and
`image` are the avatar and header (first value, its `url`); `published` is the creation date;
statuses, following and followers counts are the `totalItems` of `outbox`, `following` and
`followers`, and a collection without `first` reads as hidden; `featuredTags` is fetched as a
collection of `Hashtag`s."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

import httpx

from node.context import Node
from node.db import now

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
AP = {"Accept": "application/activity+json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml"}


def _path(url: str) -> str:
    assert url.startswith(BASE), url
    return url.removeprefix(BASE)


async def test_profile_found_by_webfinger_reads_as_mastodon_expects(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    node, client = app_node
    await node.db.execute(
        "UPDATE actors SET summary = :s WHERE username = 'voisins'",
        {"s": "Entraide à Saint-Gilles <script>alert(1)</script>\nLundi–vendredi\n\nBienvenue"})

    finger = await client.get("/.well-known/webfinger",
                              params={"resource": "acct:voisins@127.0.0.1:8999"})
    self_link = [link for link in finger.json()["links"] if link.get("rel") == "self"][0]
    assert self_link["type"] == "application/activity+json"
    doc = (await client.get(_path(self_link["href"]), headers=AP)).json()

    assert doc["id"] == ORG and doc["inbox"] == f"{ORG}/inbox"
    assert doc["preferredUsername"] == "voisins"
    assert doc["name"] == "Voisins solidaires"
    # The description is HTML, escaped from the plain text the coordinators write.
    assert doc["summary"] == ("<p>Entraide à Saint-Gilles &lt;script&gt;alert(1)&lt;/script&gt;"
                              "<br>Lundi–vendredi</p><p>Bienvenue</p>")
    assert doc["manuallyApprovesFollowers"] is False
    assert datetime.fromisoformat(doc["published"].replace("Z", "+00:00")).year >= 2024

    # `url` is on the actor's host (Mastodon drops a url of another origin) and is the web page.
    assert isinstance(doc["url"], str)
    assert urlsplit(doc["url"]).netloc == urlsplit(doc["id"]).netloc
    page = await client.get(_path(doc["url"]), headers=BROWSER)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Voisins solidaires" in page.text
    assert "&lt;script&gt;" in page.text and "<script>alert" not in page.text
    assert f'<link rel="me" href="{ORG}">' in page.text

    # Avatar: Mastodon takes the first value's `url` and downloads it.
    icon = doc["icon"]
    assert icon["type"] == "Image" and icon["mediaType"] == "image/png"
    avatar = await client.get(_path(icon["url"]))
    assert avatar.status_code == 200 and avatar.headers["content-type"] == "image/png"
    assert avatar.content.startswith(b"\x89PNG")

    # Profile fields: PropertyValue name/value, the values being links that resolve here.
    fields = {a["name"]: a["value"] for a in doc["attachment"] if a["type"] == "PropertyValue"}
    assert set(fields) == {"Web", "Needs", "Offers"}
    assert fields["Web"].startswith(f'<a href="{ORG}"') and 'rel="me' in fields["Web"]
    for name, path in (("Needs", "/tags/need"), ("Offers", "/tags/offer")):
        assert f'href="{BASE}{path}"' in fields[name]
        assert (await client.get(path, headers=BROWSER)).status_code == 200

    # The JSON-LD context defines every extension term the document uses.
    terms = doc["@context"][2]
    assert terms["PropertyValue"] == "schema:PropertyValue" and terms["value"] == "schema:value"
    assert terms["featuredTags"]["@id"] == "toot:featuredTags"


async def test_counts_come_from_the_collections_total_items(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    node, client = app_node
    await node.db.execute_many(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, :s, :t)",
        [{"f": f"https://masto.example/users/u{i}", "e": ORG, "a": f"https://masto.example/f{i}",
          "s": "accepted" if i < 3 else "pending", "t": now()} for i in range(4)])
    doc = (await client.get("/groups/voisins", headers=AP)).json()
    followers = (await client.get(_path(doc["followers"]), headers=AP)).json()
    following = (await client.get(_path(doc["following"]), headers=AP)).json()
    outbox = (await client.get(_path(doc["outbox"]), headers=AP)).json()
    assert followers["totalItems"] == 3  # the pending request is not counted
    assert followers["first"]  # Mastodon shows the list: it is not hidden
    assert following["totalItems"] == 0
    assert isinstance(outbox["totalItems"], int)
    page = await client.get(_path(followers["first"]), headers=AP)
    assert sorted(page.json()["orderedItems"]) == [f"https://masto.example/users/u{i}"
                                                   for i in range(3)]


async def test_featured_tags_are_hashtags_with_their_pages(
    app_node: tuple[Node, httpx.AsyncClient],
) -> None:
    _, client = app_node
    doc = (await client.get("/groups/voisins", headers=AP)).json()
    assert doc["featuredTags"] == f"{ORG}/tags"
    tags = (await client.get(_path(doc["featuredTags"]), headers=AP)).json()
    assert tags["type"] == "Collection" and tags["totalItems"] == len(tags["items"]) == 2
    for item in tags["items"]:
        assert item["type"] == "Hashtag" and item["name"].startswith("#")
        assert item["href"] == f"{BASE}/tags/{item['name'][1:]}"
    missing = await client.get("/groups/nobody/tags", headers=AP)
    assert missing.status_code == 404 and missing.json()["error"]


async def test_instance_actor_and_empty_summary(app_node: tuple[Node, httpx.AsyncClient]) -> None:
    node, client = app_node
    instance = (await client.get("/actor", headers=AP)).json()
    assert "attachment" not in instance and "featuredTags" not in instance
    await node.db.execute("UPDATE actors SET summary = '' WHERE username = 'voisins'")
    doc = (await client.get("/groups/voisins", headers=AP)).json()
    assert doc["summary"] == ""
    page = await client.get("/groups/voisins", headers=BROWSER)
    assert 'class="summary"' not in page.text
