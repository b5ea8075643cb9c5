"""Migration 26: generation counters for local actors (`actors`) and for outboxes (the public
`activities`), bumped by triggers in the transaction of any insert, change or removal, so that
each process's in-memory copies (node/generations.py: actors in node/actors.py, outbox pages in
node/routes/actors.py) learn of a change made elsewhere with one read of one row."""

VERSION = 26
DESCRIPTION = "local actor and outbox generations"


def _bump(name: str) -> str:
    return f"UPDATE cache_generations SET value = value + 1 WHERE name = '{name}';"


def _counted(table: str, name: str) -> list[str | dict[str, str]]:
    return [
        f"INSERT INTO cache_generations (name, value) VALUES ('{name}', 0)",
        *({"sqlite": f"CREATE TRIGGER {table}_{name}_{event.lower()} AFTER {event} ON {table} "
                     f"BEGIN {_bump(name)} END"}
          for event in ("INSERT", "UPDATE", "DELETE")),
        {"postgresql": f"CREATE FUNCTION {name}_generation() RETURNS trigger LANGUAGE plpgsql "
                       f"AS $$ BEGIN {_bump(name)} RETURN NULL; END $$"},
        # Once per statement: an UPDATE of many rows moves the counter once.
        {"postgresql": f"CREATE TRIGGER {table}_{name} AFTER INSERT OR UPDATE OR DELETE "
                       f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {name}_generation()"},
    ]


STATEMENTS = [*_counted("actors", "local_actors"), *_counted("activities", "outbox")]
