"""Roles: member, coordinator (a social worker of the organisation) or admin, set by an admin.

The node-wide role lives on the user; the user's memberships carry the same role, so that an
organisation's coordinators can be listed from its memberships."""

from __future__ import annotations

from node.accounts.errors import FormError
from node.auth import ROLES
from node.context import Node
from node.i18n import N_, _

ROLE_LABELS = {"member": N_("Member"), "coordinator": N_("Coordinator"), "admin": N_("Admin")}


def can_coordinate(user: dict | None) -> bool:
    return user is not None and user["role"] in ("coordinator", "admin")


def is_admin(user: dict | None) -> bool:
    return user is not None and user["role"] == "admin"


async def set_role(node: Node, admin: dict, user_id: str, role: str) -> None:
    if not is_admin(admin):
        raise FormError({"role": _("Only an admin can change roles.")})
    if role not in ROLES:
        raise FormError({"role": _("Unknown role.")})
    target = await node.db.fetch_one("SELECT id, role FROM users WHERE id = :i", {"i": user_id})
    if target is None:
        raise FormError({"role": _("No such account.")})
    if target["id"] == admin["id"] and role != "admin":
        remaining = await node.db.fetch_val(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND id <> :i", {"i": admin["id"]})
        if not remaining:
            raise FormError({"role": _("You are the last admin: name another admin first.")})
    async with node.db.transaction():
        await node.db.execute("UPDATE users SET role = :r WHERE id = :i",
                              {"r": role, "i": user_id})
        await node.db.execute("UPDATE memberships SET role = :r WHERE user_id = :i",
                              {"r": role, "i": user_id})


async def all_users(node: Node) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT u.id, u.email, u.role, u.display_name, a.username FROM users u "
        "LEFT JOIN actors a ON a.id = u.actor_id ORDER BY u.created_at")
