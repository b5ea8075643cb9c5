"""A member's own data: a JSON export of everything the node keeps about them, and deletion of
the account. Deletion federates `Delete` of the member's actor (signed with the actor's key, so
the key is kept until those deliveries are done, then erased) and removes every row that holds
the member's id, actor, email or name, in every table (the schema grows; the search does too).
"""

from __future__ import annotations

import json
from typing import Any

from activitypub.vocab import AS_CONTEXT, PUBLIC
from node.actors import LocalActor, actor_uri, by_id
from node.context import Node
from node.db import new_id, now
from node.moderation.domains import ModerationError
from outbox.publish import publish

# Rows kept while the account's `Delete` is on its way: the activity, its delivery jobs, and the
# actor row (scrubbed below) whose key signs them.
KEEP_TABLES = {"schema_migrations", "deliveries", "gone_actors"}
EXPORT_SKIP_COLUMNS = {"password_hash", "private_key_pem"}


async def table_columns(node: Node) -> dict[str, list[str]]:
    """Every table of the schema with its text-like columns."""
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


def _identifiers(user: dict[str, Any], actor: LocalActor | None, uri: str | None) -> list[str]:
    values = [user["id"], user["email"]]
    if actor is not None and uri:
        values += [actor.id, uri]
    return [v for v in values if v]


async def _rows_about(node: Node, values: list[str]) -> dict[str, list[dict]]:
    """Rows of every table with one of `values` in a text column."""
    out: dict[str, list[dict]] = {}
    params = {f"v{i}": v for i, v in enumerate(values)}
    marks = ", ".join(f":{k}" for k in params)
    for table, columns in (await table_columns(node)).items():
        if not columns or table == "schema_migrations":
            continue
        where = " OR ".join(f'"{c}" IN ({marks})' for c in columns)
        rows = await node.db.fetch_all(f'SELECT * FROM "{table}" WHERE {where}', params)
        if rows:
            out[table] = rows
    return out


async def _user(node: Node, user_id: str) -> dict[str, Any]:
    user = await node.db.fetch_one("SELECT * FROM users WHERE id = :i", {"i": user_id})
    if user is None:
        raise ModerationError("no such account")
    return user


async def export(node: Node, user_id: str) -> dict[str, Any]:
    """Everything stored about the member, table by table (secrets left out)."""
    user = await _user(node, user_id)
    actor = await by_id(node, user["actor_id"]) if user.get("actor_id") else None
    uri = actor_uri(node, actor) if actor else None
    tables = await _rows_about(node, _identifiers(user, actor, uri))
    for rows in tables.values():
        for row in rows:
            for secret in EXPORT_SKIP_COLUMNS & set(row):
                row[secret] = "(not exported)"
            for key, value in row.items():
                if isinstance(value, str) and value[:1] in "{[":
                    try:
                        row[key] = json.loads(value)
                    except ValueError:
                        pass
    return {"exported_at": now(), "node": node.settings.base_url, "actor": uri,
            "tables": tables}


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


async def _purge(node: Node, fks: list[ForeignKey], table: str, where: str,
                 params: dict[str, Any], depth: int = 0) -> None:
    """Delete rows, and first the rows of other tables that point at them (a response to a
    post being erased goes with it): no foreign key is left dangling, on either dialect."""
    if depth > 8:
        raise ModerationError("the data nests too deeply to be deleted safely")
    for child, child_col, parent, parent_col in fks:
        if parent != table or child == table or child in KEEP_TABLES:
            continue
        rows = await node.db.fetch_all(
            f'SELECT "{parent_col}" AS v FROM "{table}" WHERE {where}', params)
        values = {f"p{depth}_{i}": r["v"] for i, r in enumerate(rows) if r["v"] is not None}
        if values:
            marks = ", ".join(f":{k}" for k in values)
            await _purge(node, fks, child, f'"{child_col}" IN ({marks})', values, depth + 1)
    await node.db.execute(f'DELETE FROM "{table}" WHERE {where}', params)


def _matching(columns: list[str], values: list[str]) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {f"v{i}": v for i, v in enumerate(values)}
    marks = ", ".join(f":{k}" for k in params)
    return " OR ".join(f'"{c}" IN ({marks})' for c in columns), params


async def delete_account(node: Node, user_id: str) -> int:
    """Delete the member's account; returns how many inboxes the `Delete` goes to."""
    user = await _user(node, user_id)
    if user["role"] == "admin":
        raise ModerationError("an admin account cannot delete itself; hand the role over first")
    actor = await by_id(node, user["actor_id"]) if user.get("actor_id") else None
    uri = actor_uri(node, actor) if actor else None
    sent = 0
    delete_id = None
    if actor is not None and uri:
        delete_id = node.url(f"/activities/{new_id()}")
        known = await node.db.fetch_all(
            "SELECT DISTINCT COALESCE(r.shared_inbox, r.inbox) AS inbox FROM remote_actors r "
            "JOIN follows f ON r.uri IN (f.follower_uri, f.followee_uri) "
            "WHERE :a IN (f.follower_uri, f.followee_uri)", {"a": uri})
        activity = {
            "@context": AS_CONTEXT, "id": delete_id, "type": "Delete", "actor": uri,
            "object": uri, "to": [PUBLIC], "cc": [f"{uri}/followers"],
        }
        # Stored and queued before anything is removed: the followers are still known.
        sent = await publish(node, actor, activity, extra_inboxes=[r["inbox"] for r in known])
    values = _identifiers(user, actor, uri)
    if user.get("display_name"):
        values.append(user["display_name"])
    columns = await table_columns(node)
    fks = await foreign_keys(node)
    async with node.db.transaction():
        for table, cols in columns.items():
            if table in KEEP_TABLES | {"users", "actors"} or not cols:
                continue
            where, params = _matching(cols, values)
            if table == "activities" and delete_id:
                where, params = f"({where}) AND uri <> :keep", {**params, "keep": delete_id}
            await _purge(node, fks, table, where, params)
        await _purge(node, fks, "users", "id = :i", {"i": user_id})
        if actor is not None:
            await node.db.execute(
                "UPDATE actors SET name = '', summary = '', icon_url = NULL, discoverable = 0 "
                "WHERE id = :i", {"i": actor.id})
            await node.db.execute(
                "INSERT INTO gone_actors (actor_id, deleted_at) VALUES (:i, :t) "
                "ON CONFLICT (actor_id) DO NOTHING", {"i": actor.id, "t": now()})
    if actor is not None:
        await erase_key_when_sent(node, actor.id)
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
    await node.db.execute(
        "UPDATE actors SET private_key_pem = '', public_key_pem = '' WHERE id = :i",
        {"i": actor_id})
    await node.db.execute(
        "UPDATE gone_actors SET key_erased_at = :t WHERE actor_id = :i",
        {"t": now(), "i": actor_id})
    return True
