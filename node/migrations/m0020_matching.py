"""Migration 20: matching offers and needs (node/matching.py). Two indexes let the one rule find
the posts that fit a post without a scan — the box around it on rounded coordinates, or its
neighbourhood by name — and two tables keep who was told of which match, once, and how often
each member wants to be told."""

VERSION = 20
DESCRIPTION = "matching: indexes, match notices, match preferences"
STATEMENTS = [
    # kind, category and status by equality, then a range on latitude; longitude is checked in
    # the index before a row is read.
    "CREATE INDEX posts_match_place ON posts (kind, category, status, latitude, longitude)",
    "CREATE INDEX posts_match_area ON posts (kind, category, status, neighbourhood)",
    # One row per member, their post and the post that fits it: told at once ('told'), waiting
    # for the digest ('pending') or mailed in one ('mailed').
    """CREATE TABLE match_notices (
        id {pk},
        user_id TEXT NOT NULL REFERENCES users(id),
        post_id TEXT NOT NULL,
        match_id TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at {float} NOT NULL,
        mailed_at {float},
        UNIQUE (user_id, post_id, match_id)
    )""",
    "CREATE INDEX match_notices_due ON match_notices (state, created_at)",
    """CREATE TABLE match_preferences (
        user_id TEXT PRIMARY KEY REFERENCES users(id),
        frequency TEXT NOT NULL
    )""",
]
