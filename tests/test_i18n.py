"""Languages: the reader's locale (query, cookie, browser, French), the committed catalogues
covering every message of the code and templates, and dates and numbers in the reader's
locale."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

from node import i18n
from node.config import REPO_ROOT
from tests.test_accounts import sign_up

NOV_28_2026_NOON_UTC = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("query", "cookie", "accept", "expected"), [
    (None, None, "", "fr"),
    (None, None, "nl-BE,nl;q=0.9,en;q=0.8", "nl"),
    (None, None, "en-GB,en;q=0.9", "en"),
    (None, None, "de-DE, en;q=0.3, nl;q=0.7", "nl"),
    (None, None, "de, it;q=0.5", "fr"),
    (None, None, "nl;q=0, en;q=0.1", "en"),
    (None, None, "en;q=nonsense, nl;q=0.2", "nl"),
    (None, "en", "nl", "en"),
    (None, "xx", "nl", "nl"),
    ("nl", "en", "fr", "nl"),
    ("klingon", "en", "fr", "en"),
])
def test_the_locale_follows_query_then_cookie_then_browser_then_french(
        query, cookie, accept, expected):
    assert i18n.negotiate(query, cookie, accept) == expected


def _catalogue_ids() -> set[str]:
    """Every message the code and the templates ask to translate, as pybabel extracts it."""
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "translate": (2,)}
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        REPO_ROOT,
        method_map=[("node/**.py", "python"), ("templates/**.html", "jinja2")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=keywords,
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_message_of_code_and_templates_is_translated_in_french_and_dutch():
    wanted = _catalogue_ids()
    assert "Sign up" in wanted and "Skip to content" in wanted and len(wanted) > 100
    for locale in ("fr", "nl"):
        catalogue = i18n.translations(locale)
        untranslated = sorted(m for m in wanted if catalogue.gettext(m) == m
                              and catalogue.ngettext(m, m + "s", 2) == m + "s")
        # Words that are the same in both languages are fine when the catalogue says so.
        untranslated = [m for m in untranslated if not _translated_as_itself(locale, m)]
        assert untranslated == [], (
            f"{locale}: run the extraction and translate these (README, 'Languages'): "
            f"{untranslated}")


def _translated_as_itself(locale: str, message: str) -> bool:
    entry = i18n.catalogue(locale).get(message)
    return entry is not None and bool(entry.string) and "fuzzy" not in entry.flags


def test_catalogues_keep_placeholders_intact():
    for locale in ("fr", "nl", "en"):
        for entry in i18n.catalogue(locale):
            if not entry.id or isinstance(entry.id, tuple):
                continue
            for name in ("%(org)s", "%(email)s", "%(title)s", "%(date)s", "%(n)d", "%(by)s"):
                assert (name in entry.id) == (name in entry.string), (locale, entry.id)


def test_dates_and_numbers_in_the_readers_locale():
    assert i18n.format_date(NOV_28_2026_NOON_UTC, locale="fr") == "28 nov. 2026"
    assert i18n.format_date(NOV_28_2026_NOON_UTC, locale="nl") == "28 nov 2026"
    assert i18n.format_date(NOV_28_2026_NOON_UTC, locale="en") == "Nov 28, 2026"
    assert i18n.format_date(date(2026, 1, 5), "long", locale="fr") == "5 janvier 2026"
    # Shown in Brussels time: noon UTC is 13:00 in winter.
    assert "13:00" in i18n.format_datetime(NOV_28_2026_NOON_UTC, locale="nl")
    assert "1:00" in i18n.format_datetime("2026-11-28T12:00:00Z", locale="en")
    assert i18n.format_datetime(NOV_28_2026_NOON_UTC.timestamp(), locale="fr").startswith(
        "28 nov. 2026")
    assert i18n.format_number(1234.5, locale="fr") == "1\u202f234,5"
    assert i18n.format_number(1234.5, locale="nl") == "1.234,5"
    assert i18n.format_number(1234.5, locale="en") == "1,234.5"
    assert i18n.format_number(None) == "" and i18n.format_number("n/a") == "n/a"
    assert i18n.format_date("not a date") == "not a date"


def test_python_messages_follow_the_current_locale():
    token = i18n.set_locale("nl")
    try:
        assert i18n._("Wrong email or password.") == "Verkeerd e-mailadres of wachtwoord."
        assert i18n.ngettext("unread notification", "unread notifications", 2) == \
            "ongelezen meldingen"
    finally:
        i18n.reset_locale(token)
    assert i18n.current_locale() == "fr"
    assert i18n._("Wrong email or password.") == "E-mail ou mot de passe incorrect."
    assert i18n.translate("en", "Wrong email or password.") == "Wrong email or password."


async def test_pages_follow_the_browser_and_the_chosen_language(app_node):
    _node, client = app_node
    french = await client.get("/login")
    assert '<html lang="fr">' in french.text and "Se connecter" in french.text
    dutch = await client.get("/login", headers={"Accept-Language": "nl-BE,nl;q=0.9"})
    assert '<html lang="nl">' in dutch.text and "Aanmelden" in dutch.text
    assert "Accept-Language" in dutch.headers["vary"]
    # The switcher's link sets a cookie that wins over the browser from then on.
    chosen = await client.get("/login?lang=en", headers={"Accept-Language": "nl"})
    assert '<html lang="en">' in chosen.text and "Log in" in chosen.text
    assert chosen.cookies.get("lang") == "en"
    later = await client.get("/signup", headers={"Accept-Language": "nl"})
    assert '<html lang="en">' in later.text and "Create my account" in later.text
    assert 'href="/signup?lang=nl"' in later.text and 'aria-current="true"' in later.text
    # The switcher keeps the rest of the query (filters of a list, for example).
    listed = await client.get("/signup?org=voisins&lang=en")
    assert 'href="/signup?org=voisins&amp;lang=nl"' in listed.text
    # An unknown language in the query is ignored and sets nothing.
    odd = await client.get("/login?lang=xx")
    assert "lang" not in odd.cookies and '<html lang="en">' in odd.text


async def test_form_errors_come_in_the_readers_language(app_node):
    _node, client = app_node
    client.cookies.set("lang", "nl")
    resp = await sign_up(client, "someone@example.org", password="kort", confirm="kort")
    assert resp.status_code == 400
    assert "Het wachtwoord moet minstens 8 tekens tellen." in resp.text
    no_csrf = await client.post("/signup", data={"email": "a@example.org"})
    assert "Het formulier is verlopen" in no_csrf.text


async def test_a_members_saved_language_is_restored_at_log_in(app_node):
    _node, client = app_node
    await sign_up(client, "ans@example.org", locale="nl")
    client.cookies.clear()
    page = await client.get("/login")
    from tests.nodes import csrf_from

    resp = await client.post("/login", data={
        "email": "ans@example.org", "password": "a long enough secret",
        "csrf_token": csrf_from(page.text)})
    assert resp.status_code == 303 and resp.cookies.get("lang") == "nl"
    home = await client.get("/account")
    assert '<html lang="nl">' in home.text and "Mijn account" in home.text
    # Back to "the language of my browser": the remembered choice is forgotten.
    resp = await client.post("/account", data={
        "csrf_token": csrf_from(home.text), "display_name": "Ans", "locale": ""})
    assert resp.status_code == 303 and "lang" not in client.cookies
    english = await client.get("/account", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in english.text


async def test_published_dates_are_shown_in_the_readers_language(app_node):
    node, client = app_node
    from node.actors import organisations
    from node.notes import publish_note

    org = (await organisations(node))[0]
    note = await publish_note(node, org, "Soupe populaire ce soir")
    expected = {locale: i18n.format_datetime(note["published"], locale=locale)
                for locale in i18n.LOCALES}
    assert len(set(expected.values())) == 3
    for locale, shown in expected.items():
        # The organisation's page lists what it published (the home page lists posts).
        page = await client.get(f"/groups/{org.username}?lang={locale}")
        assert shown in page.text, (locale, shown)
        assert note["published"] not in page.text


def test_language_names_in_the_readers_language():
    assert i18n.language_name("ar", "fr") == "arabe"
    assert i18n.language_name("nl", "fr") == "néerlandais"
    assert i18n.language_name("uk", "nl") == "Oekraïens"
    assert i18n.language_name("fr", "en") == "French"
    assert i18n.language_name("not a code", "fr") == "not a code"


async def test_the_post_form_names_languages_in_the_readers_language(app_node):
    _node, client = app_node
    await sign_up(client, "talen@example.org")
    dutch = await client.get("/posts/new?kind=need&lang=nl")
    assert "> Arabisch</label>" in dutch.text and "> Oekraïens</label>" in dutch.text
    french = await client.get("/posts/new?kind=need&lang=fr")
    assert "> arabe</label>" in french.text


def test_feature_catalogues_beside_messages_po_are_merged(tmp_path, monkeypatch):
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    header = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    (folder / "messages.po").write_text(
        header + 'msgid "Home"\nmsgstr "Accueil"\n\nmsgid "Relays"\nmsgstr ""\n',
        encoding="utf-8")
    (folder / "relays.po").write_text(
        header + 'msgid "Relays"\nmsgstr "Relais"\n\nmsgid "Home"\nmsgstr ""\n',
        encoding="utf-8")
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", tmp_path)
    merged = i18n.catalogue("fr")
    assert merged.get("Relays").string == "Relais"  # the feature file fills the empty entry
    assert merged.get("Home").string == "Accueil"  # and never empties a translated one
