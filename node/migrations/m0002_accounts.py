"""Migration 2: accounts (names, languages), invitations, notifications, followed topics."""

VERSION = 2
DESCRIPTION = "accounts, invitations, notifications, follow preferences"
STATEMENTS = [
    "ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT ''",
    # Empty means "not chosen": the browser's language is used, and French for emails.
    "ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE invitations (
        token TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES actors(id),
        email TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'member',
        created_by TEXT REFERENCES users(id),
        created_at {float} NOT NULL,
        expires_at {float} NOT NULL,
        used_at {float},
        used_by TEXT REFERENCES users(id)
    )""",
    "CREATE INDEX invitations_org ON invitations (org_id, created_at)",
    """CREATE TABLE notifications (
        id {pk},
        user_id TEXT NOT NULL REFERENCES users(id),
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        is_read INTEGER NOT NULL DEFAULT 0,
        created_at {float} NOT NULL
    )""",
    # The list page reads a member's newest first; the menu counts the unread ones.
    "CREATE INDEX notifications_user_time ON notifications (user_id, created_at)",
    "CREATE INDEX notifications_unread ON notifications (user_id, is_read)",
    """CREATE TABLE follow_preferences (
        user_id TEXT NOT NULL REFERENCES users(id),
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (user_id, kind, value)
    )""",
    "CREATE INDEX follow_preferences_topic ON follow_preferences (kind, value)",
]
