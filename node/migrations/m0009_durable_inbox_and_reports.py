"""Migration 9: a durable inbox (inbox/queue.py) and a report queue with one entry per target.

Inbox: every accepted activity is a row worked through under a lease, retried with backoff.
Rows an older version left 'processing' (its process died mid-handler, and a sender's retry
was then taken for a duplicate) become 'pending', so the node finishes them now.

Reports: one open entry per reported post (or account, when no post is named); each reporter
is a row of `report_reporters`, so the same reporter again adds nothing and several reporters
add to one entry. Open duplicates from before are merged into the oldest.
"""

VERSION = 9
DESCRIPTION = "durable inbox queue; reports merged per target with their reporters"
STATEMENTS = [
    "ALTER TABLE inbox_log ADD COLUMN recipient_id TEXT",
    "ALTER TABLE inbox_log ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE inbox_log ADD COLUMN next_attempt_at {float}",
    "ALTER TABLE inbox_log ADD COLUMN locked_until {float}",
    "ALTER TABLE inbox_log ADD COLUMN claimed_by TEXT",
    "ALTER TABLE inbox_log ADD COLUMN finished_at {float}",
    "UPDATE inbox_log SET status = 'pending', next_attempt_at = received_at "
    "WHERE status = 'processing'",
    "CREATE INDEX inbox_log_pending ON inbox_log (next_attempt_at) WHERE status = 'pending'",

    "ALTER TABLE reports ADD COLUMN target_key TEXT",
    "UPDATE reports SET target_key = COALESCE(target_object_uri, target_actor_uri, id)",
    # `reporter` is the member's user id or the reporting actor's URI; `reporter_host` the
    # reporting server, counted for its limit (NULL for members).
    """CREATE TABLE report_reporters (
        report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
        reporter TEXT NOT NULL,
        reporter_user_id TEXT,
        reporter_actor_uri TEXT,
        reporter_host TEXT,
        activity_id TEXT UNIQUE,
        reason TEXT NOT NULL DEFAULT '',
        created_at {float} NOT NULL,
        PRIMARY KEY (report_id, reporter)
    )""",
    "CREATE INDEX report_reporters_reporter ON report_reporters (reporter, created_at)",
    "CREATE INDEX report_reporters_host ON report_reporters (reporter_host, created_at)",
    # Each existing report becomes a reporter of the oldest open report about its target.
    """INSERT INTO report_reporters (report_id, reporter, reporter_user_id, reporter_actor_uri,
        activity_id, reason, created_at)
    SELECT COALESCE((SELECT k.id FROM reports k WHERE r.status = 'open' AND k.status = 'open'
                     AND k.target_key = r.target_key ORDER BY k.created_at, k.id LIMIT 1), r.id),
           COALESCE(r.reporter_user_id, r.reporter_actor_uri, r.id),
           r.reporter_user_id, r.reporter_actor_uri, r.activity_id, r.reason, r.created_at
    FROM reports r WHERE 1 = 1
    ON CONFLICT DO NOTHING""",
    """DELETE FROM reports WHERE status = 'open' AND EXISTS (
        SELECT 1 FROM reports k WHERE k.status = 'open' AND k.target_key = reports.target_key
        AND (k.created_at < reports.created_at OR (k.created_at = reports.created_at
                                                   AND k.id < reports.id)))""",
    "CREATE UNIQUE INDEX reports_open_target ON reports (target_key) WHERE status = 'open'",
]
