"""Real nodes for end-to-end tests: `python -m node serve` in a subprocess on a loopback
address, with its own database, spoken to over HTTP like any peer would."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from node.db import Database
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.databases import drop_postgres_database, make_database_url
from tests.peers import free_port

REPO = Path(__file__).resolve().parent.parent


class NodeProcess:
    def __init__(self, tmp: Path, host: str = "127.0.0.1", org: str = "voisins",
                 port: int | None = None, database_url: str | None = None,
                 serve_args: tuple[str, ...] = (), **env: str) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.serve_args = serve_args  # e.g. ("--workers", "2")
        self.port = port or free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.org = org
        self.database_url = database_url or make_database_url(tmp)
        self.env = {
            **os.environ,
            "NODE_BASE_URL": self.base,
            "NODE_DATA_DIR": str(tmp),
            "NODE_DATABASE_URL": self.database_url,
            "NODE_ORG_USERNAME": org,
            "NODE_ORG_NAME": org.title(),
            "NODE_ADMIN_EMAIL": ADMIN_EMAIL,
            "NODE_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "NODE_SECRET_KEY": "e2e-secret",
            "NODE_BACKOFF_SCALE": "0.002",
            "NODE_DELIVERY_TIMEOUT": "3",
            "NODE_FETCH_TIMEOUT": "3",
            "NODE_LOG_LEVEL": "INFO",
            **env,
        }
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp / "node.log"
        self.client = httpx.Client(base_url=self.base, timeout=10, follow_redirects=False)

    @property
    def org_uri(self) -> str:
        return f"{self.base}/groups/{self.org}"

    @property
    def handle(self) -> str:
        return f"@{self.org}@{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> NodeProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", *self.serve_args], cwd=REPO, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base}/.well-known/nodeinfo", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.client.close()
        if self.database_url.startswith("postgresql"):
            drop_postgres_database(self.database_url)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- the web interface, as an admin would use it ------------------------------------------
    def login(self) -> None:
        page = self.client.get("/login")
        token = csrf_from(page.text)
        resp = self.client.post("/login", data={
            "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token})
        assert resp.status_code == 303, resp.text

    def admin_action(self, action: str, **fields: str) -> httpx.Response:
        token = csrf_from(self.client.get("/admin").text)
        # confirm: the destructive actions (unfollow, delete-note) ask first otherwise.
        return self.client.post(f"/admin/{action}?org={self.org}",
                                data={"csrf_token": token, "confirm": "yes", **fields})

    # --- looking inside -----------------------------------------------------------------------
    def query(self, sql: str, values: dict[str, Any] | None = None) -> list[dict]:
        async def run() -> list[dict]:
            db = Database(self.database_url)
            await db.connect()
            try:
                return await db.fetch_all(sql, values or {})
            finally:
                await db.disconnect()

        return asyncio.run(run())

    def wait_until(self, sql: str, values: dict[str, Any] | None = None,
                   timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.query(sql, values)
            if rows:
                return rows
            time.sleep(0.1)
        raise AssertionError(f"{self.base}: nothing matched {sql!r} in {timeout}s\n{self.log()}")


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
