"""Reports: a member reports a post or an actor; a remote server reports with `Flag`; admins
work through the queue and may forward a report to the reported actor's server as `Flag`.

As Mastodon does, a forwarded `Flag` is sent by the instance actor, so that the member who
reported stays anonymous to the other server.

The queue holds one open report per target (the post, or the account when no post is named):
each reporter is a row of `report_reporters`, so that the same reporter reporting the same
target again adds nothing and many reporters make one entry with their count. Reports filed
are limited per reporter and per reporting server over a period (`NODE_REPORTS_PER_REPORTER`,
`NODE_REPORTS_PER_SERVER`), counted in the database so that every process sees the same
numbers: a flood of `Flag`s cannot bury the moderators' queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nh3

from activitypub.transport import FetchError
from activitypub.vocab import AS_CONTEXT
from node.actors import actor_uri, by_uri, instance_actor
from node.context import Node
from node.db import new_id, now
from node.i18n import _
from node.moderation.domains import ModerationError
from node.objects import get_object
from node.posts.queries import get_post_by_uri
from node.remote_actors import cached_actor, get_actor
from outbox.publish import publish

MAX_REASON = 1000
# A lock number of PostgreSQL's advisory locks: one report filed at a time, so that the limits
# count exactly (on SQLite the single writer does this).
FILING_LOCK = 727275


@dataclass(frozen=True)
class Reporter:
    """Who reports: a member of this node, or an actor of another server."""

    key: str  # the member's user id, or the actor's URI
    user_id: str | None = None
    actor_uri: str | None = None
    host: str | None = None  # the reporting server, counted for its own limit

    @classmethod
    def member(cls, user_id: str) -> Reporter:
        return cls(user_id, user_id=user_id)

    @classmethod
    def remote(cls, actor_uri: str) -> Reporter:
        return cls(actor_uri, actor_uri=actor_uri, host=urlsplit(actor_uri).netloc.lower())


class ReportLimited(ModerationError):
    """Too many reports lately from this reporter ("reporter") or its server ("server")."""

    def __init__(self, which: str) -> None:
        super().__init__(f"too many reports from this {which} lately")
        self.which = which


def _clean_reason(reason: str) -> str:
    # Stored as text, shown escaped; markup from a remote server is dropped, not kept.
    return nh3.clean(reason or "", tags=set()).strip()[:MAX_REASON]


async def _target(node: Node, uri: str) -> tuple[str | None, str | None]:
    """(actor, object) a URI points at, if the node knows it."""
    post = await get_post_by_uri(node, uri)
    if post is not None:
        return post["attributed_to"], uri
    obj = await get_object(node, uri)
    if obj is not None:
        return obj["attributed_to"], uri
    if await by_uri(node, uri) is not None or await cached_actor(node, uri) is not None:
        return uri, None
    return None, None


async def file_report(node: Node, user_id: str, target_uri: str, reason: str) -> str:
    """A member's report of a post or an actor; returns the id of the report it joins."""
    target_uri = target_uri.strip()
    reason = _clean_reason(reason)
    if not reason:
        raise ModerationError("say in a few words what is wrong, so that moderators can act")
    actor, obj = await _target(node, target_uri)
    if actor is None and obj is None:
        raise ModerationError("this node knows no post or account at that address")
    try:
        report_id, _added = await _file(node, Reporter.member(user_id), actor, obj, reason)
    except ReportLimited as exc:
        raise ModerationError(_("You have sent many reports lately. The moderators are reading "
                                "them; please try again tomorrow.")) from exc
    return report_id


async def receive_flag(node: Node, activity: dict[str, Any], reporter: str,
                       targets: list[str]) -> str | None:
    """A remote server's `Flag`, about the first local post (else actor) it names. Returns the
    id of the report it joins, or None when it names nothing of this node; raises
    ReportLimited when the reporter or its server has reported too much lately."""
    actor: str | None = None
    obj: str | None = None
    for uri in targets:
        if not node.is_local(uri):
            continue
        found_actor, found_obj = await _target(node, uri)
        if found_obj and obj is None:
            obj, actor = found_obj, actor or found_actor
        elif found_actor and actor is None:
            actor = found_actor
    if actor is None and obj is None:
        return None
    content = activity.get("content")
    report_id, _added = await _file(
        node, Reporter.remote(reporter), actor, obj,
        _clean_reason(content if isinstance(content, str) else ""), activity["id"])
    return report_id


async def _file(node: Node, reporter: Reporter, actor: str | None, obj: str | None,
                reason: str, activity_id: str | None = None) -> tuple[str, bool]:
    """Add the reporter to the open report about the target, made if there is none. Returns
    the report's id and whether anything was added (a reporter already there adds nothing)."""
    key = obj or actor
    async with node.db.transaction():
        if node.db.is_postgres:
            await node.db.execute("SELECT pg_advisory_xact_lock(:n)", {"n": FILING_LOCK})
        report = await node.db.fetch_one(
            "SELECT r.id, (SELECT 1 FROM report_reporters p WHERE p.report_id = r.id "
            "AND p.reporter = :p) AS known FROM reports r "
            "WHERE r.target_key = :k AND r.status = 'open'", {"k": key, "p": reporter.key})
        if report is not None and report["known"]:
            return report["id"], False
        await _check_limits(node, reporter)
        stamp = now()
        report_id = report["id"] if report is not None else new_id()
        if report is None:
            await node.db.execute(
                "INSERT INTO reports (id, reporter_user_id, reporter_actor_uri, target_actor_uri, "
                "target_object_uri, target_key, reason, status, activity_id, created_at) VALUES "
                "(:i, :u, :rep, :a, :o, :k, :r, 'open', :act, :t)",
                {"i": report_id, "u": reporter.user_id, "rep": reporter.actor_uri, "a": actor,
                 "o": obj, "k": key, "r": reason, "act": activity_id, "t": stamp})
        await node.db.execute(
            "INSERT INTO report_reporters (report_id, reporter, reporter_user_id, "
            "reporter_actor_uri, reporter_host, activity_id, reason, created_at) VALUES "
            "(:i, :p, :u, :a, :h, :act, :r, :t) ON CONFLICT DO NOTHING",
            {"i": report_id, "p": reporter.key, "u": reporter.user_id, "a": reporter.actor_uri,
             "h": reporter.host, "act": activity_id, "r": reason, "t": stamp})
    return report_id, True


async def _check_limits(node: Node, reporter: Reporter) -> None:
    settings = node.settings
    checks = [("reporter", "reporter", reporter.key, settings.reports_per_reporter)]
    if reporter.host:
        checks.append(("server", "reporter_host", reporter.host, settings.reports_per_server))
    for which, column, value, rate in checks:
        if rate is None:
            continue
        filed = await node.db.fetch_val(
            f"SELECT COUNT(*) FROM report_reporters WHERE {column} = :v AND created_at > :since",
            {"v": value, "since": now() - rate.period})
        if filed >= rate.count:
            raise ReportLimited(which)


async def open_reports(node: Node) -> list[dict]:
    """The queue: open reports, oldest first, each with its `reporters` (oldest first)."""
    reports = await node.db.fetch_all(
        "SELECT * FROM reports WHERE status = 'open' ORDER BY created_at")
    by_report: dict[str, list[dict]] = {r["id"]: [] for r in reports}
    for row in await node.db.fetch_all(
            "SELECT p.* FROM report_reporters p JOIN reports r ON r.id = p.report_id "
            "WHERE r.status = 'open' ORDER BY p.created_at"):
        by_report.setdefault(row["report_id"], []).append(row)
    for report in reports:
        report["reporters"] = _each_server_first(by_report[report["id"]])
    return reports


def _each_server_first(reporters: list[dict]) -> list[dict]:
    """The first reporter of each server (and each member) before the others, so that a
    page showing the first few is not filled by one server's flood."""
    seen: set[str] = set()
    first: list[dict] = []
    rest: list[dict] = []
    for row in reporters:
        key = row["reporter_host"] or row["reporter"]
        (rest if key in seen else first).append(row)
        seen.add(key)
    return first + rest


async def get_report(node: Node, report_id: str) -> dict:
    row = await node.db.fetch_one("SELECT * FROM reports WHERE id = :i", {"i": report_id})
    if row is None:
        raise ModerationError("no such report")
    return row


async def resolve(node: Node, report_id: str, by: str) -> None:
    await get_report(node, report_id)
    await node.db.execute(
        "UPDATE reports SET status = 'resolved', resolved_by = :b, resolved_at = :t "
        "WHERE id = :i", {"b": by, "t": now(), "i": report_id})


async def forward(node: Node, report_id: str) -> str:
    """Send the report to the reported actor's server as `Flag`; returns the Flag's id."""
    report = await get_report(node, report_id)
    target = report["target_actor_uri"]
    if not target or node.is_local(target):
        raise ModerationError("only reports about accounts of other servers can be forwarded")
    try:
        remote = await get_actor(node, target)
    except FetchError as exc:
        raise ModerationError(f"the reported account cannot be reached: {exc}") from exc
    instance = await instance_actor(node)
    objects = [target] + ([report["target_object_uri"]] if report["target_object_uri"] else [])
    flag = {
        "@context": AS_CONTEXT, "id": node.url(f"/activities/{new_id()}"), "type": "Flag",
        "actor": actor_uri(node, instance), "content": report["reason"], "object": objects,
        "to": [target],
    }
    await publish(node, instance, flag, extra_inboxes=[remote.delivery_inbox])
    await node.db.execute("UPDATE reports SET forwarded_at = :t WHERE id = :i",
                          {"t": now(), "i": report_id})
    return flag["id"]
