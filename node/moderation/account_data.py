"""A member's own data: a JSON export of what the node keeps about them, and deletion of the
account. Both find the member's rows by identity only (node/moderation/member_data.py holds
the map): their ids, never their name or any other text.

Deletion federates first, while the member's key and rows still exist: one `Delete` with a
`Tombstone` for each post and note of theirs that left the node, then the `Delete` of their
actor to every inbox that ever received something from them or follows them. Then everything
of theirs is erased in one transaction; the key is erased once those Deletes are delivered.
"""

from __future__ import annotations

import json
from typing import Any

from activitypub.vocab import AS_CONTEXT, PUBLIC
from node.context import Node
from node.db import new_id, now
from node.moderation import member_data
from node.moderation.domains import ModerationError
from node.notes import delete_note
from node.posts import publishing
from node.posts.photos import delete_unused, photos_of
from outbox.addressing import follower_inboxes
from outbox.publish import publish

# A post in one of these states was deleted on the network already, when it got there.
ALREADY_DELETED = ("withdrawn", "expired")


async def table_columns(node: Node) -> dict[str, list[str]]:
    """Every table of the schema with its text-like columns (tests search them all)."""
    if node.db.is_postgres:
        rows = await node.db.fetch_all(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying')"
            " ORDER BY table_name, ordinal_position")
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["table_name"], []).append(row["column_name"])
        return found
    tables = await node.db.fetch_all(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    found = {}
    for table in tables:
        name = table["name"]
        info = await node.db.fetch_all(f'PRAGMA table_info("{name}")')
        found[name] = [c["name"] for c in info if "INT" not in (c["type"] or "").upper()
                       and "REAL" not in (c["type"] or "").upper()]
    return found


ForeignKey = tuple[str, str, str, str]  # child table, child column, parent table, parent column


async def foreign_keys(node: Node) -> list[ForeignKey]:
    if node.db.is_postgres:
        rows = await node.db.fetch_all(
            "SELECT kcu.table_name AS child, kcu.column_name AS child_col, "
            "ccu.table_name AS parent, ccu.column_name AS parent_col "
            "FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu ON tc.constraint_name = "
            "kcu.constraint_name AND tc.table_schema = kcu.table_schema "
            "JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = "
            "tc.constraint_name AND ccu.table_schema = tc.table_schema "
            "WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()")
        return [(r["child"], r["child_col"], r["parent"], r["parent_col"]) for r in rows]
    found: list[ForeignKey] = []
    for table in await table_columns(node):
        for fk in await node.db.fetch_all(f'PRAGMA foreign_key_list("{table}")'):
            found.append((table, fk["from"], fk["table"], fk["to"]))
    return found


async def _user(node: Node, user_id: str) -> dict[str, Any]:
    user = await node.db.fetch_one("SELECT * FROM users WHERE id = :i", {"i": user_id})
    if user is None:
        raise ModerationError("no such account")
    return user


async def export(node: Node, user_id: str) -> dict[str, Any]:
    """The member's own rows, table by table (secrets left out, stored JSON unfolded)."""
    member = await member_data.identify(node, await _user(node, user_id))
    tables = await member_data.rows_of(node, member)
    for rows in tables.values():
        for row in rows:
            for key, value in row.items():
                if isinstance(value, str) and value[:1] in "{[":
                    try:
                        row[key] = json.loads(value)
                    except ValueError:
                        pass
    return {"exported_at": now(), "node": node.settings.base_url, "actor": member.uri,
            "tables": tables}


async def _inboxes_that_know(node: Node, member: member_data.Member,
                             found: member_data.Belongings) -> list[str]:
    """Every inbox that received something from the member, follows them or is followed by
    them, and the followers of the organisations that relayed their posts."""
    assert member.actor is not None and member.uri is not None
    rows = await node.db.fetch_all(
        "SELECT DISTINCT inbox_url AS inbox FROM deliveries WHERE sender_id = :i",
        {"i": member.actor.id})
    rows += await node.db.fetch_all(
        "SELECT DISTINCT COALESCE(r.shared_inbox, r.inbox) AS inbox FROM remote_actors r "
        "JOIN follows f ON r.uri IN (f.follower_uri, f.followee_uri) "
        "WHERE :a IN (f.follower_uri, f.followee_uri)", {"a": member.uri})
    inboxes = [r["inbox"] for r in rows]
    for org in sorted({p["org_uri"] for p in found.posts if p["visibility"] != "local"}):
        inboxes += await follower_inboxes(node, org)
    return list(dict.fromkeys(inboxes))


async def _federate(node: Node, member: member_data.Member,
                    found: member_data.Belongings) -> int:
    """The Deletes, signed while the key exists; returns how many inboxes the actor's goes to."""
    for post in found.posts:
        if post["status"] not in ALREADY_DELETED:
            # The posts domain's own Delete: author's followers, the organisation's, responders.
            await publishing.deleted(node, {**post, "status": "withdrawn"})
    if member.actor is None or member.uri is None:
        return 0
    for note in found.notes:
        if not note["deleted"]:
            await delete_note(node, member.actor, note["uri"])
    activity = {
        "@context": AS_CONTEXT, "id": node.url(f"/activities/{new_id()}"), "type": "Delete",
        "actor": member.uri, "object": member.uri, "to": [PUBLIC],
        "cc": [f"{member.uri}/followers"],
    }
    return await publish(node, member.actor, activity,
                         extra_inboxes=await _inboxes_that_know(node, member, found))


async def delete_account(node: Node, user_id: str) -> int:
    """Delete the member's account; returns how many inboxes the actor's `Delete` goes to."""
    user = await _user(node, user_id)
    if user["role"] == "admin":
        raise ModerationError("an admin account cannot delete itself; hand the role over first")
    member = await member_data.identify(node, user)
    mark = int(await node.db.fetch_val("SELECT COALESCE(MAX(seq), 0) FROM activities") or 0)
    sent = await _federate(node, member, await member_data.collect(node, member))
    async with node.db.transaction():
        # Collected again inside the transaction: what they did meanwhile goes too.
        found = await member_data.collect(node, member)
        await member_data.erase(node, member, found, keep_after_seq=mark)
    # The files of their photos go once the rows that named them are gone (a picture another
    # post or profile also shows stays).
    await delete_unused(node, [p.name for post in found.posts for p in photos_of(post)])
    if member.actor is not None:
        await erase_key_when_sent(node, member.actor.id)
    return sent


async def erase_key_when_sent(node: Node, actor_id: str) -> bool:
    """Erase a deleted account's key once nothing it signs is still waiting to be delivered.
    The worker calls this after each delivery; returns True when the key was erased now."""
    gone = await node.db.fetch_one(
        "SELECT key_erased_at FROM gone_actors WHERE actor_id = :i", {"i": actor_id})
    if gone is None or gone["key_erased_at"] is not None:
        return False
    waiting = await node.db.fetch_val(
        "SELECT 1 FROM deliveries WHERE sender_id = :i AND state = 'pending'", {"i": actor_id})
    if waiting:
        return False
    # Together: the actor answers 410 from the moment its key is gone (node/actors.py).
    async with node.db.transaction():
        await node.db.execute(
            "UPDATE actors SET private_key_pem = '', public_key_pem = '' WHERE id = :i",
            {"i": actor_id})
        await node.db.execute(
            "UPDATE gone_actors SET key_erased_at = :t WHERE actor_id = :i",
            {"t": now(), "i": actor_id})
    return True
