"""Migration 18: relays the admin subscribed the node to (node/relays.py). One row per relay,
by the address the admin gave; its state says where the subscription stands and since when."""

VERSION = 18
DESCRIPTION = "relay subscriptions"
STATEMENTS = [
    # style: litepub (Follow of the relay's actor) or mastodon (Follow of Public to its inbox).
    # actor_uri: the relay's actor, known at once for LitePub, from its Accept for Mastodon.
    # state: pending, subscribed, refused, failed; state_at: when it got there.
    """CREATE TABLE relays (
        id {pk},
        url TEXT NOT NULL UNIQUE,
        style TEXT NOT NULL,
        actor_uri TEXT,
        inbox TEXT NOT NULL,
        follow_id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL DEFAULT 'pending',
        detail TEXT,
        state_at {float} NOT NULL,
        created_at {float} NOT NULL
    )""",
    "CREATE INDEX relays_actor ON relays (actor_uri)",
]
