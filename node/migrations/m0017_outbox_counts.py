"""Migration 17: each actor's count of public activities (its outbox's `totalItems`) is stored,
kept by triggers in the transaction of every statement that adds, removes or changes an
activity (publishing, an account's erasure), so that reading it never counts rows. An actor
without public activities has no row (an erased account leaves no trace here)."""

VERSION = 17
DESCRIPTION = "stored outbox counts"

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER activities_count_insert AFTER INSERT ON activities WHEN NEW.public = 1
    BEGIN
        INSERT INTO outbox_counts (actor_uri, total) VALUES (NEW.actor_uri, 1)
        ON CONFLICT (actor_uri) DO UPDATE SET total = total + 1;
    END""",
    """CREATE TRIGGER activities_count_delete AFTER DELETE ON activities WHEN OLD.public = 1
    BEGIN
        UPDATE outbox_counts SET total = total - 1 WHERE actor_uri = OLD.actor_uri;
        DELETE FROM outbox_counts WHERE actor_uri = OLD.actor_uri AND total <= 0;
    END""",
    """CREATE TRIGGER activities_count_update AFTER UPDATE OF public, actor_uri ON activities
    BEGIN
        UPDATE outbox_counts SET total = total - OLD.public WHERE actor_uri = OLD.actor_uri;
        DELETE FROM outbox_counts WHERE actor_uri = OLD.actor_uri AND total <= 0;
        INSERT INTO outbox_counts (actor_uri, total) SELECT NEW.actor_uri, 1 WHERE NEW.public = 1
        ON CONFLICT (actor_uri) DO UPDATE SET total = total + 1;
    END""",
]

_POSTGRES_TRIGGER = [
    """CREATE FUNCTION activities_outbox_count() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            IF OLD.public = 1 THEN
                UPDATE outbox_counts SET total = total - 1 WHERE actor_uri = OLD.actor_uri;
                DELETE FROM outbox_counts WHERE actor_uri = OLD.actor_uri AND total <= 0;
            END IF;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            IF NEW.public = 1 THEN
                INSERT INTO outbox_counts (actor_uri, total) VALUES (NEW.actor_uri, 1)
                ON CONFLICT (actor_uri) DO UPDATE SET total = outbox_counts.total + 1;
            END IF;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER activities_outbox_count
    AFTER INSERT OR DELETE OR UPDATE OF public, actor_uri ON activities
    FOR EACH ROW EXECUTE FUNCTION activities_outbox_count()""",
]

STATEMENTS = [
    "CREATE TABLE outbox_counts (actor_uri TEXT PRIMARY KEY, total INTEGER NOT NULL)",
    "INSERT INTO outbox_counts (actor_uri, total) SELECT actor_uri, COUNT(*) FROM activities "
    "WHERE public = 1 GROUP BY actor_uri",
    *({"sqlite": s} for s in _SQLITE_TRIGGERS),
    *({"postgresql": s} for s in _POSTGRES_TRIGGER),
]
