"""Migration 25: posts placed by neighbourhood name only are matched newest first, which the
index now answers in order: a post page read every open post of its category and area to sort
them (9.3 ms at 5,000 in one neighbourhood, bench.reads `post page`), and now stops at the
few it shows."""

VERSION = 25
DESCRIPTION = "matching by neighbourhood: newest first from the index"
STATEMENTS = [
    "DROP INDEX posts_match_area",
    "CREATE INDEX posts_match_area ON posts (kind, category, status, neighbourhood, created_at)",
]
