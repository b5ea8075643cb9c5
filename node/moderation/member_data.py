"""What belongs to a member, found by identity only.

A member is known by four identifiers: their user id, their `Person` actor's id and URI, and
their email address. A row is theirs when a column that says *who* (author, responder, sender,
follower, owner, recipient...) holds exactly one of those, or when it hangs by id from a row of
theirs (the messages of their response, the deliveries of their activities). Nothing is ever
found by comparing free text: a member called `public`, `%` or someone else's name owns what
their ids own, and nothing more.

The map, table by table (`MAP` below says it for every table; a test fails when the schema
grows a table or a reference to a user that this map does not name):

- Theirs, deleted: their user, memberships, followed topics, notifications, email opt-outs,
  sessions, password resets, suspension, blocks they made, the invitation they used, sign-up
  requests and queued emails for their address, follows from and to their actor, reactions by
  them or on their objects, their local objects, their activities and those about their objects
  (with the deliveries of both), their posts, their responses, and their messages: those in
  their own voice, and those they wrote in their own conversations.
- Theirs, kept without anything personal: their `Person` (the handle is never given to someone
  else; the key signs the `Delete`s, then is erased), and two kinds of shell that keep other
  people's words readable: a post of theirs that others responded to (status withdrawn, no
  title, text or place, no author), and a response of theirs whose conversation holds the other
  side's messages (no name, no message, no user). Pages show these as a deleted account.
- Someone else's, kept as they are: posts, responses and messages of others, even in a
  conversation with the member; needs a coordinator posted for someone without an account (they
  are the organisation's); reports about the member.
- Someone else's, kept with the member forgotten (the column set to NULL): needs and private
  notes they wrote as a coordinator, messages they wrote in another's voice as a coordinator,
  invitations and password resets they started for others, reports they filed or resolved (a
  report about someone's conduct still matters to the others), suspensions and domain blocks
  they made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from node.actors import LocalActor, actor_uri, by_id
from node.context import Node
from node.db import new_id, now

USER, ACTOR, EMAIL = "user id", "actor URI", "email"
DELETE, FORGET = "delete", "forget"
CHUNK = 500


@dataclass(frozen=True)
class Ref:
    """A column that holds exactly one identifier of a member, and what becomes of the row when
    the member goes: DELETE it (it is theirs), or FORGET them (the row is someone else's and only
    recorded the member's part in it: the column is set to NULL)."""
    table: str
    column: str
    key: str
    action: str


REFS = (
    Ref("memberships", "user_id", USER, DELETE),
    Ref("follow_preferences", "user_id", USER, DELETE),
    Ref("notifications", "user_id", USER, DELETE),
    Ref("email_opt_outs", "user_id", USER, DELETE),
    Ref("match_notices", "user_id", USER, DELETE),
    Ref("match_preferences", "user_id", USER, DELETE),
    Ref("web_sessions", "user_id", USER, DELETE),
    Ref("password_resets", "user_id", USER, DELETE),
    Ref("suspensions", "user_id", USER, DELETE),
    Ref("actor_blocks", "owner", USER, DELETE),
    Ref("invitations", "used_by", USER, DELETE),
    Ref("invitations", "email", EMAIL, DELETE),
    Ref("signup_requests", "email", EMAIL, DELETE),
    Ref("email_queue", "recipient", EMAIL, DELETE),
    Ref("follows", "follower_uri", ACTOR, DELETE),
    Ref("follows", "followee_uri", ACTOR, DELETE),
    Ref("reactions", "actor_uri", ACTOR, DELETE),
    Ref("actor_blocks", "actor_uri", ACTOR, DELETE),
    Ref("inbox_log", "actor_uri", ACTOR, DELETE),
    # Applied after their own posts, responses and messages are gone: what is left is others'.
    Ref("posts", "author_user_id", USER, FORGET),
    Ref("beneficiary_notes", "written_by", USER, FORGET),
    Ref("conversation_messages", "sender_user_id", USER, FORGET),
    Ref("invitations", "created_by", USER, FORGET),
    Ref("password_resets", "created_by", USER, FORGET),
    Ref("reports", "reporter_user_id", USER, FORGET),
    Ref("reports", "resolved_by", USER, FORGET),
    Ref("report_reporters", "reporter_user_id", USER, FORGET),
    Ref("suspensions", "created_by", USER, FORGET),
    Ref("domain_blocks", "created_by", USER, FORGET),
)

# Every table of the schema, and what a member has there.
MAP: dict[str, str] = {
    "users": "their account: deleted",
    "actors": "their Person: kept without name, summary or icon; key erased once sent",
    "gone_actors": "the record that their Person is deleted: added",
    "memberships": "theirs (user_id): deleted",
    "follow_preferences": "theirs (user_id): deleted",
    "notifications": "theirs (user_id): deleted; others' about their posts or responses: "
                     "deleted",
    "email_opt_outs": "theirs (user_id): deleted",
    "match_notices": "theirs (user_id): deleted; others' that name their posts: kept as ids, "
                     "never shown once the post is gone",
    "match_preferences": "theirs (user_id): deleted",
    "web_sessions": "theirs (user_id): deleted",
    "password_resets": "theirs (user_id): deleted; started by them for others: forgotten",
    "signup_requests": "for their address: deleted",
    "email_queue": "to their address: deleted",
    "invitations": "the one they used, or for their address: deleted; made by them: forgotten",
    "suspensions": "theirs: deleted; made by them: forgotten",
    "domain_blocks": "made by them: forgotten",
    "actor_blocks": "by them or of them: deleted",
    "reports": "filed or resolved by them: forgotten; about them: kept",
    "report_reporters": "their part in a report: forgotten",
    "follows": "from or to their actor: deleted",
    "reactions": "by them or on their objects: deleted",
    "objects": "attributed to them, or their posts' notes: deleted",
    "activities": "by them or about their objects: deleted (the Deletes stay to be sent)",
    "deliveries": "of those activities: deleted",
    "outbox_counts": "counts of public activities, kept by triggers with `activities`: theirs "
                     "goes with their last one",
    "inbox_log": "sent as them: deleted; others' activities: kept",
    "posts": "theirs: deleted, or a shell when others responded (their other languages and "
             "photos gone, the photo files deleted); needs for someone else: author forgotten",
    "beneficiary_notes": "of their posts: deleted; written by them for a need: forgotten",
    "responses": "theirs: deleted, or a shell when the other side wrote; others': kept",
    "conversation_messages": "in their voice or written by them in their conversations: "
                             "deleted; written as a coordinator in another's voice: forgotten",
    "remote_actors": "other servers' actors: nothing of a member",
    "cache_generations": "change counters for caches: nothing of a member",
    "backfills": "fetches of followed remote actors' outboxes: nothing of a member",
    "hosts": "other servers' health: nothing of a member",
    "relays": "relays the node subscribed to: nothing of a member",
    "desk_counters": "the last desk reference of each organisation: nothing of a member",
    "schema_migrations": "nothing of a member",
}
# Columns that refer to organisations only (a member is never there).
ORGANISATION_COLUMNS = {("memberships", "org_id"), ("invitations", "org_id"),
                        ("signup_requests", "org_id"), ("users", "actor_id")}
# Columns whose names look like a person's but hold a worker's id (queues' leases).
WORKER_COLUMNS = {("deliveries", "claimed_by"), ("inbox_log", "claimed_by"),
                  ("email_queue", "claimed_by"), ("backfills", "claimed_by")}
# References handled in code below rather than through REFS.
HANDLED_IN_CODE = {
    ("users", "id"), ("actors", "id"), ("gone_actors", "actor_id"),
    ("posts", "attributed_to"), ("responses", "responder_user_id"),
    ("responses", "responder_uri"), ("responses", "post_id"),
    ("conversation_messages", "response_id"), ("conversation_messages", "sender_uri"),
    ("beneficiary_notes", "post_id"), ("objects", "attributed_to"), ("objects", "uri"),
    ("activities", "actor_uri"), ("activities", "object_uri"), ("deliveries", "sender_id"),
    ("deliveries", "activity_uri"), ("reactions", "object_uri"),
    ("notifications", "response_id"), ("report_reporters", "reporter"),
}


@dataclass(frozen=True)
class Member:
    user_id: str
    email: str
    actor: LocalActor | None
    uri: str | None

    def value(self, key: str) -> str | None:
        return {USER: self.user_id, ACTOR: self.uri, EMAIL: self.email}[key]


@dataclass
class Belongings:
    """The member's rows that need more than one column to find (see the module's map)."""
    posts: list[dict] = field(default_factory=list)
    post_shells: set[str] = field(default_factory=set)  # ids of their posts others answered
    responses: list[dict] = field(default_factory=list)
    response_shells: set[str] = field(default_factory=set)
    answers: list[str] = field(default_factory=list)  # ids of others' responses to their posts
    messages: list[int] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)  # their other local objects

    @property
    def object_uris(self) -> list[str]:
        return [p["uri"] for p in self.posts] + [n["uri"] for n in self.notes]

    @property
    def conversations(self) -> list[str]:
        """Their responses and others' responses to their posts: in each, one side is theirs."""
        return [r["id"] for r in self.responses] + self.answers

    def urls(self, node: Node) -> set[str]:
        """The pages of their posts and conversations, as a notification links to them."""
        paths = [f"/posts/{p['id']}" for p in self.posts]
        paths += [f"/posts/{p['id']}/responses" for p in self.posts]
        paths += [f"/responses/{r}" for r in self.conversations]
        return set(paths) | {node.url(p) for p in paths}


async def identify(node: Node, user: dict[str, Any]) -> Member:
    actor = await by_id(node, user["actor_id"]) if user.get("actor_id") else None
    if actor is not None and actor.kind != "Person":
        actor = None  # an organisation is never a member's own
    return Member(user["id"], user["email"], actor,
                  actor_uri(node, actor) if actor is not None else None)


def _chunks(values: Sequence[Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """`:k0, :k1...` and their values, CHUNK at a time (the number of bound values is limited)."""
    for start in range(0, len(values), CHUNK):
        part = values[start:start + CHUNK]
        params = {f"k{i}": v for i, v in enumerate(part)}
        yield ", ".join(f":{k}" for k in params), params


async def _rows_in(node: Node, select: str, column: str, values: Sequence[Any]) -> list[dict]:
    found: list[dict] = []
    for marks, params in _chunks(list(values)):
        found += await node.db.fetch_all(f"{select} WHERE {column} IN ({marks})", params)
    return found


async def _execute_in(node: Node, statement: str, column: str, values: Sequence[Any],
                      extra: dict[str, Any] | None = None) -> None:
    for marks, params in _chunks(list(values)):
        await node.db.execute(f"{statement} WHERE {column} IN ({marks})",
                              {**params, **(extra or {})})


def _whose(member: Member, user_column: str, actor_column: str) -> tuple[str, dict[str, Any]]:
    if member.uri is None:
        return f"{user_column} = :u", {"u": member.user_id}
    return f"({user_column} = :u OR {actor_column} = :a)", {"u": member.user_id, "a": member.uri}


async def collect(node: Node, member: Member) -> Belongings:
    found = Belongings()
    where, params = _whose(member, "author_user_id", "attributed_to")
    # A need posted for someone without an account is the organisation's, not the writer's.
    found.posts = await node.db.fetch_all(
        f"SELECT * FROM posts WHERE remote = 0 AND proxied = 0 AND {where} ORDER BY id", params)
    where, params = _whose(member, "responder_user_id", "responder_uri")
    found.responses = await node.db.fetch_all(
        f"SELECT * FROM responses WHERE {where} ORDER BY id", params)
    own = {r["id"] for r in found.responses}
    answers = [r for r in await _rows_in(node, "SELECT id, post_id FROM responses", "post_id",
                                         [p["id"] for p in found.posts]) if r["id"] not in own]
    found.post_shells = {r["post_id"] for r in answers}
    found.answers = sorted(r["id"] for r in answers)
    # Their conversations: their responses, and others' responses to their posts. There, a
    # message in their voice or written by them is theirs; the other side's stays.
    messages = await _rows_in(
        node, "SELECT id, response_id, sender_uri, sender_user_id FROM conversation_messages",
        "response_id", found.conversations)
    theirs = {m["id"] for m in messages
              if m["sender_user_id"] == member.user_id or (member.uri and
                                                           m["sender_uri"] == member.uri)}
    if member.uri:
        theirs |= {m["id"] for m in await node.db.fetch_all(
            "SELECT id FROM conversation_messages WHERE sender_uri = :a", {"a": member.uri})}
    found.messages = sorted(theirs)
    found.response_shells = {m["response_id"] for m in messages
                             if m["id"] not in theirs and m["response_id"] in own}
    if member.uri:
        post_uris = {p["uri"] for p in found.posts}
        found.notes = [n for n in await node.db.fetch_all(
            "SELECT uri, deleted FROM objects WHERE local = 1 AND attributed_to = :a "
            "ORDER BY uri", {"a": member.uri}) if n["uri"] not in post_uris]
    return found


async def activities_of(node: Node, member: Member, found: Belongings,
                        keep_after_seq: int) -> list[str]:
    """Their activities and those about their objects (an organisation's Announce of their
    post), but not the Deletes made since `keep_after_seq`: those are still to be sent."""
    rows: list[dict] = []
    keep = "AND NOT (seq > :mark AND type = 'Delete')"
    if member.uri:
        rows += await node.db.fetch_all(
            f"SELECT uri FROM activities WHERE actor_uri = :a {keep}",
            {"a": member.uri, "mark": keep_after_seq})
    for marks, params in _chunks(found.object_uris):
        rows += await node.db.fetch_all(
            f"SELECT uri FROM activities WHERE object_uri IN ({marks}) {keep}",
            {**params, "mark": keep_after_seq})
    return sorted({r["uri"] for r in rows})


async def notifications_about(node: Node, member: Member, found: Belongings,
                              columns: dict[str, set[str]]) -> list[int]:
    """Other members' notifications about the member's posts and conversations (they carry the
    post's title, the member's name, an excerpt of their words): by the conversation's id, or
    the exact address of the page they link to."""
    urls = found.urls(node)
    responses = set(found.conversations)
    with_response = "response_id" in columns.get("notifications", set())
    rows = await node.db.fetch_all(
        "SELECT id, payload" + (", response_id" if with_response else "")
        + " FROM notifications WHERE user_id <> :u", {"u": member.user_id})
    found_ids = []
    for row in rows:
        if row.get("response_id") in responses:
            found_ids.append(row["id"])
            continue
        try:
            url = json.loads(row["payload"]).get("url")
        except (ValueError, AttributeError):
            continue
        if isinstance(url, str) and url in urls:
            found_ids.append(row["id"])
    return found_ids


async def schema(node: Node) -> dict[str, set[str]]:
    """Every table of the schema and all its columns."""
    if node.db.is_postgres:
        rows = await node.db.fetch_all(
            "SELECT table_name AS t, column_name AS c FROM information_schema.columns "
            "WHERE table_schema = current_schema()")
    else:
        rows = []
        for table in await node.db.fetch_all(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%'"):
            rows += [{"t": table["name"], "c": c["name"]} for c in await node.db.fetch_all(
                f'PRAGMA table_info("{table["name"]}")')]
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["t"], set()).add(row["c"])
    return found


# What a shell keeps of the member's post or response: its id, kind, dates and the others'
# words that hang on it; every column below is emptied.
POST_SHELL: dict[str, Any] = {
    "author_user_id": None, "status": "withdrawn", "title": "", "description_md": "",
    "description_html": "", "neighbourhood": "", "latitude": None, "longitude": None,
    "content_warning": "", "translations": "", "attachments": ""}
RESPONSE_SHELL: dict[str, Any] = {"responder_user_id": None, "responder_name": "",
                                  "message_html": ""}


def _shell_update(table: str, values: dict[str, Any], columns: dict[str, set[str]]) -> str:
    present = [c for c in values if c in columns.get(table, set())]
    if table == "posts":
        present.append("updated_at")
    return f"UPDATE {table} SET " + ", ".join(f"{c} = :{c}" for c in present)


async def erase(node: Node, member: Member, found: Belongings, keep_after_seq: int) -> None:
    """Remove or forget everything of the member's (run inside one transaction)."""
    columns = await schema(node)
    db = node.db
    await _execute_in(node, "DELETE FROM conversation_messages", "id", found.messages)
    shells = [r["id"] for r in found.responses if r["id"] in found.response_shells]
    gone = [r["id"] for r in found.responses if r["id"] not in found.response_shells]
    await _execute_in(node, "DELETE FROM responses", "id", gone)
    await _execute_in(node, _shell_update("responses", RESPONSE_SHELL, columns), "id", shells,
                      RESPONSE_SHELL)
    await _execute_in(node, "DELETE FROM notifications", "id",
                      await notifications_about(node, member, found, columns))
    post_ids = [p["id"] for p in found.posts]
    await _execute_in(node, "DELETE FROM beneficiary_notes", "post_id", post_ids)
    await _execute_in(node, "DELETE FROM posts", "id",
                      [i for i in post_ids if i not in found.post_shells])
    await _execute_in(node, _shell_update("posts", POST_SHELL, columns), "id",
                      sorted(found.post_shells), {**POST_SHELL, "updated_at": now()})
    activities = await activities_of(node, member, found, keep_after_seq)
    await _execute_in(node, "DELETE FROM deliveries", "activity_uri", activities)
    await _execute_in(node, "DELETE FROM activities", "uri", activities)
    await _execute_in(node, "DELETE FROM reactions", "object_uri", found.object_uris)
    await _execute_in(node, "DELETE FROM objects", "uri", found.object_uris)
    if member.uri:
        await db.execute("DELETE FROM objects WHERE attributed_to = :a", {"a": member.uri})
    if {"reporter", "reporter_user_id"} <= columns.get("report_reporters", set()):
        # `reporter` is part of the key: an opaque value takes the member's id's place.
        await db.execute("UPDATE report_reporters SET reporter = :anon WHERE reporter = :u",
                         {"anon": f"deleted:{new_id()}", "u": member.user_id})
    for ref in REFS:
        value = member.value(ref.key)
        if value is None or ref.column not in columns.get(ref.table, set()):
            continue
        if ref.action == DELETE:
            await db.execute(f'DELETE FROM "{ref.table}" WHERE "{ref.column}" = :v', {"v": value})
        else:
            await db.execute(f'UPDATE "{ref.table}" SET "{ref.column}" = NULL '
                             f'WHERE "{ref.column}" = :v', {"v": value})
    await db.execute("DELETE FROM users WHERE id = :i", {"i": member.user_id})
    if member.actor is not None:
        await db.execute(
            "UPDATE actors SET name = '', summary = '', icon_url = NULL, discoverable = 0 "
            "WHERE id = :i", {"i": member.actor.id})
        await db.execute(
            "INSERT INTO gone_actors (actor_id, deleted_at) VALUES (:i, :t) "
            "ON CONFLICT (actor_id) DO NOTHING", {"i": member.actor.id, "t": now()})


# --- the export ----------------------------------------------------------------------------

# Never exported: what opens an account or signs for it.
SECRET_COLUMNS = {"password_hash", "private_key_pem", "token", "token_hash", "id_hash"}
SECRET_TABLE_COLUMNS = {("web_sessions", "data")}


async def rows_of(node: Node, member: Member) -> dict[str, list[dict]]:
    """The member's own rows, table by table: what `erase` deletes or turns into a shell, and
    the reports they filed. Others' rows (even in a conversation with them) are not exported."""
    columns = await schema(node)
    found = await collect(node, member)
    tables: dict[str, list[dict]] = {
        "users": await node.db.fetch_all("SELECT * FROM users WHERE id = :i",
                                         {"i": member.user_id}),
        "posts": found.posts,
        "responses": found.responses,
        "conversation_messages": await _rows_in(node, "SELECT * FROM conversation_messages",
                                                "id", found.messages),
        "objects": await _rows_in(node, "SELECT * FROM objects", "uri", found.object_uris),
    }
    if member.actor is not None:
        tables["actors"] = await node.db.fetch_all("SELECT * FROM actors WHERE id = :i",
                                                   {"i": member.actor.id})
        tables["activities"] = await node.db.fetch_all(
            "SELECT * FROM activities WHERE actor_uri = :a ORDER BY seq", {"a": member.uri})
    wanted = [r for r in REFS if r.action == DELETE] + [
        Ref("reports", "reporter_user_id", USER, DELETE),
        Ref("report_reporters", "reporter_user_id", USER, DELETE)]
    for ref in wanted:
        value = member.value(ref.key)
        if value is None or ref.column not in columns.get(ref.table, set()):
            continue
        rows = await node.db.fetch_all(
            f'SELECT * FROM "{ref.table}" WHERE "{ref.column}" = :v', {"v": value})
        known = tables.setdefault(ref.table, [])
        known += [r for r in rows if r not in known]
    for table, rows in tables.items():
        for row in rows:
            for column in list(row):
                if column in SECRET_COLUMNS or (table, column) in SECRET_TABLE_COLUMNS:
                    row[column] = "(not exported)"
    return {table: rows for table, rows in tables.items() if rows}
