"""New posts you follow, across two real nodes: a need posted on B, in a category a member of A
follows, becomes a notification on A once B's organisation is followed there."""

from __future__ import annotations

import httpx
import pytest

from tests.nodes import NodeProcess, csrf_from

pytestmark = pytest.mark.e2e
PASSWORD = "long enough password"


def member(node: NodeProcess, email: str) -> httpx.Client:
    """A member who signed up through the node's own form (English pages)."""
    client = httpx.Client(base_url=node.base, timeout=10, headers={"Accept-Language": "en"})
    token = csrf_from(client.get("/signup").text)
    resp = client.post("/signup", data={"csrf_token": token, "email": email,
                                        "password": PASSWORD, "confirm": PASSWORD,
                                        "display_name": email.split("@")[0]})
    assert resp.status_code == 303, resp.text
    return client


@pytest.fixture
def two_nodes(tmp_path):
    a = NodeProcess(tmp_path / "a", host="127.0.0.6", org="quartier").start()
    b = NodeProcess(tmp_path / "b", host="127.0.0.7", org="refuge").start()
    yield a, b
    a.close()
    b.close()


def test_a_remote_post_in_a_followed_category_notifies_the_member(two_nodes):
    a, b = two_nodes
    a.login()
    assert a.admin_action("follow", target=b.handle).status_code == 303
    a.wait_until("SELECT 1 FROM follows WHERE followee_uri = :b AND state = 'accepted'",
                 {"b": b.org_uri})
    reader = member(a, "reader@a.example")
    page = reader.get("/account")
    resp = reader.post("/account", data={"csrf_token": csrf_from(page.text),
                                         "display_name": "Reader", "locale": "en",
                                         "categories": ["housing"], "neighbourhoods": []})
    assert resp.status_code == 303, resp.text
    author = member(b, "author@b.example")
    form = author.get("/posts/new?kind=need")
    resp = author.post("/posts/new?kind=need", data={
        "csrf_token": csrf_from(form.text), "kind": "need", "category": "housing",
        "title": "A bed for two nights", "description": "For a mother and her child.",
        "neighbourhood": "Schaerbeek", "urgency": "2", "languages": ["fr"]})
    assert resp.status_code == 303, resp.text

    rows = a.wait_until(
        "SELECT n.payload FROM notifications n JOIN users u ON u.id = n.user_id "
        "WHERE u.email = 'reader@a.example' AND n.kind = 'new_post'")
    assert len(rows) == 1 and "A bed for two nights" in rows[0]["payload"]
    page = reader.get("/notifications")
    assert "New post you follow: “A bed for two nights”" in page.text
    local_id = a.query("SELECT id FROM posts WHERE remote = 1")[0]["id"]
    notification_id = a.query("SELECT id FROM notifications")[0]["id"]
    assert f'href="/notifications/{notification_id}"' in page.text
    opened = reader.get(f"/notifications/{notification_id}")
    assert opened.status_code == 303 and opened.headers["location"] == f"/posts/{local_id}"
    assert a.query("SELECT is_read FROM notifications") == [{"is_read": 1}]
    # The author is not told about their own post, and nobody on B follows housing.
    assert b.query("SELECT id FROM notifications") == []
    reader.close()
    author.close()
