"""New posts you follow, across two real nodes: a need posted on B, in a category a member of A
follows, becomes a notification on A once B's organisation is followed there."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from node.accounts.members import NewMember, create_member
from node.config import load_settings
from node.context import Node
from tests.mail import Mailbox, SmtpServer
from tests.nodes import NodeProcess, csrf_from

pytestmark = pytest.mark.e2e
PASSWORD = "long enough password"


def member(node: NodeProcess, email: str) -> httpx.Client:
    """A member who signed up through the node's own form (English pages)."""
    client = httpx.Client(base_url=node.base, timeout=10, headers={"Accept-Language": "en"})
    token = csrf_from(client.get("/signup").text)
    resp = client.post("/signup", data={"csrf_token": token, "email": email,
                                        "password": PASSWORD, "confirm": PASSWORD,
                                        "display_name": email.split("@")[0]})
    assert resp.status_code == 303, resp.text
    return client


@pytest.fixture
def two_nodes(tmp_path):
    a = NodeProcess(tmp_path / "a", host="127.0.0.6", org="quartier").start()
    b = NodeProcess(tmp_path / "b", host="127.0.0.7", org="refuge").start()
    yield a, b
    a.close()
    b.close()


def test_a_remote_post_in_a_followed_category_notifies_the_member(two_nodes):
    a, b = two_nodes
    a.login()
    assert a.admin_action("follow", target=b.handle).status_code == 303
    a.wait_until("SELECT 1 FROM follows WHERE followee_uri = :b AND state = 'accepted'",
                 {"b": b.org_uri})
    reader = member(a, "reader@a.example")
    page = reader.get("/account")
    resp = reader.post("/account", data={"csrf_token": csrf_from(page.text),
                                         "display_name": "Reader", "locale": "en",
                                         "categories": ["housing"], "neighbourhoods": []})
    assert resp.status_code == 303, resp.text
    author = member(b, "author@b.example")
    form = author.get("/posts/new?kind=need")
    resp = author.post("/posts/new?kind=need", data={
        "csrf_token": csrf_from(form.text), "kind": "need", "category": "housing",
        "title": "A bed for two nights", "description": "For a mother and her child.",
        "neighbourhood": "Schaerbeek", "urgency": "2", "languages": ["fr"]})
    assert resp.status_code == 303, resp.text

    rows = a.wait_until(
        "SELECT n.payload FROM notifications n JOIN users u ON u.id = n.user_id "
        "WHERE u.email = 'reader@a.example' AND n.kind = 'new_post'")
    assert len(rows) == 1 and "A bed for two nights" in rows[0]["payload"]
    page = reader.get("/notifications")
    assert "New post you follow: “A bed for two nights”" in page.text
    local_id = a.query("SELECT id FROM posts WHERE remote = 1")[0]["id"]
    notification_id = a.query("SELECT id FROM notifications")[0]["id"]
    assert f'href="/notifications/{notification_id}"' in page.text
    opened = reader.get(f"/notifications/{notification_id}")
    assert opened.status_code == 303 and opened.headers["location"] == f"/posts/{local_id}"
    assert a.query("SELECT is_read FROM notifications") == [{"is_read": 1}]
    # The author is not told about their own post, and nobody on B follows housing.
    assert b.query("SELECT id FROM notifications") == []
    reader.close()
    author.close()


def local_member(node: NodeProcess, email: str, name: str, locale: str) -> httpx.Client:
    """A member made in the node's database (with SMTP configured, sign-up would wait for a
    link sent by email), then signed in through the login form."""
    async def make() -> None:
        settings = load_settings({**node.env})
        made = Node.create(settings)
        await made.db.connect()
        try:
            await create_member(made, NewMember(email, PASSWORD, PASSWORD, display_name=name,
                                                locale=locale))
        finally:
            await made.db.disconnect()

    asyncio.run(make())
    client = httpx.Client(base_url=node.base, timeout=10)
    token = csrf_from(client.get("/login").text)
    resp = client.post("/login", data={"csrf_token": token, "email": email,
                                       "password": PASSWORD})
    assert resp.status_code == 303, resp.text
    return client


def test_a_message_and_a_withdrawal_from_another_node_reach_the_responder(tmp_path):
    """Bram, on node A, responded to a need posted on node B: B's author writes to him in the
    conversation, then withdraws the need. Both reach him on A as notifications and as emails
    in Dutch, his language."""
    smtp = SmtpServer(host="127.0.0.126")
    mailbox = smtp.start(Mailbox())
    a = NodeProcess(tmp_path / "a", host="127.0.0.124", org="quartier",
                    NODE_SMTP_HOST="127.0.0.126", NODE_SMTP_PORT=str(smtp.port)).start()
    b = NodeProcess(tmp_path / "b", host="127.0.0.125", org="refuge").start()
    try:
        a.login()
        assert a.admin_action("follow", target=b.handle).status_code == 303
        a.wait_until("SELECT 1 FROM follows WHERE followee_uri = :b AND state = 'accepted'",
                     {"b": b.org_uri})
        bram = local_member(a, "bram@a.example", "Bram", "nl")
        author = member(b, "author@b.example")
        form = author.get("/posts/new?kind=need")
        resp = author.post("/posts/new?kind=need", data={
            "csrf_token": csrf_from(form.text), "kind": "need", "category": "housing",
            "title": "Een bed voor twee nachten", "description": "Voor een moeder.",
            "neighbourhood": "Schaerbeek", "urgency": "2", "languages": ["nl"]})
        assert resp.status_code == 303, resp.text
        b_post = resp.headers["location"].rsplit("/", 1)[-1].split("?")[0]
        [row] = a.wait_until("SELECT id FROM posts WHERE remote = 1")
        page = bram.get(f"/posts/{row['id']}")
        resp = bram.post(f"/posts/{row['id']}/respond", data={
            "csrf_token": csrf_from(page.text), "message": "Ik heb een logeerkamer."})
        assert resp.status_code == 303, resp.text
        [response] = b.wait_until("SELECT id FROM responses")
        mailbox.messages.clear()

        page = author.get(f"/responses/{response['id']}")
        resp = author.post(f"/responses/{response['id']}", data={
            "csrf_token": csrf_from(page.text), "message": "Dank u! Kan het vanaf vrijdag?"})
        assert resp.status_code == 303, resp.text
        [told] = a.wait_until("SELECT n.payload FROM notifications n JOIN users u "
                              "ON u.id = n.user_id WHERE u.email = 'bram@a.example' "
                              "AND n.kind = 'new_message'")
        assert "Kan het vanaf vrijdag?" in told["payload"]
        [message] = mailbox.wait_for(1)
        assert message["To"] == "bram@a.example" and message["Content-Language"] == "nl"
        assert message["Subject"].startswith("Nieuw bericht van ")
        assert message["Subject"].endswith(" over “Een bed voor twee nachten”")
        assert "> Dank u! Kan het vanaf vrijdag?" in message.get_content()

        page = author.get(f"/posts/{b_post}")
        resp = author.post(f"/posts/{b_post}/status", data={
            "csrf_token": csrf_from(page.text), "action": "withdraw", "confirm": "yes"})
        assert resp.status_code == 303, resp.text
        a.wait_until("SELECT 1 FROM notifications WHERE kind = 'post_status_changed'")
        # The withdrawal reaches A twice, in any order: as the post's status (Delete) and as
        # the kind words B's node writes in the conversation. Each is told once.
        withdrawn = "“Een bed voor twee nachten” werd ingetrokken"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and withdrawn not in [
                m["Subject"] for m in mailbox.messages]:
            time.sleep(0.05)
        later = [m["Subject"] for m in mailbox.messages[1:]]
        assert later.count(withdrawn) == 1, a.log()
        assert all(s == withdrawn or s.startswith("Nieuw bericht van ") for s in later), later
        page = bram.get("/notifications")
        assert "“Een bed voor twee nachten” werd ingetrokken" in page.text
        bram.close()
        author.close()
    finally:
        a.close()
        b.close()
        smtp.stop()
