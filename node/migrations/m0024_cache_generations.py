"""Migration 24: a generation counter per cached table, bumped by triggers in the transaction
of whatever changes the cached rows, so that every process's in-memory cache (keys/cache.py)
learns of a change made by another process with one cheap read of one row.

`remote_actors` counts a change of an actor's key (an Update that rotates it, a refetch) and
the removal of an actor (a Delete, a purge): what the inbox's key cache holds."""

VERSION = 24
DESCRIPTION = "cache generations"

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER remote_actors_key_changed AFTER UPDATE OF public_key_id, public_key_pem, uri
    ON remote_actors
    WHEN OLD.public_key_id IS NOT NEW.public_key_id OR OLD.public_key_pem IS NOT NEW.public_key_pem
         OR OLD.uri IS NOT NEW.uri
    BEGIN
        UPDATE cache_generations SET value = value + 1 WHERE name = 'remote_actors';
    END""",
    """CREATE TRIGGER remote_actors_removed AFTER DELETE ON remote_actors
    BEGIN
        UPDATE cache_generations SET value = value + 1 WHERE name = 'remote_actors';
    END""",
]

_POSTGRES_TRIGGERS = [
    """CREATE FUNCTION remote_actors_generation() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE cache_generations SET value = value + 1 WHERE name = 'remote_actors';
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER remote_actors_key_changed
    AFTER UPDATE OF public_key_id, public_key_pem, uri ON remote_actors FOR EACH ROW
    WHEN (OLD.public_key_id IS DISTINCT FROM NEW.public_key_id
          OR OLD.public_key_pem IS DISTINCT FROM NEW.public_key_pem OR OLD.uri <> NEW.uri)
    EXECUTE FUNCTION remote_actors_generation()""",
    """CREATE TRIGGER remote_actors_removed AFTER DELETE ON remote_actors
    FOR EACH ROW EXECUTE FUNCTION remote_actors_generation()""",
]

STATEMENTS = [
    "CREATE TABLE cache_generations (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO cache_generations (name, value) VALUES ('remote_actors', 0)",
    *({"sqlite": s} for s in _SQLITE_TRIGGERS),
    *({"postgresql": s} for s in _POSTGRES_TRIGGERS),
]
