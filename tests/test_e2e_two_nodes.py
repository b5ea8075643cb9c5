"""Two real nodes on two loopback addresses, each with its own database, federating with real
signatures: follow by handle, accept, publish, receive, unfollow, stop receiving."""

from __future__ import annotations

import json
import time

import pytest

from tests.nodes import NodeProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_nodes(tmp_path):
    a = NodeProcess(tmp_path / "a", host="127.0.0.2", org="quartier").start()
    b = NodeProcess(tmp_path / "b", host="127.0.0.3", org="food").start()
    yield a, b
    a.close()
    b.close()


def test_follow_publish_unfollow(two_nodes):
    a, b = two_nodes
    a.login()
    b.login()

    resp = a.admin_action("follow", target=b.handle)
    assert resp.status_code == 303, resp.text

    # B accepts automatically; A sees the follow accepted and B lists A as a follower.
    a.wait_until("SELECT 1 FROM follows WHERE follower_uri = :a AND followee_uri = :b "
                 "AND state = 'accepted'", {"a": a.org_uri, "b": b.org_uri})
    followers = b.client.get(f"/groups/{b.org}/followers?page=1",
                             headers={"Accept": "application/activity+json"}).json()
    assert followers["orderedItems"] == [a.org_uri]
    following = a.client.get(f"/groups/{a.org}/following?page=1",
                             headers={"Accept": "application/activity+json"}).json()
    assert following["orderedItems"] == [b.org_uri]
    assert b.handle[1:] in a.client.get("/admin").text  # the admin page lists whom A follows

    # B publishes; A receives and stores it.
    assert b.admin_action("note", text="Soupe populaire ce soir, 19h").status_code == 303
    rows = a.wait_until("SELECT payload FROM objects WHERE attributed_to = :b",
                        {"b": b.org_uri})
    note = json.loads(rows[0]["payload"])
    assert "Soupe populaire" in note["content_html"]

    # The delivery was signed by B's group key and verified by A (A's inbox log has it).
    # Its row is marked processed just after (the mark waits a moment to share a statement).
    a.wait_until("SELECT 1 FROM inbox_log WHERE actor_uri = :b AND type = 'Create' "
                 "AND status = 'processed'", {"b": b.org_uri})
    log = a.query("SELECT type, status FROM inbox_log WHERE actor_uri = :b", {"b": b.org_uri})
    assert ("Create", "processed") in {(r["type"], r["status"]) for r in log}

    # A unfollows: B drops A from its followers, and A gets nothing more.
    assert a.admin_action("unfollow", target=b.org_uri).status_code == 303
    b.wait_until("SELECT 1 FROM inbox_log WHERE type = 'Undo' AND actor_uri = :a",
                 {"a": a.org_uri})
    assert b.query("SELECT * FROM follows WHERE followee_uri = :b", {"b": b.org_uri}) == []
    assert b.admin_action("note", text="Deuxième annonce").status_code == 303
    time.sleep(1.5)
    creates = a.query("SELECT COUNT(*) AS n FROM inbox_log WHERE type = 'Create'")
    assert creates[0]["n"] == 1
    assert b.query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'")[0]["n"] == 0
