"""Versioned schema migrations, applied in order on start.

Each migration is a module `mNNNN_name.py` in this package with VERSION, DESCRIPTION and
STATEMENTS, written once for both dialects: `{pk}` becomes the auto-increment key of the dialect
and `{float}` a double-precision column. Where the dialects cannot share a statement (triggers),
it is a dict by dialect, {"sqlite": ..., "postgresql": ...}, and runs only on those named.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

from node.db import Database, now

log = logging.getLogger(__name__)


def load_migrations() -> list[tuple[int, str, list[str | dict[str, str]]]]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("m") and info.name[1:5].isdigit():
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append((module.VERSION, module.DESCRIPTION, module.STATEMENTS))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return found


def _render(sql: str, dialect: str) -> str:
    if dialect == "postgresql":
        return sql.format(pk="BIGSERIAL PRIMARY KEY", float="DOUBLE PRECISION")
    return sql.format(pk="INTEGER PRIMARY KEY AUTOINCREMENT", float="REAL")


async def migrate(db: Database) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at "
        + ("DOUBLE PRECISION" if db.is_postgres else "REAL")
        + " NOT NULL)"
    )
    applied_now: list[int] = []
    async with db.transaction():
        if db.is_postgres:
            # Several web workers may start at once: one migrates, the others wait.
            await db.execute("SELECT pg_advisory_xact_lock(727274)")
        done = {r["version"] for r in await db.fetch_all("SELECT version FROM schema_migrations")}
        for version, description, statements in load_migrations():
            if version in done:
                continue
            for sql in statements:
                if isinstance(sql, dict):
                    if db.dialect not in sql:
                        continue
                    sql = sql[db.dialect]
                await db.execute(_render(sql, db.dialect))
            await db.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) "
                "VALUES (:v, :d, :t)",
                {"v": version, "d": description, "t": now()},
            )
            log.info("applied migration %s: %s", version, description)
            applied_now.append(version)
    return applied_now
