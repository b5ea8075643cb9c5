"""Who takes part in a response's conversation, and what pages call people.

One rule, used by every path (the conversation page, writing a message, the responses list and
the author's actions, messages arriving from other servers, the response form's promise):
a conversation is read and written by the responder and by the post's author. A need posted on
behalf of someone (proxied) has no author among the members: the coordinators (and admins) of
the organisation that posted it take the author's place, and the pages say so. Nobody else
reads it — not a coordinator who is not a party, not an admin.

People are shown by name, never by a raw URL: a local member's display name, a remote actor's
`name` from remote_actors, else their @user@host handle.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from node.accounts.roles import ROLE_LABELS
from node.actors import by_uri
from node.context import Node
from node.i18n import _

MANAGERS = ("coordinator", "admin")

# Roles in a conversation (the templates turn them into words).
RESPONDER = "responder"
AUTHOR = "author"
COORDINATOR = "coordinator"
ORGANISATION = "organisation"


@dataclass(frozen=True)
class Party:
    name: str
    role: str
    uri: str | None = None
    user_id: str | None = None
    host: str = ""  # empty for a person of this node
    organisation: str = ""  # the organisation's name, for coordinators

    @property
    def remote(self) -> bool:
        return bool(self.host)


def _host(uri: str) -> str:
    return urlsplit(uri).netloc


def handle_from_uri(uri: str) -> str:
    """@name@host from an actor URI, when nothing better is known."""
    last = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1] or "?"
    return f"@{last.lstrip('@')}@{_host(uri)}"


async def user_name(node: Node, user_id: str) -> str:
    row = await node.db.fetch_one(
        "SELECT u.display_name, u.role, a.name, a.username FROM users u "
        "LEFT JOIN actors a ON a.id = u.actor_id WHERE u.id = :u", {"u": user_id})
    if row is None:
        # A member who deleted their account (node/moderation/member_data.py): a post or a
        # response of theirs others answered is kept without them.
        return _("Deleted account")
    if row["display_name"] or row["name"]:
        return row["display_name"] or row["name"]
    if row["username"]:
        return f"@{row['username']}@{node.settings.host}"
    # An account made without a profile (the first admin): its role, never its email.
    return _(ROLE_LABELS.get(row["role"], ROLE_LABELS["member"]))


async def name_of(node: Node, uri: str) -> str:
    """The name of any actor: a local member or organisation, or a remote actor."""
    if node.is_local(uri):
        actor = await by_uri(node, uri)
        if actor is None:
            return handle_from_uri(uri)
        if actor.kind == "Person":
            user_id = await node.db.fetch_val("SELECT id FROM users WHERE actor_id = :a",
                                              {"a": actor.id})
            return await user_name(node, user_id) if user_id else _("Deleted account")
        return actor.name or f"@{actor.username}@{node.settings.host}"
    row = await node.db.fetch_one(
        "SELECT name, username, host FROM remote_actors WHERE uri = :u", {"u": uri})
    if row is None:
        return handle_from_uri(uri)
    if row["name"]:
        return row["name"]
    return f"@{row['username']}@{row['host']}" if row["username"] else handle_from_uri(uri)


async def handle_of(node: Node, uri: str) -> str:
    """@user@host of a remote actor (what a Mention's `name` holds)."""
    row = await node.db.fetch_one(
        "SELECT username, host FROM remote_actors WHERE uri = :u", {"u": uri})
    if row is not None and row["username"]:
        return f"@{row['username']}@{row['host']}"
    return handle_from_uri(uri)


async def coordinators(node: Node, org_uri: str) -> list[dict]:
    """Members who coordinate a local organisation: id and role, in a stable order."""
    org = await by_uri(node, org_uri)
    if org is None or org.kind != "Group":
        return []
    return await node.db.fetch_all(
        "SELECT u.id, m.role FROM memberships m JOIN users u ON u.id = m.user_id "
        "WHERE m.org_id = :o AND m.role IN ('coordinator', 'admin') ORDER BY u.created_at",
        {"o": org.id})


async def speaks_for_post(node: Node, user: dict | None, post: dict) -> bool:
    """The member answers the post's responses: its author, or for a proxied need one of the
    coordinators of the organisation that posted it. Only for posts of this node."""
    if user is None or post["remote"]:
        return False
    if not post["proxied"]:
        return user["id"] == post["author_user_id"]
    return any(c["id"] == user["id"] for c in await coordinators(node, post["org_uri"]))


async def may_manage(node: Node, user: dict | None, post: dict) -> bool:
    """Edit, withdraw, fulfil or delete a post of this node: its author, a coordinator of the
    organisation it was posted in, or an admin of the node (who moderates it). A coordinator of
    another organisation of the same node does not manage its posts."""
    if user is None or post["remote"]:
        return False
    if user["id"] == post["author_user_id"] or user["role"] == "admin":
        return True
    return any(c["id"] == user["id"] for c in await coordinators(node, post["org_uri"]))


async def may_read_notes(node: Node, user: dict | None, post: dict) -> bool:
    """The private notes of a need posted on behalf of someone (name, phone of the person
    helped) are read by those who answer for it: the coordinators of the organisation that
    posted it. Not the coordinators of another organisation of the node, not an admin who
    does not coordinate it. Every page and form that shows or changes notes asks here."""
    return bool(post["proxied"]) and await speaks_for_post(node, user, post)


async def may_take_part(node: Node, user: dict | None, post: dict, response: dict) -> bool:
    """The member may read and write this conversation."""
    if user is None:
        return False
    if response["responder_user_id"] and user["id"] == response["responder_user_id"]:
        return True
    return await speaks_for_post(node, user, post)


def remote_may_write(actor: str, post: dict, response: dict) -> bool:
    """An actor of another server writes in a conversation only as one of its two sides: the
    remote responder, or the author of a remote post we answered (for a need posted on behalf
    of someone, that author is the organisation itself). An organisation does not write in
    its members' conversations, as its coordinators do not here."""
    if actor == response["responder_uri"] and not response["responder_user_id"]:
        return True
    return bool(post["remote"]) and actor == post["attributed_to"]


async def post_side(node: Node, post: dict) -> list[Party]:
    """Who reads responses for the post: its author, or the coordinators of its organisation
    (named one by one for a post of this node)."""
    org_name = await name_of(node, post["org_uri"])
    if post["remote"]:
        host = _host(post["attributed_to"])
        if post["attributed_to"] == post["org_uri"]:
            return [Party(org_name, ORGANISATION, post["org_uri"], None, host, org_name)]
        return [Party(await name_of(node, post["attributed_to"]), AUTHOR,
                      post["attributed_to"], None, host, org_name)]
    if not post["proxied"]:
        return [Party(await user_name(node, post["author_user_id"]), AUTHOR,
                      post["attributed_to"], post["author_user_id"], "", org_name)]
    return [Party(await user_name(node, c["id"]), COORDINATOR, None, c["id"], "", org_name)
            for c in await coordinators(node, post["org_uri"])]


async def responder(node: Node, response: dict) -> Party:
    uri = response["responder_uri"]
    if response["responder_user_id"]:
        return Party(await user_name(node, response["responder_user_id"]), RESPONDER, uri,
                     response["responder_user_id"])
    return Party(await name_of(node, uri), RESPONDER, uri, None,
                 "" if node.is_local(uri) else _host(uri))


async def readers(node: Node, post: dict, response: dict) -> list[Party]:
    """Everyone who can read the conversation, the responder first."""
    return [await responder(node, response), *await post_side(node, post)]


async def local_readers(node: Node, post: dict, response: dict) -> list[str]:
    """The members of this node who read a conversation (whom its messages notify)."""
    return list(dict.fromkeys(p.user_id for p in await readers(node, post, response)
                              if p.user_id))


async def speaker(node: Node, post: dict, response: dict, message: dict,
                  people: list[Party]) -> Party:
    """Who wrote a message: the member who wrote it (by name, with their part), the remote actor
    who sent it, or the node itself for its automatic messages."""
    user_id = message["sender_user_id"]
    if user_id:
        for person in people:
            if person.user_id == user_id:
                return person
        # Someone who is not a party any more (a former coordinator, or a message written
        # before parties were enforced): their own name, never the author's.
        return Party(await user_name(node, user_id), "", message["sender_uri"], user_id)
    uri = message["sender_uri"]
    if node.is_local(uri):
        return Party(await name_of(node, uri), "automatic", uri)
    for person in people:
        if person.uri == uri:
            return person
    return Party(await name_of(node, uri), "", uri, None, _host(uri))
