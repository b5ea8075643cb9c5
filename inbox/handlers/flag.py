"""Flag: another server reports an account or a post of this node to its moderators.

A Flag joins the open report about its target (the same reporter again adds nothing), within
the limits per reporter and per server of node/moderation/reports.py; a Flag over a limit is
refused, so that its sender learns it and the queue stays readable."""

from __future__ import annotations

from activitypub.vocab import as_list, id_of
from inbox.context import ActivityRejected, InboxContext
from node.moderation.reports import ReportLimited, receive_flag

MAX_TARGETS = 20


async def handle(ctx: InboxContext) -> None:
    targets = [uri for uri in (id_of(item) for item in as_list(ctx.object)) if uri]
    if not targets:
        raise ActivityRejected("a Flag must name the reported account or post")
    try:
        report = await receive_flag(ctx.node, ctx.activity, ctx.actor_uri,
                                    targets[:MAX_TARGETS])
    except ReportLimited as exc:
        raise ActivityRejected(f"{exc}; the moderators already have them") from exc
    if report is None:
        raise ActivityRejected("the Flag names no account or post of this node")
