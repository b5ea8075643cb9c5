"""The delivery worker: claims due jobs, signs and POSTs them, records the outcome.

It runs inside the web process by default and as its own process with `python -m node worker`;
several can share one database.

Each host is a lane of its own, as Mastodon and Lemmy keep one send queue per remote instance:
a job is claimed only when its host has a free slot (`per_host_concurrency`, one while the host
is failing), and while a request waits on its host it holds nothing shared: the slots for local
work (database, signing) are taken before and after the request, never across it. Every request
has an overall deadline, so a host that hangs or drips its answer holds its own slots for at
most `delivery_timeout`, then backs off like any failing host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from activitypub.transport import EncodedActivity, FetchError
from node.actors import LocalActor, by_id, signing_key
from node.context import Node
from node.db import GroupCommit, now
from node.moderation.account_data import erase_key_when_sent
from node.policy import is_blocked
from outbox import hosts, queue

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0
# Requests one worker keeps open at once, all hosts together: a bound on sockets, kept well
# under the usual 1024 open files, and far above what a few bad hosts can fill (one request
# each while they fail).
MAX_OPEN_REQUESTS = 512


SENDER_TTL = 5.0  # seconds a sender's row (its key) is reused without reading it again


async def _gone_with_key(node: Node, actor_ids: Iterable[str]) -> dict[str, bool]:
    """Which of these senders are deleted accounts whose key still waits to be erased."""
    names = {f"a{n}": ident for n, ident in enumerate(actor_ids)}
    rows = await node.db.fetch_all(
        "SELECT actor_id FROM gone_actors WHERE key_erased_at IS NULL AND actor_id IN "
        f"({', '.join(':' + k for k in names)})", names)
    return {row["actor_id"]: True for row in rows}


def _permanent(status: int) -> bool:
    # As Mastodon: a 4xx other than timeout and rate limit will not get better by retrying.
    return 400 <= status < 500 and status not in (408, 429)


@dataclass
class Lane:
    """One host's deliveries in this worker."""

    open: int = 0
    failing: bool = False

    def room(self, per_host: int) -> int:
        return (1 if self.failing else per_host) - self.open


class DeliveryWorker:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.wake = asyncio.Event()
        self.stopping = False
        self.per_host = node.settings.per_host_concurrency
        # Local work at once (reading the job's rows, recording its outcome); never held while
        # a remote host is awaited.
        self.local_slots = asyncio.Semaphore(node.settings.worker_concurrency)
        self.lanes: dict[str, Lane] = {}
        self.in_flight: set[asyncio.Task] = set()
        self.lease = 2 * node.settings.delivery_timeout + 5
        # A stored activity never changes, and a fan-out sends the same one to every host:
        # parse it once (bench/README.md).
        self.payloads: dict[str, EncodedActivity] = {}
        # Senders read once per SENDER_TTL, not once per job (a fan-out has one sender).
        self.senders: dict[str, tuple[float, LocalActor]] = {}
        # Group commit of what every delivery writes or asks afterwards: under load, one
        # statement serves every delivery that ended meanwhile (node/db.GroupCommit).
        self.completed: GroupCommit[int, bool] = GroupCommit(
            lambda ids: queue.complete_many(node, ids))
        self.hosts_up: GroupCommit[str, bool] = GroupCommit(
            lambda names: hosts.record_successes(node, names))
        self.gone_senders: GroupCommit[str, bool] = GroupCommit(
            lambda ids: _gone_with_key(node, ids))

    async def run(self) -> None:
        log.info("delivery worker %s started", self.id)
        while not self.stopping:
            # Cleared before claiming: a delivery that ends meanwhile still wakes the next wait.
            self.wake.clear()
            try:
                room = {host: lane.room(self.per_host) for host, lane in self.lanes.items()}
                jobs = await queue.claim(
                    self.node, self.id, MAX_OPEN_REQUESTS - len(self.in_flight), self.lease,
                    per_host=self.per_host, room=room,
                )
            except Exception:  # the database may be busy or restarting: try again shortly
                log.exception("claiming deliveries failed")
                jobs = []
            for job in jobs:
                self._start(job)
            if not jobs:
                # Woken by a publish or by a delivery that ends (its lane has room again).
                try:
                    idle = await self._idle_time()  # before wait() exists: nothing left un-awaited
                    await asyncio.wait_for(self.wake.wait(), timeout=idle)
                except TimeoutError:
                    pass

    def _start(self, job: queue.Job) -> None:
        lane = self.lanes.setdefault(job.host, Lane())
        lane.open += 1
        lane.failing = job.failing
        task = asyncio.create_task(self.deliver(job))
        self.in_flight.add(task)

        def done(task: asyncio.Task) -> None:
            self.in_flight.discard(task)
            lane.open -= 1
            if lane.open <= 0:
                self.lanes.pop(job.host, None)
            self.wake.set()

        task.add_done_callback(done)

    def _outcome(self, host: str, failed: bool) -> None:
        """A failing host gets one request at a time until one gets through."""
        lane = self.lanes.get(host)
        if lane is not None:
            lane.failing = failed

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
        try:
            await self._deliver(job)
        except Exception as exc:  # never lose the job to a bug: count a failure and retry
            log.exception("delivery %s to %s crashed", job.activity_uri, job.inbox_url)
            async with self.local_slots:
                await queue.fail(self.node, job, f"internal error: {exc!r}")
        # A deleted account's key lives only until its last signed delivery is done.
        async with self.local_slots:
            if await self.gone_senders(job.sender_id) and \
                    await erase_key_when_sent(self.node, job.sender_id):
                self.senders.pop(job.sender_id, None)

    async def _activity(self, uri: str) -> EncodedActivity | None:
        """The activity as it is sent (without bto/bcc), encoded with its digest once for all
        its deliveries, from a small per-worker cache."""
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
        encoded = self.payloads[uri] = EncodedActivity.of(activity)
        return encoded

    async def _deliver(self, job: queue.Job) -> None:
        node = self.node
        async with self.local_slots:
            ready = await self._prepare(job)
        if ready is None:
            return
        activity, sender = ready
        try:
            resp = await node.transport.post_activity(
                job.inbox_url, signing_key(node, sender), activity,
                deadline=node.settings.delivery_timeout,
            )
        except FetchError as exc:
            self._outcome(job.host, failed=True)
            async with self.local_slots:
                state = await queue.fail(node, job, str(exc))
                await hosts.record_failure(node, job.host)
            log.info("delivery to %s failed (%s), %s", job.inbox_url, exc, state)
            return
        async with self.local_slots:
            await self._record(job, resp.status, resp.body)

    async def _prepare(self, job: queue.Job) -> tuple[EncodedActivity, LocalActor] | None:
        """The activity and its sender, or None when the job is settled without sending."""
        node = self.node
        if await is_blocked(node, job.host):
            await queue.fail(node, job, "the domain is blocked by this node", permanent=True)
            return None
        if job.unavailable and now() - (job.last_failure_at or 0) < \
                hosts.UNAVAILABLE_RETRY * node.settings.backoff_scale:
            await queue.postpone(
                node, job,
                (job.last_failure_at or now())
                + hosts.UNAVAILABLE_RETRY * node.settings.backoff_scale,
            )
            return None
        activity = await self._activity(job.activity_uri)
        sender = await self._sender(job.sender_id)
        if activity is None or sender is None:
            await queue.fail(node, job, "activity or sender no longer exists", permanent=True)
            return None
        return activity, sender

    async def _sender(self, actor_id: str) -> LocalActor | None:
        cached = self.senders.get(actor_id)
        if cached is not None and now() - cached[0] < SENDER_TTL:
            return cached[1]
        sender = await by_id(self.node, actor_id)
        if sender is not None:
            if len(self.senders) >= 256:
                self.senders.pop(next(iter(self.senders)))
            self.senders[actor_id] = (now(), sender)
        return sender

    async def _record(self, job: queue.Job, status: int, body: bytes) -> None:
        node = self.node
        # A host that answers a 4xx is up: only 5xx, 408 and 429 count against it.
        self._outcome(job.host, failed=not (200 <= status < 300 or _permanent(status)))
        if 200 <= status < 300:
            if not await self.completed(job.id):
                # The same job answered twice in one batch (its lease ran out while it was in
                # flight and this worker claimed it again): each sending counts an attempt.
                await queue.complete(node, job)
            await self.hosts_up(job.host)
            log.debug("delivered %s to %s", job.activity_uri, job.inbox_url)
            return
        reason = f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
        state = await queue.fail(node, job, reason, permanent=_permanent(status))
        if not _permanent(status):
            await hosts.record_failure(node, job.host)
        log.info("delivery to %s answered %s, %s", job.inbox_url, reason, state)
