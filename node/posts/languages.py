"""A post written in several languages: the title and text in the language the author wrote
first (`written_in`, kept in the post's own `title`/`description_*` columns so that every other
reader of those columns keeps working) and in the other languages they wrote
(`translations`, JSON). Readers see their own language when the author wrote it, otherwise the
original, with a mark saying which language they read and whether the author translated it.

Pure functions: no database access; the rows are passed in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from node.i18n import _, current_locale, language_name

# The languages a member writes a post in (the node's interface languages). Remote posts may
# carry others; they are shown as they came.
WRITTEN = ("fr", "nl", "en")


@dataclass(frozen=True)
class Text:
    title: str
    description_md: str
    description_html: str


@dataclass(frozen=True)
class Shown:
    """What a reader sees: the text in `lang`, and the mark that tells them about it."""

    title: str
    description_html: str
    lang: str        # the language of the text shown ('' when nobody said)
    original: str    # the language the author wrote first ('' when nobody said)
    mark: str        # "Written in Dutch", "Translated by the author from French", or ''


def translations_of(post: dict[str, Any]) -> dict[str, Text]:
    """The other languages of a post; a stored value of another shape counts as none."""
    try:
        raw = json.loads(post.get("translations") or "{}")
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    found = {}
    for code, value in raw.items():
        if isinstance(code, str) and isinstance(value, dict):
            found[code] = Text(*(str(value.get(k) or "") for k in (
                "title", "description_md", "description_html")))
    return found


def texts_of(post: dict[str, Any]) -> dict[str, Text]:
    """Every language of a post, the first one first ({} when its language is unknown)."""
    first = post.get("written_in") or ""
    if not first:
        return {}
    return {first: Text(post["title"], post.get("description_md") or "",
                        post.get("description_html") or ""),
            **{k: v for k, v in translations_of(post).items() if k != first}}


def dump_texts(translations: dict[str, Text]) -> str:
    return json.dumps({code: {"title": t.title, "description_md": t.description_md,
                              "description_html": t.description_html}
                       for code, t in translations.items()}, ensure_ascii=False) if (
        translations) else ""


def shown(post: dict[str, Any], locale: str | None = None) -> Shown:
    """The post as a reader of `locale` (the request's) sees it."""
    locale = locale or current_locale()
    original = post.get("written_in") or ""
    texts = texts_of(post)
    lang = locale if locale in texts else original
    text = texts.get(lang) or Text(post.get("title") or "", "", post.get("description_html") or "")
    mark = ""
    if lang and lang != locale:
        mark = _("Written in %(language)s") % {"language": language_name(lang, locale)}
    elif lang and lang != original:
        mark = _("Translated by the author from %(language)s") % {
            "language": language_name(original, locale)}
    return Shown(text.title, text.description_html, lang, original, mark)
