"""Migration 15: an organisation's public profile — its description in each language, header
image, contact details of its desk, website and neighbourhoods (node/organisations.py)."""

VERSION = 15
DESCRIPTION = "organisation profiles"
STATEMENTS = [
    # JSON object: language code -> the plain-text description written in that language.
    "ALTER TABLE actors ADD COLUMN summary_map TEXT NOT NULL DEFAULT '{{}}'",
    "ALTER TABLE actors ADD COLUMN image_url TEXT",
    "ALTER TABLE actors ADD COLUMN contact_phone TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE actors ADD COLUMN contact_email TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE actors ADD COLUMN opening_hours TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE actors ADD COLUMN desk_address TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE actors ADD COLUMN website TEXT NOT NULL DEFAULT ''",
    # JSON list of neighbourhood names, each one of the node's list (NODE_NEIGHBOURHOODS).
    "ALTER TABLE actors ADD COLUMN neighbourhoods TEXT NOT NULL DEFAULT '[]'",
]
