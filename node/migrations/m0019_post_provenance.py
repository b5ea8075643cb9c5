"""Migration 19: how each remote offer or need reached the node (node/posts/provenance.py).

A post that came because someone here follows its organisation or author is listed while that
follow lasts; one passed on by a followed group or relay, one that replied to our objects and
one a member looked up stay listed on their own. Every remote post before this migration came
by a follow."""

VERSION = 19
DESCRIPTION = "provenance of remote posts"
STATEMENTS = [
    "ALTER TABLE posts ADD COLUMN via TEXT NOT NULL DEFAULT ''",
    "UPDATE posts SET via = 'follow' WHERE remote = 1",
]
