"""Debian's Chromium driven by Playwright for the browser tests, and the checks every page they
visit goes through: axe-core's WCAG 2.1 AA rules, and a screenshot a reviewer can look at.

Never `playwright install`: the browser is the system's /usr/bin/chromium (bin/test installs
it). axe-core comes from npm (tests/a11y/package.json, installed by bin/test with
`npm ci --ignore-scripts`); it is injected into each page by Playwright. The site itself ships
no script and its Content-Security-Policy allows none, so the test contexts bypass the CSP to
let the checker in (`bypass_csp=True`): nothing the site serves is changed by that."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
AXE_JS = REPO / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# The rules of WCAG 2.0 and 2.1, levels A and AA (axe's own tags for them).
# axe's best practices are checked too: heading order, landmarks, one <h1>, unique landmarks.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
LOCALES = {"fr": "fr-BE", "nl": "nl-BE", "en": "en-GB"}
AXE_RUN = """tags => axe.run(document, {runOnly: {type: 'tag', values: tags},
                                      resultTypes: ['violations']})
  .then(r => r.violations.map(v => ({
    rule: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 160),
                              why: n.failureSummary.split('\\n').slice(1, 3).join(' ')}))})))"""

# The innermost elements that stick out on the right when the page scrolls sideways.
TOO_WIDE = """() => document.documentElement.scrollWidth <= innerWidth + 1 ? [] :
  [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > innerWidth + 1 && !e.firstElementChild)
    .slice(0, 3).map(e => e.outerHTML.slice(0, 100))"""


def axe_missing() -> str | None:
    """Why axe cannot run here, or None."""
    if AXE_JS.exists():
        return None
    return (f"{AXE_JS.relative_to(REPO)} is missing: bin/test installs it with npm "
            "(npm ci --prefix tests/a11y --ignore-scripts)")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@contextlib.contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright's sync API, or the test skipped saying why.
    Start the node first: making its PostgreSQL database uses asyncio.run, which cannot run
    while Playwright's sync API holds an event loop in this thread."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found (/usr/bin/chromium): bin/test installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is in the test extra of pyproject.toml")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser, base_url: str, lang: str, width: int = 360):
    """A fresh browser profile whose Accept-Language is `lang`, `width` pixels wide."""
    context = browser.new_context(locale=LOCALES.get(lang, lang), base_url=base_url,
                                  viewport={"width": width, "height": 800}, bypass_csp=True)
    context.set_default_timeout(30000)
    return context


@dataclass
class PageChecker:
    """Runs axe on each page it is shown and keeps what it found, so one run of a journey
    reports every violation at once (rule, element, page), then fails."""

    lang: str
    width: int
    found: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)

    def check(self, page, name: str, screenshot: bool = True) -> None:
        page.wait_for_load_state()
        self.pages.append(name)
        if screenshot:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"{self.lang}-{self.width}-{name}.png",
                            full_page=True)
        if not page.evaluate("typeof axe !== 'undefined'"):
            page.add_script_tag(path=str(AXE_JS))
        path = re.sub(r"^https?://[^/]+", "", page.url)
        for v in page.evaluate(AXE_RUN, WCAG_TAGS):
            for n in v["nodes"]:
                self.found.append(f"[{self.lang} {self.width}px] {name} ({path}): "
                                  f"{v['rule']} ({v['impact']}: {v['help']})\n"
                                  f"    element {n['target']}: {n['html']}\n    {n['why']}")
        # Nothing may make a phone scroll sideways (a wide table scrolls inside its own box).
        wide = page.evaluate(TOO_WIDE)
        if wide:
            self.found.append(f"[{self.lang} {self.width}px] {name} ({path}): wider than the "
                              f"screen (sideways scrolling), sticking out: {wide}")

    def assert_clean(self) -> None:
        assert not self.found, (f"{len(self.found)} accessibility problem(s) on "
                                f"{len(self.pages)} pages:\n" + "\n".join(self.found))
