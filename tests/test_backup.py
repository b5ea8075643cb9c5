"""`python -m node backup` while a real node runs and writes, `restore` refused while it runs,
then restored with the node stopped: the data is back as it was at the backup."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.databases import backend
from tests.nodes import REPO, NodeProcess

pytestmark = pytest.mark.e2e


def cli(node: NodeProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node", *args], cwd=REPO, env=node.env,
                          capture_output=True, text=True, timeout=60)


def notes(node: NodeProcess) -> set[str]:
    rows = node.query("SELECT payload FROM objects WHERE type = 'Note' AND deleted = 0")
    return {r["payload"] for r in rows}


@pytest.mark.skipif(backend() == "postgres", reason="SQLite backup; PostgreSQL is tested below")
def test_backup_of_a_running_node_then_restore(tmp_path):
    node = NodeProcess(tmp_path / "n", host="127.0.0.2").start()
    try:
        node.login()
        assert node.admin_action("note", text="Avant la sauvegarde").status_code == 303
        # The node keeps writing during the backup: the copy is still consistent.
        writing = threading.Thread(target=lambda: [
            node.admin_action("note", text=f"pendant {i}") for i in range(5)])
        writing.start()
        done = cli(node, "backup", f"{tmp_path / 'backups'}/")
        writing.join()
        assert done.returncode == 0, done.stderr
        backup_file = Path(done.stdout.split("Backup written to ", 1)[1].strip())
        assert backup_file.parent == tmp_path / "backups"
        with sqlite3.connect(backup_file) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            at_backup = {r[0] for r in conn.execute(
                "SELECT payload FROM objects WHERE type = 'Note' AND deleted = 0")}
        assert any("Avant la sauvegarde" in p for p in at_backup)

        assert node.admin_action("note", text="Après la sauvegarde").status_code == 303
        refused = cli(node, "restore", str(backup_file))
        assert refused.returncode == 1 and "a node is running" in refused.stderr
        assert any("Après la sauvegarde" in p for p in notes(node))  # nothing was changed

        node.stop()
        done = cli(node, "restore", str(backup_file))
        assert done.returncode == 0, done.stderr
        kept = Path(done.stdout.rsplit("kept at ", 1)[1].strip())
        assert kept.exists()
        node.start()
        assert notes(node) == at_backup
        assert not any("Après la sauvegarde" in p for p in notes(node))
        node.login()  # the restored node works: sessions, admin, publishing
        assert node.admin_action("note", text="Après la restauration").status_code == 303
    finally:
        node.close()


@pytest.mark.skipif(backend() == "postgres", reason="SQLite files")
def test_bad_backups_are_refused_and_change_nothing(tmp_path):
    node = NodeProcess(tmp_path / "n", host="127.0.0.2").start()
    node.stop()
    db = Path(node.database_url.split(":///", 1)[1])
    before = db.read_bytes()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    for path, reason in [(tmp_path / "missing.db", "no backup file"),
                         (junk, "not a database of this node"),
                         (empty, "not a database of this node")]:
        done = cli(node, "restore", str(path))
        assert done.returncode == 1 and reason in done.stderr, done.stderr
    assert db.read_bytes() == before
    done = cli(node, "backup", str(db))
    assert done.returncode == 1 and "cannot overwrite" in done.stderr
    node.close()


@pytest.mark.skipif(backend() != "postgres", reason="needs ENTRAIDE_TEST_DB=postgres")
def test_postgres_backup_uses_pg_tools(tmp_path):
    node = NodeProcess(tmp_path / "n", host="127.0.0.2")
    try:
        done = cli(node, "restore", str(tmp_path / "x.dump"))
        assert done.returncode == 1 and "pg_restore" in done.stderr
        done = cli(node, "backup", str(tmp_path / "x.dump"))
        assert ("pg_dump --format=custom" in done.stderr) or done.returncode == 0
    finally:
        node.close()
