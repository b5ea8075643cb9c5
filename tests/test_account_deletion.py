"""Deleting an account erases the member's rows, found by identity, and nobody else's.

One node (the app on a real uvicorn socket at 127.0.0.110, its delivery worker running) holds
members whose display names are words that fill every table — `public`, `open`, `Note`,
`accepted` —, a member named like the coordinator, an empty name, and the LIKE metacharacters
`%` and `_`; everyone's posts, responses and messages are full of those words. A peer at 127.0.0.111
follows the organisation and every member, answers one post and has a need a member answered.

Each member in turn deletes their account through the web page, as a person does (signed in,
CSRF token, password, confirmation). Then, comparing every table before and after:
- every row of someone else is byte-identical, except a column that named the member, now NULL;
- every row of the member is gone, or is a shell without anything personal where others' words
  hang on it; no column anywhere holds their user id or email, their actor URI stays only in the
  Deletes still to send, their kept Person row and the shells;
- the peer received one signed `Delete` (Tombstone) per post and note of theirs it had, and the
  `Delete` of their actor, each verified against the key the node published.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from activitypub.signatures import parse_signature
from node.accounts.invitations import accept_invitation, create_invitation
from node.accounts.members import NewMember, create_member
from node.accounts.passwords import start_reset_for
from node.actors import by_id, organisations
from node.auth import hash_password
from node.context import Node
from node.follows import record_follow
from node.moderation import member_data
from node.moderation.account_data import export
from node.moderation.blocks import block_actor
from node.moderation.reports import file_report
from node.notes import publish_note
from node.posts import responses, service
from node.remote_actors import fetch_actor
from tests.conftest import serve, until
from tests.peers import RemotePeer

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOST, PEER_HOST = "127.0.0.110", "127.0.0.111"
PASSWORD = "a long enough password"
WORDS = "public, open, Note, accepted, Amina Z, 100% sure, a_b"
# (handle, display name): names that are also values in other people's rows.
MEMBERS = [("pub", "public"), ("opn", "open"), ("notee", "Note"), ("acc", "accepted"),
           ("amina", "Amina Z"), ("nobody", ""), ("pct", "%"), ("und", "_")]
# Named like a member: that member's going must not touch the coordinator's rows.
COORDINATOR = ("coord", "Amina Z")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Caches of other servers and of the node itself: nobody's data, refreshed by deliveries;
# outbox counts follow the activities (tests/test_outbox_paging.py checks them).
NOT_COMPARED = {"hosts", "remote_actors", "schema_migrations", "outbox_counts"}


def csrf(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text[:300]
    return match.group(1)


@dataclass
class World:
    node: Node
    base: str
    peer: RemotePeer
    users: dict[str, str] = field(default_factory=dict)  # handle -> user id


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served(module_database):
    tmp, url = module_database
    async with serve(tmp, url, HOST) as pair:
        yield pair


@functools.cache
def password_hash() -> str:
    """One argon2 hash for all the members (a hash costs about a second on a busy machine)."""
    return hash_password(PASSWORD)


async def user_row(node: Node, user_id: str) -> dict:
    return await node.db.fetch_one("SELECT * FROM users WHERE id = :i", {"i": user_id})


async def new_post(node: Node, user_id: str, title: str, kind: str = "offer",
                   **form: str) -> dict:
    user = await user_row(node, user_id)
    fields = service.check(node, {"category": "food", "title": title, "description": WORDS,
                                  "neighbourhood": "Saint-Gilles", **form}, ["fr"], kind, user)
    return await service.create_post(node, user, fields)


async def settled(node: Node) -> bool:
    return not await node.db.fetch_val("SELECT 1 FROM deliveries WHERE state = 'pending'")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(served):
    node, base = served
    peer = RemotePeer(PEER_HOST)
    friend = peer.add_actor("friend")
    refuge = peer.add_actor("refuge", kind="Group")
    await peer.astart()
    w = World(node, base, peer)
    org = (await organisations(node))[0]
    org_uri = f"{base}/groups/{org.username}"
    handle, name = COORDINATOR
    w.users[handle] = await create_member(node, NewMember(
        f"{handle}@example.org", PASSWORD, username=handle, display_name=name), org=org,
        role="coordinator", password_hash=password_hash())
    for handle, name in MEMBERS:
        form = NewMember(f"{handle}@example.org", PASSWORD, username=handle,
                         display_name=name or handle)
        if handle == "acc":  # came through an invitation: the used invitation is theirs
            invitation = await create_invitation(node, org, form.email, "member",
                                                 await user_row(node, w.users["coord"]))
            w.users[handle] = await accept_invitation(node, invitation.token, form)
        else:
            w.users[handle] = await create_member(node, form, org=org,
                                                  password_hash=password_hash())
    await node.db.execute("UPDATE users SET display_name = '' WHERE id = :i",
                          {"i": w.users["nobody"]})
    await node.db.execute("UPDATE actors SET name = '' WHERE username = 'nobody'")
    # Everyone follows the category of every post: new posts become notifications.
    for user_id in w.users.values():
        await node.db.execute("INSERT INTO follow_preferences (user_id, kind, value) "
                              "VALUES (:u, 'category', 'food')", {"u": user_id})

    # The peer follows the organisation and every member; the organisation follows its Group.
    await fetch_actor(node, friend.uri)
    for handle in ["coord"] + [h for h, _ in MEMBERS]:
        await record_follow(node, friend.uri, f"{base}/users/{handle}", peer.activity_id(),
                            "accepted")
    await record_follow(node, friend.uri, org_uri, peer.activity_id(), "accepted")
    await record_follow(node, org_uri, refuge.uri, peer.activity_id(), "accepted")
    await invitation_for_someone_else(node, org, w)

    handles = [h for h, _ in MEMBERS]
    names = dict(MEMBERS)
    posts = {}
    for i, handle in enumerate(handles):
        uid = w.users[handle]
        # Titles are other members' names; every text holds every name.
        posts[handle] = await new_post(node, uid, names[handles[(i + 1) % len(handles)]] or "x")
        await new_post(node, uid, f"{names[handle]} only here", visibility="local")
        if i % 2:
            await new_post(node, uid, f"{WORDS} for followers", visibility="followers")
        actor = await by_id(node, (await user_row(node, uid))["actor_id"])
        await publish_note(node, actor, f"{names[handle]}: {WORDS}")
    need = await new_post(node, w.users["coord"], "public", kind="need", proxied="1",
                          beneficiary_notes=f"Mme public, ask Amina Z; {WORDS}")

    for i, handle in enumerate(handles):
        uid = w.users[handle]
        author = handles[(i + 1) % len(handles)]
        user = await user_row(node, uid)
        post = posts[author]
        answer = await responses.respond(node, user, post, f"I can help. {names[handle]} {WORDS}")
        if i % 3 != 2:  # the author writes back in most conversations
            await responses.send_message(node, await user_row(node, w.users[author]), post,
                                         answer, f"Thanks {names[handle]}! {WORDS}")
        if i % 3 == 0:
            await responses.send_message(node, user, post, answer, f"{WORDS} see you")
        on_need = await responses.respond(node, user, need, f"For the need: {WORDS}")
        if i % 2:
            await responses.send_message(node, await user_row(node, w.users["coord"]), need,
                                         on_need, f"Coordination thanks {names[handle]}")
        await block_actor(node, uid, f"{peer.base}/users/pest")
        # A password reset link the coordinator made for them (migration 10).
        await start_reset_for(node, await user_row(node, w.users["coord"]), uid)
    await file_report(node, w.users["pub"], posts["opn"]["uri"], f"{WORDS}: not right")
    await file_report(node, w.users["opn"], posts["pub"]["uri"], "the member `public` again")

    # A remote answer to pub's post, and a remote need that opn answered (its author replied).
    reply = {"id": f"{peer.base}/statuses/1", "type": "Note", "attributedTo": friend.uri,
             "inReplyTo": posts["pub"]["uri"], "content": f"<p>{WORDS}</p>",
             "to": [f"{base}/users/pub"]}
    from node.posts.incoming import reply_received
    assert await reply_received(node, friend.uri, reply)
    remote = await remote_need(node, refuge.uri, peer.base)
    answer = await responses.respond(node, await user_row(node, w.users["opn"]), remote,
                                     f"open here: {WORDS}")
    await responses.store_message(node, answer["id"], refuge.uri, f"<p>Welcome, {WORDS}</p>",
                                  None, f"{peer.base}/statuses/2")
    await until(lambda: settled(node), 30)
    yield w
    await peer.astop()


async def invitation_for_someone_else(node: Node, org: Any, w: World) -> None:
    """The coordinator invites a newcomer: that invitation is the newcomer's, not theirs."""
    await create_invitation(node, org, "newcomer@example.org", "member",
                            await user_row(node, w.users["coord"]))


async def remote_need(node: Node, refuge: str, peer_base: str) -> dict:
    """A need of the peer's organisation, as the node keeps it."""
    row = {"id": "remote-need", "uri": f"{peer_base}/posts/9", "org_uri": refuge,
           "attributed_to": refuge, "kind": "need", "category": "food",
           "title": "open public Note", "remote": 1, "origin_host": peer_base.split("//")[1],
           "url": f"{peer_base}/posts/9", "created_at": time.time(), "updated_at": time.time()}
    await node.db.execute(
        f"INSERT INTO posts ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)
    return await node.db.fetch_one("SELECT * FROM posts WHERE id = 'remote-need'")


# --- looking at every table -------------------------------------------------------------------

async def primary_keys(node: Node) -> dict[str, list[str]]:
    if node.db.is_postgres:
        rows = await node.db.fetch_all(
            "SELECT tc.table_name AS t, kcu.column_name AS c FROM "
            "information_schema.table_constraints tc JOIN information_schema.key_column_usage "
            "kcu ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = "
            "kcu.table_schema WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = "
            "current_schema() ORDER BY kcu.ordinal_position")
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["t"], []).append(row["c"])
        return found
    found = {}
    for table in await member_data.schema(node):
        info = await node.db.fetch_all(f'PRAGMA table_info("{table}")')
        found[table] = [c["name"] for c in sorted(info, key=lambda c: c["pk"]) if c["pk"]]
    return found


Snapshot = dict[str, dict[tuple, dict]]


async def snapshot(node: Node) -> Snapshot:
    keys = await primary_keys(node)
    out: Snapshot = {}
    for table in await member_data.schema(node):
        if table in NOT_COMPARED:
            continue
        rows = await node.db.fetch_all(f'SELECT * FROM "{table}"')
        if table == "web_sessions":  # a visitor who is not signed in is nobody's data
            rows = [r for r in rows if r.get("user_id")]
        out[table] = {tuple(r[c] for c in keys[table]): r for r in rows}
    return out


@dataclass
class Theirs:
    """The member's identifiers, and their rows as found by those identifiers beforehand."""
    user_id: str
    email: str
    actor_id: str
    uri: str
    posts: set[str]
    post_uris: set[str]
    responses: set[str]
    conversations: set[str]
    notes: set[str]
    pages: set[str]
    activities: set[str] = field(default_factory=set)

    @property
    def objects(self) -> set[str]:
        return self.post_uris | self.notes

    def owns(self, table: str, row: dict) -> bool:
        """The row is the member's, by an identifier in a column that says whose it is."""
        u, a = self.user_id, self.uri
        if table == "users":
            return row["id"] == u
        if table == "actors":
            return row["id"] == self.actor_id
        if table == "posts":
            return row["id"] in self.posts
        if table == "responses":
            return row["id"] in self.responses
        if table == "conversation_messages":
            return row["sender_uri"] == a or (row["sender_user_id"] == u
                                              and row["response_id"] in self.conversations)
        if table == "beneficiary_notes":
            return row["post_id"] in self.posts
        if table == "objects":
            return row["attributed_to"] == a or row["uri"] in self.objects
        if table == "activities":
            return row["actor_uri"] == a or row["object_uri"] in self.objects
        if table == "deliveries":
            return row["activity_uri"] in self.activities
        if table == "follows":
            return a in (row["follower_uri"], row["followee_uri"])
        if table == "reactions":
            return row["actor_uri"] == a or row["object_uri"] in self.objects
        if table == "notifications":
            url = json.loads(row["payload"]).get("url")
            return row["user_id"] == u or url in self.pages or row.get(
                "response_id") in self.conversations
        if table == "invitations":
            return row["used_by"] == u or row["email"] == self.email
        if table == "actor_blocks":
            return row["owner"] == u or row["actor_uri"] == a
        if table == "report_reporters":
            return row["reporter"] == u
        if table == "cache_generations":  # their actor and outbox changed: caches learn it
            return row["name"] in ("local_actors", "outbox")
        return row.get("user_id") == u or row.get("email") == self.email or row.get(
            "recipient") == self.email

    def new_row_allowed(self, table: str, row: dict, added_activities: set[str]) -> bool:
        if table == "gone_actors":
            return row["actor_id"] == self.actor_id
        if table == "activities":
            return row["type"] == "Delete" and (row["actor_uri"] == self.uri
                                                or row["object_uri"] in self.objects)
        if table == "deliveries":
            return row["activity_uri"] in added_activities
        if table == "report_reporters":
            return row["reporter"].startswith("deleted:") and row["reporter_user_id"] is None
        return False


async def identify(w: World, handle: str) -> Theirs:
    node = w.node
    user = await user_row(node, w.users[handle])
    uri = f"{w.base}/users/{handle}"
    posts = await node.db.fetch_all(
        "SELECT id, uri FROM posts WHERE author_user_id = :u AND proxied = 0", {"u": user["id"]})
    own = {r["id"] for r in await node.db.fetch_all(
        "SELECT id FROM responses WHERE responder_user_id = :u", {"u": user["id"]})}
    answers = {r["id"] for r in await node.db.fetch_all(
        "SELECT id FROM responses WHERE post_id IN (SELECT id FROM posts WHERE "
        "author_user_id = :u AND proxied = 0)", {"u": user["id"]})}
    notes = {r["uri"] for r in await node.db.fetch_all(
        "SELECT uri FROM objects WHERE attributed_to = :a AND local = 1", {"a": uri})}
    pages = {f"/posts/{p['id']}" for p in posts} | {f"/posts/{p['id']}/responses"
                                                     for p in posts}
    pages |= {f"/responses/{r}" for r in own | answers}
    post_uris = {p["uri"] for p in posts}
    theirs = Theirs(user["id"], user["email"], user["actor_id"], uri, {p["id"] for p in posts},
                    post_uris, own, own | answers, notes - post_uris,
                    pages | {w.base + p for p in pages})
    theirs.activities = {r["uri"] for r in await node.db.fetch_all(
        "SELECT uri, object_uri FROM activities WHERE actor_uri = :a", {"a": uri})}
    for row in await node.db.fetch_all("SELECT uri, object_uri FROM activities"):
        if row["object_uri"] in theirs.objects:
            theirs.activities.add(row["uri"])
    return theirs


def differences(before: Snapshot, after: Snapshot, theirs: Theirs) -> list[str]:
    """What changed that is not the member's going: each line one wrong row."""
    wrong: list[str] = []
    added_activities = {r["uri"] for k, r in after["activities"].items()
                        if k not in before["activities"]}
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, {}), after.get(table, {})
        for key, row in old.items():
            if key not in new:
                if not theirs.owns(table, row):
                    wrong.append(f"{table}: someone else's row deleted: {row}")
            elif new[key] != row and not theirs.owns(table, row):
                changed = {c for c in row if row[c] != new[key][c]}
                forgotten = all(row[c] == theirs.user_id and new[key][c] is None
                                for c in changed)
                if not forgotten:
                    wrong.append(f"{table}: someone else's row changed in {changed}: {row}")
        for key, row in new.items():
            if key not in old and not theirs.new_row_allowed(table, row, added_activities):
                wrong.append(f"{table}: unexpected new row: {row}")
    return wrong


async def leftovers(node: Node, theirs: Theirs, after: Snapshot) -> list[str]:
    """Every place where one of the member's identifiers is still written, outside the rows
    that keep it on purpose (their Person, the Deletes to send, the shells)."""
    kept = {("actors", theirs.actor_id), ("gone_actors", theirs.actor_id)}
    kept |= {("posts", r["id"]) for r in after["posts"].values() if r["id"] in theirs.posts}
    kept |= {("responses", r["id"]) for r in after["responses"].values()
             if r["id"] in theirs.responses}
    # Others' reports about them stay for the moderators (the reporters' rows).
    kept |= {("reports", r["id"]) for r in after["reports"].values()
             if r["target_actor_uri"] == theirs.uri}
    deletes = {r["uri"] for r in after["activities"].values()
               if theirs.new_row_allowed("activities", r, set())}
    found = []
    for table, rows in after.items():
        for key, row in rows.items():
            on_purpose = (table, key[0]) in kept or (
                table in ("activities", "deliveries")
                and theirs.new_row_allowed(table, row, deletes))
            for column, value in row.items():
                text = str(value)
                for needle in (theirs.user_id, theirs.email):
                    if needle in text:
                        found.append(f"{table}.{column} of {key} holds {needle}")
                for needle in (theirs.uri, theirs.actor_id):
                    if needle in text and not on_purpose:
                        found.append(f"{table}.{column} of {key} holds {needle}")
    return found


# --- the tests ---------------------------------------------------------------------------------

async def test_the_map_names_every_table_and_every_reference_to_a_member(world):
    """A table or a reference to users/actors added to the schema without saying what a
    member has there fails here: deletion and export follow the map, never a search."""
    node = world.node
    columns = await member_data.schema(node)
    assert sorted(set(columns) - set(member_data.MAP)) == [], "add these tables to MAP"
    from node.moderation.account_data import foreign_keys
    covered = {(r.table, r.column) for r in member_data.REFS}
    covered |= (member_data.HANDLED_IN_CODE | member_data.ORGANISATION_COLUMNS
                | member_data.WORKER_COLUMNS)
    named = {(t, c) for t, cols in columns.items() for c in cols
             if c == "user_id" or c.endswith(("_user_id", "_by")) or c == "owner"}
    referring = {(child, col) for child, col, parent, _ in await foreign_keys(node)
                 if parent in ("users", "actors")}
    assert sorted((named | referring) - covered) == [], "say in member_data what these hold"


async def test_the_export_holds_the_members_rows_and_nobody_elses(world):
    node = world.node
    user_id = world.users["pub"]
    data = await export(node, user_id)
    tables = data["tables"]
    assert [r["id"] for r in tables["users"]] == [user_id]
    assert tables["users"][0]["password_hash"] == "(not exported)"
    assert [r["private_key_pem"] for r in tables["actors"]] == ["(not exported)"]
    assert {r["author_user_id"] for r in tables["posts"]} == {user_id}
    assert {r["responder_user_id"] for r in tables["responses"]} == {user_id}
    assert all(m["sender_user_id"] == user_id for m in tables["conversation_messages"])
    assert {n["user_id"] for n in tables["notifications"]} == {user_id}
    assert [i["used_by"] for i in tables.get("invitations", [])] == []
    # Others' posts titled `public` and the need posted for `Mme public` are not theirs.
    others = await node.db.fetch_all(
        "SELECT id FROM posts WHERE title = 'public' AND (author_user_id IS NULL "
        "OR author_user_id <> :u)", {"u": user_id})
    assert others and not {r["id"] for r in others} & {r["id"] for r in tables["posts"]}
    assert "beneficiary_notes" not in tables and "Mme public" not in json.dumps(data)
    # acc's export holds the invitation they used (and not the coordinator's other one).
    acc = (await export(node, world.users["acc"]))["tables"]
    assert [i["email"] for i in acc["invitations"]] == ["acc@example.org"]
    assert acc["invitations"][0]["token"] == "(not exported)"


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/login")
    resp = await client.post("/login", data={
        "email": email, "password": PASSWORD, "csrf_token": csrf(page)})
    assert resp.status_code == 303, resp.text


async def test_others_read_their_conversations_with_a_deleted_account(world):
    """`public` answered open's post (open wrote back) and `_` answered public's post (public
    wrote back). After public goes, both still read their own words, with public shown as a
    deleted account and public's post as a deleted post."""
    node = world.node
    theirs_response = await node.db.fetch_one(
        "SELECT r.id, r.post_id FROM responses r WHERE r.responder_user_id = :u "
        "AND r.post_id IN (SELECT id FROM posts WHERE author_user_id = :o)",
        {"u": world.users["pub"], "o": world.users["opn"]})
    answer = await node.db.fetch_one(
        "SELECT id FROM responses WHERE responder_user_id = :u AND post_id IN "
        "(SELECT id FROM posts WHERE author_user_id = :p)",
        {"u": world.users["und"], "p": world.users["pub"]})
    await delete_and_check(world, "pub")
    async with httpx.AsyncClient(base_url=world.base, headers={"Accept-Language": "fr"},
                                 timeout=20) as client:
        await sign_in(client, "opn@example.org")
        page = (await client.get(f"/responses/{theirs_response['id']}")).text
        assert "Compte supprimé" in page and "Thanks public!" in page
        listing = (await client.get(f"/posts/{theirs_response['post_id']}/responses")).text
        assert "Compte supprimé" in listing
        client.cookies.clear()
        await sign_in(client, "und@example.org")
        page = (await client.get(f"/responses/{answer['id']}")).text
        assert "Annonce supprimée" in page and "I can help. _" in page
        assert "Thanks _!" not in page  # public's own words went with them
        assert "Annonce supprimée" in (await client.get("/posts/mine")).text


# The coordinator goes in the middle: the reset links they made for later members remain.
@pytest.mark.parametrize("handle", [h for h, _ in MEMBERS[1:3]] + [COORDINATOR[0]]
                         + [h for h, _ in MEMBERS[3:]])
async def test_deleting_an_account_removes_theirs_and_keeps_everyone_elses(world, handle):
    await delete_and_check(world, handle)


async def delete_and_check(world: World, handle: str) -> None:
    node, peer = world.node, world.peer
    theirs = await identify(world, handle)
    public_pem = (await node.db.fetch_one("SELECT public_key_pem FROM actors WHERE id = :i",
                                          {"i": theirs.actor_id}))["public_key_pem"]
    federated = {r["uri"] for r in await node.db.fetch_all(
        "SELECT uri FROM posts WHERE id IN (SELECT id FROM posts WHERE author_user_id = :u "
        "AND proxied = 0) AND visibility <> 'local' AND status NOT IN ('withdrawn', 'expired')",
        {"u": theirs.user_id})}
    async with httpx.AsyncClient(base_url=world.base, headers={"Accept-Language": "en"},
                                 timeout=20) as client:
        await sign_in(client, theirs.email)
        token = csrf(await client.get("/me/delete"))
        before = await snapshot(node)
        seen = len(peer.received)
        resp = await client.post("/me/delete", data={
            "csrf_token": token, "password": PASSWORD, "confirm": "yes"})
        assert resp.status_code == 303, resp.text

    # The Deletes go out signed with their key; the key is erased once they are delivered.
    await until(lambda: settled(node), 30)
    await until(lambda: node.db.fetch_val(
        "SELECT 1 FROM actors WHERE id = :i AND private_key_pem = ''", {"i": theirs.actor_id}))
    received = [r for r in peer.received[seen:] if r.activity.get("type") == "Delete"]
    objects = [r.activity["object"] for r in received]
    assert sorted(o["id"] for o in objects if isinstance(o, dict)) == sorted(
        federated | theirs.notes)
    assert all(o["type"] == "Tombstone" for o in objects if isinstance(o, dict))
    assert [o for o in objects if not isinstance(o, dict)] == [theirs.uri]
    for r in received:
        assert r.activity["actor"] == theirs.uri
        assert r.signature_ok, r.signature_error  # the peer checked it with the published key
        assert parse_signature(r.headers["signature"]).key_id == f"{theirs.uri}#main-key"
    assert public_pem  # (what the peer fetched to check them)
    # With its key gone, the account is gone for good: 410 to servers, browsers and WebFinger.
    username = theirs.uri.rstrip("/").rsplit("/", 1)[-1]
    async with httpx.AsyncClient(base_url=world.base, timeout=20) as client:
        for path in (theirs.uri, f"{theirs.uri}/outbox", f"{theirs.uri}/followers"):
            gone = await client.get(path, headers={"Accept": "application/activity+json"})
            assert gone.status_code == 410 and "application/json" in gone.headers[
                "content-type"], (path, gone.status_code, gone.text[:200])
        page = await client.get(theirs.uri, headers={"Accept": "text/html",
                                                     "Accept-Language": "fr"})
        assert page.status_code == 410 and "Plus disponible" in page.text, page.text[:300]
        finger = await client.get("/.well-known/webfinger", params={
            "resource": f"acct:{username}@{urlsplit(world.base).netloc}"})
        assert finger.status_code == 410, finger.text

    after = await snapshot(node)
    # Their signed-in session and their reset link were there, and end with the account.
    for table in ("web_sessions", "password_resets") if handle != "coord" else ("web_sessions",):
        assert [r for r in before[table].values() if r["user_id"] == theirs.user_id]
        assert not [r for r in after[table].values() if r["user_id"] == theirs.user_id]
    if handle == "coord":  # the links they made for others stay, without their name on them
        made = [r for r in before["password_resets"].values()
                if r["created_by"] == theirs.user_id]
        assert made and all(after["password_resets"][(r["token_hash"],)]["created_by"] is None
                            for r in made)
    assert differences(before, after, theirs) == []
    assert await leftovers(node, theirs, after) == []
    # What is left of theirs: shells holding others' words, nothing personal in them.
    for post in (r for r in after["posts"].values() if r["id"] in theirs.posts):
        assert (post["title"], post["description_md"], post["author_user_id"],
                post["status"]) == ("", "", None, "withdrawn")
        assert any(r["post_id"] == post["id"] for r in after["responses"].values())
    for response in (r for r in after["responses"].values() if r["id"] in theirs.responses):
        assert (response["responder_name"], response["message_html"],
                response["responder_user_id"]) == ("", "", None)
        assert any(m["response_id"] == response["id"]
                   for m in after["conversation_messages"].values())
    assert not any(r["id"] in theirs.posts and r["description_md"]
                   for r in after["posts"].values())
    person = after["actors"][(theirs.actor_id,)]
    assert (person["name"], person["summary"], person["private_key_pem"]) == ("", "", "")
