"""Migration 6: indexes the read benchmarks asked for (bench/reads.py, bench/README.md).

- The outbox counts and pages public activities of one actor: with `public` in the index the
  count reads the index alone and a page walks it in order instead of visiting every row.
- The offers list shows the newest open posts: an index on `created_at` lets it stop after one
  page instead of sorting every open post.
- Expiring due posts looks for a few rows with `ends_at` in the past: a range on an index.
"""

VERSION = 6
DESCRIPTION = "indexes for outbox pages, the offers list and post expiry"
STATEMENTS = [
    "CREATE INDEX activities_actor_public ON activities (actor_uri, public, seq)",
    "CREATE INDEX posts_recent ON posts (created_at)",
    "CREATE INDEX posts_ends ON posts (ends_at)",
]
