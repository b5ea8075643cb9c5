"""Report spam: hostile servers flood a running node with signed `Flag`s (tests/hostile.py signs
with its own code). The moderators' queue holds one entry per reported target, the same reporter
again adds nothing, and reports are limited per reporter and per server (the defaults:
NODE_REPORTS_PER_REPORTER 10 and NODE_REPORTS_PER_SERVER 20 a day), while a report from
another server still arrives."""

from __future__ import annotations

import json

import httpx
import pytest

from node.db import dumps, now
from tests.hostile import HostileActor, HostilePeer, sign
from tests.nodes import NodeProcess

NODE_HOST = "127.0.0.82"
NOTES = 16


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    running = NodeProcess(tmp_path_factory.mktemp("reports"), host=NODE_HOST).start()
    for i in range(NOTES):
        uri = f"{running.base}/objects/note-{i}"
        running.query(
            "INSERT INTO objects (uri, type, attributed_to, local, payload, deleted, published) "
            "VALUES (:u, 'Note', :a, 1, :p, 0, :t) RETURNING uri",
            {"u": uri, "a": running.org_uri, "t": now(), "p": dumps(
                {"id": uri, "type": "Note", "attributedTo": running.org_uri,
                 "content": f"<p>note {i}</p>"})})
    yield running
    running.close()


@pytest.fixture
def hostile(request: pytest.FixtureRequest):
    peer = HostilePeer(request.param).start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def http():
    # One client for the module: making an httpx client costs more than a signed POST.
    with httpx.Client(timeout=15) as client:
        yield client


def _post(http: httpx.Client, actor: HostileActor, url: str, activity: dict) -> httpx.Response:
    body = json.dumps(activity).encode()
    return http.post(url, content=body, headers=sign(actor, "POST", url, body))


def _notes(node: NodeProcess) -> list[str]:
    return [f"{node.base}/objects/note-{i}" for i in range(NOTES)]


def _flag(peer: HostilePeer, actor, target: str, text: str) -> dict:
    return peer.activity(actor, "Flag", [target], content=text)


def _entries(node: NodeProcess) -> list[dict]:
    return node.query("SELECT * FROM reports WHERE status = 'open'")


def _reporters_from(node: NodeProcess, peer: HostilePeer) -> list[dict]:
    return [r for r in node.query("SELECT * FROM report_reporters")
            if (r["reporter_actor_uri"] or "").startswith(peer.base + "/")]


@pytest.mark.parametrize("hostile", ["127.0.0.83"], indirect=True)
def test_two_hundred_flags_from_one_actor_make_one_entry_then_hit_the_limit(node, hostile, http):
    spammer = hostile.add_actor("spammer")
    inbox = f"{node.base}/inbox"
    note = _notes(node)[0]
    for i in range(200):
        resp = _post(http, spammer, inbox, _flag(hostile, spammer, note, f"spam {i}"))
        assert resp.status_code == 202, resp.text
    entries = [e for e in _entries(node) if e["target_object_uri"] == note]
    assert len(entries) == 1
    assert len(_reporters_from(node, hostile)) == 1  # the same reporter again adds nothing
    assert entries[0]["reason"] == "spam 0"

    # Other targets: the reporter's limit (10 a day) bounds the entries it can make.
    refused = 0
    for i in range(100):
        target = _notes(node)[1 + i % (NOTES - 1)]
        resp = _post(http, spammer, inbox, _flag(hostile, spammer, target, f"more {i}"))
        if resp.status_code == 422:
            assert "too many reports" in resp.json()["error"]
            refused += 1
        else:
            assert resp.status_code == 202, resp.text
    assert len(_reporters_from(node, hostile)) == 10 and refused > 0
    status = node.query("SELECT status, error FROM inbox_log WHERE actor_uri = :a "
                        "AND status = 'rejected'", {"a": spammer.uri})
    assert len(status) == refused and "too many reports" in status[0]["error"]


@pytest.mark.parametrize("hostile", ["127.0.0.84"], indirect=True)
def test_flags_from_thirty_actors_of_one_server_are_bounded_and_merged(node, hostile, http):
    inbox = f"{node.base}/inbox"
    accepted = 0
    for i in range(30):
        actor = hostile.add_actor(f"sock{i}")
        for target in (node.org_uri, _notes(node)[i % NOTES]):
            resp = _post(http, actor, inbox, _flag(hostile, actor, target, f"sock {i}"))
            assert resp.status_code in (202, 422), resp.text
            accepted += resp.status_code == 202
    rows = _reporters_from(node, hostile)
    assert len(rows) == accepted == 20  # the server's limit, whatever the number of its actors
    about_org = [e for e in _entries(node) if e["target_key"] == node.org_uri]
    assert len(about_org) == 1  # many reporters of one target: one entry
    org_reporters = node.query("SELECT COUNT(*) AS n FROM report_reporters WHERE report_id = :r",
                               {"r": about_org[0]["id"]})[0]["n"]
    assert org_reporters >= 10


@pytest.mark.parametrize("hostile", ["127.0.0.85"], indirect=True)
def test_a_legitimate_report_from_another_server_still_arrives(node, hostile, http):
    moderator = hostile.add_actor("moderator", kind="Application")
    inbox = f"{node.base}/inbox"
    resp = _post(http, moderator, inbox,
                        _flag(hostile, moderator, node.org_uri, "Harassment of a volunteer"))
    assert resp.status_code == 202, resp.text
    entries = [e for e in _entries(node) if e["target_key"] == node.org_uri]
    assert len(entries) == 1
    mine = _reporters_from(node, hostile)
    assert [(r["report_id"], r["reason"]) for r in mine] == \
        [(entries[0]["id"], "Harassment of a volunteer")]
    node.login()
    page = node.client.get("/moderation").text
    assert "Harassment of a volunteer" in page
    count = node.query("SELECT COUNT(*) AS n FROM report_reporters WHERE report_id = :r",
                       {"r": entries[0]["id"]})[0]["n"]
    if count > 1:  # after the flood of the other tests: one entry says how many reported
        assert f"{count} " in page
