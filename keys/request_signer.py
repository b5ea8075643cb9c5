"""Who signed an incoming request: its HTTP signature checked against the signer's public key,
taken from the cache and fetched once more when it fails (the signer may have rotated it)."""

from __future__ import annotations

from collections.abc import Mapping

from activitypub.signatures import SignatureError, parse_signature, verify_request
from activitypub.transport import FetchError
from keys.remote import cached_key, get_key
from node.context import Node


async def verified_signer(
    node: Node, method: str, path: str, headers: Mapping[str, str], body: bytes | None
) -> str:
    """The URI of the actor who owns the key that signed this request; SignatureError (with
    the reason) when there is no valid signature."""
    sig = parse_signature(_header(headers, "signature"))
    key = await cached_key(node, sig.key_id)
    if key is not None:
        try:
            verify_request(sig, method, path, headers, key.public_pem, body)
            return key.owner
        except SignatureError:
            pass  # perhaps a rotated key: fetch it once more below
    try:
        key = await get_key(node, sig.key_id, refresh=True)
    except FetchError as exc:
        raise SignatureError(f"cannot fetch the signing key {sig.key_id}: {exc}") from exc
    verify_request(sig, method, path, headers, key.public_pem, body)
    return key.owner


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
