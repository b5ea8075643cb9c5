"""The durable email queue against a real SMTP server (aiosmtpd) on loopback: an SMTP server
that is down, a recipient refused for good, two senders on one database, a sender that dies
holding its lease, and a node process killed with SIGKILL while emails wait."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from node import mailqueue
from node.context import Node
from tests.conftest import node_settings, running_app
from tests.mail import SMTP_HOST, Mailbox, SmtpServer
from tests.nodes import REPO, NodeProcess, csrf_from


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


def ids_of(messages: list[EmailMessage]) -> list[str]:
    return sorted(m["Message-ID"] for m in messages)


async def rows(node: Node) -> list[dict]:
    return await node.db.fetch_all(
        "SELECT recipient, state, attempts, last_error FROM email_queue ORDER BY id")


async def wait_rows(node: Node, predicate) -> list[dict]:
    for _ in range(400):  # 20 s
        found = await rows(node)
        if predicate(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"the queue never got there: {await rows(node)}")


async def test_an_email_queued_in_a_transaction_exists_only_if_it_commits(
        tmp_path: Path, database_url: str, smtp):
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST=SMTP_HOST,
                             NODE_SMTP_PORT=str(smtp.port))
    async with running_app(settings) as (node, _client):
        with pytest.raises(RuntimeError):
            async with node.db.transaction():
                await mailqueue.enqueue_email(node, "gone@example.org", "Never", "Never sent")
                raise RuntimeError("the change it told about failed")
        async with node.db.transaction():
            await mailqueue.enqueue_email(node, "kept@example.org", "Kept", "Sent")
        assert [r["recipient"] for r in await rows(node)] == ["kept@example.org"]
        # One address, one line: nothing can smuggle another recipient or header in.
        for bad in ("a@example.org\r\nBcc: b@example.org", "a@example.org, b@example.org", "x"):
            with pytest.raises(ValueError):
                await mailqueue.enqueue_email(node, bad, "S", "T")
    # Without an SMTP server configured there is nobody to send to: nothing is queued.
    async with running_app(node_settings(tmp_path, database_url)) as (node, _client):
        await mailqueue.enqueue_email(node, "nobody@example.org", "S", "T")
        assert [r["recipient"] for r in await rows(node)] == ["kept@example.org"]


async def test_emails_wait_while_smtp_is_down_then_arrive_exactly_once(
        tmp_path: Path, database_url: str, smtp):
    # The sender runs in the node's own lifespan, as in production.
    settings = node_settings(tmp_path, database_url, NODE_RUN_WORKER="1",
                             NODE_SMTP_HOST=SMTP_HOST, NODE_SMTP_PORT=str(smtp.port),
                             NODE_SMTP_FROM="entraide@node.example")
    async with running_app(settings) as (node, _client):
        for n in range(3):
            await mailqueue.enqueue_email(node, f"p{n}@example.org", f"Subject\r\nBcc: x {n}",
                                          f"Body {n}", f"<p>Body {n}</p>", locale="nl")
        # Nothing listens: each email is tried, fails, and is tried again later.
        waiting = await wait_rows(node, lambda rs: all(r["attempts"] >= 2 for r in rs))
        assert {r["state"] for r in waiting} == {"pending"}
        assert all("connecting" in r["last_error"] for r in waiting)
        mailbox = smtp.start(Mailbox())
        await wait_rows(node, lambda rs: all(r["state"] == "sent" for r in rs))
        await asyncio.sleep(0.5)  # time enough for a second copy, if one were coming
    messages = mailbox.messages
    assert sorted(m["To"] for m in messages) == [f"p{n}@example.org" for n in range(3)]
    assert len(set(ids_of(messages))) == 3
    first = next(m for m in messages if m["To"] == "p0@example.org")
    assert first["Subject"] == "Subject Bcc: x 0" and first["Bcc"] is None
    assert first["From"] == "entraide@node.example" and first["Content-Language"] == "nl"
    assert first["Auto-Submitted"] == "auto-generated"
    assert first.get_body(("plain",)).get_content().strip() == "Body 0"
    assert first.get_body(("html",)).get_content().strip() == "<p>Body 0</p>"


async def test_a_recipient_refused_for_good_fails_alone(tmp_path: Path, database_url: str,
                                                        smtp):
    mailbox = smtp.start(Mailbox(refuse=("nobody@example.org",)))
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST=SMTP_HOST,
                             NODE_SMTP_PORT=str(smtp.port))
    async with running_app(settings) as (node, _client):
        for to in ("a@example.org", "nobody@example.org", "b@example.org"):
            await mailqueue.enqueue_email(node, to, "Hello", "Text")
        await mailqueue.send_due(node)
        assert [(r["recipient"], r["state"], r["attempts"]) for r in await rows(node)] == [
            ("a@example.org", "sent", 1), ("nobody@example.org", "failed", 1),
            ("b@example.org", "sent", 1)]
    assert sorted(m["To"] for m in mailbox.messages) == ["a@example.org", "b@example.org"]


async def test_two_senders_on_one_database_send_each_email_once(
        tmp_path: Path, database_url: str, smtp):
    mailbox = smtp.start(Mailbox())
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST=SMTP_HOST,
                             NODE_SMTP_PORT=str(smtp.port))
    async with running_app(settings) as (node, _client):
        for n in range(40):
            await mailqueue.enqueue_email(node, f"m{n}@example.org", f"S{n}", "T")
        # A second node object: its own connections, as another process would have.
        other = Node.create(settings)
        await other.start()
        try:
            tried = await asyncio.gather(mailqueue.send_due(node), mailqueue.send_due(other))
        finally:
            await other.stop()
        assert sum(tried) == 40
        assert {r["state"] for r in await rows(node)} == {"sent"}
    assert len(mailbox.messages) == 40
    assert len(set(ids_of(mailbox.messages))) == 40


async def test_a_sender_that_dies_holding_emails_leaves_them_to_another(
        tmp_path: Path, database_url: str, smtp):
    mailbox = smtp.start(Mailbox())
    settings = node_settings(tmp_path, database_url, NODE_SMTP_HOST=SMTP_HOST,
                             NODE_SMTP_PORT=str(smtp.port))
    async with running_app(settings) as (node, _client):
        await mailqueue.enqueue_email(node, "late@example.org", "S", "T")
        # A sender claims it, then dies before sending (its lease is short here).
        [claimed] = await mailqueue.claim(node, "dead-sender", 10, lease=0.6)
        assert await mailqueue.send_due(node) == 0  # the lease still holds: nobody else sends
        assert mailbox.messages == []
        # The dead sender cannot come back and send it after another took it.
        await asyncio.sleep(0.7)
        assert await mailqueue.send_due(node) == 1
        assert not await mailqueue.still_mine(node, claimed, "dead-sender", 60)
    assert [m["To"] for m in mailbox.messages] == ["late@example.org"]


def invite(node: NodeProcess, email: str) -> None:
    page = node.client.get("/account/invitations")
    resp = node.client.post("/account/invitations", data={
        "csrf_token": csrf_from(page.text), "email": email, "role": "member"})
    assert resp.status_code == 200, resp.text


def test_a_node_killed_while_emails_wait_sends_each_once_after_restart(tmp_path: Path):
    smtp = SmtpServer(host="127.0.0.121")
    node = NodeProcess(tmp_path / "node", host="127.0.0.121", NODE_SMTP_HOST="127.0.0.121",
                       NODE_SMTP_PORT=str(smtp.port), NODE_DELIVERY_TIMEOUT="1").start()
    try:
        node.login()
        people = [f"invited{n}@example.org" for n in range(3)]
        for email in people:
            invite(node, email)
        # The SMTP server is down: all three are tried and wait.
        node.wait_until("SELECT COUNT(*) AS n FROM email_queue WHERE attempts >= 1 "
                        "HAVING COUNT(*) = 3")
        # It comes back, but stalls on the first message: the node is killed mid-send, the
        # email claimed and not accepted by the server.
        stalled = smtp.start(Mailbox(hang=True))
        assert stalled.hanging.wait(20), node.log()
        node.kill()
        smtp.stop()
        assert node.query("SELECT COUNT(*) AS n FROM email_queue WHERE state = 'sent'") == [
            {"n": 0}]
        mailbox = smtp.start(Mailbox())
        node.start()
        messages = mailbox.wait_for(3, timeout=30)
        node.wait_until("SELECT COUNT(*) AS n FROM email_queue WHERE state = 'sent' "
                        "HAVING COUNT(*) = 3")
        time.sleep(0.5)  # time enough for a second copy, if one were coming
        assert sorted(m["To"] for m in mailbox.messages) == people, node.log()
        assert len(set(ids_of(messages))) == 3
        assert all("/invite/" in m.get_content() for m in messages)
    finally:
        node.close()
        smtp.stop()


def test_a_separate_worker_process_sends_what_the_web_process_queued(tmp_path: Path):
    smtp = SmtpServer(host="127.0.0.128")
    mailbox = smtp.start(Mailbox())
    node = NodeProcess(tmp_path / "node", host="127.0.0.128", NODE_SMTP_HOST="127.0.0.128",
                       NODE_SMTP_PORT=str(smtp.port), NODE_RUN_WORKER="0").start()
    worker = None
    try:
        node.login()
        invite(node, "worker@example.org")
        time.sleep(0.5)
        # The web process only queues: without a worker nothing leaves.
        assert mailbox.messages == []
        assert node.query("SELECT state FROM email_queue") == [{"state": "pending"}]
        with open(tmp_path / "worker.log", "ab") as log:
            worker = subprocess.Popen([sys.executable, "-m", "node", "worker"], cwd=REPO,
                                      env=node.env, stdout=log, stderr=subprocess.STDOUT)
        [message] = mailbox.wait_for(1)
        assert message["To"] == "worker@example.org"
        node.wait_until("SELECT 1 FROM email_queue WHERE state = 'sent'")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        node.close()
        smtp.stop()


@pytest.mark.parametrize("subject", [
    "Votre réponse à «\u202fSoupe chaude\u202f» a été acceptée",
    "Nouveau message de Ana à propos de «\u202fSoupe chaude\u202f»",
    "L’acceptation de votre réponse à «\u202fUne soupe chaude pour une famille de cinq "
    "personnes à Saint-Gilles\u202f» a été annulée",
    "Nieuw antwoord op “Warme douche” van Sara",
])
def test_a_subject_arrives_word_for_word(tmp_path: Path, subject: str) -> None:
    """French subjects mix encoded words with (narrow) no-break spaces; folded at 78 columns,
    Python's email package lost the space at a fold ("a été" read "aété")."""
    settings = node_settings(tmp_path, "sqlite:///unused.db")
    email = mailqueue.QueuedEmail(1, "ana@example.org", subject, "Bonjour Ana,", None, "fr",
                                  "<id@example.org>", 0)
    sent = mailqueue.build_message(settings, email).as_bytes()
    assert max(len(line) for line in sent.splitlines()) <= 998
    assert message_from_bytes(sent, policy=policy.default)["Subject"] == subject
