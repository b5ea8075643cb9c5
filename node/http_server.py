"""Limits on a request head and body, which uvicorn does not set.

uvicorn's httptools protocol buffers a request head of any size and waits for it without end:
its keep-alive timer runs only between two requests, and nothing runs before the first. One
client could hold connections (and their memory) with heads sent a byte a minute, or send
megabytes of headers. `GuardedHttpToolsProtocol` adds, at the layer that reads the bytes:

- a size limit on the request line and headers together: 431 and the connection closed;
- a deadline for the whole head, counted from the moment the connection opens or a request's
  first byte arrives: 408 and closed (closed without a word when nothing came at all);
- deadlines for a body: no silence longer than `body_idle_timeout` between two of its bytes,
  and all of it within `body_timeout` of the head's end: 408 (if no answer has begun) and
  closed. Without them a client that drips a body a byte at a time holds a request, its task
  and whatever the handler keeps, for as long as it likes.

The ASGI app cannot do this: it sees a request only once its head is complete.
`python -m node serve` selects it through uvicorn's `http` option (`server_options`).

It also gathers what one turn of the event loop writes to a connection into one send
(`CorkedTransport`): uvicorn writes a response's head and its body separately, and on a small
answer (an actor, a page of an outbox) the second system call was a tenth of the request's CPU.
"""

from __future__ import annotations

import asyncio
import functools
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from node.config import Settings


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options that bound what one connection may cost."""
    protocol = functools.partial(GuardedHttpToolsProtocol, max_head_bytes=settings.max_header_bytes,
                                 head_timeout=settings.header_timeout,
                                 body_idle_timeout=settings.body_idle_timeout,
                                 body_timeout=settings.body_timeout)
    return {"http": protocol, "timeout_keep_alive": settings.keep_alive_timeout}


class CorkedTransport:
    """A transport whose writes of one event-loop turn leave in one `write` at the end of it.
    Everything else is the real transport's; closing sends what waits first."""

    __slots__ = ("_transport", "_loop", "_parts")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._parts:
            self._loop.call_soon(self._flush)
        self._parts.append(data)

    def _flush(self) -> None:
        parts, self._parts = self._parts, []
        if parts and not self._transport.is_closing():
            self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, max_head_bytes: int, head_timeout: float,
                 body_idle_timeout: float = 20.0, body_timeout: float = 300.0,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = max_head_bytes
        self.head_timeout = head_timeout
        self.body_idle_timeout = body_idle_timeout
        self.body_timeout = body_timeout
        # One timer per body, re-armed only when it fires: a body of many chunks costs a clock
        # read per chunk, not a timer.
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_last = 0.0
        self._body_end = 0.0
        # A head is awaited from the connection's start, and again from a request's first byte.
        self._awaiting_head = True
        self._head_begun = False
        self._head_bytes = 0  # received while the head is incomplete
        self._head_size = 0  # request line and headers as parsed
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._body_ends()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        awaiting = self._awaiting_head
        super().data_received(data)
        # Bytes that did not complete a head are all head: httptools keeps them until it does.
        if awaiting and self._awaiting_head and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    # --- parser callbacks: nothing more is parsed once the request is refused ------------------
    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._awaiting_head = self._head_begun = True
        self._head_bytes = self._head_size = 0
        if self._head_deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)
            self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            super().on_header(name, value)
            self._count(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._awaiting_head = self._head_begun = False
        self._disarm()
        super().on_headers_complete()
        if not self._refused:
            self._body_begins()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            self._body_last = self.loop.time()
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            self._body_ends()
            super().on_message_complete()

    def _should_upgrade(self) -> bool:
        return not self._refused and super()._should_upgrade()

    # --- the limits -----------------------------------------------------------------------------
    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.max_head_bytes:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def _arm(self) -> None:
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _body_begins(self) -> None:
        start = self.loop.time()
        self._body_last, self._body_end = start, start + self.body_timeout
        self._body_timer = self.loop.call_at(
            min(start + self.body_idle_timeout, self._body_end), self._body_check)

    def _body_ends(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_check(self) -> None:
        self._body_timer = None
        due = min(self._body_last + self.body_idle_timeout, self._body_end)
        if self.loop.time() >= due:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT, in_body=True)
        else:
            self._body_timer = self.loop.call_at(due, self._body_check)

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._head_begun:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT)
        elif not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: HTTPStatus, in_body: bool = False) -> None:
        self._refused = True
        self._disarm()
        self._body_ends()
        if self.transport.is_closing():
            return
        # Never write into the middle of a response: while a head is awaited, the cycle is the
        # previous request's; while a body is, it is this request's, whose handler may answer
        # before reading all of it.
        if in_body:
            answering = self.cycle is not None and self.cycle.response_started
        else:
            answering = self.cycle is not None and not self.cycle.response_complete
        if not answering:
            body = status.phrase.encode()
            head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
            head += [name + b": " + value + b"\r\n"
                     for name, value in self.server_state.default_headers]
            head.append(b"content-type: text/plain; charset=utf-8\r\n"
                        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
            self.transport.write(b"".join(head) + body)
        self.transport.close()
