"""Migration 7: objects keep their typed model (activitypub/model.py) beside the payload.

Pages read `model` (converted once, when the object arrived) and list only what is addressed to
the public (`public_audience`); rows from before this migration have no model and are
converted from their payload when read.
"""

VERSION = 7
DESCRIPTION = "typed model and public audience of stored objects"
STATEMENTS = [
    "ALTER TABLE objects ADD COLUMN model TEXT",
    "ALTER TABLE objects ADD COLUMN public_audience INTEGER NOT NULL DEFAULT 0",
    # Our own objects published to the public stay listed; remote rows from before stay
    # hidden (their addressing was never checked) until their author sends them again.
    "UPDATE objects SET public_audience = 1 WHERE local = 1 AND uri IN "
    "(SELECT object_uri FROM activities WHERE public = 1)",
    "CREATE INDEX objects_public_recent ON objects (public_audience, deleted, published)",
]
