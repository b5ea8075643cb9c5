"""Finding the actor behind a profile link: a web page that announces its ActivityPub
representation with `<link rel="alternate" type="application/activity+json" href="...">`
(as Mastodon's and this node's profile pages do)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

from activitypub.origin import is_http_url

ACTIVITY_TYPES = ("application/activity+json", "application/ld+json")
# A page is read only this far: the link sits in <head>.
HEAD_MAX = 256 * 1024


class _AlternateLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower()
        if "alternate" in rels and kind.startswith(ACTIVITY_TYPES) and values.get("href"):
            self.found.append(values["href"].strip())


def alternate_actor_link(page: str, page_url: str) -> str | None:
    """The absolute http(s) URL of the first ActivityPub alternate a page declares, if any."""
    parser = _AlternateLinks()
    parser.feed(page[:HEAD_MAX])
    for href in parser.found:
        url = urljoin(page_url, href)
        if is_http_url(url):
            return url
    return None
