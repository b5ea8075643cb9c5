"""Domain blocks, as moderation edits them: a blocked domain (and its subdomains) gets no
delivery, is never fetched, and its activities are refused at the inbox. The check itself is
federation policy (node/policy.py), consulted by the transport, keys and the inbox."""

from __future__ import annotations

import ipaddress

from node.context import Node
from node.db import now
from node.policy import forget_cache, hostname_of, matches


class ModerationError(ValueError):
    """A moderation request that cannot be carried out; the message says why."""


def normalize_domain(value: str) -> str:
    """`Spam.Example.` / `https://spam.example/x` / `spam.example:443` -> `spam.example`."""
    raw = value.strip().lower()
    if not raw:
        raise ModerationError("a domain is needed, for example spam.example")
    try:
        return str(ipaddress.ip_address(raw.strip("[]")))
    except ValueError:
        pass
    try:
        raw = (hostname_of(raw) or "").rstrip(".")
    except ValueError as exc:
        raise ModerationError(f"{value!r} is not a domain name") from exc
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    labels = raw.split(".")
    if len(raw) > 253 or not all(
        label and len(label) <= 63 and all(c.isalnum() or c == "-" for c in label)
        and not label.startswith("-") and not label.endswith("-")
        for label in labels
    ):
        raise ModerationError(f"{value!r} is not a domain name")
    return raw


async def block_domain(node: Node, domain: str, reason: str = "", by: str | None = None) -> str:
    domain = normalize_domain(domain)
    if matches(node.settings.domain.lower(), domain):
        raise ModerationError("this node cannot block its own domain")
    await node.db.execute(
        "INSERT INTO domain_blocks (domain, reason, created_by, created_at) "
        "VALUES (:d, :r, :b, :t) ON CONFLICT (domain) DO UPDATE SET reason = excluded.reason",
        {"d": domain, "r": reason.strip()[:500], "b": by, "t": now()},
    )
    forget_cache(node)
    return domain


async def unblock_domain(node: Node, domain: str) -> bool:
    domain = normalize_domain(domain)
    found = await node.db.fetch_val(
        "SELECT 1 FROM domain_blocks WHERE domain = :d", {"d": domain})
    await node.db.execute("DELETE FROM domain_blocks WHERE domain = :d", {"d": domain})
    forget_cache(node)
    return bool(found)


async def blocked_domains(node: Node) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT domain, reason, created_at FROM domain_blocks ORDER BY domain")
