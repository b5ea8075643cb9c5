"""The durable email queue: every email the node sends is a row in `email_queue` first.

`enqueue_email` writes the row with the caller's connection, so an email queued inside a
transaction exists exactly when the change it tells about was committed. A `MailSender` (in the
web process when it runs the worker, and in every `python -m node worker`) claims due rows under
a lease, sends them over one SMTP connection per batch and records each outcome at once. An SMTP
server that is down, a refused login or a process killed mid-way loses nothing: the row is tried
again with exponential backoff, for about a day.

Exactly once: a row is claimed by one sender only (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
single writer on SQLite), and before each send the sender renews its lease and checks it still
holds the row. The only window for a duplicate is a process killed after the SMTP server
accepted a message and before `sent` was written; the retry then carries the same Message-ID,
which mail systems use to drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import smtplib
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from node import leases
from node.config import Settings
from node.context import Node
from node.db import now

log = logging.getLogger(__name__)

# 30 s, 1 min, 2 min ... doubling up to an hour between tries; 30 tries span about a day.
FIRST_RETRY = 30.0
LONGEST_RETRY = 3600.0
MAX_ATTEMPTS = 30
BATCH = 10
IDLE_WAIT = 1.0
# Seconds between two runs of the producers (emails made by the sender's loop itself, such as
# the digest of matches, node/matching.py).
PRODUCE_EVERY = 5.0

# Queues emails that are due (e.g. digests); returns how many it queued.
Producer = Callable[[Node], Awaitable[int]]


def retry_delay(attempts: int, scale: float = 1.0) -> float:
    """Seconds before the next try after the `attempts`-th failed one (1-based)."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), LONGEST_RETRY) * scale


@dataclass(frozen=True)
class QueuedEmail:
    id: int
    recipient: str
    subject: str
    body_text: str
    body_html: str | None
    locale: str
    message_id: str
    attempts: int


# Line breaks of every kind and ordinary blanks; no-break spaces stay (French puts a narrow one
# before ":" and inside « »).
_BREAKS_AND_BLANKS = re.compile("[ \t\r\n\f\v\x1c-\x1f\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """A header value on one line: text from another server may hold line breaks."""
    return _BREAKS_AND_BLANKS.sub(" ", str(text)).strip()


# Headers are not folded at 78 columns: Python's folding of a header made of encoded words
# loses the space at a fold next to a no-break space ("a été" arrived as "aété", "Soupe
# chaude" as "Soupechaude"); 998 is the limit of a line in RFC 5322.
MESSAGE_POLICY = policy.SMTP.clone(max_line_length=998)


def _check_address(to: str) -> str:
    address = to.strip()
    if not address or "@" not in address or any(c in address for c in "\r\n,;<> \t"):
        raise ValueError(f"not a single email address: {to!r}")
    return address


async def enqueue_email(node: Node, to: str, subject: str, text: str,
                        html: str | None = None, *, locale: str = "") -> None:
    """Queues an email (in the caller's transaction when there is one). Without an SMTP server
    configured, nothing is queued: the node has no way to send it."""
    address = _check_address(to)
    if not node.settings.smtp_host:
        log.debug("no SMTP server configured: email to %s not queued", address)
        return
    stamp = now()
    await node.db.execute(
        "INSERT INTO email_queue (recipient, subject, body_text, body_html, locale, message_id, "
        "state, attempts, next_attempt_at, created_at) "
        "VALUES (:r, :s, :b, :h, :l, :m, 'pending', 0, :t, :t)",
        {"r": address, "s": one_line(subject), "b": text, "h": html, "l": locale,
         "m": make_msgid(domain=node.settings.domain or "localhost"), "t": stamp},
    )
    _wake(node)


def build_message(settings: Settings, email: QueuedEmail) -> EmailMessage:
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Subject"] = one_line(email.subject)
    message["From"] = settings.smtp_from or f"entraide@{settings.domain or 'localhost'}"
    message["To"] = email.recipient
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = email.message_id
    # RFC 3834: vacation responders must not answer an automatic email.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.body_text)
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    if email.locale:
        # After set_content, which replaces every Content-* header.
        message["Content-Language"] = email.locale
    return message


# --- the queue's rows ------------------------------------------------------------------------

async def claim(node: Node, sender_id: str, limit: int, lease: float,
                due_by: float | None = None) -> list[QueuedEmail]:
    """Takes up to `limit` emails due now (or by `due_by`) for this sender, atomically."""
    rows = await leases.claim(
        node, table="email_queue", key="id", state="state",
        returning=("id", "recipient", "subject", "body_text", "body_html", "locale",
                   "message_id", "attempts"),
        worker_id=sender_id, limit=limit, lease=lease, due_by=due_by)
    return sorted((QueuedEmail(**row) for row in rows), key=lambda e: e.id)


async def still_mine(node: Node, email: QueuedEmail, sender_id: str, lease: float) -> bool:
    """Renews the lease just before sending; False if another sender took the row since."""
    kept = await node.db.fetch_val(
        "UPDATE email_queue SET locked_until = :lease WHERE id = :i AND claimed_by = :w "
        "AND state = 'pending' RETURNING id",
        {"lease": now() + lease, "i": email.id, "w": sender_id},
    )
    return kept is not None


async def mark_sent(node: Node, email: QueuedEmail) -> None:
    await node.db.execute(
        "UPDATE email_queue SET state = 'sent', attempts = attempts + 1, sent_at = :t, "
        "locked_until = NULL, last_error = NULL WHERE id = :i",
        {"t": now(), "i": email.id},
    )


async def mark_failed(node: Node, email: QueuedEmail, error: str,
                      permanent: bool = False) -> str:
    """Records a failed try; the email is tried again later unless it is hopeless."""
    attempts = email.attempts + 1
    state = "failed" if permanent or attempts >= MAX_ATTEMPTS else "pending"
    await node.db.execute(
        "UPDATE email_queue SET state = :s, attempts = :a, next_attempt_at = :n, "
        "locked_until = NULL, last_error = :e WHERE id = :i",
        {"s": state, "a": attempts, "e": error[:500], "i": email.id,
         "n": now() + retry_delay(attempts, node.settings.backoff_scale)},
    )
    return state


async def next_due(node: Node) -> float | None:
    return await node.db.fetch_val(
        "SELECT MIN(next_attempt_at) FROM email_queue WHERE state = 'pending'")


# --- sending ---------------------------------------------------------------------------------

def _permanent(exc: Exception) -> bool:
    """A recipient or message the server refuses for good (5xx); anything else may pass later
    (a server down, a 4xx, a refused sender or login that the operator can fix)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


def _connection_lost(exc: Exception) -> bool:
    # Every SMTPException is an OSError too: only a socket error or a hang-up ends the session.
    return isinstance(exc, smtplib.SMTPServerDisconnected) or (
        isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException))


def _connect(settings: Settings, timeout: float) -> smtplib.SMTP:
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    try:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _quit(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    smtp.close()


class MailSender:
    """Sends due emails until stopped; several may share a database."""

    def __init__(self, node: Node, producers: Sequence[Producer] = ()) -> None:
        self.node = node
        self.producers = tuple(producers)
        self.produced_at = 0.0
        self.id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}:mail"
        self.wake = asyncio.Event()
        self.stopping = False
        # Every SMTP step waits at most `timeout`, a whole message `deadline`; the lease, renewed
        # before each message, outlives one.
        self.timeout = max(0.5, node.settings.delivery_timeout)
        self.deadline = 2 * self.timeout
        self.lease = self.deadline + 5
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        _senders[id(self.node)] = self
        log.info("email sender %s started", self.id)
        try:
            while not self.stopping:
                await self.produce()
                try:
                    sent = await self.send_batch()
                except Exception:  # a busy or restarting database must not end the loop
                    log.exception("sending queued emails failed")
                    sent = 0
                if sent == 0 and not self.stopping:
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), timeout=await self._idle())
        finally:
            if _senders.get(id(self.node)) is self:
                del _senders[id(self.node)]

    async def _idle(self) -> float:
        try:
            due = await next_due(self.node)
        except Exception:
            log.exception("reading the next due email failed")
            return IDLE_WAIT
        if due is None:
            return IDLE_WAIT
        return min(IDLE_WAIT, max(0.05, due - now()))

    async def produce(self) -> None:
        """Runs the producers every PRODUCE_EVERY seconds; what they queue is sent right after.
        Each must be safe to run in several processes at once (claim rows, queue in the same
        transaction)."""
        if not self.producers or now() - self.produced_at < PRODUCE_EVERY:
            return
        self.produced_at = now()
        for producer in self.producers:
            try:
                await producer(self.node)
            except Exception:  # one producer failing must not stop the emails
                log.exception("producing emails with %s failed", producer)

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()

    async def send_batch(self, due_by: float | None = None) -> int:
        """Claims up to BATCH due emails and tries each once; returns how many were tried."""
        emails = await claim(self.node, self.id, BATCH, self.lease, due_by)
        if not emails:
            return 0
        settings = self.node.settings
        try:
            smtp = await asyncio.to_thread(_connect, settings, self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            log.info("SMTP server %s:%s unavailable (%s); %d email(s) wait",
                     settings.smtp_host, settings.smtp_port, exc, len(emails))
            for email in emails:
                await mark_failed(self.node, email, f"connecting: {exc}")
            return len(emails)
        try:
            for index, email in enumerate(emails):
                if not await still_mine(self.node, email, self.id, self.lease):
                    continue
                try:
                    await self._send_one(smtp, build_message(settings, email))
                except (OSError, smtplib.SMTPException, ValueError) as exc:
                    permanent = isinstance(exc, ValueError) or _permanent(exc)
                    state = await mark_failed(self.node, email, str(exc), permanent)
                    log.warning("email %s to %s not sent (%s): %s", email.id, email.recipient,
                                state, exc)
                    if _connection_lost(exc):
                        # The connection is gone: the rest are tried on the next round.
                        for rest in emails[index + 1:]:
                            await mark_failed(self.node, rest, f"connection lost: {exc}")
                        break
                    continue
                await mark_sent(self.node, email)
                log.debug("email %s sent to %s", email.id, email.recipient)
        finally:
            await asyncio.to_thread(_quit, smtp)
        return len(emails)

    async def _send_one(self, smtp: smtplib.SMTP, message: EmailMessage) -> None:
        """One message, within `deadline` as a whole (each SMTP step has `timeout`), so that the
        lease renewed just before it outlives it."""
        sending = asyncio.ensure_future(asyncio.to_thread(smtp.send_message, message))
        done, _ = await asyncio.wait({sending}, timeout=self.deadline)
        if sending in done:
            sending.result()
            return
        # A blocked read in the thread ends when its socket is shut down.
        if smtp.sock is not None:
            with contextlib.suppress(OSError):
                smtp.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            await sending
        raise smtplib.SMTPServerDisconnected(f"no answer within {self.deadline:g} s")


# The sender running in this process for a node, woken when an email is queued.
_senders: dict[int, MailSender] = {}


def _wake(node: Node) -> None:
    sender = _senders.get(id(node))
    if sender is not None:
        sender.wake.set()
        # Queued inside a transaction, the row is visible only after the commit: look again soon.
        asyncio.get_running_loop().call_later(0.2, sender.wake.set)


async def send_due(node: Node) -> int:
    """Sends every email due now, once each (tests; a process without a running sender)."""
    sender = MailSender(node)
    started = now()
    total = 0
    # An email that fails now is due again after `started`: each is tried once.
    while (tried := await sender.send_batch(due_by=started)) > 0:
        total += tried
    return total


async def pending_count(node: Node) -> int:
    return int(await node.db.fetch_val(
        "SELECT COUNT(*) FROM email_queue WHERE state = 'pending'") or 0)


def start_sender(node: Node, producers: Sequence[Producer] = ()) -> MailSender | None:
    """Starts a sender in the running loop (None without an SMTP server to send to), running
    `producers` on its way."""
    if not node.settings.smtp_host:
        return None
    sender = MailSender(node, producers)
    _senders[id(node)] = sender
    sender.task = asyncio.create_task(sender.run())
    return sender


async def stop_sender(sender: MailSender | None) -> None:
    """Lets the email being sent finish (its row stays claimed otherwise), then stops."""
    if sender is None or sender.task is None:
        return
    sender.stop()
    try:
        await asyncio.wait_for(asyncio.shield(sender.task), timeout=sender.lease)
    except TimeoutError:
        sender.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender.task
