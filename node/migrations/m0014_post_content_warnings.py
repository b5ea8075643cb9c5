"""Migration 14: a post received from another server keeps its content warning (`summary`,
or `sensitive` without one), so that its pages show the text only behind it."""

VERSION = 14
DESCRIPTION = "content warnings of remote posts"
STATEMENTS = [
    "ALTER TABLE posts ADD COLUMN content_warning TEXT NOT NULL DEFAULT ''",
]
