"""Test databases: a SQLite file by default; a fresh PostgreSQL database per test when
ENTRAIDE_TEST_DB=postgres (skipped, with the reason, where no server answers)."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

PG_HOST = os.environ.get("ENTRAIDE_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ENTRAIDE_PG_PORT", "5432"))
PG_USER = os.environ.get("ENTRAIDE_PG_USER", "postgres")


def backend() -> str:
    return os.environ.get("ENTRAIDE_TEST_DB", "sqlite")


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def _admin_sql(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def create_postgres_database() -> str:
    if not postgres_reachable():
        pytest.skip(f"no PostgreSQL server reachable at {PG_HOST}:{PG_PORT}")
    name = f"entraide_t_{uuid.uuid4().hex[:12]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    try:
        _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # a leftover test database harms nothing
        pass


def make_database_url(tmp: Path, kind: str | None = None) -> str:
    kind = kind or backend()
    if kind == "postgres":
        return create_postgres_database()
    return f"sqlite:///{tmp / 'node.db'}"
