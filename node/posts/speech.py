"""What the node itself writes to a person about a response (accepted, declined, the post is
full...), in that person's language.

A local member reads their chosen language (French when they chose none). A remote person
reads the language their actor names, else the post's language; when neither is one of ours,
the Note carries all three in `contentMap` (French, Dutch, English) and `content` in the post's
language, so that any fediverse software shows something readable and a multilingual one shows
the reader's own."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from node.context import Node
from node.i18n import DEFAULT_LOCALE, LOCALES, translations


@dataclass(frozen=True)
class Words:
    """A sentence ready to send: `html` is what is stored and shown as `content`; `content_map`
    holds the same words per language for the wire."""

    html: str
    locale: str
    content_map: dict[str, str] = field(default_factory=dict)


def say(locale: str, message: str, **params: Any) -> str:
    """`message` in `locale`, with its %(name)s placeholders filled."""
    text = translations(locale if locale in LOCALES else DEFAULT_LOCALE).gettext(message)
    return text % params if params else text


def say_plural(locale: str, singular: str, plural: str, n: int, **params: Any) -> str:
    text = translations(locale if locale in LOCALES else DEFAULT_LOCALE).ngettext(
        singular, plural, n)
    return text % {"num": n, **params}


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _ours(code: Any) -> str | None:
    """A language tag ("nl-BE", "fr") reduced to one of our locales, or None."""
    if not isinstance(code, str):
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LOCALES else None


def actor_language(doc: Any) -> str | None:
    """The language an actor document names: `language`, the one language of its
    `summaryMap` / `nameMap` / `contentMap`, or a JSON-LD `@language`; None when it names none
    (or several, or one we do not write)."""
    if not isinstance(doc, dict):
        return None
    found = _ours(doc.get("language"))
    if found:
        return found
    for key in ("summaryMap", "nameMap", "contentMap"):
        value = doc.get(key)
        if isinstance(value, dict) and len(value) == 1:
            found = _ours(next(iter(value)))
            if found:
                return found
    contexts = doc.get("@context")
    for item in contexts if isinstance(contexts, list) else [contexts]:
        if isinstance(item, dict):
            found = _ours(item.get("@language"))
            if found:
                return found
    return None


def post_language(post: dict) -> str | None:
    """The first of the post's languages that we write."""
    for code in (post.get("languages") or "").split(","):
        found = _ours(code)
        if found:
            return found
    return None


async def user_locale(node: Node, user_id: str | None) -> str:
    if not user_id:
        return DEFAULT_LOCALE
    locale = await node.db.fetch_val("SELECT locale FROM users WHERE id = :u", {"u": user_id})
    return locale if locale in LOCALES else DEFAULT_LOCALE


async def remote_language(node: Node, actor_uri: str) -> str | None:
    raw = await node.db.fetch_val("SELECT raw FROM remote_actors WHERE uri = :u",
                                  {"u": actor_uri})
    if not isinstance(raw, str):
        return None
    try:
        return actor_language(json.loads(raw))
    except ValueError:
        return None


async def for_user(node: Node, user_id: str | None, message: str, **params: Any) -> Words:
    locale = await user_locale(node, user_id)
    text = paragraph(say(locale, message, **params))
    return Words(text, locale, {locale: text})


async def for_remote(node: Node, actor_uri: str, post: dict, message: str,
                     **params: Any) -> Words:
    """Words for a person on another server: their language when known, else all three."""
    known = await remote_language(node, actor_uri) or post_language(post)
    if known:
        text = paragraph(say(known, message, **params))
        return Words(text, known, {known: text})
    every = {code: paragraph(say(code, message, **params)) for code in LOCALES}
    return Words(every[DEFAULT_LOCALE], DEFAULT_LOCALE, every)
