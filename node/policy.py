"""Federation policy: the rules every path that talks to other servers consults, kept low so
that the transport, key fetching, the inbox and the delivery worker ask one place and policy
never climbs back up into moderation.

- The origin rule and the ownership rule are pure functions of activitypub/origin.py
  (`same_origin`, `may_author`); `Node.is_local` applies the first to this node.
- Blocked domains are data (the `domain_blocks` table): moderation's pages edit it, this module
  reads it.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from node.context import Node


def hostname_of(host_or_url: str) -> str:
    """The lower-case host name of a URL or of a `host[:port]` authority."""
    if "://" in host_or_url:
        return (urlsplit(host_or_url).hostname or "").lower()
    return (urlsplit(f"//{host_or_url}").hostname or "").lower()


def matches(hostname: str, domain: str) -> bool:
    return hostname == domain or hostname.endswith("." + domain)


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
