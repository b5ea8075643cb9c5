"""A real LitePub relay for end-to-end tests: the PyPI package `activityrelay` (the relay
Pleroma and Mastodon admins run), installed into its own virtualenv under the temporary
directory (never the project's), patched there to speak plain http on loopback, run as a process.

The patches, applied to that copy only, and why:
- every URL the relay writes of itself (actor, inbox, activity ids) and the NodeInfo it asks
  for is `https://{domain}/...`: made `http://`, since loopback has no certificates;
- `aputils` calls a peer's domain its URL's hostname, so two nodes on one address with
  different ports would be one instance to the relay, and it signs a `host` header without the
  port that its HTTP client then sends with it: both made the host with its port.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import httpx

from tests.peers import free_port

VERSION = "0.3.5"
CACHE = Path(os.environ.get("ENTRAIDE_TEST_CACHE", tempfile.gettempdir()))
HOME = CACHE / f"entraide-activityrelay-{VERSION}"
INSTALLED = HOME / "installed"


def _site_packages(home: Path) -> Path:
    return next((home / "lib").glob("python3*/site-packages"))


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text and new not in text:
        raise RuntimeError(f"{path} changed: review the loopback patches of tests/litepub_relay.py")
    path.write_text(text.replace(old, new))


def _patch(site: Path) -> None:
    """Idempotent: applied after every install check, so a changed patch reaches the cache."""
    for path in (site / "relay").rglob("*.py"):
        text = path.read_text()
        if 'f"https://{' in text:
            path.write_text(text.replace('f"https://{', 'f"http://{'))
    aputils = site / "aputils"
    _replace(aputils / "message.py", 'urlparse(self["id"]).hostname', 'urlparse(self["id"]).netloc')
    # The signed `host` header must be the one the HTTP client sends: with the port.
    _replace(aputils / "algorithms.py", "method, uri.hostname, uri.path",
             "method, uri.netloc, uri.path")


def install() -> Path:
    """The relay's own virtualenv, installed once and patched; its `activityrelay` command.
    A lock file keeps test runs of other checkouts on this machine from installing at once."""
    command = HOME / "bin" / "activityrelay"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"entraide-activityrelay-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (INSTALLED.exists() and command.exists()):
            venv.EnvBuilder(with_pip=True, clear=True).create(HOME)
            subprocess.run(
                [str(HOME / "bin" / "python"), "-m", "pip", "install", "--quiet",
                 "--disable-pip-version-check", f"activityrelay=={VERSION}"],
                check=True, capture_output=True,
            )
            INSTALLED.write_text(VERSION)
        _patch(_site_packages(HOME))
    return command


class RelayProcess:
    """`activityrelay run` with its own config and SQLite database in `tmp`."""

    def __init__(self, tmp: Path, host: str) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = free_port(host)
        self.domain = f"{host}:{self.port}"
        self.base = f"http://{self.domain}"
        self.config = tmp / "relay.yaml"
        self.log_path = tmp / "relay.log"
        self.proc: subprocess.Popen | None = None

    @property
    def actor(self) -> str:
        return f"{self.base}/actor"

    @property
    def inbox(self) -> str:
        return f"{self.base}/inbox"

    def start(self, timeout: float = 60) -> RelayProcess:
        command = str(install())
        self.config.write_text(
            f"listen: {self.host}\nport: {self.port}\ndomain: {self.domain}\nworkers: 1\n"
            f"db_type: sqlite\nca_type: database\nsq_path: {self.tmp / 'relay.sqlite3'}\n"
        )
        env = {**os.environ, "HOME": str(self.tmp)}
        subprocess.run([command, "-c", str(self.config), "setup", "--skip-questions"],
                       input=b"n\n", env=env, check=True, capture_output=True, cwd=self.tmp)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [command, "-c", str(self.config), "run"], env=env, cwd=self.tmp,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited early:\n{self.log()}")
            try:
                if httpx.get(self.actor, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"relay did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


if __name__ == "__main__":  # by hand: python -m tests.litepub_relay 127.0.11.1
    relay = RelayProcess(Path(tempfile.mkdtemp()), sys.argv[1] if len(sys.argv) > 1 else
                         "127.0.11.1").start()
    print(relay.actor, relay.tmp, flush=True)
    try:
        relay.proc.wait()
    finally:
        relay.stop()
