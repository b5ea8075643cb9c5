"""The one HTML sanitiser: its output is the only HTML a page may print unescaped."""

from __future__ import annotations

import html

import nh3

# What remote HTML may keep: what Mastodon renders, nothing that runs or restyles the page.
ALLOWED_TAGS = {"p", "br", "a", "span", "strong", "em", "b", "i", "ul", "ol", "li",
                "blockquote", "code", "pre", "h1", "h2", "h3", "h4", "del", "u"}
ALLOWED_ATTRIBUTES = {"a": {"href", "class"}, "span": {"class"}}


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https"},
        link_rel="nofollow noopener noreferrer",
    )


def plain_text(markup: str) -> str:
    """The text of some HTML, without any tag: a value for the template to escape, never to
    print unescaped."""
    return html.unescape(nh3.clean(markup, tags=set())).strip()
