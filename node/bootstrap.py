"""First start: the instance actor, a first organisation and an admin who can sign in."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from node.actors import create_actor, instance_actor, organisations
from node.auth import create_user
from node.context import Node

log = logging.getLogger(__name__)


@dataclass
class FirstRun:
    org_username: str
    admin_email: str
    admin_password: str | None  # only when it was generated now


async def bootstrap(node: Node) -> FirstRun | None:
    """Create what a new node needs; returns what was created, None when it existed already."""
    await instance_actor(node)
    if await organisations(node):
        return None
    s = node.settings
    org = await create_actor(node, "Group", s.org_username, s.org_name,
                             summary="Entraide de quartier : offres et besoins.")
    password = s.admin_password or secrets.token_urlsafe(12)
    user_id = await create_user(node, s.admin_email, password, role="admin")
    await node.db.execute(
        "INSERT INTO memberships (user_id, org_id, role) VALUES (:u, :o, 'admin')",
        {"u": user_id, "o": org.id},
    )
    return FirstRun(org.username, s.admin_email, None if s.admin_password else password)
