"""NodeInfo 2.1 discovery and document."""

from __future__ import annotations

from typing import Any

SCHEMA_21 = "http://nodeinfo.diaspora.software/ns/schema/2.1"


def discovery(base_url: str) -> dict[str, Any]:
    return {"links": [{"rel": SCHEMA_21, "href": f"{base_url}/nodeinfo/2.1"}]}


def document(
    *, version: str, users_total: int, active_month: int, local_posts: int,
    open_registrations: bool, node_name: str,
) -> dict[str, Any]:
    return {
        "version": "2.1",
        "software": {
            "name": "entraide",
            "version": version,
        },
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": open_registrations,
        "usage": {
            "users": {"total": users_total, "activeMonth": active_month,
                      "activeHalfyear": active_month},
            "localPosts": local_posts,
        },
        "metadata": {"nodeName": node_name},
    }
