"""Our node against bovine (PyPI), a second ActivityPub implementation written elsewhere.

- bovine's test server (`bovine.testing.server`, the app `python -m bovine.testing serve` runs)
  accepts an inbox POST only when bovine's own SignatureChecker verified it; it fetches the
  signing key with a GET signed by its BovineActor.
- `BovineActor` signs the POSTs our node must verify: with the legacy `Digest` header and with
  RFC 9530 `Content-Digest` alone; a POST signed with the wrong key is refused and changes
  nothing.
- with authorized fetch on, our node serves its actor and collections to a GET signed by
  `BovineActor`, and refuses an unsigned one or one signed with the wrong key.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.nodes import NodeProcess
from tests.peers import free_port

pytestmark = pytest.mark.e2e

pytest.importorskip("bovine", reason="bovine is in the test extra: pip install -e '.[test]'")
pytest.importorskip("quart", reason="bovine's test server needs bovine[server]")

from bovine import BovineActor  # noqa: E402
from bovine.crypto import generate_rsa_public_private_key  # noqa: E402
from bovine.crypto.helper import content_digest_sha256_rfc_9530  # noqa: E402
from bovine.testing.server import ServerConfig  # noqa: E402

# The server of bovine's tutorial, on a loopback address instead of 0.0.0.0; its configuration
# (with the generated key) is saved so that the test signs as the same actor.
LAUNCH = """
import sys
from bovine.testing.server import ServerConfig, create_app
config = ServerConfig.from_env()
config.save(sys.argv[3])
create_app(config).run(host=sys.argv[1], port=int(sys.argv[2]))
"""
AS = "https://www.w3.org/ns/activitystreams"


class BovineServer:
    def __init__(self, tmp: Path, host: str) -> None:
        self.port = free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.log_path = tmp / "bovine.log"
        config_path = tmp / "bovine.toml"
        env = {"BOVINE_TEST_HOSTNAME": f"{host}:{self.port}", "BOVINE_TEST_NAME": "buttercup",
               "PATH": "/usr/bin:/bin"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", "-c", LAUNCH, host, str(self.port), str(config_path)],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bovine's server exited:\n{self.log()}")
            try:
                httpx.get(f"{self.base}/actor", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"bovine's server did not start:\n{self.log()}")
        self.config = ServerConfig.load(str(config_path))
        self.actor_id = self.config.actor_id

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.1)
        raise AssertionError(f"bovine's server never logged {text!r}:\n{self.log()}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def node_and_bovine(tmp_path_factory: pytest.TempPathFactory,
                    ) -> Iterator[tuple[NodeProcess, BovineServer]]:
    # One node and one bovine server for the module (each test uses its own activity ids).
    # Authorized fetch (Mastodon's secure mode): our node serves its documents only to GETs
    # whose signature it verified, so bovine's signed GETs are checked by the node itself.
    tmp_path = tmp_path_factory.mktemp("bovine")
    node = NodeProcess(tmp_path / "node", host="127.0.0.24", org="voisins",
                       NODE_AUTHORIZED_FETCH="1").start()
    server = BovineServer(tmp_path, host="127.0.0.23")
    try:
        yield node, server
    finally:
        server.close()
        node.close()


def bovine_post(server: BovineServer, url: str, activity: dict[str, Any],
                secret: str | None = None, content_digest: bool = False) -> int:
    """POST as bovine's actor, signed by BovineActor (with another key when `secret` is set)."""

    async def run() -> int:
        actor = BovineActor(
            actor_id=server.actor_id, public_key_url=f"{server.actor_id}#main-key",
            secret=secret or server.config.private_key,
            digest_method=content_digest_sha256_rfc_9530 if content_digest else None,
        )
        await actor.init()
        try:
            response = await actor.client.post(url, json.dumps(activity))
            return response.status
        finally:
            await actor.session.close()

    return asyncio.run(run())


def test_bovine_follows_and_verifies_our_accept(node_and_bovine) -> None:
    node, server = node_and_bovine
    follow_id = f"{server.base}/follow-1"
    status = bovine_post(server, f"{node.org_uri}/inbox", {
        "@context": AS, "id": follow_id, "type": "Follow", "actor": server.actor_id,
        "object": node.org_uri})
    assert status == 202
    node.wait_until("SELECT 1 FROM follows WHERE follower_uri = :b AND state = 'accepted'",
                    {"b": server.actor_id})
    # Our Accept reached bovine's inbox, whose SignatureChecker verified it with our key.
    server.wait_for_log(f"Received in inbox from {node.org_uri}")
    assert follow_id in server.log()
    node.wait_until("SELECT 1 FROM deliveries WHERE inbox_url = :i AND state = 'delivered'",
                    {"i": f"{server.base}/inbox"})


def test_bovine_content_digest_post_is_verified(node_and_bovine) -> None:
    node, server = node_and_bovine
    note_id = f"{server.base}/notes/1"
    status = bovine_post(server, f"{node.org_uri}/inbox", {
        "@context": AS, "id": f"{note_id}/activity", "type": "Create",
        "actor": server.actor_id, "to": [node.org_uri],
        "object": {"id": note_id, "type": "Note", "attributedTo": server.actor_id,
                   "to": [node.org_uri], "content": "<p>Signed with Content-Digest</p>"}},
        content_digest=True)
    assert status == 202
    stored = node.query("SELECT payload FROM objects WHERE uri = :u", {"u": note_id})
    assert "Content-Digest" in json.loads(stored[0]["payload"])["content_html"]


def test_bovine_post_signed_with_another_key_is_refused(node_and_bovine) -> None:
    node, server = node_and_bovine
    _, other_private = generate_rsa_public_private_key()
    status = bovine_post(server, f"{node.org_uri}/inbox", {
        "@context": AS, "id": f"{server.base}/follow-forged", "type": "Follow",
        "actor": server.actor_id, "object": node.org_uri}, secret=other_private)
    assert status == 401
    forged = {"a": f"{server.base}/follow-forged"}
    assert node.query("SELECT * FROM follows WHERE activity_id = :a", forged) == []
    assert node.query("SELECT * FROM inbox_log WHERE activity_id = :a", forged) == []


def bovine_get(server: BovineServer, url: str, secret: str | None = None) -> tuple[int, Any]:
    """GET signed by BovineActor (with another key when `secret` is set)."""

    async def run() -> tuple[int, Any]:
        actor = BovineActor(actor_id=server.actor_id,
                            public_key_url=f"{server.actor_id}#main-key",
                            secret=secret or server.config.private_key)
        await actor.init()
        try:
            response = await actor.client.get(url)
            return response.status, await response.json(content_type=None)
        finally:
            await actor.session.close()

    return asyncio.run(run())


def test_bovine_signed_get_is_verified_by_our_node(node_and_bovine) -> None:
    node, server = node_and_bovine
    status, doc = bovine_get(server, node.org_uri)
    assert status == 200
    assert doc["id"] == node.org_uri
    assert doc["publicKey"]["id"] == f"{node.org_uri}#main-key"
    status, followers = bovine_get(server, f"{node.org_uri}/followers")
    accepted = node.query("SELECT COUNT(*) AS n FROM follows WHERE state = 'accepted'")
    assert status == 200 and followers["totalItems"] == accepted[0]["n"]

    unsigned = httpx.get(node.org_uri, headers={"Accept": "application/activity+json"})
    assert unsigned.status_code == 401
    _, other_private = generate_rsa_public_private_key()
    status, refusal = bovine_get(server, node.org_uri, secret=other_private)
    assert status == 401
    assert "signed fetches" in refusal["error"]
