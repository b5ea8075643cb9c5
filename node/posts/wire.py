"""Offers and needs on the wire (FEP-0837 on a plain Note, see DESIGN.md), in both directions:
a stored post -> the Note and the activities that carry it, and a remote Note -> post fields.

No database access here: what a conversion needs is passed in.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import nh3

from activitypub.model import RemoteObject, parse_instant
from activitypub.origin import host_label, same_origin
from activitypub.vocab import AS_CONTEXT, PUBLIC, as_list, id_of, types_of
from node.i18n import DEFAULT_LOCALE, LOCALES, N_, format_date
from node.posts import categories, languages, photos, places
from node.posts.speech import say

VF = "https://w3id.org/valueflows/ont/vf#"
OM2 = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
PURPOSE = {"offer": "offer", "need": "request"}
# The link under a post on Mastodon: answers go through the node, never in public replies.
REPLY_PRIVATELY = N_("Reply privately")
KIND_OF_PURPOSE = {v: k for k, v in PURPOSE.items()}
STATUSES = ("open", "in_progress", "fulfilled", "withdrawn", "expired")


def post_context(base_url: str) -> list[Any]:
    """ActivityStreams plus the ValueFlows and om2 terms we use, and our own namespace."""
    return [
        AS_CONTEXT,
        {
            "vf": VF, "om2": OM2, "entraide": base_url.rstrip("/") + "/ns#",
            "Hashtag": "as:Hashtag",
            "Proposal": "vf:Proposal", "Intent": "vf:Intent", "Agreement": "vf:Agreement",
            "Commitment": "vf:Commitment",
            "purpose": "vf:purpose", "publishes": "vf:publishes", "reciprocal": "vf:reciprocal",
            "unitBased": "vf:unitBased", "action": "vf:action",
            "resourceClassifiedAs": {"@id": "vf:resourceClassifiedAs", "@type": "@id"},
            "resourceConformsTo": {"@id": "vf:resourceConformsTo", "@type": "@id"},
            "resourceQuantity": "vf:resourceQuantity", "availableQuantity": "vf:availableQuantity",
            "provider": {"@id": "vf:provider", "@type": "@id"},
            "receiver": {"@id": "vf:receiver", "@type": "@id"},
            "due": "vf:due", "finished": "vf:finished",
            "stipulates": "vf:stipulates", "satisfies": {"@id": "vf:satisfies", "@type": "@id"},
            "hasUnit": "om2:hasUnit", "hasNumericalValue": "om2:hasNumericalValue",
            "urgency": "entraide:urgency", "postStatus": "entraide:postStatus",
            "answerReason": "entraide:answerReason",
            "toot": "http://joinmastodon.org/ns#", "blurhash": "toot:blurhash",
        },
    ]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _date(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%d/%m/%Y") if ts is not None else ""


def short_text(description_html: str, limit: int = 200) -> str:
    text = " ".join(nh3.clean(description_html, tags=set()).split())
    text = html.unescape(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Addressing:
    """Who a post is attributed to and which organisation publishes it."""

    attributed_to: str
    org_uri: str

    @property
    def followers(self) -> str:
        return f"{self.org_uri}/followers"


def audience(visibility: str, who: Addressing) -> tuple[list[str], list[str]]:
    # The author's own followers are named too: Mastodon reads "followers-only" against the
    # sender's followers collection, and would take a member's post for a direct message.
    followers = list(dict.fromkeys([who.followers, f"{who.attributed_to}/followers"]))
    if visibility == "followers":
        return followers, [who.org_uri]
    return [PUBLIC], [*followers, who.org_uri]


def hashtags(post: dict[str, Any], base_url: str) -> list[dict[str, str]]:
    names = ["offer" if post["kind"] == "offer" else "need"]
    category = categories.get(post["category"])
    if category:
        names.append(category.hashtag)
    if post.get("neighbourhood"):
        tag = places.hashtag(post["neighbourhood"])
        if tag:
            names.append(tag)
    return [{"type": "Hashtag", "name": f"#{n}", "href": f"{base_url}/tags/{n.lower()}"}
            for n in names]


def content_html(post: dict[str, Any], base_url: str, locale: str | None = None) -> str:
    """What Mastodon shows: one paragraph readable on its own, then the hashtags; its words
    (kind, category, place, date, status, the link) in `locale`, by default the language the
    post was written in."""
    locale = locale or post.get("written_in") or next(iter(languages_of(post)), DEFAULT_LOCALE)
    category = categories.get(post["category"])
    kind = say(locale, "Offer" if post["kind"] == "offer" else "Need")
    parts = [f"{kind} · {post['title']}"]
    short = short_text(post.get("description_html") or "")
    if short:
        parts.append(short)
    if category:
        parts.append(say(locale, category.label))
    if post.get("neighbourhood"):
        parts.append(places.local_name(post["neighbourhood"], locale))
    if post.get("ends_at"):
        parts.append(say(locale, "until %(date)s", date=format_date(
            post["ends_at"], "long", locale=locale if locale in LOCALES else DEFAULT_LOCALE)))
    marker = {"fulfilled": "Fulfilled", "in_progress": "In progress"}.get(post["status"])
    text = " · ".join(html.escape(p) for p in parts)
    if marker:
        text = f"<strong>{html.escape(say(locale, marker))}</strong> · {text}"
    url = html.escape(post.get("url") or post["uri"])
    tags = " ".join(
        f'<a href="{html.escape(t["href"])}" class="mention hashtag" rel="tag">'
        f'#<span>{html.escape(t["name"][1:])}</span></a>'
        for t in hashtags(post, base_url)
    )
    reply = html.escape(say(locale, REPLY_PRIVATELY))
    return f'<p>{text} · <a href="{url}">{reply}</a></p><p>{tags}</p>'


def languages_of(post: dict[str, Any]) -> list[str]:
    return [code for code in (post.get("languages") or "").split(",") if code]


def language_maps(post: dict[str, Any], content: str, base_url: str) -> dict[str, Any]:
    """`nameMap`/`contentMap` with the language the author wrote first as the first key (and as
    `name`/`content`): Mastodon takes the first key of contentMap as the post's language and
    `content` as its text, GoToSocial the key whose value is `content`."""
    texts = languages.texts_of(post)
    if not texts:  # a post from before languages were asked: the first language spoken
        spoken = languages_of(post)
        return {"contentMap": {spoken[0]: content}} if spoken else {}
    maps: dict[str, dict[str, str]] = {"nameMap": {}, "contentMap": {}}
    for code, text in texts.items():
        maps["nameMap"][code] = text.title
        maps["contentMap"][code] = content if code == post["written_in"] else content_html(
            {**post, "title": text.title, "description_html": text.description_html}, base_url,
            code)
    return maps


def to_note(post: dict[str, Any], who: Addressing, base_url: str) -> dict[str, Any]:
    """The Note carrying FEP-0837 fields, exactly as DESIGN.md shows it."""
    category = categories.get(post["category"])
    finished = post["status"] in ("fulfilled",)
    capacity = post.get("capacity") or 1
    unit = post.get("unit") or "one"
    content = content_html(post, base_url)
    to, cc = audience(post["visibility"], who)
    intent: dict[str, Any] = {
        "type": "Intent", "id": f"{post['uri']}#primary",
        "action": category.action if category else "deliverService",
        "resourceClassifiedAs": [f"{base_url}/categories/{post['category']}"],
        "resourceQuantity": {"hasUnit": unit, "hasNumericalValue": "1"},
        "availableQuantity": {"hasUnit": unit,
                              "hasNumericalValue": "0" if finished else str(capacity)},
    }
    if post["kind"] == "offer":
        intent["provider"] = who.attributed_to
    else:
        intent["receiver"] = who.attributed_to
        if post.get("ends_at"):
            intent["due"] = iso(post["ends_at"])
    if finished:
        intent["finished"] = True
    note: dict[str, Any] = {
        "id": post["uri"], "type": "Note", "attributedTo": who.attributed_to,
        "audience": who.org_uri,
        "purpose": PURPOSE[post["kind"]], "name": post["title"], "content": content,
        "published": iso(post["created_at"]), "url": post.get("url") or post["uri"],
        "tag": hashtags(post, base_url), "publishes": intent, "unitBased": False,
        "urgency": post.get("urgency", 1), "postStatus": post["status"],
        "to": to, "cc": cc,
    }
    note.update(language_maps(post, content, base_url))
    attachments = photos.as_attachments(photos.photos_of(post), base_url)
    if attachments:
        note["attachment"] = attachments
    if post.get("updated_at") and post["updated_at"] > post["created_at"] + 1:
        note["updated"] = iso(post["updated_at"])
    if post.get("starts_at"):
        note["startTime"] = iso(post["starts_at"])
    if post.get("ends_at"):
        note["endTime"] = iso(post["ends_at"])
    if post.get("latitude") is not None and post.get("longitude") is not None:
        note["location"] = {
            "type": "Place", "name": post.get("neighbourhood") or "",
            "latitude": places.round_coordinate(post["latitude"]),
            "longitude": places.round_coordinate(post["longitude"]),
            "radius": 1, "units": "km",
        }
    elif post.get("neighbourhood"):
        note["location"] = {"type": "Place", "name": post["neighbourhood"]}
    return note


def wrap(kind: str, activity_id: str, actor: str, note: dict[str, Any],
         base_url: str) -> dict[str, Any]:
    """Create or Update around a Note, addressed like the Note."""
    activity = {
        "@context": post_context(base_url), "id": activity_id, "type": kind, "actor": actor,
        "to": note["to"], "cc": note["cc"], "object": note,
    }
    activity["published" if kind == "Create" else "updated"] = note.get(
        "updated", note["published"]) if kind == "Update" else note["published"]
    return activity


def tombstone_delete(activity_id: str, actor: str, post_uri: str,
                     who: Addressing) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT, "id": activity_id, "type": "Delete", "actor": actor,
        "object": {"id": post_uri, "type": "Tombstone", "formerType": "Note"},
        "to": [PUBLIC], "cc": [who.followers, who.org_uri],
    }


def announce(activity_id: str, group: str, note: dict[str, Any]) -> dict[str, Any]:
    """FEP-1b12: the group relays what is posted to it, with the Note embedded."""
    return {
        "@context": AS_CONTEXT, "id": activity_id, "type": "Announce", "actor": group,
        "object": note, "to": note["to"], "cc": note["cc"],
    }


# --- responses ---------------------------------------------------------------------------------

def offer(offer_id: str, responder: str, post_uri: str, post_author: str,
          to: list[str], message_html: str) -> dict[str, Any]:
    """FEP-0837: Offer{Agreement{stipulates: Commitment{satisfies: <post>#primary}}}."""
    return {
        "@context": post_context(_origin(offer_id)), "id": offer_id, "type": "Offer",
        "actor": responder, "to": to,
        "object": {
            "type": "Agreement", "id": f"{offer_id}#agreement",
            "stipulates": {
                "type": "Commitment", "id": f"{offer_id}#commitment",
                "satisfies": f"{post_uri}#primary", "provider": responder,
                "receiver": post_author,
            },
        },
        "content": message_html,
    }


def answer(kind: str, answer_id: str, actor: str, offer_id: str, responder: str,
           agreement_id: str | None = None, why: str = "") -> dict[str, Any]:
    """Accept{object: <offer>, result: Agreement} or Reject{object: <offer>}. `why` tells a node
    of ours whether a Reject declines the response or says the post is full or closed
    (`answerReason`); the words themselves travel in a private Note in the responder's
    language, which every fediverse software shows."""
    activity: dict[str, Any] = {
        "@context": post_context(_origin(answer_id)), "id": answer_id, "type": kind,
        "actor": actor, "object": offer_id, "to": [responder],
    }
    if kind == "Accept":
        activity["result"] = {"type": "Agreement", "id": agreement_id or f"{offer_id}#agreement"}
    if why:
        activity["answerReason"] = why
    return activity


def undo_answer(undo_id: str, actor: str, accepted: dict[str, Any]) -> dict[str, Any]:
    """Undo{Accept}: the author took an acceptance back; the response waits again."""
    inner = {k: v for k, v in accepted.items() if k != "@context"}
    return {
        "@context": post_context(_origin(undo_id)), "id": undo_id, "type": "Undo",
        "actor": actor, "object": inner, "to": inner.get("to", []),
    }


def private_note(note_id: str, author: str, recipient: str, in_reply_to: str, text_html: str,
                 thread: str, mention_name: str = "",
                 content_map: dict[str, str] | None = None) -> dict[str, Any]:
    """A mentioned-only Note: a direct message Mastodon shows privately. `content_map` holds
    the same words per language when the node wrote them for someone whose language it does
    not know."""
    note: dict[str, Any] = {
        "id": note_id, "type": "Note", "attributedTo": author, "inReplyTo": in_reply_to,
        "context": thread, "content": text_html, "to": [recipient], "cc": [],
        "published": iso(datetime.now(UTC).timestamp()),
        "tag": [{"type": "Mention", "href": recipient, "name": mention_name or recipient}],
    }
    if content_map:
        note["contentMap"] = content_map
    return note


def create_private(activity_id: str, note: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {
        "@context": post_context(base_url), "id": activity_id, "type": "Create",
        "actor": note["attributedTo"], "to": note["to"], "cc": [], "object": note,
    }


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def satisfied_post(offer_activity: dict[str, Any]) -> str | None:
    """The post an Offer answers: Agreement.stipulates.satisfies (current FEP-0837) or the older
    Offer(Commitment) with `inReplyTo` / `satisfies` directly."""
    obj = offer_activity.get("object")
    target = None
    if isinstance(obj, dict):
        kinds = types_of(obj)
        if "Agreement" in kinds:
            for commitment in as_list(obj.get("stipulates")):
                if isinstance(commitment, dict):
                    target = id_of(commitment.get("satisfies"))
                    if target:
                        break
        elif "Commitment" in kinds:
            target = id_of(obj.get("satisfies")) or id_of(obj.get("inReplyTo"))
    target = target or id_of(offer_activity.get("inReplyTo"))
    if not target:
        return None
    return target.split("#", 1)[0]


# --- the reverse: a remote Note -> the fields of a stored post ---------------------------------

class NotAPost(ValueError):
    pass


def _quantity(value: Any) -> int | None:
    if isinstance(value, dict):
        raw = value.get("hasNumericalValue")
        try:
            return int(float(raw))
        except (TypeError, ValueError):
            return None
    return None


def _timestamp(value: Any) -> float | None:
    parsed = parse_instant(value)
    return parsed.timestamp() if parsed else None


REMOTE_CONTENT_MAX = 20_000
MAX_LANGUAGES = 8


def _plain(value: Any, limit: int) -> str:
    return nh3.clean(value, tags=set())[:limit] if isinstance(value, str) else ""


# FEP-0837 names the type `Proposal`, and allows a Note for Mastodon's sake: both are posts.
POST_TYPES = ("Note", "Proposal")


def is_post_note(obj: dict[str, Any]) -> bool:
    return (bool(types_of(obj) & set(POST_TYPES)) and obj.get("purpose") in KIND_OF_PURPOSE
            and isinstance(obj.get("publishes"), dict))


def _category_of(obj: dict[str, Any], intent: dict[str, Any]) -> str:
    for ref in as_list(intent.get("resourceClassifiedAs")):
        ident = id_of(ref) or ""
        key = ident.rstrip("/").rsplit("/", 1)[-1]
        if categories.get(key):
            return key
    for tag in as_list(obj.get("tag")):
        if isinstance(tag, dict) and isinstance(tag.get("name"), str):
            match = categories.BY_HASHTAG.get(tag["name"].lstrip("#").lower())
            if match:
                return match.key
    return "other"


def from_note(model: RemoteObject, obj: dict[str, Any]) -> dict[str, Any]:
    """Fields of a remote post: text, links and languages from the typed model, the FEP-0837
    terms read here with a check of each one's shape. NotAPost when it is no offer or need."""
    if model.type not in POST_TYPES or not is_post_note(obj):
        raise NotAPost("the Note carries no FEP-0837 purpose and publishes")
    intent = obj["publishes"]
    kind = KIND_OF_PURPOSE[obj["purpose"]]
    # Text behind a content warning never becomes the title shown in lists.
    title = model.name[:200] or (model.summary[:200] if model.has_warning else "") or (
        short_text(model.content_html, 80))
    status = obj.get("postStatus") if obj.get("postStatus") in STATUSES[:3] else "open"
    if intent.get("finished") is True or _quantity(intent.get("availableQuantity")) == 0:
        status = "fulfilled"  # other FEP-0837 software says "nothing left" by quantity alone
    location = obj.get("location") if isinstance(obj.get("location"), dict) else {}
    lat, lon = location.get("latitude"), location.get("longitude")
    urgency = obj.get("urgency")
    audience = id_of(obj.get("audience"))
    quantity = intent.get("availableQuantity")
    return {
        "uri": model.id, "attributed_to": model.author,
        # An organisation named by the post counts only on the post's own server.
        "org_uri": audience if same_origin(audience, model.id) else model.author,
        "kind": kind, "category": _category_of(obj, intent), "title": title,
        "description_html": model.content_html,
        # `sensitive` without a summary still hides the text; the page names it in words.
        "content_warning": model.summary or ("sensitive" if model.sensitive else ""),
        "neighbourhood": _plain(location.get("name"), 100),
        "latitude": places.round_coordinate(lat) if _number(lat) else None,
        "longitude": places.round_coordinate(lon) if _number(lon) else None,
        "starts_at": _timestamp(obj.get("startTime")),
        "ends_at": _timestamp(obj.get("endTime")) or _timestamp(intent.get("due")),
        "capacity": _quantity(quantity),
        "unit": (_plain(quantity.get("hasUnit"), 20) or "one") if isinstance(quantity, dict)
        else "one",
        "urgency": urgency if type(urgency) is int and 0 <= urgency <= 3 else 1,
        "languages": ",".join(k for k in model.content_map if re.fullmatch(r"[a-z]{2,3}", k))
        [:40],
        **_written_languages(model, title),
        "visibility": "public" if model.public else "followers",
        "status": status,
        "url": model.link,
        "origin_host": host_label(model.id),
        "created_at": _timestamp(model.published),
    }


def _written_languages(model: RemoteObject, title: str) -> dict[str, str]:
    """The language the post was written in (the key of contentMap whose text is `content`,
    else the first) and its other languages, as node/posts/languages.py keeps them."""
    first = model.language or next(iter(model.content_map), "")
    if not first:
        return {"written_in": "", "translations": ""}
    others = {code: languages.Text(model.name_map.get(code) or title, "", text)
              for code, text in list(model.content_map.items())[:MAX_LANGUAGES]
              if code != first}
    return {"written_in": first[:20], "translations": languages.dump_texts(others)}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and (
        -180.0 <= value <= 180.0)
