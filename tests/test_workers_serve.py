"""`python -m node serve --workers 2`: two uvicorn web workers on one database, each with its
own delivery worker. Both serve requests, and a post to a follower is delivered once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.nodes import NodeProcess
from tests.peers import RemotePeer

pytestmark = pytest.mark.e2e

AS = "https://www.w3.org/ns/activitystreams"


def _worker_pids(node: NodeProcess) -> set[int]:
    """The uvicorn worker processes under the node's main process."""
    assert node.proc is not None
    children = Path(f"/proc/{node.proc.pid}/task/{node.proc.pid}/children").read_text().split()
    pids = set()
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:  # not the resource tracker
            pids.add(int(pid))
    return pids


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_web_workers_serve_and_deliver_once(tmp_path: Path, kind: str) -> None:
    from tests.databases import make_database_url

    url = make_database_url(tmp_path, kind)
    node = NodeProcess(tmp_path / "node", host="127.0.0.2", database_url=url,
                       serve_args=("--workers", "2"))
    peer = RemotePeer("127.0.0.3")
    for name in ("ana", "bob"):
        peer.add_actor(name)
    peer.start()
    try:
        node.start()
        deadline = time.monotonic() + 20
        while len(_worker_pids(node)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_worker_pids(node)) == 2, node.log()

        # Many requests over fresh connections: every one answered, whichever worker takes it.
        for _ in range(40):
            resp = httpx.get(f"{node.base}/.well-known/webfinger",
                             params={"resource": f"acct:{node.org}@{node.host}:{node.port}"})
            assert resp.status_code == 200 and resp.json()["subject"].endswith(str(node.port))

        for actor in peer.actors.values():
            follow = {"@context": AS, "id": peer.activity_id(), "type": "Follow",
                      "actor": actor.uri, "object": node.org_uri}
            assert peer.post(actor, f"{node.org_uri}/inbox", follow).status_code == 202
        peer.wait_for("Accept", count=2)

        node.login()
        assert node.admin_action("note", text="Repas partagé, deux processus").status_code == 303
        (create,) = node.wait_until("SELECT uri FROM activities WHERE type = 'Create'")
        node.wait_until("SELECT 1 FROM deliveries WHERE activity_uri = :a AND state = "
                        "'delivered'", {"a": create["uri"]})
        time.sleep(1.5)  # both delivery workers poll at least once more: nothing is sent twice
        received = [r for r in peer.received if r.activity.get("id") == create["uri"]]
        assert [r.path for r in received] == ["/inbox"]  # two followers, one shared inbox
        assert received[0].signature_ok
    finally:
        node.close()
        peer.stop()
