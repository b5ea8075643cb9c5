"""ActivityStreams constants and the JSON shapes this node publishes."""

from __future__ import annotations

from typing import Any

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES = {PUBLIC, "as:Public", "Public"}

ACTIVITY_JSON = "application/activity+json"
LD_JSON = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
JRD_JSON = "application/jrd+json"

ACTOR_TYPES = {"Person", "Group", "Application", "Service", "Organization"}

# Mastodon extensions that peers read on actors (manuallyApprovesFollowers, discoverable...).
ACTOR_CONTEXT: list[Any] = [
    AS_CONTEXT,
    SECURITY_CONTEXT,
    {
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "toot": "http://joinmastodon.org/ns#",
        "discoverable": "toot:discoverable",
        "indexable": "toot:indexable",
        "featuredTags": {"@id": "toot:featuredTags", "@type": "@id"},
        "schema": "http://schema.org#",
        "PropertyValue": "schema:PropertyValue",
        "value": "schema:value",
    },
]


def actor_document(
    *,
    uri: str,
    kind: str,
    username: str,
    name: str,
    summary: str,
    url: str,
    public_key_pem: str,
    shared_inbox: str,
    icon_url: str | None = None,
    manually_approves: bool = False,
    discoverable: bool = True,
    published: str | None = None,
    image_url: str | None = None,
    fields: list[tuple[str, str]] | None = None,
    featured_tags: str | None = None,
) -> dict[str, Any]:
    """An actor as Mastodon's ProcessAccountService reads it: `summary` is HTML, `icon` the
    avatar, `image` the header, `fields` (name, HTML value) become PropertyValue attachments."""
    doc: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": uri,
        "type": kind,
        "preferredUsername": username,
        "name": name,
        "summary": summary,
        "url": url,
        "inbox": f"{uri}/inbox",
        "outbox": f"{uri}/outbox",
        "followers": f"{uri}/followers",
        "following": f"{uri}/following",
        "endpoints": {"sharedInbox": shared_inbox},
        "manuallyApprovesFollowers": manually_approves,
        "discoverable": discoverable,
        "indexable": discoverable,
        "publicKey": {"id": f"{uri}#main-key", "owner": uri, "publicKeyPem": public_key_pem},
    }
    if icon_url:
        doc["icon"] = {"type": "Image", "mediaType": _media_type(icon_url), "url": icon_url}
    if image_url:
        doc["image"] = {"type": "Image", "mediaType": _media_type(image_url), "url": image_url}
    if published:
        doc["published"] = published
    if fields:
        doc["attachment"] = [{"type": "PropertyValue", "name": name, "value": value}
                             for name, value in fields]
    if featured_tags:
        doc["featuredTags"] = featured_tags
    return doc


def _media_type(url: str) -> str:
    lowered = url.lower()
    if lowered.endswith(".svg"):
        return "image/svg+xml"
    if lowered.endswith((".jpg", ".jpeg")):
        return "image/jpeg"
    return "image/png"


def id_of(value: Any) -> str | None:
    """The id of a reference that may be a string, an object or a one-element list."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        ident = value.get("id")
        return ident if isinstance(ident, str) else None
    if isinstance(value, list) and value:
        return id_of(value[0])
    return None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def types_of(obj: Any) -> set[str]:
    if not isinstance(obj, dict):
        return set()
    return {t for t in as_list(obj.get("type")) if isinstance(t, str)}


def is_public(obj: dict[str, Any]) -> bool:
    audience = as_list(obj.get("to")) + as_list(obj.get("cc"))
    return any(id_of(a) in PUBLIC_ALIASES for a in audience)
