"""WebFinger (RFC 7033) documents and handle parsing."""

from __future__ import annotations

import re
from typing import Any

from activitypub.vocab import ACTIVITY_JSON

_HANDLE = re.compile(r"^@?(?P<user>[A-Za-z0-9_.\-]+)@(?P<host>[A-Za-z0-9.\-]+(:\d{1,5})?)$")


class HandleError(ValueError):
    pass


def parse_handle(handle: str) -> tuple[str, str]:
    """`@food@other.example` (or `acct:food@other.example`) -> ("food", "other.example")."""
    value = handle.strip()
    if value.startswith("acct:"):
        value = value[5:]
    match = _HANDLE.match(value)
    if not match:
        raise HandleError(f"not a handle of the form @name@host: {handle!r}")
    return match["user"], match["host"].lower()


def jrd(username: str, host: str, actor_uri: str, profile_url: str) -> dict[str, Any]:
    return {
        "subject": f"acct:{username}@{host}",
        "aliases": [profile_url, actor_uri] if profile_url != actor_uri else [actor_uri],
        "links": [
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
             "href": profile_url},
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor_uri},
        ],
    }


def self_link(document: dict[str, Any]) -> str | None:
    """The ActivityPub actor URI in a JRD document."""
    for link in document.get("links") or []:
        if not isinstance(link, dict) or link.get("rel") != "self":
            continue
        kind = link.get("type", "")
        if kind == ACTIVITY_JSON or "activitystreams" in kind:
            href = link.get("href")
            if isinstance(href, str):
                return href
    return None


def host_meta(base_url: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{base_url}/.well-known/webfinger?resource={{uri}}"/>\n'
        "</XRD>\n"
    )
