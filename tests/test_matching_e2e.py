"""Matching over real HTTP: real node processes on 127.0.13.x, members signed in through the
forms, a real SMTP server (aiosmtpd) receiving the emails.

One node: a need posted in Anderlecht fits offers nearby (Forest) of the same category, with
overlapping dates and a shared language; each offer's author hears of it as they chose (at
once, in a digest, never), the need's author hears of the offers, and nobody whose offer does
not fit (category, distance, dates, language) hears anything. The need's page shows the offers,
only the public ones to a visitor. The digest goes out once, across a kill and two restarts.
Two nodes: a need arriving from a followed organisation of another node (signed deliveries)
tells the local author of a fitting offer."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from node.notifications import KIND_LABELS
from tests.mail import Mailbox, SmtpServer
from tests.nodes import NodeProcess, csrf_from
from tests.test_notifications_e2e import local_member, member

pytestmark = pytest.mark.e2e

SMTP_HOST = "127.0.13.9"


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).strftime("%Y-%m-%d")


def post(client: httpx.Client, kind: str, **fields: object) -> str:
    """Publishes an offer or a need through the form; returns its id."""
    form = client.get(f"/posts/new?kind={kind}")
    data = {"csrf_token": csrf_from(form.text), "kind": kind, "urgency": "1",
            "description": "", "visibility": "public", **fields}
    resp = client.post(f"/posts/new?kind={kind}", data=data)
    assert resp.status_code == 303, resp.text
    return resp.headers["location"].rsplit("/", 1)[-1].split("?")[0]


def choose(client: httpx.Client, frequency: str) -> None:
    page = client.get("/notifications/settings")
    resp = client.post("/notifications/settings", data={
        "csrf_token": csrf_from(page.text), "email": list(KIND_LABELS),
        "match_frequency": frequency})
    assert resp.status_code == 303, resp.text


def told(node: NodeProcess, email: str) -> list[dict]:
    return node.query(
        "SELECT n.kind, n.payload FROM notifications n JOIN users u ON u.id = n.user_id "
        "WHERE u.email = :e AND n.kind IN ('need_fits_offer', 'offer_fits_need', "
        "'matches_found') ORDER BY n.id", {"e": email})


def mails_to(mailbox: Mailbox, email: str) -> list:
    return [m for m in mailbox.messages if m["To"] == email]


OFFER = {"category": "housing", "neighbourhood": "Forest", "languages": ["fr", "nl"]}


def test_a_local_need_tells_fitting_offers_as_each_member_chose(tmp_path):
    smtp = SmtpServer(host=SMTP_HOST)
    mailbox = smtp.start(Mailbox())
    node = NodeProcess(tmp_path / "n", host="127.0.13.1", org="quartier",
                       NODE_SMTP_HOST=SMTP_HOST, NODE_SMTP_PORT=str(smtp.port))
    node.start()
    clients: list[httpx.Client] = []
    try:
        def person(name: str, locale: str = "en") -> httpx.Client:
            client = local_member(node, f"{name}@n.example", name.title(), locale)
            clients.append(client)
            return client

        olivia, dirk, nora, nadia = person("olivia"), person("dirk"), person("nora"), \
            person("nadia", "fr")
        choose(dirk, "digest")
        choose(nora, "never")
        # Olivia's room is seen by members only: a visitor never sees it among the matches.
        room = post(olivia, "offer", title="A room in Forest", **OFFER, visibility="local")
        sofa = post(dirk, "offer", title="A sofa bed", **{**OFFER, "neighbourhood":
                                                         "Anderlecht"})
        attic = post(nora, "offer", title="An attic room", **OFFER)
        # Offers that do not fit: another category, too far, over before the need, no shared
        # language. Their authors hear nothing.
        misfits = {
            "carl": {**OFFER, "category": "clothes", "title": "Winter coats"},
            "evi": {**OFFER, "neighbourhood": "Evere", "title": "A bed in Evere"},
            "dan": {**OFFER, "title": "A bed last week", "starts_at": day(-9),
                    "ends_at": day(1)},
            "lena": {**OFFER, "title": "A bed, English only", "languages": ["en"]},
        }
        for name, fields in misfits.items():
            post(person(name), "offer", **fields)
        assert told(node, "olivia@n.example") == []

        need = post(nadia, "need", title="Un lit pour deux nuits", category="housing",
                    neighbourhood="Anderlecht", languages=["fr"], starts_at=day(3),
                    ends_at=day(5), description="Pour une mère et son enfant.")

        [(kind, payload)] = [(r["kind"], json.loads(r["payload"]))
                             for r in told(node, "olivia@n.example")]
        assert kind == "need_fits_offer"
        assert payload["title"] == "Un lit pour deux nuits"
        assert payload["mine"] == "A room in Forest"
        assert payload["url"].endswith(f"/posts/{need}")
        page = olivia.get("/notifications")
        assert "A new need fits your offer “A room in Forest”: “Un lit pour deux nuits”" \
            in page.text
        [mail] = [m for m in mailbox.wait_for(2) if m["To"] == "olivia@n.example"]
        assert mail["Subject"] == ("A new need fits your offer “A room in Forest”: "
                                   "“Un lit pour deux nuits”")
        assert "> Pour une mère et son enfant." in mail.get_content()

        # The need's author hears of the three offers in one notification, in French.
        [(kind, payload)] = [(r["kind"], json.loads(r["payload"]))
                             for r in told(node, "nadia@n.example")]
        assert kind == "matches_found" and payload["num"] == 3
        for title in ("A room in Forest", "A sofa bed", "An attic room"):
            assert title in payload["excerpt"]
        assert "3 offres correspondent à votre besoin «\u202fUn lit pour deux nuits\u202f»" \
            in nadia.get("/notifications").text

        # Dirk chose the digest: told on the page now, by email later; Nora chose never.
        assert [r["kind"] for r in told(node, "dirk@n.example")] == ["need_fits_offer"]
        assert told(node, "nora@n.example") == []
        for name in misfits:
            assert told(node, f"{name}@n.example") == [], name
        time.sleep(1)
        assert sorted(m["To"] for m in mailbox.messages) == [
            "nadia@n.example", "olivia@n.example"]

        # The need's page shows its best matches as links: all three to a member, the two
        # public ones to a visitor.
        page = nadia.get(f"/posts/{need}")
        assert "3 offres proches de vous correspondent à ce besoin" in page.text
        for offer in (room, sofa, attic):
            assert f'href="/posts/{offer}"' in page.text
        visitor = httpx.Client(base_url=node.base, timeout=10,
                               headers={"Accept-Language": "en"})
        clients.append(visitor)
        page = visitor.get(f"/posts/{need}")
        assert page.status_code == 200
        assert "2 offers near you fit this need" in page.text
        assert f'href="/posts/{room}"' not in page.text and "A room in Forest" not in page.text
        assert f'href="/posts/{sofa}"' in page.text
        # And the offer's page shows the need, in the offer author's language.
        assert "1 need near you fits this offer" in olivia.get(f"/posts/{room}").text

        # The reverse: a new offer that fits the need tells its author at once, and the
        # offer's author of the need.
        bed = post(person("bea"), "offer", title="Un lit d’appoint", **{
            **OFFER, "neighbourhood": "Saint-Gilles", "languages": ["fr"]})
        kinds = [(r["kind"], json.loads(r["payload"])) for r in told(node, "nadia@n.example")]
        assert kinds[-1][0] == "offer_fits_need"
        assert kinds[-1][1]["mine"] == "Un lit pour deux nuits"
        assert kinds[-1][1]["url"].endswith(f"/posts/{bed}")
        [(kind, payload)] = [(r["kind"], json.loads(r["payload"]))
                             for r in told(node, "bea@n.example")]
        assert kind == "matches_found" and payload["num"] == 1 and payload["kind"] == "offer"

        # A second need fits Dirk's sofa too: his digest will hold both.
        post(nadia, "need", title="Un canapé pour une nuit", category="housing",
             neighbourhood="Forest", languages=["fr"])
        assert len(told(node, "dirk@n.example")) == 2

        # The digest period passes while the SMTP server is down: the digest is queued, then
        # the node is killed before it could be sent.
        smtp.stop()
        node.stop()
        node.env["NODE_MATCH_DIGEST_SECONDS"] = "1"
        node.start()
        node.wait_until("SELECT 1 FROM email_queue WHERE recipient = 'dirk@n.example'")
        node.kill()
        assert node.query("SELECT state FROM match_notices m JOIN users u ON u.id = m.user_id "
                          "WHERE u.email = 'dirk@n.example'") == [{"state": "mailed"}] * 2
        smtp.start(mailbox)
        node.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not mails_to(mailbox, "dirk@n.example"):
            time.sleep(0.1)
        [digest] = mails_to(mailbox, "dirk@n.example")
        assert digest["Subject"] == "2 offers or needs fit your posts"
        body = digest.get_content()
        assert "For your offer “A sofa bed”:" in body
        assert "- Un lit pour deux nuits: " in body and "- Un canapé pour une nuit: " in body
        # Restarted once more, the node mails nothing again (the sender's producers run
        # every few seconds: give them two rounds).
        node.stop()
        node.start()
        time.sleep(12)
        assert len(mails_to(mailbox, "dirk@n.example")) == 1
        assert mails_to(mailbox, "nora@n.example") == []
    finally:
        for client in clients:
            client.close()
        node.close()
        smtp.stop()


def test_a_need_from_a_followed_node_tells_the_local_offer_author(tmp_path):
    a = NodeProcess(tmp_path / "a", host="127.0.13.2", org="quartier").start()
    b = NodeProcess(tmp_path / "b", host="127.0.13.3", org="refuge").start()
    try:
        a.login()
        assert a.admin_action("follow", target=b.handle).status_code == 303
        a.wait_until("SELECT 1 FROM follows WHERE followee_uri = :b AND state = 'accepted'",
                     {"b": b.org_uri})
        olivia = member(a, "olivia@a.example")
        # Whether a remote post's languages are those its author speaks or the one it is
        # written in, Olivia speaks them all.
        room = post(olivia, "offer", title="A room in Forest",
                    **{**OFFER, "languages": ["fr", "nl", "en"]})
        carl = member(a, "carl@a.example")
        post(carl, "offer", title="Winter coats", **{**OFFER, "category": "clothes"})
        author = member(b, "author@b.example")
        post(author, "need", title="Een bed voor twee nachten", category="housing",
             neighbourhood="Saint-Gilles", languages=["nl"])

        [row] = a.wait_until(
            "SELECT n.payload FROM notifications n JOIN users u ON u.id = n.user_id "
            "WHERE u.email = 'olivia@a.example' AND n.kind = 'need_fits_offer'")
        payload = json.loads(row["payload"])
        [remote] = a.query("SELECT id FROM posts WHERE remote = 1")
        assert payload["title"] == "Een bed voor twee nachten"
        assert payload["url"].endswith(f"/posts/{remote['id']}")
        assert told(a, "carl@a.example") == []
        page = olivia.get(f"/posts/{room}")
        assert f'href="/posts/{remote["id"]}"' in page.text
        # Nobody on B has an offer: nobody there is told, and the remote author is not ours.
        assert b.query("SELECT kind FROM notifications") == []
        olivia.close()
        carl.close()
        author.close()
    finally:
        a.close()
        b.close()
