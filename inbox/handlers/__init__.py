"""One handler per activity type, registered in one table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from inbox.context import InboxContext
from inbox.handlers import (
    accept,
    announce,
    create,
    delete,
    flag,
    follow,
    like,
    offer,
    reject,
    undo,
    update,
)

Handler = Callable[[InboxContext], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    "Follow": follow.handle,
    "Accept": accept.handle,
    "Reject": reject.handle,
    "Undo": undo.handle,
    "Create": create.handle,
    "Update": update.handle,
    "Delete": delete.handle,
    "Announce": announce.handle,
    "Like": like.handle,
    "Offer": offer.handle,
    "Flag": flag.handle,
}
