"""Domain blocks: a blocked domain (and its subdomains) gets no delivery, is never fetched, and
its activities are refused at the inbox."""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlsplit

from node.context import Node
from node.db import now


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


def hostname_of(host_or_url: str) -> str:
    """The lower-case host name of a URL or of a `host[:port]` authority."""
    if "://" in host_or_url:
        return (urlsplit(host_or_url).hostname or "").lower()
    return (urlsplit(f"//{host_or_url}").hostname or "").lower()


def matches(hostname: str, domain: str) -> bool:
    return hostname == domain or hostname.endswith("." + domain)


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


# Blocks are read on every inbox POST and every delivery: each process keeps the list for this
# long (a block made in another process takes effect within it; one made here, at once).
CACHE_SECONDS = 2.0


async def _blocked_set(node: Node) -> frozenset[str]:
    cached = getattr(node, "_domain_blocks", None)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    rows = await node.db.fetch_all("SELECT domain FROM domain_blocks")
    domains = frozenset(r["domain"] for r in rows)
    node._domain_blocks = (time.monotonic(), domains)  # type: ignore[attr-defined]
    return domains


def forget_cache(node: Node) -> None:
    node._domain_blocks = None  # type: ignore[attr-defined]


async def is_blocked(node: Node, host_or_url: str | None) -> bool:
    """Whether a URL or host belongs to a blocked domain (subdomains included)."""
    if not host_or_url:
        return False
    hostname = hostname_of(host_or_url)
    if not hostname:
        return False
    domains = await _blocked_set(node)
    if not domains:
        return False
    try:
        ipaddress.ip_address(hostname)
        return hostname in domains
    except ValueError:
        labels = hostname.split(".")
        return any(".".join(labels[i:]) in domains for i in range(len(labels)))
