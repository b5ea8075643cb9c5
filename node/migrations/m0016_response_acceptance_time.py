"""Migration 16: when a response was accepted. `updated_at` moves with every message of the
conversation, so the impact figures (time to an accepted helper) need the moment itself. Rows
accepted before this migration get their last change, the closest the database knows."""

VERSION = 16
DESCRIPTION = "acceptance time of responses"
STATEMENTS = [
    "ALTER TABLE responses ADD COLUMN accepted_at {float}",
    "UPDATE responses SET accepted_at = updated_at WHERE status = 'accepted'",
]
