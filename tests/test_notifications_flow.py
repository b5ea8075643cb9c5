"""Every event a member should hear of, through the node's own pages: a notification on
/notifications and an email (through the queue, to a real SMTP server on loopback) in the
member's language, with the message's first lines; per-kind email opt-out; opening a
notification or the conversation marks it read; "mark all read"; the unread mark on "my
responses"."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from node import mailqueue, notifications
from node.accounts.members import NewMember, create_member
from node.app import create_app
from node.auth import hash_password
from node.config import Settings
from node.context import Node
from node.moderation import blocks
from node.posts import service
from tests.conftest import node_settings
from tests.mail import Mailbox, SmtpServer
from tests.nodes import csrf_from
from tests.test_accounts import PASSWORD, log_in

SMTP_HOST = "127.0.0.123"
BASE = "http://127.0.0.1:8999"

# What each member reads, in each language (the titles are the post's own, never translated).
WORDS = {
    "fr": {
        "title": "Soupe chaude",
        "new_post": "Nouvelle annonce que vous suivez\u202f: «\u202fSoupe chaude\u202f»",
        "new_response": "Nouvelle réponse à «\u202fSoupe chaude\u202f» de Bilal",
        "new_message": "Nouveau message de {by} à propos de «\u202fSoupe chaude\u202f»",
        "accepted": "Votre réponse à «\u202fSoupe chaude\u202f» a été acceptée",
        "declined": "Votre réponse à «\u202fSoupe chaude\u202f» a été déclinée",
        "undone": "L’acceptation de votre réponse à «\u202fSoupe chaude\u202f» a été annulée",
        "fulfilled": "L’annonce «\u202fSoupe chaude\u202f» est réalisée",
        "hello": "Bonjour {name},",
        "wrote": "Bilal a écrit\u202f:",
        "note": "Le mot de l’auteur\u202f:",
        "one_unread": "Vous avez 1 notification non lue.",
        "two_unread": "Vous avez 2 notifications non lues.",
        "footer": "Vous recevez cet e-mail parce que vous avez un compte sur",
        "page_unread": "notifications non lues",
    },
    "nl": {
        "title": "Warme soep",
        "new_post": "Nieuw bericht dat u volgt: “Warme soep”",
        "new_response": "Nieuw antwoord op “Warme soep” van Bilal",
        "new_message": "Nieuw bericht van {by} over “Warme soep”",
        "accepted": "Uw antwoord op “Warme soep” werd aanvaard",
        "declined": "Uw antwoord op “Warme soep” werd afgewezen",
        "undone": "De aanvaarding van uw antwoord op “Warme soep” werd ongedaan gemaakt",
        "fulfilled": "“Warme soep” is vervuld",
        "hello": "Hallo {name},",
        "wrote": "Bilal schreef:",
        "note": "De woorden van de auteur:",
        "one_unread": "U hebt 1 ongelezen melding.",
        "two_unread": "U hebt 2 ongelezen meldingen.",
        "footer": "U ontvangt deze e-mail omdat u een account hebt op",
        "page_unread": "ongelezen meldingen",
    },
}


@pytest.fixture
def smtp():
    server = SmtpServer(host=SMTP_HOST)
    server.start(Mailbox())
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def node_with_members(settings: Settings) -> AsyncIterator[
        tuple[Node, Callable[[], httpx.AsyncClient]]]:
    """The app with its lifespan run, and a maker of clients (one per member)."""
    app = create_app(settings)
    clients: list[httpx.AsyncClient] = []

    def new_client() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        clients.append(client)
        return client

    async with app.router.lifespan_context(app):
        try:
            yield app.state.node, new_client
        finally:
            for client in clients:
                await client.aclose()


class Member:
    def __init__(self, node: Node, client: httpx.AsyncClient, email: str, name: str) -> None:
        self.node, self.client, self.email, self.name = node, client, email, name
        self.id = ""

    async def token(self) -> str:
        return csrf_from((await self.client.get("/notifications/settings")).text)

    async def post(self, path: str, **data: object) -> httpx.Response:
        return await self.client.post(path, data={"csrf_token": await self.token(), **data})

    async def unread(self) -> int:
        return await notifications.unread_count(self.node, self.id)

    async def latest(self) -> notifications.Notification:
        return (await notifications.recent(self.node, self.id, 1))[0]


@functools.cache
def password_hash() -> str:
    """One argon2 hash for every member of these tests (a hash costs about a second here)."""
    return hash_password(PASSWORD)


async def member(node: Node, new_client: Callable[[], httpx.AsyncClient], email: str,
                 name: str, locale: str, **follows: list[str]) -> Member:
    person = Member(node, new_client(), email, name)
    # Made directly: with SMTP configured, sign-up goes through a link sent by email.
    person.id = await create_member(node, NewMember(email, PASSWORD, PASSWORD,
                                                    display_name=name, locale=locale),
                                    password_hash=password_hash())
    assert (await log_in(person.client, email, PASSWORD)).status_code == 303
    if follows:
        page = await person.client.get("/account")
        resp = await person.client.post("/account", data={
            "csrf_token": csrf_from(page.text), "display_name": name, "locale": locale,
            "categories": follows.get("categories", []),
            "neighbourhoods": follows.get("neighbourhoods", [])})
        assert resp.status_code == 303, resp.text
    return person


class Mail:
    """The emails the node sent, one recipient at a time."""

    def __init__(self, node: Node, mailbox: Mailbox) -> None:
        self.node, self.mailbox, self.seen = node, mailbox, 0

    async def new(self) -> list[EmailMessage]:
        await mailqueue.send_due(self.node)
        fresh = self.mailbox.messages[self.seen:]
        self.seen = len(self.mailbox.messages)
        return fresh

    async def one_to(self, person: Member) -> EmailMessage:
        fresh = await self.new()
        assert [m["To"] for m in fresh] == [person.email], [(m["To"], m["Subject"])
                                                             for m in fresh]
        return fresh[0]


def body_of(message: EmailMessage) -> str:
    return message.get_content().replace("\r\n", "\n")


def check_email(message: EmailMessage, person: Member, subject: str, lang: str,
                notification: notifications.Notification) -> str:
    words = WORDS[lang]
    assert message["Subject"] == subject
    assert message["Content-Language"] == lang
    body = body_of(message)
    assert body.startswith(words["hello"].format(name=person.name) + "\n\n" + subject + ".")
    assert f"{BASE}/notifications/{notification.id}\n" in body
    assert words["footer"] in body and f"{BASE}/notifications/settings" in body
    return body


@pytest.mark.parametrize("lang", ["fr", "nl"])
async def test_each_event_is_a_notification_and_an_email_in_the_members_language(
        tmp_path: Path, database_url: str, smtp: SmtpServer, lang: str):
    words = WORDS[lang]
    title = words["title"]
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST=SMTP_HOST,
                             NODE_SMTP_PORT=str(smtp.port))
    async with node_with_members(settings) as (node, new_client):
        mail = Mail(node, smtp.mailbox)
        ana = await member(node, new_client, "ana@example.org", "Ana", lang)
        bilal = await member(node, new_client, "bilal@example.org", "Bilal", lang)
        chloe = await member(node, new_client, "chloe@example.org", "Chloé", lang)
        dirk = await member(node, new_client, "dirk@example.org", "Dirk", lang,
                            categories=["food"])
        assert await mail.new() == []

        # A new post in a category Dirk follows.
        form = await ana.client.get("/posts/new?kind=need")
        resp = await ana.client.post("/posts/new?kind=need", data={
            "csrf_token": csrf_from(form.text), "kind": "need", "category": "food",
            "title": title, "description": "Pour six personnes.\n\nLe samedi midi.",
            "neighbourhood": "Forest", "urgency": "2", "languages": [lang], "capacity": "2"})
        assert resp.status_code == 303, resp.text
        post_id = resp.headers["location"].rsplit("/", 1)[-1].split("?")[0]
        told = await dirk.latest()
        assert told.kind == "new_post" and told.text(lang) == words["new_post"]
        body = check_email(await mail.one_to(dirk), dirk, words["new_post"], lang, told)
        assert "> Pour six personnes.\n> Le samedi midi." in body
        assert words["one_unread"] in body

        # Bilal responds: Ana hears of it, with the first four lines of his message.
        resp = await bilal.post(f"/posts/{post_id}/respond", message=(
            "Je peux venir samedi.\n\nJ'ai une voiture.\n\nTroisième.\n\nQuatrième.\n\n"
            "Cinquième, pas dans l'email."))
        assert resp.status_code == 303, resp.text
        bilal_response = resp.headers["location"].rsplit("/", 1)[-1]
        told = await ana.latest()
        assert told.kind == "new_response" and told.text(lang) == words["new_response"]
        assert told.response_id == bilal_response
        body = check_email(await mail.one_to(ana), ana, words["new_response"], lang, told)
        assert (words["wrote"] + "\n> Je peux venir samedi.\n> J'ai une voiture.\n"
                "> Troisième.\n> Quatrième.\n> …") in body
        assert "Cinquième" not in body

        resp = await chloe.post(f"/posts/{post_id}/respond", message="Moi aussi !")
        assert resp.status_code == 303, resp.text
        chloe_response = resp.headers["location"].rsplit("/", 1)[-1]
        told = await ana.latest()
        assert words["two_unread"] in check_email(
            await mail.one_to(ana), ana, words["new_response"].replace("Bilal", "Chloé"),
            lang, told)

        # Ana writes in Bilal's conversation: Bilal hears of it, Ana does not.
        ana_unread = await ana.unread()
        resp = await ana.post(f"/responses/{bilal_response}", message="Merci ! Samedi 10 h ?")
        assert resp.status_code == 303, resp.text
        told = await bilal.latest()
        assert told.kind == "new_message" and told.response_id == bilal_response
        by = told.payload["by"]
        assert by and told.text(lang) == words["new_message"].format(by=by)
        body = check_email(await mail.one_to(bilal), bilal,
                           words["new_message"].format(by=by), lang, told)
        assert "> Merci ! Samedi 10 h ?" in body
        assert await ana.unread() == ana_unread

        # Bilal's answer in the same conversation reaches Ana.
        resp = await bilal.post(f"/responses/{bilal_response}", message="Oui, 10 h.")
        assert resp.status_code == 303, resp.text
        told = await ana.latest()
        assert told.kind == "new_message" and told.payload["by"] == "Bilal"
        assert "> Oui, 10 h." in body_of(await mail.one_to(ana))

        # Accepted, declined (with the author's note), acceptance undone.
        resp = await ana.post(f"/responses/{bilal_response}/accept", confirm="yes")
        assert resp.status_code == 303, resp.text
        told = await bilal.latest()
        assert told.kind == "response_accepted" and told.text(lang) == words["accepted"]
        check_email(await mail.one_to(bilal), bilal, words["accepted"], lang, told)

        resp = await ana.post(f"/responses/{chloe_response}/decline", confirm="yes",
                              note="Merci beaucoup, nous sommes au complet.")
        assert resp.status_code == 303, resp.text
        told = await chloe.latest()
        assert told.kind == "response_declined" and told.text(lang) == words["declined"]
        body = check_email(await mail.one_to(chloe), chloe, words["declined"], lang, told)
        assert words["note"] + "\n> Merci beaucoup, nous sommes au complet." in body

        resp = await ana.post(f"/responses/{bilal_response}/undo", confirm="yes")
        assert resp.status_code == 303, resp.text
        told = await bilal.latest()
        assert told.kind == "acceptance_undone" and told.text(lang) == words["undone"]
        check_email(await mail.one_to(bilal), bilal, words["undone"], lang, told)

        # Bilal wants no more emails about messages: the notification still comes, no email.
        resp = await bilal.post("/notifications/settings", email=[
            k for k in notifications.KIND_LABELS if k != "new_message"])
        assert resp.status_code == 303
        assert await notifications.email_opt_outs(node, bilal.id) == {"new_message"}
        before = await bilal.unread()
        resp = await ana.post(f"/responses/{bilal_response}", message="À samedi.")
        assert resp.status_code == 303, resp.text
        assert await bilal.unread() == before + 1 and (await bilal.latest()).kind == \
            "new_message"
        emails = await mail.new()
        assert [m["To"] for m in emails] == []

        # The post is fulfilled: Bilal (still pending) hears of it; Chloé, declined, does not.
        chloe_unread = await chloe.unread()
        resp = await ana.post(f"/posts/{post_id}/status", action="fulfil", confirm="yes")
        assert resp.status_code == 303, resp.text
        told = await bilal.latest()
        assert told.kind == "post_status_changed" and told.text(lang) == words["fulfilled"]
        check_email(await mail.one_to(bilal), bilal, words["fulfilled"], lang, told)
        assert await chloe.unread() == chloe_unread

        # Bilal's pages: the count in the header, the unread mark on his conversation.
        page = await bilal.client.get("/notifications")
        unread = await bilal.unread()
        assert f'<span class="badge">{unread}<span class="visually-hidden"> ' \
               f'{words["page_unread"]}' in page.text
        mine = await bilal.client.get("/posts/mine")
        assert re.search(rf'href="/responses/{bilal_response}"[^>]*>.*?class="unread-mark"',
                         mine.text, re.S), mine.text
        # Opening the conversation reads what it told him; the status change stays unread.
        await bilal.client.get(f"/responses/{bilal_response}")
        left = await notifications.recent(node, bilal.id)
        assert [n.kind for n in left if not n.is_read] == ["post_status_changed"]
        mine = await bilal.client.get("/posts/mine")
        assert 'class="unread-mark"' not in mine.text
        # Opening a notification marks it read, then leads to the post.
        opened = await bilal.client.get(f"/notifications/{told.id}")
        assert opened.status_code == 303 and opened.headers["location"] == f"/posts/{post_id}"
        assert await bilal.unread() == 0
        # Ana's side: her post is marked for the conversations she has not read.
        mine = await ana.client.get("/posts/mine")
        assert re.search(rf'href="/posts/{post_id}/responses"[^>]*>[^<]*</a> · '
                         r'<span class="unread-mark">', mine.text), mine.text
        # Mark all read (Ana), with the CSRF token only.
        assert await ana.unread() > 0
        refused = await ana.client.post("/notifications/read", data={"csrf_token": "forged"})
        assert refused.status_code == 403 and await ana.unread() > 0
        assert (await ana.post("/notifications/read")).status_code == 303
        assert await ana.unread() == 0


async def test_a_notification_opens_only_for_its_member_and_only_onto_this_node(
        tmp_path: Path, database_url: str):
    settings = node_settings(tmp_path, database_url)
    async with node_with_members(settings) as (node, new_client):
        ana = await member(node, new_client, "ana@example.org", "Ana", "fr")
        eve = await member(node, new_client, "eve@example.org", "Eve", "fr")
        targets = {"/posts/1": "/posts/1", f"{BASE}/responses/2": "/responses/2",
                   "https://evil.example/x": "/notifications", "//evil.example/x":
                   "/notifications", "/\\evil.example": "/notifications",
                   "javascript:alert(1)": "/notifications"}
        ids = {}
        for url in targets:
            ids[url] = await notifications.notify(node, ana.id, "new_post",
                                                  {"title": "T", "url": url})
        # Someone else's notification: not opened, not marked read, nothing told about it.
        resp = await eve.client.get(f"/notifications/{ids['/posts/1']}")
        assert resp.status_code == 303 and resp.headers["location"] == "/notifications"
        assert await ana.unread() == len(targets)
        for url, expected in targets.items():
            resp = await ana.client.get(f"/notifications/{ids[url]}")
            assert resp.headers["location"] == expected, url
        assert await ana.unread() == 0
        # Without an account: to the login page, which comes back here.
        anonymous = new_client()
        resp = await anonymous.get(f"/notifications/{ids['/posts/1']}")
        assert resp.status_code == 303 and "/login?next=%2Fnotifications%2F" in \
            resp.headers["location"]
        # Email choices need the CSRF token.
        resp = await ana.client.post("/notifications/settings", data={"email": []})
        assert resp.status_code == 403
        assert await notifications.email_opt_outs(node, ana.id) == set()


async def test_responders_hear_that_a_post_expired_and_blocked_senders_are_not_heard(
        tmp_path: Path, database_url: str, smtp: SmtpServer):
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST=SMTP_HOST,
                             NODE_SMTP_PORT=str(smtp.port))
    async with node_with_members(settings) as (node, new_client):
        mail = Mail(node, smtp.mailbox)
        ana = await member(node, new_client, "ana@example.org", "Ana", "fr",
                           categories=["food"])
        bilal = await member(node, new_client, "bilal@example.org", "Bilal", "nl")
        form = await bilal.client.get("/posts/new?kind=offer")
        resp = await bilal.client.post("/posts/new?kind=offer", data={
            "csrf_token": csrf_from(form.text), "kind": "offer", "category": "food",
            "title": "Brood", "description": "Elke ochtend.", "neighbourhood": "Forest",
            "urgency": "1", "languages": ["nl"]})
        assert resp.status_code == 303, resp.text
        post_id = resp.headers["location"].rsplit("/", 1)[-1].split("?")[0]
        assert (await ana.latest()).kind == "new_post"
        await mail.new()
        resp = await ana.post(f"/posts/{post_id}/respond", message="Volontiers !")
        assert resp.status_code == 303, resp.text
        assert (await bilal.latest()).kind == "new_response"
        await mail.new()
        # The post's end passes: Ana, who responded, hears of it in French.
        await node.db.execute("UPDATE posts SET ends_at = :t WHERE id = :i",
                              {"t": 1.0, "i": post_id})
        assert await service.expire_due(node) == 1
        told = await ana.latest()
        assert told.kind == "post_status_changed" and told.text("fr") == \
            "L’annonce «\u202fBrood\u202f» a expiré"
        assert (await mail.one_to(ana))["Subject"] == "L’annonce «\u202fBrood\u202f» a expiré"
        assert told.text("nl") == "“Brood” is verlopen"
        # Ana blocks Bilal: what he writes or posts no longer reaches her.
        bilal_actor = await node.db.fetch_val(
            "SELECT attributed_to FROM posts WHERE id = :i", {"i": post_id})
        await blocks.block_actor(node, ana.id, bilal_actor)
        before = await ana.unread()
        form = await bilal.client.get("/posts/new?kind=offer")
        resp = await bilal.client.post("/posts/new?kind=offer", data={
            "csrf_token": csrf_from(form.text), "kind": "offer", "category": "food",
            "title": "Nog brood", "description": "Weer.", "neighbourhood": "Forest",
            "urgency": "1", "languages": ["nl"]})
        assert resp.status_code == 303, resp.text
        assert await ana.unread() == before
        assert await mail.new() == []


async def test_words_the_node_writes_for_the_author_never_notify_the_author(
        tmp_path: Path, database_url: str):
    async with node_with_members(node_settings(tmp_path, database_url)) as (node, new_client):
        ana = await member(node, new_client, "ana@example.org", "Ana", "fr")
        bilal = await member(node, new_client, "bilal@example.org", "Bilal", "fr")
        chloe = await member(node, new_client, "chloe@example.org", "Chloé", "nl")
        form = await ana.client.get("/posts/new?kind=need")
        resp = await ana.client.post("/posts/new?kind=need", data={
            "csrf_token": csrf_from(form.text), "kind": "need", "category": "food",
            "title": "Un repas", "description": "Ce soir.", "neighbourhood": "Forest",
            "urgency": "1", "languages": ["fr"], "capacity": "1"})
        post_id = resp.headers["location"].rsplit("/", 1)[-1].split("?")[0]
        ids = []
        for helper in (bilal, chloe):
            resp = await helper.post(f"/posts/{post_id}/respond", message="Je viens.")
            ids.append(resp.headers["location"].rsplit("/", 1)[-1])
        ana_before = await ana.unread()
        resp = await ana.post(f"/responses/{ids[0]}/accept", confirm="yes")
        assert resp.status_code == 303, resp.text
        # The post is full: Chloé is told kindly, in a message of her conversation...
        told = await chloe.latest()
        assert told.kind == "new_message" and told.response_id == ids[1]
        assert told.text("nl").startswith("Nieuw bericht van ")
        # ...and Ana is not told of the words the node wrote in her name.
        assert await ana.unread() == ana_before
