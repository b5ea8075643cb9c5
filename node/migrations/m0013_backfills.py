"""Migration 13: backfills, one row per followed remote actor whose earlier open offers and needs
are (or were) fetched from its outbox after a follow was accepted (node/backfill.py)."""

VERSION = 13
DESCRIPTION = "backfills of followed actors' outboxes"
STATEMENTS = [
    # state: pending (due at next_at), running (under a lease), done, failed. The counts say
    # what the last run read and kept, for the network page.
    """CREATE TABLE backfills (
        actor_uri TEXT PRIMARY KEY,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at {float} NOT NULL,
        lease_until {float},
        claimed_by TEXT,
        pages INTEGER NOT NULL DEFAULT 0,
        items INTEGER NOT NULL DEFAULT 0,
        fetched INTEGER NOT NULL DEFAULT 0,
        stored INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        requested_at {float} NOT NULL,
        finished_at {float}
    )""",
    "CREATE INDEX backfills_due ON backfills (state, next_at)",
]
