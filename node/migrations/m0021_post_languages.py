"""Migration 21: a post written in several languages. The existing title and description
columns keep the text in the language it was first written in (`written_in`), so every reader of
those columns keeps working; the other languages the author wrote are in `translations`
(JSON: {"nl": {"title": ..., "description_md": ..., "description_html": ...}})."""

VERSION = 21
DESCRIPTION = "posts in several languages"
STATEMENTS = [
    "ALTER TABLE posts ADD COLUMN written_in TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE posts ADD COLUMN translations TEXT NOT NULL DEFAULT ''",
]
