"""The delivery worker: claims due jobs, signs and POSTs them, records the outcome.

It runs inside the web process by default and as its own process with `python -m node worker`;
several can share one database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections import defaultdict

from activitypub.transport import FetchError
from node.actors import by_id, signing_key
from node.context import Node
from node.db import now
from node.moderation.account_data import erase_key_when_sent
from node.policy import is_blocked
from outbox import hosts, queue

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0


def _permanent(status: int) -> bool:
    # As Mastodon: a 4xx other than timeout and rate limit will not get better by retrying.
    return 400 <= status < 500 and status not in (408, 429)


class DeliveryWorker:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.wake = asyncio.Event()
        self.stopping = False
        self.concurrency = node.settings.worker_concurrency
        self.slots = asyncio.Semaphore(self.concurrency)
        self.host_slots: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(node.settings.per_host_concurrency)
        )
        self.in_flight: set[asyncio.Task] = set()
        self.lease = 2 * node.settings.delivery_timeout + 5
        # A stored activity never changes, and a fan-out sends the same one to every host:
        # parse it once (bench/README.md).
        self.payloads: dict[str, dict] = {}

    async def run(self) -> None:
        log.info("delivery worker %s started", self.id)
        while not self.stopping:
            try:
                free = self.concurrency - len(self.in_flight)
                jobs = await queue.claim(self.node, self.id, free, self.lease)
            except Exception:  # the database may be busy or restarting: try again shortly
                log.exception("claiming deliveries failed")
                jobs = []
            for job in jobs:
                task = asyncio.create_task(self.deliver(job))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            if not jobs:
                self.wake.clear()
                try:
                    idle = await self._idle_time()  # before wait() exists: nothing left un-awaited
                    await asyncio.wait_for(self.wake.wait(), timeout=idle)
                except TimeoutError:
                    pass
            elif len(self.in_flight) >= self.concurrency:
                await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)

    async def _idle_time(self) -> float:
        try:
            due = await queue.next_due(self.node)
        except Exception:  # a busy or restarting database must not stop the worker
            log.exception("reading the next due delivery failed")
            return IDLE_WAIT
        if due is None:
            return IDLE_WAIT
        return min(IDLE_WAIT, max(0.05, due - now()))

    async def stop(self) -> None:
        self.stopping = True
        self.wake.set()
        if self.in_flight:
            await asyncio.wait(self.in_flight, timeout=self.node.settings.delivery_timeout + 1)

    async def deliver(self, job: queue.Job) -> None:
        async with self.slots, self.host_slots[job.host]:
            try:
                await self._deliver(job)
            except Exception as exc:  # never lose the job to a bug: count a failure and retry
                log.exception("delivery %s to %s crashed", job.activity_uri, job.inbox_url)
                await queue.fail(self.node, job, f"internal error: {exc!r}")
            # A deleted account's key lives only until its last signed delivery is done.
            await erase_key_when_sent(self.node, job.sender_id)

    async def _activity(self, uri: str) -> dict | None:
        """The activity as it is sent (without bto/bcc), from a small per-worker cache."""
        if uri in self.payloads:
            return self.payloads[uri]
        payload = await self.node.db.fetch_val(
            "SELECT payload FROM activities WHERE uri = :u", {"u": uri}
        )
        if payload is None:
            return None
        activity = json.loads(payload)
        for hidden in ("bto", "bcc"):
            activity.pop(hidden, None)
        if len(self.payloads) >= 256:
            self.payloads.pop(next(iter(self.payloads)))
        self.payloads[uri] = activity
        return activity

    async def _deliver(self, job: queue.Job) -> None:
        node = self.node
        if await is_blocked(node, job.host):
            await queue.fail(node, job, "the domain is blocked by this node", permanent=True)
            return
        row = await node.db.fetch_one(
            "SELECT last_failure_at, unavailable FROM hosts WHERE host = :h", {"h": job.host}
        )
        if row and row["unavailable"] and now() - (row["last_failure_at"] or 0) < \
                hosts.UNAVAILABLE_RETRY * node.settings.backoff_scale:
            await queue.postpone(
                node, job,
                (row["last_failure_at"] or now())
                + hosts.UNAVAILABLE_RETRY * node.settings.backoff_scale,
            )
            return
        activity = await self._activity(job.activity_uri)
        sender = await by_id(node, job.sender_id)
        if activity is None or sender is None:
            await queue.fail(node, job, "activity or sender no longer exists", permanent=True)
            return
        try:
            resp = await node.transport.post_activity(
                job.inbox_url, signing_key(node, sender), activity
            )
        except FetchError as exc:
            state = await queue.fail(node, job, str(exc))
            await hosts.record_failure(node, job.host)
            log.info("delivery to %s failed (%s), %s", job.inbox_url, exc, state)
            return
        if 200 <= resp.status < 300:
            await queue.complete(node, job)
            await hosts.record_success(node, job.host)
            log.debug("delivered %s to %s", job.activity_uri, job.inbox_url)
            return
        reason = f"HTTP {resp.status}: {resp.body[:200].decode('utf-8', 'replace')}"
        state = await queue.fail(node, job, reason, permanent=_permanent(resp.status))
        if not _permanent(resp.status):
            await hosts.record_failure(node, job.host)
        log.info("delivery to %s answered %s, %s", job.inbox_url, reason, state)
