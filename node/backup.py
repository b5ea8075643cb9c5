"""Backup and restore of the node's database.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot page by
page while the node keeps running (WAL readers and writers are not blocked for long). Restore
refuses while a node answers on the configured URL, keeps a copy of the current file, and swaps
the restored file in with one atomic rename. PostgreSQL: `pg_dump` / `pg_restore` do this job
better than we could; the commands are printed (and `pg_dump` run when it is installed).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from node.config import Settings


class BackupError(Exception):
    """Backup or restore cannot proceed; the message says why and what to do."""


def sqlite_path(settings: Settings) -> Path:
    url = settings.database_url
    if not url.startswith("sqlite") or ":///" not in url:
        raise BackupError(f"not a SQLite database URL: {url}")
    path = url.split(":///", 1)[1]
    if not path or path == ":memory:":
        raise BackupError("an in-memory database cannot be backed up")
    return Path(path)


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def _check(path: Path) -> None:
    """A readable SQLite database of this node, intact."""
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            versions = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a database of this node: {exc}") from exc
    if result != "ok":
        raise BackupError(f"{path} is damaged: {result}")
    if not versions:
        raise BackupError(f"{path} holds no schema")


def _copy(source: Path, dest: Path) -> None:
    """Consistent copy through the backup API into `dest` (written beside it, then renamed)."""
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        out = sqlite3.connect(tmp)
        try:
            # Pages in steps, so that the running node's writers get the lock between them.
            src.backup(out, pages=256, sleep=0.005)
            out.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        finally:
            out.close()
    finally:
        src.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, dest)


def backup(settings: Settings, target: str | None = None) -> Path:
    """Back the database up; returns the file written."""
    if not settings.is_sqlite:
        raise BackupError(postgres_instructions(settings, target, restore=False))
    source = sqlite_path(settings)
    if not source.exists():
        raise BackupError(f"no database at {source}; nothing to back up")
    dest = Path(target) if target else settings.data_dir / "backups"
    if dest.is_dir() or not target or target.endswith(os.sep):
        dest = dest / f"node-{_stamp()}.db"
    if dest.resolve() == source.resolve():
        raise BackupError("the backup cannot overwrite the database itself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _copy(source, dest)
    _check(dest)
    return dest


def node_is_running(settings: Settings) -> bool:
    """Whether a node answers on the configured URL (the one that would use this file)."""
    try:
        resp = httpx.get(settings.url("/.well-known/nodeinfo"), timeout=2, trust_env=False)
    except httpx.HTTPError:
        return False
    return resp.status_code < 500


def restore(settings: Settings, source: str, force: bool = False) -> Path:
    """Replace the database by a backup; returns where the previous database was kept."""
    if not settings.is_sqlite:
        raise BackupError(postgres_instructions(settings, source, restore=True))
    backup_file = Path(source)
    if not backup_file.is_file():
        raise BackupError(f"no backup file at {backup_file}")
    _check(backup_file)
    target = sqlite_path(settings)
    if node_is_running(settings) and not force:
        raise BackupError(
            f"a node is running at {settings.base_url}: stop it first (restoring under a "
            "running node would lose what it writes), or pass --force if that is another node")
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = target.with_name(target.name + ".restoring")
    _copy(backup_file, incoming)
    kept = target.with_name(f"{target.name}.before-restore-{_stamp()}")
    if target.exists():
        _copy(target, kept)
        # Fold the write-ahead log into the old file, then drop it: a stale -wal beside the
        # restored file would be replayed into it.
        conn = sqlite3.connect(target, timeout=30)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(incoming, target)
    return kept


def postgres_instructions(settings: Settings, path: str | None, restore: bool) -> str:
    url = settings.database_url.replace("postgres://", "postgresql://", 1)
    name = urlsplit(url).path.lstrip("/") or "entraide"
    file = path or f"{name}-{_stamp()}.dump"
    if restore:
        return ("PostgreSQL is restored with its own tools. Stop the node, then run:\n"
                f"  pg_restore --clean --if-exists --no-owner --dbname '{url}' '{file}'")
    return ("PostgreSQL is backed up with its own tools (safe while the node runs):\n"
            f"  pg_dump --format=custom --file '{file}' '{url}'")


def pg_dump(settings: Settings, path: str | None) -> Path | None:
    """Run pg_dump when it is installed; None when it is not (the caller prints the command)."""
    if shutil.which("pg_dump") is None:
        return None
    url = settings.database_url.replace("postgres://", "postgresql://", 1)
    dest = Path(path or settings.data_dir / "backups" / f"node-{_stamp()}.dump")
    dest.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["pg_dump", "--format=custom", "--file", str(dest), url],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return dest
