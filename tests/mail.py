"""A real SMTP server for the tests: aiosmtpd on a loopback address, keeping what it accepts."""

from __future__ import annotations

import asyncio
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.peers import free_port

SMTP_HOST = "127.0.0.120"


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts; `refuse` names recipients it
    refuses for good (550), `hang` makes it stall on the next message's data."""

    def __init__(self, refuse: tuple[str, ...] = (), hang: bool = False) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = refuse
        self.hang = hang
        self.hanging = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        if self.hang:
            self.hanging.set()
            await asyncio.sleep(3600)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, count: int, timeout: float = 20) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.05)
        return list(self.messages)


class SmtpServer:
    """aiosmtpd on a loopback port that may be started, stopped and started again."""

    def __init__(self, host: str = SMTP_HOST, port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.controller: Controller | None = None
        self.mailbox = Mailbox()

    def start(self, mailbox: Mailbox) -> Mailbox:
        self.mailbox = mailbox
        self.controller = Controller(mailbox, hostname=self.host, port=self.port)
        self.controller.start()
        return mailbox

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
