"""The web interface in a real headless Chromium (Debian's `chromium`, driven by Playwright)
against a real node process: sign up, post a need, respond from a second account, accept,
mark fulfilled, in French and in Dutch; the language switcher; form errors; keyboard use.

Never `playwright install`: the browser is the system's /usr/bin/chromium (bin/test installs
it). The tests skip, saying why, only when no Chromium can be found."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.nodes import NodeProcess

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "browser test secret"
# What each language says on the pages the flow goes through.
WORDS = {
    "fr": {"create": "Créer mon compte", "welcome": "Bienvenue ! Votre compte est prêt.",
           "publish": "Publier", "send": "Envoyer ma réponse",
           "accept": "Accepter cette réponse", "fulfil": "Marquer comme réalisée",
           "confirm_fulfil": "Oui, la marquer comme réalisée",
           "readers": "Qui peut lire cette conversation", "author_role": "auteur de l’annonce",
           "fulfilled": "Réalisée", "accepted": "a été acceptée",
           "new_response": "Nouvelle réponse",
           "short": "Le mot de passe doit compter au moins 8 caractères.",
           "post_need": "Publier un besoin"},
    "nl": {"create": "Mijn account aanmaken", "welcome": "Welkom! Uw account is klaar.",
           "publish": "Publiceren", "send": "Mijn antwoord verzenden",
           "accept": "Dit antwoord aanvaarden", "fulfil": "Als vervuld markeren",
           "confirm_fulfil": "Ja, als vervuld markeren",
           "readers": "Wie dit gesprek kan lezen", "author_role": "auteur van het bericht",
           "fulfilled": "Vervuld", "accepted": "werd aanvaard", "new_response": "Nieuw antwoord",
           "short": "Het wachtwoord moet minstens 8 tekens tellen.",
           "post_need": "Een vraag plaatsen"},
}


def rows_of(node: NodeProcess, sql: str, values: dict[str, Any] | None = None) -> list[dict]:
    """node.query from another thread: Playwright's sync API keeps an event loop in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(node.query, sql, values).result()


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[NodeProcess]:
    process = NodeProcess(tmp_path_factory.mktemp("browser-node"), host="127.0.0.4",
                          org="quartier").start()
    yield process
    process.close()


@pytest.fixture(scope="module")
def browser(node: NodeProcess):
    # Needs the node first: making its PostgreSQL database uses asyncio.run, which cannot run
    # while Playwright's sync API holds an event loop in this thread.
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found (/usr/bin/chromium): bin/test installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is in the test extra of pyproject.toml")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser, node: NodeProcess, locale: str):
    """A fresh browser profile whose Accept-Language is `locale`."""
    context = browser.new_context(locale={"fr": "fr-BE", "nl": "nl-BE"}.get(locale, locale),
                                  base_url=node.base, viewport={"width": 360, "height": 740})
    context.set_default_timeout(15000)
    return context.new_page()


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id)"""


# WCAG 2 contrast of every visible piece of text against the first opaque background behind it.
LOW_CONTRAST = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!text || box.width === 0 || box.height === 0 || el.closest('.visually-hidden, .skip'))
      continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName + ' ' + el.textContent.trim().slice(0, 30) + ' '
                             + ratio.toFixed(2));
  }
  return bad;
}"""


FOCUS_RING = """() => { const el = document.activeElement, s = getComputedStyle(el);
  return [el.tagName + ' ' + el.textContent.trim().slice(0, 20), s.outlineStyle,
          parseFloat(s.outlineWidth)]; }"""


def assert_accessible_form(page) -> None:
    """Every field has a label, every text has a 4.5:1 contrast, and the page fits a 360 px
    phone screen without sideways scrolling."""
    assert page.evaluate(UNLABELLED) == [], page.url
    assert page.evaluate(LOW_CONTRAST) == [], page.url
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
        page.url


def sign_up(page, email: str, name: str, words: dict[str, str]) -> None:
    page.goto("/signup")
    assert_accessible_form(page)
    page.get_by_label(re.compile("^(E-mail|Email)$")).fill(email)
    page.locator("#display_name").fill(name)
    page.locator("#password").fill(PASSWORD)
    page.locator("#confirm").fill(PASSWORD)
    page.get_by_role("button", name=words["create"]).click()
    page.wait_for_url(re.compile(r"/account(\?welcome=1)?$"))
    assert words["welcome"] in page.get_by_role("status").inner_text()


@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_need_answered_accepted_and_fulfilled_in_the_browser(browser, node, lang):
    words = WORDS[lang]
    author = new_page(browser, node, lang)
    sign_up(author, f"author-{lang}@example.org", f"Auteur {lang}", words)
    assert author.locator("html").get_attribute("lang") == lang

    # Post a need, from the link on the home page.
    author.goto("/")
    author.get_by_role("link", name=words["post_need"]).click()
    author.wait_for_url(re.compile(r"/posts/new\?kind=need$"))
    assert_accessible_form(author)
    author.locator("#category").select_option("food")
    author.locator("#title").fill(f"Soupe pour quatre ({lang})")
    author.locator("#description").fill("Une famille de quatre cherche un **repas** chaud.")
    author.locator("#neighbourhood").select_option("Saint-Gilles")
    author.get_by_role("button", name=words["publish"], exact=True).click()
    author.wait_for_url(re.compile(r"/posts/[0-9a-f]+(\?.*)?$"))
    post_url = author.url.split("?")[0]
    assert f"Soupe pour quatre ({lang})" in author.locator("h1").inner_text()
    assert author.locator(".content strong").inner_text() == "repas"

    # A second member answers it.
    helper = new_page(browser, node, lang)
    sign_up(helper, f"helper-{lang}@example.org", f"Aidant {lang}", words)
    helper.goto(post_url)
    assert_accessible_form(helper)
    helper.locator("#message").fill("Je peux apporter de la soupe dimanche.")
    helper.get_by_role("button", name=words["send"]).click()
    helper.wait_for_load_state()

    # The author sees a notification with the unread count, then accepts the response.
    author.goto("/notifications")
    assert_accessible_form(author)
    assert words["new_response"] in author.locator("main").inner_text()
    assert author.locator("header .badge").inner_text().startswith("1")
    author.goto(post_url + "/responses")
    assert "Je peux apporter de la soupe dimanche." in author.locator("main").inner_text()
    author.get_by_role("button", name=words["accept"]).click()
    author.wait_for_load_state()
    # Closing asks first, on a page of its own (no JavaScript).
    author.get_by_role("button", name=words["fulfil"]).first.click()
    author.wait_for_load_state()
    assert_accessible_form(author)
    author.get_by_role("button", name=words["confirm_fulfil"]).click()
    author.wait_for_load_state()
    author.goto(post_url)
    assert words["fulfilled"] in author.locator(".status").inner_text()

    # The helper is told, in their language; their settings page is usable on a phone too.
    helper.goto("/account")
    assert_accessible_form(helper)
    helper.goto("/notifications")
    assert words["accepted"] in helper.locator("main").inner_text()
    # The conversation says who reads it, and the acceptance is written in the helper's language.
    helper.goto("/posts/mine")
    helper.get_by_role("link", name=f"Soupe pour quatre ({lang})").first.click()
    helper.wait_for_load_state()
    readers = helper.locator(".readers").inner_text()
    assert words["readers"] in readers and f"Auteur {lang}" in readers
    assert words["author_role"] in readers
    assert words["accepted"] in helper.locator(".messages").inner_text()
    rows = rows_of(node, "SELECT status FROM posts WHERE title = :t",
                      {"t": f"Soupe pour quatre ({lang})"})
    assert rows == [{"status": "fulfilled"}]
    author.context.close()
    helper.context.close()


def test_language_switcher_form_errors_and_keyboard(browser, node):
    page = new_page(browser, node, "fr")
    page.goto("/signup")
    assert page.locator("html").get_attribute("lang") == "fr"
    # The switcher is plain links: no JavaScript needed, and the choice sticks.
    page.get_by_role("link", name="Nederlands").click()
    page.wait_for_url(re.compile(r"lang=nl"))
    assert page.locator("html").get_attribute("lang") == "nl"
    page.goto("/login")
    assert page.locator("html").get_attribute("lang") == "nl"
    assert page.get_by_role("heading", level=1).inner_text() == "Aanmelden"

    # A short password: a clear message tied to the field, and nothing stored.
    page.goto("/signup")
    page.locator("#email").fill("short@example.org")
    page.locator("#password").fill("kort")
    page.locator("#confirm").fill("kort")
    page.get_by_role("button", name=WORDS["nl"]["create"]).click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").is_visible()
    assert page.locator("#password").get_attribute("aria-invalid") == "true"
    assert WORDS["nl"]["short"] in page.locator("#password-error").inner_text()
    assert rows_of(node, "SELECT id FROM users WHERE email = 'short@example.org'") == []

    # Keyboard: the first Tab reaches the visible "skip to content" link, Enter follows it.
    page.goto("/login")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip"
    assert page.locator(".skip").bounding_box()["x"] >= 0
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
    # Whatever the keyboard reaches shows a visible focus ring.
    for _ in range(4):
        page.keyboard.press("Tab")
        ring = page.evaluate(FOCUS_RING)
        assert ring[1] != "none" and ring[2] >= 2, ring
    page.context.close()
