"""The inbox's question to moderation: is this sender shut out? Asked before the signature is
checked, so that a blocked server costs neither a key fetch nor an RSA verification."""

from __future__ import annotations

from activitypub.signatures import SignatureError, parse_signature
from node.context import Node
from node.moderation.blocks import is_blocked_node_wide
from node.policy import is_blocked


async def refusal(node: Node, actor_uri: str, signature_header: str | None) -> str | None:
    """Why an activity from `actor_uri` (signed with that header) is refused, or None."""
    key_id = None
    if signature_header:
        try:
            key_id = parse_signature(signature_header).key_id
        except SignatureError:
            key_id = None  # the signature check that follows gives the reason
    for uri in (actor_uri, key_id):
        if uri and await is_blocked(node, uri):
            return "this server does not accept activities from your domain"
    if await is_blocked_node_wide(node, actor_uri):
        return "this server does not accept activities from this actor"
    return None
