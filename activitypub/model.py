"""Remote objects as a typed model: the wire JSON is converted once, here, and nothing after
this point reads the payload (as GoToSocial's `typeutils/astointernal` and the `from_json` of
Lemmy's federation crate).

Remote JSON is untrusted in shape as well as in content: `content` may be a list or an object,
`url` a `javascript:` link, `name` a number. Every field of the model has one shape: sanitised
HTML, plain text, http(s) URLs, a language map, attachments with a media type and alt text, a
content warning, an audience. A value of another shape is dropped; an object without a usable
id, type or author is refused (`InvalidObject`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from activitypub.html import plain_text, sanitize_html
from activitypub.origin import is_http_url, same_origin
from activitypub.vocab import PUBLIC_ALIASES, as_list, id_of, types_of

# Object types a page can show; everything else (Tombstone, Relationship, Profile...) is not
# kept as an object. Mastodon shows the same set, the last five reduced to a title and link;
# a FEP-0837 `Proposal` (an offer or need of other marketplace software) becomes a post.
CONTENT_TYPES = ("Note", "Question", "Article", "Page", "Event", "Image", "Video", "Audio",
                 "Proposal")

CONTENT_MAX = 20_000   # characters of HTML read before sanitising
NAME_MAX = 200
SUMMARY_MAX = 500
ATTACHMENTS_MAX = 8
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
BLURHASH = re.compile(r"[0-9A-Za-z#$%*+,.:;=?@\[\]^_{|}~-]{6,100}")
DIMENSION_MAX = 20_000


class InvalidObject(ValueError):
    """The JSON is not an object this node can keep; the message says why."""


@dataclass(frozen=True)
class Attachment:
    url: str
    media_type: str
    alt: str
    kind: str = "Document"
    # Declared by the sender; a page uses them only to reserve the picture's space.
    width: int | None = None
    height: int | None = None
    blurhash: str = ""

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/") or self.kind == "Image"


@dataclass(frozen=True)
class RemoteObject:
    id: str
    type: str
    author: str
    content_html: str = ""
    content_map: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    name: str = ""
    name_map: dict[str, str] = field(default_factory=dict)   # plain text per language
    summary: str = ""          # the content warning, plain text
    sensitive: bool = False
    url: str | None = None
    in_reply_to: str | None = None
    context: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    published: str | None = None
    updated: str | None = None
    attachments: tuple[Attachment, ...] = ()
    mentions: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()   # lower case, without '#'

    @property
    def public(self) -> bool:
        return any(a in PUBLIC_ALIASES for a in self.to + self.cc)

    @property
    def link(self) -> str:
        return self.url or self.id

    @property
    def text(self) -> str:
        return plain_text(self.content_html)

    @property
    def has_warning(self) -> bool:
        return bool(self.summary) or self.sensitive

    def content_in(self, language: str | None) -> str:
        """Sanitised HTML in the reader's language where the author wrote one."""
        if language and language in self.content_map:
            return self.content_map[language]
        return self.content_html

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (dataclasses.asdict deep-copies every value on the
        way, a twentieth of an inbox activity's CPU; these are written out at once)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["attachments"] = [
            {name: getattr(a, name) for name in a.__dataclass_fields__}
            for a in self.attachments]
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RemoteObject:
        """A model stored by `to_dict` (already converted: no cleaning again)."""
        values = dict(data)
        values["attachments"] = tuple(Attachment(**a) for a in values.get("attachments", ()))
        for name in ("to", "cc", "mentions", "hashtags"):
            values[name] = tuple(values.get(name, ()))
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})


def from_json(obj: Any) -> RemoteObject:
    """Convert one object of the wire into the model; InvalidObject when it cannot be kept."""
    if not isinstance(obj, dict):
        raise InvalidObject("an object must be a JSON object")
    ident = obj.get("id")
    if not is_http_url(ident):
        raise InvalidObject("the object has no http(s) id")
    kinds = [t for t in CONTENT_TYPES if t in types_of(obj)]
    if not kinds:
        raise InvalidObject(f"objects of type {sorted(types_of(obj)) or '?'} are not kept")
    author = id_of(obj.get("attributedTo"))
    if not is_http_url(author):
        raise InvalidObject("the object has no http(s) attributedTo")
    if not same_origin(ident, author):
        raise InvalidObject("the object's id and its author are on different servers")
    content = obj.get("content")
    content_html = _html(content) if isinstance(content, str) else ""
    # Mastodon sends the same text as `content` and in `contentMap`: cleaned once.
    content_map = _language_map(obj.get("contentMap"),
                                {content: content_html} if content_html else None)
    language = None
    if content_map:
        language = next((k for k, v in content_map.items() if v == content_html), None)
        if not content_html:
            language, content_html = next(iter(content_map.items()))
    name = _plain(obj.get("name"), NAME_MAX) or _plain(
        next(iter(_language_map(obj.get("nameMap")).values()), ""), NAME_MAX)
    tags = [t for t in as_list(obj.get("tag")) if isinstance(t, dict)]
    return RemoteObject(
        id=ident, type=kinds[0], author=author,
        content_html=content_html, content_map=content_map, language=language,
        name=name,
        name_map={k: t for k, v in _language_map(obj.get("nameMap")).items()
                  for t in [_plain(v, NAME_MAX)] if t},
        summary=_plain(obj.get("summary"), SUMMARY_MAX),
        sensitive=obj.get("sensitive") is True,
        url=_first_url(obj.get("url")),
        in_reply_to=_ref(obj.get("inReplyTo")),
        context=_ref(obj.get("context")) or _ref(obj.get("conversation")),
        to=_audience(obj.get("to")), cc=_audience(obj.get("cc")),
        published=_instant(obj.get("published")), updated=_instant(obj.get("updated")),
        attachments=_attachments(obj.get("attachment")),
        mentions=tuple(h for t in tags if "Mention" in types_of(t)
                       for h in [_ref(t.get("href"))] if h),
        hashtags=tuple(n.lstrip("#").lower() for t in tags if "Hashtag" in types_of(t)
                       for n in [_plain(t.get("name"), 100)] if n.lstrip("#")),
    )


def _html(value: str) -> str:
    # Cut before cleaning, so that the cleaner closes whatever the cut left open.
    return sanitize_html(value[:CONTENT_MAX]).strip()


def _plain(value: Any, limit: int) -> str:
    return plain_text(value[: limit * 4])[:limit] if isinstance(value, str) else ""


def _language_map(value: Any, cleaned: dict[str, str] | None = None) -> dict[str, str]:
    """`cleaned`: texts already sanitised, by their raw text."""
    if not isinstance(value, dict):
        return {}
    cleaned = cleaned or {}
    return {k: cleaned[v] if v in cleaned else _html(v) for k, v in value.items()
            if isinstance(k, str) and LANGUAGE.fullmatch(k) and isinstance(v, str)}


def _ref(value: Any) -> str | None:
    ident = id_of(value)
    return ident if is_http_url(ident) else None


def _audience(value: Any) -> tuple[str, ...]:
    out = []
    for item in as_list(value)[:1000]:
        ident = id_of(item)
        if ident in PUBLIC_ALIASES or is_http_url(ident):
            out.append(ident)
    return tuple(out)


def _first_url(value: Any) -> str | None:
    """Mastodon sends a string, others a Link or a list of Links; only http(s) survives."""
    for item in as_list(value):
        href = item.get("href") if isinstance(item, dict) else item
        if is_http_url(href):
            return href
    return None


def parse_instant(value: Any) -> datetime | None:
    """An xsd:dateTime of the wire as an aware datetime (UTC when it names no zone)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _instant(value: Any) -> str | None:
    parsed = parse_instant(value)
    if parsed is None:
        return None
    return parsed.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _dimension(value: Any) -> int | None:
    ok = type(value) is int and 0 < value <= DIMENSION_MAX
    return value if ok else None


def _attachments(value: Any) -> tuple[Attachment, ...]:
    found = []
    for item in as_list(value):
        if not isinstance(item, dict):
            continue
        url = _first_url(item.get("url"))
        media_type = item.get("mediaType")
        if url is None:
            continue
        kind = next(iter(sorted(types_of(item))), "Document")
        found.append(Attachment(
            url=url,
            media_type=media_type if isinstance(media_type, str)
            and re.fullmatch(r"[\w.+-]+/[\w.+-]+", media_type) else "application/octet-stream",
            alt=_plain(item.get("name"), 1500) or _plain(item.get("summary"), 1500),
            kind=kind if kind.isalpha() else "Document",
            width=_dimension(item.get("width")), height=_dimension(item.get("height")),
            blurhash=item["blurhash"] if isinstance(item.get("blurhash"), str)
            and BLURHASH.fullmatch(item["blurhash"]) else ""))
        if len(found) == ATTACHMENTS_MAX:
            break
    return tuple(found)
