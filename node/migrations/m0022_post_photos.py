"""Migration 22: the photos of a local post (JSON list in `attachments`: file name under
NODE_DATA_DIR/media, description, size, blurhash; node/posts/photos.py). Pictures of remote posts
are read from their stored Note."""

VERSION = 22
DESCRIPTION = "photos of posts"
STATEMENTS = [
    "ALTER TABLE posts ADD COLUMN attachments TEXT NOT NULL DEFAULT ''",
]
