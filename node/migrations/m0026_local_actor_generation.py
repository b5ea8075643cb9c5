"""Migration 26: a generation counter for local actors (`actors`), bumped by triggers in the
transaction of any insert, change or removal, so that each process's in-memory cache of them
(node/actor_cache.py) learns of a change made elsewhere with one read of one row."""

VERSION = 26
DESCRIPTION = "local actors generation"

_BUMP = "UPDATE cache_generations SET value = value + 1 WHERE name = 'local_actors';"

STATEMENTS = [
    "INSERT INTO cache_generations (name, value) VALUES ('local_actors', 0)",
    *({"sqlite": f"CREATE TRIGGER actors_{name} AFTER {event} ON actors "
                 f"BEGIN {_BUMP} END"}
      for name, event in (("inserted", "INSERT"), ("changed", "UPDATE"),
                          ("removed", "DELETE"))),
    {"postgresql": f"""CREATE FUNCTION local_actors_generation() RETURNS trigger
    LANGUAGE plpgsql AS $$ BEGIN {_BUMP} RETURN NULL; END $$"""},
    # Once per statement: an UPDATE of many actors moves the counter once.
    {"postgresql": "CREATE TRIGGER actors_changed AFTER INSERT OR UPDATE OR DELETE ON actors "
                   "FOR EACH STATEMENT EXECUTE FUNCTION local_actors_generation()"},
]
