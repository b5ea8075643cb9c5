"""Migration 11: the durable email queue, per-type email opt-outs, and the conversation a
notification is about (so "my responses" can mark conversations with unread messages)."""

VERSION = 11
DESCRIPTION = "email queue, email opt-outs, notifications about a conversation"
STATEMENTS = [
    # One row per email; a sender claims due rows under a lease (as the delivery queue does),
    # so an SMTP server that is down or a process that dies loses nothing.
    """CREATE TABLE email_queue (
        id {pk},
        recipient TEXT NOT NULL,
        subject TEXT NOT NULL,
        body_text TEXT NOT NULL,
        body_html TEXT,
        locale TEXT NOT NULL DEFAULT '',
        message_id TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at {float} NOT NULL,
        locked_until {float},
        claimed_by TEXT,
        last_error TEXT,
        created_at {float} NOT NULL,
        sent_at {float}
    )""",
    "CREATE INDEX email_queue_due ON email_queue (state, next_attempt_at)",
    """CREATE TABLE email_opt_outs (
        user_id TEXT NOT NULL REFERENCES users(id),
        kind TEXT NOT NULL,
        PRIMARY KEY (user_id, kind)
    )""",
    "ALTER TABLE notifications ADD COLUMN response_id TEXT",
    "CREATE INDEX notifications_response ON notifications (user_id, response_id, is_read)",
]
