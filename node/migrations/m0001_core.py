"""Migration 1: the node core (actors, accounts, follows, objects, activities, inbox log,
delivery queue, host health)."""

VERSION = 1
DESCRIPTION = "node core"
STATEMENTS = [
    """CREATE TABLE actors (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        username TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        summary TEXT NOT NULL DEFAULT '',
        icon_url TEXT,
        manually_approves INTEGER NOT NULL DEFAULT 0,
        discoverable INTEGER NOT NULL DEFAULT 1,
        public_key_pem TEXT NOT NULL,
        private_key_pem TEXT NOT NULL,
        created_at {float} NOT NULL
    )""",
    """CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        actor_id TEXT REFERENCES actors(id),
        role TEXT NOT NULL DEFAULT 'member',
        created_at {float} NOT NULL
    )""",
    """CREATE TABLE memberships (
        user_id TEXT NOT NULL REFERENCES users(id),
        org_id TEXT NOT NULL REFERENCES actors(id),
        role TEXT NOT NULL DEFAULT 'member',
        PRIMARY KEY (user_id, org_id)
    )""",
    """CREATE TABLE remote_actors (
        uri TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        username TEXT NOT NULL DEFAULT '',
        host TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        summary TEXT NOT NULL DEFAULT '',
        url TEXT,
        icon_url TEXT,
        inbox TEXT NOT NULL,
        shared_inbox TEXT,
        outbox TEXT,
        followers TEXT,
        public_key_id TEXT,
        public_key_pem TEXT,
        raw TEXT NOT NULL,
        fetched_at {float} NOT NULL
    )""",
    "CREATE INDEX remote_actors_key ON remote_actors (public_key_id)",
    """CREATE TABLE follows (
        id {pk},
        follower_uri TEXT NOT NULL,
        followee_uri TEXT NOT NULL,
        activity_id TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at {float} NOT NULL,
        UNIQUE (follower_uri, followee_uri)
    )""",
    "CREATE INDEX follows_followee ON follows (followee_uri, state)",
    """CREATE TABLE objects (
        uri TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        attributed_to TEXT,
        local INTEGER NOT NULL,
        in_reply_to TEXT,
        payload TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        published {float} NOT NULL,
        updated {float}
    )""",
    "CREATE INDEX objects_attributed ON objects (attributed_to, published)",
    "CREATE INDEX objects_reply ON objects (in_reply_to)",
    """CREATE TABLE activities (
        seq {pk},
        uri TEXT NOT NULL UNIQUE,
        actor_uri TEXT NOT NULL,
        type TEXT NOT NULL,
        object_uri TEXT,
        public INTEGER NOT NULL,
        payload TEXT NOT NULL,
        created_at {float} NOT NULL
    )""",
    "CREATE INDEX activities_actor ON activities (actor_uri, seq)",
    """CREATE TABLE inbox_log (
        activity_id TEXT PRIMARY KEY,
        actor_uri TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        received_at {float} NOT NULL
    )""",
    """CREATE TABLE reactions (
        activity_id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        actor_uri TEXT NOT NULL,
        object_uri TEXT NOT NULL,
        created_at {float} NOT NULL,
        UNIQUE (type, actor_uri, object_uri)
    )""",
    """CREATE TABLE deliveries (
        id {pk},
        activity_uri TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        inbox_url TEXT NOT NULL,
        host TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at {float} NOT NULL,
        locked_until {float},
        claimed_by TEXT,
        last_error TEXT,
        created_at {float} NOT NULL,
        delivered_at {float},
        UNIQUE (activity_uri, inbox_url)
    )""",
    "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
    """CREATE TABLE hosts (
        host TEXT PRIMARY KEY,
        failure_days TEXT NOT NULL DEFAULT '[]',
        unavailable INTEGER NOT NULL DEFAULT 0,
        last_failure_at {float},
        last_success_at {float}
    )""",
]
