"""Python's cycle collector and a long-running node.

After start-up the process holds ~140k objects that live as long as it does (routes, templates,
translation catalogues, SQLAlchemy and asyncpg internals). A full (generation 2) collection walks
them all: 85 ms on this 2-core machine, during which no request is answered, which was the p99.9
of every read benchmark. Moving them out of the collector's sight once start-up is done makes a
full collection walk only what came later; reference counting still frees what they drop."""

from __future__ import annotations

import gc


def freeze_after_startup() -> None:
    gc.collect()
    gc.freeze()
