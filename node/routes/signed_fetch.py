"""Authorized fetch (NODE_AUTHORIZED_FETCH): ActivityPub documents are served only to requests
signed by an actor whose key verifies, as Mastodon's secure mode does. The instance actor stays
open, since peers must read its key to check the signatures of our own fetches, and so do the
HTML pages meant for people."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from activitypub.signatures import SignatureError
from keys.request_signer import verified_signer
from node.negotiation import wants_activity_json
from node.web_support import node_of

log = logging.getLogger(__name__)

View = Callable[[Request], Awaitable[Response]]

# Served to anyone: the instance actor's own document.
OPEN_PATHS = {"/actor"}


async def fetch_refusal(request: Request, json_only: bool) -> Response | None:
    """A 401 for an unsigned or badly signed GET when authorized fetch is on, else None.
    With `json_only`, only requests that ask for the ActivityPub representation are checked."""
    node = node_of(request)
    if not node.settings.authorized_fetch or request.url.path in OPEN_PATHS:
        return None
    if json_only and not wants_activity_json(request):
        return None
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        signer = await verified_signer(node, request, None)
    except SignatureError as exc:
        log.info("authorized fetch refused GET %s: %s", path, exc)
        return JSONResponse({"error": f"this node requires signed fetches: {exc}"},
                            status_code=401, headers={"Vary": "Accept, Signature"})
    request.state.fetch_signer = signer
    return None


def signed_fetch(view: View, json_only: bool = False) -> View:
    """Wrap a GET view so that authorized fetch is checked in this one place."""

    @functools.wraps(view)
    async def checked(request: Request) -> Response:
        refusal = await fetch_refusal(request, json_only)
        if refusal is not None:
            return refusal
        response = await view(request)
        if getattr(request.state, "fetch_signer", None):
            # What one signer was shown must not be served to others from a shared cache.
            response.headers["Cache-Control"] = "private, max-age=60"
            response.headers["Vary"] = "Accept, Signature"
        return response

    return checked
