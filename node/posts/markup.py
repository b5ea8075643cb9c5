"""Markdown written by members -> safe HTML: markdown-it without raw HTML, then nh3."""

from __future__ import annotations

from markdown_it import MarkdownIt

from node.objects import sanitize_html

# "commonmark" with html off: any tag typed by a member is shown as text, never interpreted.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def render_markdown(source: str) -> str:
    return sanitize_html(_markdown.render(source))
