"""Pages wholly in the reader's language: no English sentence of the interface on a French or
Dutch page (walked as a visitor and as a member), French typography in the catalogues, and
Brussels places named in the reader's language. One in-process node for the module."""

from __future__ import annotations

import re

import pytest
import pytest_asyncio
from babel.messages.pofile import read_po

from node import i18n
from node.posts import places
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.test_posts_pages import NEED, csrf, login, member, post_form
from tests.test_ui_pages import OFFER, text_of

NNBSP = "\u202f"
FRENCH = i18n.TRANSLATIONS_DIR / "fr" / "LC_MESSAGES"
# Every French catalogue: the main one and each feature's.
SWEPT = sorted(p.name for p in FRENCH.glob("*.po"))
# A colon, semicolon, exclamation or question mark that ends a clause, with no narrow no-break
# space before it (never in a link or a time: "https://", "10:30").
BARE_MARK = re.compile(r"(?:[^\s\u202f/]|^)[ \u00a0]?[;!?:](?=$|\s|[\"”»)])")


def _entries(path):
    with path.open("rb") as fp:
        for entry in read_po(fp, locale="fr"):
            if entry.id:
                yield entry


def _strings(entry) -> list[str]:
    return [s for s in (entry.string if isinstance(entry.string, tuple) else (entry.string,))
            if s]


@pytest.mark.parametrize("name", SWEPT)
def test_french_strings_have_narrow_no_break_spaces_and_typographic_apostrophes(name):
    bad = []
    for entry in _entries(FRENCH / name):
        for text in _strings(entry):
            if BARE_MARK.search(text) or re.search(r"[A-Za-zÀ-ÿ]'[A-Za-zÀ-ÿ]", text):
                bad.append(text)
            if "« " in text or " »" in text:
                bad.append(text)
    assert bad == []


def test_brussels_places_have_their_french_and_dutch_names():
    assert places.local_name("Schaerbeek", "nl") == "Schaarbeek"
    assert places.local_name("Schaarbeek", "fr") == "Schaerbeek"  # written so by a Dutch node
    assert places.local_name("Ixelles", "nl") == "Elsene"
    assert places.local_name("Ixelles", "en") == "Ixelles"
    assert places.local_name("Laeken", "nl") == "Laken"
    assert places.local_name("Anderlecht", "nl") == "Anderlecht"
    assert places.local_name("Somewhere else", "nl") == "Somewhere else"
    assert places.canonical_name("Sint-Joost-ten-Node") == "Saint-Josse-ten-Noode"
    # Every default choice reads in Dutch, and no two places share a Dutch name.
    dutch = [places.local_name(p.name, "nl") for p in places.BRUSSELS]
    assert len(set(dutch)) == len(places.BRUSSELS)
    assert {"Sint-Gillis", "Vorst", "Ukkel", "Oudergem", "Watermaal-Bosvoorde",
            "Sint-Agatha-Berchem", "Sint-Jans-Molenbeek", "Brussel"} <= set(dutch)


def _english_interface(locale: str) -> list[str]:
    """English messages of the interface that read differently in `locale`: any of them on a
    page in that language is a sentence left untranslated. Short words that French or Dutch
    also use (or that a post may contain) are left out."""
    catalogue = i18n.translations(locale)
    found = []
    for entry in i18n.catalogue("en"):
        if not entry.id or catalogue.gettext(entry.id) == entry.id:
            continue
        # A message with placeholders is looked for by its longest fixed part.
        message = max(re.split(r"%\(\w+\)[sd]", entry.id), key=len).strip()
        if len(message) >= 12 and " " in message:
            found.append(message)
    return found


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def walked(module_node):
    node, client = module_node
    await member(node, "ana@example.org", person="ana")
    await member(node, "bob@example.org", person="bob")
    await login(client, "ana@example.org")
    need = (await post_form(client, "need", {**NEED, "publish_as_written": "1"}))
    await post_form(client, "offer", OFFER)
    post_id = need.headers["location"].rsplit("/", 1)[-1]
    await login(client, "bob@example.org")
    page = await client.get(f"/posts/{post_id}")
    resp = await client.post(f"/posts/{post_id}/respond", data={
        "csrf_token": csrf(page), "message": "Je peux aider samedi."})
    conversation = resp.headers["location"]
    client.cookies.clear()
    return node, client, post_id, conversation


VISITOR_PAGES = ["/", "/posts", "/posts?kind=need&category=housing&neighbourhood=Saint-Gilles",
                 "/groups/voisins", "/tags/need", "/login", "/signup", "/password/forgot",
                 "/network/posts?kind=need", "/groups/voisins/impact", "/groups/voisins/paper",
                 "/no-such-page"]
MEMBER_PAGES = ["/", "/posts", "/posts/new?kind=need", "/posts/new?kind=offer", "/posts/mine",
                "/notifications", "/notifications/settings", "/account", "/account/password",
                "/me/delete", "/network", "/groups/voisins"]
ADMIN_PAGES = ["/admin", "/admin/organisations", "/admin/organisations/voisins",
               "/account/members", "/account/invitations", "/moderation", "/impact",
               "/groups/voisins/desk", "/admin/relays"]


async def _english_on(client, paths: list[str], locale: str,
                      page_locale: str | None = None) -> dict[str, list[str]]:
    english = _english_interface(locale)
    found = {}
    page_locale = page_locale or locale
    for path in paths:
        page = await client.get(path, headers={"Accept-Language": page_locale})
        assert page.status_code in (200, 404), (path, page.status_code)
        assert f'<html lang="{page_locale}"' in page.text, path
        text = text_of(page.text)
        left = [m for m in english if m in text]
        if left:
            found[path] = left
    return found


@pytest.mark.parametrize("locale", ["fr", "nl"])
@pytest.mark.asyncio(loop_scope="module")
async def test_no_english_interface_text_on_french_or_dutch_pages(walked, locale):
    node, client, post_id, conversation = walked
    # The English catalogue itself is what the check looks for: it must find an English page.
    client.cookies.clear()
    assert await _english_on(client, ["/"], locale, page_locale="en") != {}
    pages = [*VISITOR_PAGES, f"/posts/{post_id}"]
    assert await _english_on(client, pages, locale) == {}
    await login(client, "ana@example.org")
    pages = [*MEMBER_PAGES, f"/posts/{post_id}", f"/posts/{post_id}/responses", conversation,
             f"/posts/{post_id}/status?action=withdraw", f"/posts/{post_id}/edit"]
    assert await _english_on(client, pages, locale) == {}
    client.cookies.clear()
    resp = await client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                             "csrf_token": csrf(await client.get("/login"))})
    assert resp.status_code == 303
    assert await _english_on(client, ADMIN_PAGES, locale) == {}
    client.cookies.clear()
