"""Like: a favourite of one of our objects."""

from __future__ import annotations

from inbox.context import InboxContext
from inbox.handlers._reaction import record_reaction


async def handle(ctx: InboxContext) -> None:
    await record_reaction(ctx, "Like")
