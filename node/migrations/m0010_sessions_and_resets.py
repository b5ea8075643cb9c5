"""Migration 10: server-side web sessions, password reset tokens and sign-ups waiting for the
owner of the address to confirm it.

Every secret handed out (session cookie, reset link, confirmation link) is stored only as its
SHA-256: a copy of the database or of a backup opens no account.
"""

VERSION = 10
DESCRIPTION = "web sessions, password resets, sign-up confirmations"
STATEMENTS = [
    # user_id is NULL for a visitor who is not signed in (CSRF token, a notice to show).
    """CREATE TABLE web_sessions (
        id_hash TEXT PRIMARY KEY,
        user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
        data TEXT NOT NULL,
        created_at {float} NOT NULL,
        last_seen {float} NOT NULL,
        expires_at {float} NOT NULL
    )""",
    "CREATE INDEX web_sessions_user ON web_sessions (user_id)",
    "CREATE INDEX web_sessions_expiry ON web_sessions (expires_at)",
    # created_by: the coordinator or admin who started the reset; NULL when asked by email.
    """CREATE TABLE password_resets (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
        created_at {float} NOT NULL,
        expires_at {float} NOT NULL,
        used_at {float}
    )""",
    "CREATE INDEX password_resets_user ON password_resets (user_id)",
    """CREATE TABLE signup_requests (
        token_hash TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        username TEXT NOT NULL,
        display_name TEXT NOT NULL,
        locale TEXT NOT NULL,
        org_id TEXT REFERENCES actors(id) ON DELETE CASCADE,
        created_at {float} NOT NULL,
        expires_at {float} NOT NULL
    )""",
    "CREATE INDEX signup_requests_email ON signup_requests (email)",
]
