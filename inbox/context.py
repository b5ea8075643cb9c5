"""What a handler is given: the activity, who sent it (already verified) and where it landed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.actors import LocalActor
from node.context import Node


class ActivityRejected(Exception):
    """The activity is well signed but cannot be accepted; the message says why."""


@dataclass(frozen=True)
class InboxContext:
    node: Node
    activity: dict[str, Any]
    actor_uri: str
    # The actor whose own inbox received it; None for the shared inbox.
    recipient: LocalActor | None

    @property
    def object(self) -> Any:
        return self.activity.get("object")
