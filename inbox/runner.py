"""Running inbox handlers over the durable queue (inbox/queue.py), and resuming what is left.

When a POST has passed the checks (inbox/receiver.py), its activity is stored as a pending row
leased to this process, and only then answered: a 2xx always means "stored". The handler then
runs at once, inside the request, for up to `NODE_INBOX_WAIT` seconds (3 by default):

- Almost every handler is done by then, and the sender gets the real outcome: 202, or 422 with
  the reason when the activity is refused. Work stays paced by the senders, as before.
- A handler that takes longer (a slow remote server to fetch from) goes on in the background,
  still holding its lease, and the sender gets 202 at once: the inbox never keeps a sender
  waiting long enough for its own timeout (Mastodon reads for 10 s) to make it retry.

So resuming is needed only for what a crash, a stop or a failing handler leaves behind: each
process (web process or `python -m node worker`) runs a resumer that claims pending rows whose
lease has run out or whose retry is due, at start and then periodically. A failed handler is
retried with backoff MAX_ATTEMPTS times, then the row is 'failed' with its error.

Exactly once: a handler runs to its end once per row, under a lease renewed while it runs, and a
row is finished only by its lease holder. A crash after a handler's last write but before the
row is marked processed runs the handler once more: handlers write keyed by the activity id or
by what it is about (reactions, follows, reports, objects), so that second run adds nothing.
That mark is written after the answer, FINISH_LINGER later, by one statement for every row
finished meanwhile (a stop writes the marks still waiting): what it must say, that the handler
is done, the answer does not need, and a statement per activity was a third of an activity's
round trips at a modest rate. A mark that fails leaves the row to its lease, as a crash does.

Test-only: `NODE_TEST_INBOX_DELAY` (seconds) makes each freshly stored activity wait that long
before its handler runs, so that a test can kill the process between storing and handling. It
is read from the environment only, is not a setting, and must never be set in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from inbox import queue
from inbox.context import ActivityRejected, InboxContext
from inbox.handlers import HANDLERS
from node.actors import LocalActor, by_id
from node.context import Node
from node.db import GroupCommit, dumps, now

log = logging.getLogger(__name__)

CONCURRENCY = 8  # handlers the resumer runs at once
MAX_IDLE = 10.0  # seconds between two looks for rows left by a dead process
STOP_GRACE = 5.0  # seconds running handlers get to finish at shutdown
FINISH_LINGER = 0.05  # seconds a row marked processed waits for others to share its statement
_UNKNOWN: Any = object()


@dataclass(frozen=True)
class Result:
    """What became of an activity handed to the runner."""

    state: str  # duplicate, ignored, processed, rejected, pending (retry due), failed, running
    error: str | None = None


class InboxRunner:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease = node.settings.inbox_lease
        self.wait = node.settings.inbox_wait
        self.test_delay = float(os.environ.get("NODE_TEST_INBOX_DELAY") or 0)
        self.running: dict[str, asyncio.Task[Result]] = {}
        self.resumed: set[asyncio.Task[Result]] = set()
        self.wake = asyncio.Event()
        self.stopping = False
        self.loop_task: asyncio.Task[None] | None = None
        # Group commit of the two writes every activity makes (its row stored, then marked
        # processed): under load, one statement serves every activity that arrived meanwhile.
        # The mark is off the request's path (the row is stored, its handler done): it waits
        # FINISH_LINGER for company, so that even at a modest rate one statement marks many.
        self.store_batch: GroupCommit[str, bool] = GroupCommit(
            lambda entries: queue.store_entries(node, entries, self.id, self.lease))
        self.processed_batch: GroupCommit[str, bool] = GroupCommit(
            lambda ids: queue.mark_processed(node, ids, self.id), linger=FINISH_LINGER)

    # --- a fresh activity --------------------------------------------------------------------
    async def accept(self, activity: dict[str, Any], actor_uri: str,
                     recipient: LocalActor | None) -> Result:
        """Store the activity, then run its handler for up to `inbox_wait` seconds."""
        if activity["type"] not in HANDLERS:
            stored = await queue.store_ignored(self.node, activity, actor_uri)
            return Result("ignored" if stored else "duplicate")
        entry = queue.Entry(activity["id"], actor_uri, activity["type"], dumps(activity),
                            recipient.id if recipient else None, 0)
        if not await self.store_batch(entry.activity_id, entry):
            return Result("duplicate")
        task = self._start(entry, recipient, delay=self.test_delay)
        done, _ = await asyncio.wait({task}, timeout=self.wait)
        if task not in done:
            return Result("running")
        if task.exception() is not None:  # the row could not be updated: it stays pending
            return Result("pending", repr(task.exception()))
        return task.result()

    # --- one try of one row, under its lease -------------------------------------------------
    def _start(self, entry: queue.Entry, recipient: LocalActor | None = _UNKNOWN,
               delay: float = 0.0) -> asyncio.Task[Result]:
        task = asyncio.create_task(self._run(entry, recipient, delay))
        self.running[entry.activity_id] = task
        task.add_done_callback(lambda _: self.running.pop(entry.activity_id, None))
        return task

    async def _run(self, entry: queue.Entry, recipient: LocalActor | None,
                   delay: float) -> Result:
        keeper = asyncio.create_task(self._keep_lease(entry.activity_id))
        try:
            if delay:
                await asyncio.sleep(delay)
            if recipient is _UNKNOWN:
                recipient = await by_id(self.node, entry.recipient_id) \
                    if entry.recipient_id else None
            handler = HANDLERS.get(entry.type)
            if handler is None:  # a type this version no longer handles
                await queue.finish(self.node, entry, self.id, "ignored")
                return Result("ignored")
            try:
                await handler(InboxContext(self.node, entry.activity, entry.actor_uri,
                                           recipient))
            except ActivityRejected as exc:
                await self._finish(entry, "rejected", str(exc))
                return Result("rejected", str(exc))
            except Exception as exc:
                log.exception("handling %s %s failed (try %s)", entry.type, entry.activity_id,
                              entry.attempts + 1)
                state = await queue.retry_later(self.node, entry, self.id, repr(exc))
                self.wake.set()  # the resumer's next look is at the retry's time at the latest
                return Result(state, repr(exc))
            await self._finish(entry, "processed")
            return Result("processed")
        finally:
            keeper.cancel()

    async def _finish(self, entry: queue.Entry, status: str, error: str | None = None) -> None:
        if status == "processed" and error is None:
            marked = self.processed_batch.submit(entry.activity_id)
            marked.add_done_callback(functools.partial(self._marked, entry.activity_id))
            return
        if not await queue.finish(self.node, entry, self.id, status, error):
            self._taken(entry.activity_id)

    def _marked(self, activity_id: str, marked: asyncio.Future[bool | None]) -> None:
        if marked.cancelled():  # stopped first: the row's lease runs out, it is resumed
            return
        if (failure := marked.exception()) is not None:
            # The handler's writes are done; the row stays pending under its lease and its
            # handler runs once more after it (it adds nothing the first run wrote).
            log.warning("marking inbox row %s processed failed: %r", activity_id, failure)
        elif not marked.result():
            self._taken(activity_id)

    @staticmethod
    def _taken(activity_id: str) -> None:
        log.warning("inbox row %s was taken by another process before it was finished",
                    activity_id)

    async def _keep_lease(self, activity_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await queue.renew(self.node, activity_id, self.id, self.lease):
                    return
            except Exception:  # a busy database: the next renewal may succeed in time
                log.exception("renewing the lease of inbox row %s failed", activity_id)

    # --- the resumer -------------------------------------------------------------------------
    async def resume_forever(self) -> None:
        """Claim pending rows that nobody holds (left by a crash or a stop, or due for a
        retry) and run them, until stopped."""
        log.info("inbox resumer %s started", self.id)
        while not self.stopping:
            free = CONCURRENCY - len(self.resumed)
            try:
                entries = await queue.claim(self.node, self.id, free, self.lease)
            except Exception:  # the database may be busy or restarting: try again shortly
                log.exception("claiming inbox rows failed")
                entries = []
            for entry in entries:
                log.info("resuming %s %s (try %s)", entry.type, entry.activity_id,
                         entry.attempts + 1)
                task = self._start(entry)
                self.resumed.add(task)
                task.add_done_callback(self.resumed.discard)
            if len(self.resumed) >= CONCURRENCY:
                await asyncio.wait(self.resumed, return_when=asyncio.FIRST_COMPLETED)
            elif not entries:
                self.wake.clear()
                idle = await self._idle_time()  # before wait() exists: nothing left un-awaited
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=idle)

    async def _idle_time(self) -> float:
        idle = min(MAX_IDLE, self.lease / 2)
        try:
            due = await queue.next_due(self.node)
        except Exception:
            log.exception("reading the next due inbox row failed")
            return idle
        return idle if due is None else min(idle, max(0.05, due - now()))

    def start(self) -> InboxRunner:
        self.loop_task = asyncio.create_task(self.resume_forever())
        return self

    async def stop(self) -> None:
        """Let running handlers finish for a moment; the others' rows are released, so that
        the next process to start takes them at once."""
        self.stopping = True
        self.wake.set()
        if self.loop_task is not None:
            self.loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.loop_task
        tasks = list(self.running.values())
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE)
        await self.processed_batch.settle(STOP_GRACE)
        left = {ident: task for ident, task in self.running.items() if not task.done()}
        for task in left.values():
            task.cancel()
        if left:
            await asyncio.gather(*left.values(), return_exceptions=True)
            try:
                await queue.release(self.node, list(left), self.id)
            except Exception:  # their leases simply run out
                log.exception("releasing inbox leases at shutdown failed")


def runner_of(node: Node) -> InboxRunner:
    """The runner of this process (started with the app); made on first use otherwise."""
    runner = getattr(node, "inbox_runner", None)
    if runner is None:
        runner = InboxRunner(node)
        node.inbox_runner = runner  # type: ignore[attr-defined]
    return runner


def start_runner(node: Node) -> InboxRunner:
    """The runner with its resumer started, for the app's lifespan and `python -m node worker`."""
    return runner_of(node).start()
