"""The pages a neighbour lands on: the home page (what the network is, "I need help" / "I can
help", what is open), the one card of every list, folded filters, Brussels places in the
reader's language, status changes that ask first, the web app manifest and the weight of the
pages. One in-process node for the module, on SQLite or PostgreSQL (ENTRAIDE_TEST_DB)."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from PIL import Image

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.test_authoring import jpeg_with_gps, send_form
from tests.test_posts_pages import NEED, csrf, login, member, post_form

pytestmark = pytest.mark.asyncio(loop_scope="module")

OFFER = {"category": "food", "title": "Soupe et pain chaque mardi",
         "description": "Nous cuisinons une grande soupe chaque mardi soir.\n\nVenez avec un bol.",
         "neighbourhood": "Schaerbeek", "starts_at": "2030-01-08", "ends_at": "2030-01-29",
         "urgency": "1", "languages": ["fr", "nl"], "publish_as_written": "1"}
LONG = "Une maman et son enfant cherchent un lit. " * 12
# Glyphs that drew the federation text or rendered as an empty box.
RAW_MARKS = ("✔", "⧗", "FULFILLED", "NEED ·", "OFFER ·")


def text_of(html: str) -> str:
    """What a reader sees or hears of a page: its text and the texts of its attributes."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    said = " ".join(re.findall(r'(?:aria-label|placeholder|alt|title)="([^"]*)"', html))
    # Only ASCII spaces collapse: French typography's narrow no-break spaces are kept.
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html) + " " + said)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def site(module_node):
    node, client = module_node
    await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    need = await post_form(client, "need", {**NEED, "description": LONG,
                                            "neighbourhood": "Ixelles",
                                            "publish_as_written": "1"})
    offer = await post_form(client, "offer", OFFER)
    ids = {"need": need.headers["location"].rsplit("/", 1)[-1],
           "offer": offer.headers["location"].rsplit("/", 1)[-1]}
    client.cookies.clear()
    return node, client, ids


async def test_the_home_page_says_what_this_is_and_offers_two_ways_in(site):
    node, client, ids = site
    page = await client.get("/", headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Un réseau d’entraide entre voisins et organisations sociales\u202f:" in text
    assert "J’ai besoin d’aide" in text and "Je peux aider" in text
    assert 'href="/posts/new?kind=need"' in page.text and 'href="/posts?kind=need"' in page.text
    assert 'href="/posts/new?kind=offer"' in page.text and 'href="/posts?kind=offer"' in page.text
    # What is open nearby, as the same cards as the list.
    for post_id in ids.values():
        assert f'href="/posts/{post_id}"' in page.text
    assert page.text.count('<article class="card ') == 2
    assert not any(mark in page.text for mark in RAW_MARKS)

    # A visitor who asks for help signs in and lands on the need form, kind kept.
    resp = await client.get("/posts/new?kind=need")
    assert resp.status_code in (302, 303)
    target = parse_qs(urlsplit(resp.headers["location"]).query)["next"][0]
    assert target == "/posts/new?kind=need"
    await login(client, "ana@example.org")
    form = await client.get(target)
    assert 'name="kind" value="need"' in form.text or "kind=need" in form.text
    # A member's menu keeps the first entries out and folds the rest (no JavaScript).
    home = await client.get("/")
    more = re.search(r'<details class="more-menu">(.*?)</details>', home.text, flags=re.S)
    assert more is not None and 'action="/logout"' in more.group(1)
    assert 'href="/me/delete"' in more.group(1) and 'href="/posts/mine"' not in more.group(1)
    client.cookies.clear()


async def test_a_card_shows_kind_category_excerpt_place_dates_and_author(site):
    node, client, ids = site
    page = await client.get("/posts", headers={"Accept-Language": "fr"})
    cards = dict(re.findall(r'<article class="card card-(\w+)[^"]*">(.*?)</article>', page.text,
                            flags=re.S))
    need, offer = cards["need"], cards["offer"]
    assert "Besoin" in need and "Lit ou logement" in need and "Urgente" in need
    assert "<svg" in need and "http" not in need.split("<svg", 1)[1].split("</svg>", 1)[0]
    # The first lines, cut at a word, as plain text.
    excerpt = re.search(r'<p class="excerpt"[^>]*>(.*?)</p>', need).group(1)
    assert excerpt.startswith("Une maman et son enfant") and excerpt.endswith("…")
    assert len(excerpt) < 200 and "<" not in excerpt
    assert "Ixelles" in need and ">Ana<" in need and "/users/ana\"" in need, need
    assert "publiée le" in need
    assert "Offre" in offer and "Repas ou nourriture" in offer
    assert "Nous cuisinons une grande soupe chaque mardi soir. Venez avec un bol." in offer
    assert re.search(r'du <time datetime="2030-01-08">8 janv\. 2030</time> au '
                     r'<time datetime="2030-01-29">29 janv\. 2030</time>', offer), offer
    # In Dutch the same cards speak Dutch, the place included.
    page = await client.get("/posts", headers={"Accept-Language": "nl"})
    text = text_of(page.text)
    assert "Schaarbeek" in text and "Elsene" in text and "Schaerbeek" not in text
    assert "Vraag" in page.text and "Maaltijd of voedsel" in page.text
    assert "van <time" in page.text
    # The post page and the post form name places in the reader's language too; the form
    # still sends the one stored name.
    page = await client.get(f"/posts/{ids['need']}", headers={"Accept-Language": "nl"})
    assert "<dd>Elsene</dd>" in page.text
    await login(client, "ana@example.org")
    form = await client.get("/posts/new?kind=need", headers={"Accept-Language": "nl"})
    assert '<option value="Saint-Gilles">Sint-Gillis</option>' in form.text
    client.cookies.clear()


async def test_statuses_read_as_words_of_the_readers_language(site):
    node, client, ids = site
    await node.db.execute("UPDATE posts SET status = 'in_progress' WHERE id = :i",
                          {"i": ids["need"]})
    try:
        for lang, word in (("fr", "En cours"), ("nl", "Bezig"), ("en", "In progress")):
            page = await client.get("/posts", headers={"Accept-Language": lang})
            state = re.search(r'<span class="state">([^<]*)</span>', page.text)
            assert state is not None and state.group(1) == word, (lang, page.text[-3000:])
            assert not any(mark in page.text for mark in RAW_MARKS)
        page = await client.get(f"/posts/{ids['need']}", headers={"Accept-Language": "fr"})
        assert "Statut\u202f: En cours" in page.text
    finally:
        await node.db.execute("UPDATE posts SET status = 'open' WHERE id = :i",
                              {"i": ids["need"]})


async def test_filters_fold_away_and_places_filter_in_either_language(site):
    node, client, ids = site
    page = await client.get("/posts", headers={"Accept-Language": "nl"})
    # Only the search box and the kind tabs are out; the rest folds, closed without a filter.
    details = re.search(r"<details class=\"more-filters\"([^>]*)>(.*?)</details>", page.text,
                        flags=re.S)
    assert details is not None and "open" not in details.group(1)
    for name in ("category", "neighbourhood", "language", "scope", "sort"):
        assert f'name="{name}"' in details.group(2)
    assert '<option value="Schaerbeek">Schaarbeek</option>' in details.group(2)
    # A filter chosen opens the fold and is counted; the place keeps its one stored name.
    page = await client.get("/posts?neighbourhood=Schaerbeek", headers={"Accept-Language": "nl"})
    assert re.search(r'<details class="more-filters" open>\s*<summary>Filters \(1\)', page.text)
    assert f'/posts/{ids["offer"]}"' in page.text and f'/posts/{ids["need"]}"' not in page.text
    # The kind tabs keep the other filters.
    assert 'href="/posts?neighbourhood=Schaerbeek&amp;kind=need"' in page.text


async def test_withdraw_and_fulfil_posted_without_confirmation_ask_first(site):
    node, client, ids = site
    await login(client, "ana@example.org")
    page = await client.get(f"/posts/{ids['need']}")
    for action in ("withdraw", "fulfil"):
        resp = await client.post(f"/posts/{ids['need']}/status",
                                 data={"csrf_token": csrf(page), "action": action})
        assert resp.status_code == 200
        assert 'name="confirm" value="yes"' in resp.text and 'class="danger"' in resp.text
        assert await node.db.fetch_val("SELECT status FROM posts WHERE id = :i",
                                       {"i": ids["need"]}) == "open"
        assert await node.db.fetch_val(
            "SELECT COUNT(*) FROM activities WHERE type = 'Delete'") == 0
    client.cookies.clear()


async def test_the_manifest_names_the_organisation_and_its_icons_exist(site):
    node, client, ids = site
    page = await client.get("/")
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page.text
    assert '<meta name="theme-color" content="#0b5d3b">' in page.text
    await node.db.execute("UPDATE actors SET name = 'Maison de quartier Helmet' "
                          "WHERE kind = 'Group'")
    resp = await client.get("/manifest.webmanifest")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(resp.text)
    assert manifest["name"] == "Maison de quartier Helmet"
    assert len(manifest["short_name"]) <= 12 and manifest["start_url"] == "/"
    assert manifest["theme_color"] == "#0b5d3b" and manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        got = await client.get(icon["src"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(got.content))
        assert f"{image.width}x{image.height}" == icon["sizes"]
        sizes.add(icon["sizes"])
    assert sizes == {"192x192", "512x512"}


async def test_main_pages_weigh_under_100_kb_and_load_nothing_from_elsewhere(site):
    node, client, ids = site
    await login(client, "ana@example.org")
    paths = ["/", "/posts", "/posts?kind=need&category=housing", f"/posts/{ids['need']}",
             "/posts/new?kind=offer", "/posts/mine", "/groups/voisins", "/tags/need",
             "/notifications", "/account"]
    for path in paths:
        for lang in ("fr", "nl"):
            page = await client.get(path, headers={"Accept-Language": lang})
            assert page.status_code == 200, path
            sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
            # No web fonts, scripts or sheets from another site.
            assert not re.search(r'<link rel="(?:stylesheet|preload|icon|manifest)" href="'
                                 r'(?:https?:)?//|<script[^>]* src="(?:https?:)?//', page.text)
            assert "@import" not in page.text and "fonts.googleapis" not in page.text
            weight = len(page.content)
            for sheet in sheets:
                css = await client.get(sheet)
                assert css.status_code == 200
                assert "url(http" not in css.text and "@font-face" not in css.text
                weight += len(css.content)
            assert weight < 100_000, (path, lang, weight)
    client.cookies.clear()


async def test_the_admins_follow_error_is_in_the_readers_language(site):
    node, client, ids = site
    client.cookies.clear()
    resp = await client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                             "csrf_token": csrf(await client.get("/login"))})
    assert resp.status_code == 303
    for lang, words in (("fr", "Écrivez un identifiant comme @food@autre.exemple"),
                        ("nl", "Schrijf een adres zoals @food@ander.voorbeeld")):
        client.headers["Accept-Language"] = lang
        page = await client.get("/admin")
        resp = await client.post("/admin/follow",
                                 data={"csrf_token": csrf(page), "target": "not a handle"})
        assert resp.status_code == 400
        assert words in resp.text, resp.text[-2000:]
        assert "invalid handle" not in resp.text.lower()
    client.cookies.clear()


async def test_a_post_with_a_photo_shows_it_on_its_card_and_one_without_shows_none(site):
    node, client, ids = site
    await login(client, "ana@example.org")
    resp = await send_form(client, "/posts/new?kind=offer", {
        **OFFER, "kind": "offer", "title": "Un lit pliant à donner", "new_alt_0": "Le lit plié"},
        {"new_photo_0": ("IMG_0001.jpg", jpeg_with_gps((800, 600)), "image/jpeg")})
    assert resp.status_code == 303, resp.text[-1500:]
    with_photo = resp.headers["location"].rsplit("/", 1)[-1]
    page = await client.get("/posts?kind=offer")
    cards = {re.search(r'href="/posts/(\w+)"', c).group(1): c for c in re.findall(
        r'<article class="card .*?</article>', page.text, flags=re.S)}
    picture = re.search(r'<img class="card-picture" src="(/media/[0-9a-f]{32}\.jpg)" '
                        r'alt="Le lit plié"', cards[with_photo])
    assert picture is not None, cards[with_photo]
    assert (await client.get(picture.group(1))).headers["content-type"] == "image/jpeg"
    assert "card-picture" not in cards[ids["offer"]]
    home = await client.get("/")
    assert picture.group(1) in home.text
    client.cookies.clear()
