"""Notifications: stored for the page and the unread count, told to the right members, and
emailed in the member's language through a real SMTP server on a loopback port (aiosmtpd)."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from node import mailqueue, notifications
from node.accounts.members import NewMember, create_member
from node.context import Node
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, node_settings, running_app
from tests.mail import Mailbox, SmtpServer
from tests.nodes import csrf_from
from tests.peers import free_port
from tests.test_accounts import PASSWORD, sign_up


@pytest.fixture
def smtp_server():
    server = SmtpServer("127.0.0.127")
    try:
        yield server.start(Mailbox()), server.port
    finally:
        server.stop()


async def user_id(node: Node, email: str) -> str:
    return await node.db.fetch_val("SELECT id FROM users WHERE email = :e", {"e": email})


async def test_the_page_lists_notifications_and_the_menu_counts_unread_ones(app_node):
    node, client = app_node
    await sign_up(client, "ana@example.org", display_name="Ana")
    ana = await user_id(node, "ana@example.org")
    await notifications.notify_new_response(
        node, author_user_id=ana, post_title="Warm shower", post_url="/posts/1",
        responder="Bilal")
    await notifications.notify_response_accepted(
        node, responder_user_id=ana, post_title="A bed for two nights", post_url="/posts/2")
    assert await notifications.unread_count(node, ana) == 2
    page = await client.get("/notifications")
    assert page.status_code == 200
    assert "Nouvelle réponse à «\u202fWarm shower\u202f» de Bilal" in page.text
    assert "Votre réponse à «\u202fA bed for two nights\u202f» a été acceptée" in page.text
    assert '<span class="badge">2<span class="visually-hidden"> notifications non lues' \
        in page.text
    # Each links through /notifications/{id}: opening it marks it read and leads on.
    [first] = [n for n in await notifications.recent(node, ana) if n.kind == "new_response"]
    assert f'href="/notifications/{first.id}"' in page.text
    opened = await client.get(f"/notifications/{first.id}")
    assert opened.status_code == 303 and opened.headers["location"] == "/posts/1"
    assert await notifications.unread_count(node, ana) == 1
    await notifications.notify_response_accepted(
        node, responder_user_id=ana, post_title="Soup", post_url="/posts/3")
    page = await client.get("/notifications")
    assert await notifications.unread_count(node, ana) == 2
    english = await client.get("/notifications?lang=en")
    assert "New response to “Warm shower” from Bilal" in english.text
    # Marking as read needs the CSRF token; without it nothing changes.
    refused = await client.post("/notifications/read", data={})
    assert refused.status_code == 403
    assert await notifications.unread_count(node, ana) == 2
    done = await client.post("/notifications/read", data={"csrf_token": csrf_from(page.text)})
    assert done.status_code == 303
    assert await notifications.unread_count(node, ana) == 0
    after = await client.get("/notifications")
    assert 'class="badge"' not in after.text and "Warm shower" in after.text


async def test_notifications_are_private_to_their_member(app_node):
    node, client = app_node
    await sign_up(client, "one@example.org")
    one = await user_id(node, "one@example.org")
    await notifications.notify_response_accepted(
        node, responder_user_id=one, post_title="Secret soup", post_url="/posts/9")
    client.cookies.clear()
    assert (await client.get("/notifications")).status_code == 303
    await sign_up(client, "two@example.org")
    page = await client.get("/notifications")
    assert "Secret soup" not in page.text
    assert "Pas encore de notifications" in page.text


async def test_new_posts_reach_followers_of_the_category_or_neighbourhood_once(app_node):
    node, client = app_node
    ids = {}
    for email, categories, places in [
        ("food@example.org", ["food"], []),
        ("ixelles@example.org", [], ["Ixelles"]),
        ("both@example.org", ["food"], ["Ixelles"]),
        ("other@example.org", ["clothes"], ["Uccle"]),
    ]:
        client.cookies.clear()
        await sign_up(client, email, display_name=email.split("@")[0])
        token = csrf_from((await client.get("/account")).text)
        resp = await client.post("/account", data={
            "csrf_token": token, "display_name": email.split("@")[0], "locale": "",
            "categories": categories, "neighbourhoods": places})
        assert resp.status_code == 303
        ids[email] = await user_id(node, email)
    told = await notifications.notify_new_post(
        node, post_title="Soup on Sunday", post_url="/posts/7", category="food",
        neighbourhood="Ixelles", author_user_id=ids["both@example.org"])
    assert sorted(told) == sorted([ids["food@example.org"], ids["ixelles@example.org"]])
    for email, expected in [("food@example.org", 1), ("ixelles@example.org", 1),
                            ("both@example.org", 0), ("other@example.org", 0)]:
        assert await notifications.unread_count(node, ids[email]) == expected, email
    with pytest.raises(ValueError):
        await notifications.notify(node, ids["food@example.org"], "nonsense", {})


def wait_for_mail(mailbox: Mailbox, count: int, timeout: float = 10) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(mailbox.messages) < count:
        time.sleep(0.05)
    return mailbox.messages


async def test_emails_go_through_a_real_smtp_server_in_the_members_language(
        tmp_path: Path, database_url: str, smtp_server):
    mailbox, port = smtp_server
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST="127.0.0.127",
                             NODE_SMTP_PORT=str(port), NODE_SMTP_FROM="entraide@node.example")
    async with running_app(settings) as (node, client):
        # Made directly: with SMTP configured, sign-up goes through a link sent by email.
        await create_member(node, NewMember("nl@example.org", PASSWORD, locale="nl"))
        await create_member(node, NewMember("fr@example.org", PASSWORD))
        await notifications.notify_new_response(
            node, author_user_id=await user_id(node, "nl@example.org"),
            post_title="Warme douche", post_url="/posts/3", responder="Sara")
        await notifications.notify_response_accepted(
            node, responder_user_id=await user_id(node, "fr@example.org"),
            post_title="Un lit", post_url=settings.url("/posts/4"))
        # A title from another server with line breaks cannot forge email headers.
        await notifications.notify_response_accepted(
            node, responder_user_id=await user_id(node, "fr@example.org"),
            post_title="Lit\r\nBcc: victim@example.org", post_url="/posts/5")
        await mailqueue.send_due(node)
        opened = {n.payload["title"]: n.open_path for n in await notifications.recent(
            node, await user_id(node, "nl@example.org"))}
    messages = await asyncio.to_thread(wait_for_mail, mailbox, 3)
    forged = [m for m in messages if "Bcc" in m["Subject"]]
    assert len(forged) == 1 and forged[0]["Bcc"] is None
    assert forged[0]["Subject"] == (
        "Votre réponse à «\u202fLit Bcc: victim@example.org\u202f» a été acceptée")
    messages = [m for m in messages if m not in forged]
    by_recipient = {m["To"]: m for m in messages}
    dutch = by_recipient["nl@example.org"]
    assert dutch["Subject"] == "Nieuw antwoord op “Warme douche” van Sara"
    assert dutch["From"] == "entraide@node.example" and dutch["Content-Language"] == "nl"
    body = dutch.get_content()
    # The link opens the notification (marking it read), which leads to the post.
    assert f"http://127.0.0.1:8999{opened['Warme douche']}" in body
    assert "U ontvangt deze e-mail" in body
    french = by_recipient["fr@example.org"]
    assert french["Subject"] == "Votre réponse à «\u202fUn lit\u202f» a été acceptée"
    assert "http://127.0.0.1:8999/notifications/" in french.get_content()


async def test_a_dead_smtp_server_keeps_the_email_waiting_and_the_notification_stored(
        tmp_path: Path, database_url: str):
    dead_port = free_port("127.0.0.122")  # nothing listens there (an address of this file's)
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST="127.0.0.122",
                             NODE_SMTP_PORT=str(dead_port))
    async with running_app(settings) as (node, client):
        await create_member(node, NewMember("z@example.org", PASSWORD))
        uid = await user_id(node, "z@example.org")
        await notifications.notify_response_accepted(
            node, responder_user_id=uid, post_title="T", post_url="/posts/5")
        await mailqueue.send_due(node)
        assert await notifications.unread_count(node, uid) == 1
        [row] = await node.db.fetch_all("SELECT recipient, state, attempts FROM email_queue")
        assert row == {"recipient": "z@example.org", "state": "pending", "attempts": 1}


async def test_a_post_written_here_notifies_followers_of_its_topics(app_node):
    node, client = app_node
    client.headers["Accept-Language"] = "en"
    await sign_up(client, "watcher@example.org", display_name="Watcher")
    token = csrf_from((await client.get("/account")).text)
    await client.post("/account", data={"csrf_token": token, "display_name": "Watcher",
                                        "locale": "en", "neighbourhoods": ["Forest"]})
    client.cookies.clear()
    await sign_up(client, "writer@example.org", display_name="Writer")
    form = await client.get("/posts/new?kind=offer")
    resp = await client.post("/posts/new?kind=offer", data={
        "csrf_token": csrf_from(form.text), "kind": "offer", "category": "clothes",
        "title": "Winter coats", "description": "Sizes S to XL.", "neighbourhood": "Forest",
        "urgency": "1", "languages": ["fr"]})
    assert resp.status_code == 303, resp.text
    watcher = await user_id(node, "watcher@example.org")
    writer = await user_id(node, "writer@example.org")
    assert [n.payload["title"] for n in await notifications.recent(node, watcher)] == \
        ["Winter coats"]
    assert await notifications.recent(node, writer) == []


async def test_an_invitation_link_is_emailed_in_the_inviters_language(
        tmp_path: Path, database_url: str, smtp_server):
    mailbox, port = smtp_server
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST="127.0.0.127",
                             NODE_SMTP_PORT=str(port))
    async with running_app(settings) as (node, client):
        client.cookies.set("lang", "nl")
        page = await client.get("/login")
        await client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                          "csrf_token": csrf_from(page.text)})
        page = await client.get("/account/invitations")
        resp = await client.post("/account/invitations", data={
            "csrf_token": csrf_from(page.text), "email": "new@example.org", "role": "member"})
        assert resp.status_code == 200
        token = await node.db.fetch_val("SELECT token FROM invitations")
        await mailqueue.send_due(node)
    [message] = await asyncio.to_thread(wait_for_mail, mailbox, 1)
    assert message["To"] == "new@example.org" and message["Content-Language"] == "nl"
    assert message["Subject"] == f"{ADMIN_EMAIL} nodigt u uit bij {settings.org_name}"
    body = message.get_content()
    assert f"http://127.0.0.1:8999/invite/{token}" in body and "Hij werkt één keer" in body
