"""Migration 23: the desk of an organisation (node/desk.py). Each local post gets a desk
reference, a number per organisation (shown as "A12", node/posts/desk_refs.py) that a social
worker can tell someone on the phone; it never changes and is never reused. Posts that exist
already are numbered in the order they were created. Each organisation also chooses who sees
a need its coordinators post on behalf of someone (this node only, until they change it)."""

VERSION = 23
DESCRIPTION = "desk references and the visibility of needs posted on behalf of someone"
STATEMENTS = [
    "ALTER TABLE posts ADD COLUMN desk_seq INTEGER",
    # The last number given per organisation: taking the next one is a single atomic upsert,
    # so two posts created at once never get the same reference (a MAX()+1 would race).
    "CREATE TABLE desk_counters (org_uri TEXT PRIMARY KEY, last INTEGER NOT NULL)",
    """UPDATE posts SET desk_seq = (
        SELECT COUNT(*) FROM posts p2 WHERE p2.org_uri = posts.org_uri AND p2.remote = 0
        AND (p2.created_at < posts.created_at
             OR (p2.created_at = posts.created_at AND p2.id <= posts.id)))
    WHERE remote = 0""",
    "INSERT INTO desk_counters (org_uri, last) SELECT org_uri, MAX(desk_seq) FROM posts "
    "WHERE desk_seq IS NOT NULL GROUP BY org_uri",
    "CREATE UNIQUE INDEX posts_desk_ref ON posts (org_uri, desk_seq)",
    "ALTER TABLE actors ADD COLUMN proxied_visibility TEXT NOT NULL DEFAULT 'local'",
]
