"""Migration 4: moderation (domain and actor blocks, reports, suspensions) and deleted accounts."""

VERSION = 4
DESCRIPTION = "moderation: blocks, reports, suspensions, deleted accounts"
STATEMENTS = [
    """CREATE TABLE domain_blocks (
        domain TEXT PRIMARY KEY,
        reason TEXT NOT NULL DEFAULT '',
        created_by TEXT,
        created_at {float} NOT NULL
    )""",
    # owner '*' is a block by the node's admins; otherwise the id of the member who blocks.
    """CREATE TABLE actor_blocks (
        owner TEXT NOT NULL,
        actor_uri TEXT NOT NULL,
        created_at {float} NOT NULL,
        PRIMARY KEY (owner, actor_uri)
    )""",
    "CREATE INDEX actor_blocks_actor ON actor_blocks (actor_uri)",
    """CREATE TABLE reports (
        id TEXT PRIMARY KEY,
        reporter_user_id TEXT,
        reporter_actor_uri TEXT,
        target_actor_uri TEXT,
        target_object_uri TEXT,
        reason TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open',
        activity_id TEXT UNIQUE,
        forwarded_at {float},
        resolved_by TEXT,
        resolved_at {float},
        created_at {float} NOT NULL
    )""",
    "CREATE INDEX reports_status ON reports (status, created_at)",
    """CREATE TABLE suspensions (
        user_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL DEFAULT '',
        created_by TEXT,
        created_at {float} NOT NULL
    )""",
    # A deleted member's actor keeps its row (the handle is never given to someone else) without
    # anything personal; its key is erased once the `Delete` of the actor has been delivered.
    """CREATE TABLE gone_actors (
        actor_id TEXT PRIMARY KEY,
        deleted_at {float} NOT NULL,
        key_erased_at {float}
    )""",
]
