"""Who signed an incoming request: its HTTP signature checked against the signer's public key,
taken from the cache and fetched once more when it fails (the signer may have rotated it).

This is the one place every inbox POST and every signed GET is verified, so the rules that bind
a signature to this request live here: the target is the path actually requested, the host is
this node's, and a body is covered by a signed digest (activitypub/signatures.py)."""

from __future__ import annotations

from starlette.requests import Request

from activitypub.signatures import (
    SignatureError,
    check_signature,
    checked_signing_string,
    parse_signature,
)
from activitypub.transport import FetchError
from keys.remote import cached_key, get_key
from node.context import Node

# Headers that must come once: a proxy may read the last copy where we read the first.
SINGLE_HEADERS = ("host", "signature", "digest", "content-digest")


async def verified_signer(node: Node, request: Request, body: bytes | None) -> str:
    """The URI of the actor who owns the key that signed this request; SignatureError (with
    the reason) when there is no valid signature. `body` is None for a GET."""
    headers = received_headers(request, node.settings.trust_forwarded_host)
    sig = parse_signature(headers.get("signature"))
    # Everything that needs no key first: a request signed for another host or over another
    # body is refused without fetching anything.
    message = checked_signing_string(sig, request.method, request_target(request), headers,
                                     body, expected_host=node.settings.host)
    key = await cached_key(node, sig.key_id)
    if key is not None:
        try:
            check_signature(sig, message, key.public_pem)
            return key.owner
        except SignatureError:
            pass  # perhaps a rotated key: fetch it once more below
    try:
        key = await get_key(node, sig.key_id, refresh=True)
    except FetchError as exc:
        raise SignatureError(f"cannot fetch the signing key {sig.key_id}: {exc}") from exc
    check_signature(sig, message, key.public_pem)
    return key.owner


def request_target(request: Request) -> str:
    """The path and query exactly as the client sent them (what `(request-target)` signs), not
    the percent-decoded path the router uses."""
    raw = request.scope.get("raw_path")
    # uvicorn's raw_path has no query; httpx's in-process transport puts it in.
    path = raw.split(b"?", 1)[0].decode("latin-1") if raw else request.url.path
    query = request.scope.get("query_string") or b""
    return path + ("?" + query.decode("latin-1") if query else "")


def received_headers(request: Request, trust_forwarded_host: bool) -> dict[str, str]:
    """The request's headers (lowercase names), with the Host the client used: a proxy that
    rewrites Host passes the original in X-Forwarded-Host, read only when the node is told to
    (NODE_TRUST_FORWARDED_HOST). Either way the host must then be this node's own."""
    names = SINGLE_HEADERS + (("x-forwarded-host",) if trust_forwarded_host else ())
    for name in names:
        if len(request.headers.getlist(name)) > 1:
            raise SignatureError(f"the request repeats its {name} header")
    headers = {name: request.headers[name] for name in request.headers}
    forwarded = headers.get("x-forwarded-host")
    if trust_forwarded_host and forwarded:
        # The first entry is what the client sent; later proxies append theirs.
        headers["host"] = forwarded.split(",")[0].strip()
    return headers
