"""Content negotiation: ActivityPub clients get JSON, browsers get HTML, at the same URL."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from activitypub.vocab import ACTIVITY_JSON

AP_MEDIA_TYPES = ("application/activity+json", "application/ld+json", "application/json")


def wants_activity_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    if not accept:
        return False
    best_ap, best_html = -1.0, -1.0
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media in AP_MEDIA_TYPES:
            best_ap = max(best_ap, q)
        elif media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
    return best_ap >= 0 and best_ap >= best_html


def encode(doc: Any) -> bytes:
    """UTF-8 JSON of a document served to peers and browsers. orjson encodes an outbox page in
    a fifth of the json module's time (bench/README.md); what it refuses (a key that is not a
    string) the json module writes as before."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        return json.dumps(doc, ensure_ascii=False).encode()


def activity_response(doc: Any, status: int = 200) -> Response:
    return Response(
        encode(doc),
        status_code=status,
        media_type=ACTIVITY_JSON,
        headers={"Vary": "Accept", "Cache-Control": "max-age=60"},
    )


def json_response(doc: Any, media_type: str = "application/json", status: int = 200) -> Response:
    return Response(encode(doc), status_code=status, media_type=media_type,
                     headers={"Access-Control-Allow-Origin": "*"})
