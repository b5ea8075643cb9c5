"""Property-based tests: malformed activities, signature headers and request headers thrown at
the verifier and at the inbox of a running node (in-process, real database). Whatever arrives:
never a 500, never an exception other than the documented one, never a stored change."""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activitypub.signatures import (
    ParsedSignature,
    SignatureError,
    SigningKey,
    parse_signature,
    sign_request,
    verify_request,
)
from activitypub.vocab import ACTIVITY_JSON
from inbox.handlers import HANDLERS
from node.context import Node
from node.remote_actors import get_actor
from tests.peers import RemotePeer
from tests.peers import test_keypair as make_keypair

BASE = "http://127.0.0.1:8999"
KEYS = make_keypair()
KEY = SigningKey("https://peer.example/users/a#main-key", KEYS.private_pem)

# Tables an activity could change; the inbox log and the key cache are bookkeeping.
DOMAIN_TABLES = ("actors", "users", "follows", "objects", "activities", "reactions",
                 "deliveries", "reports", "domain_blocks", "actor_blocks")

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | \
    st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20,
)
header_text = st.text(alphabet=string.printable.replace("\n", "").replace("\r", ""),
                      max_size=120)
param = st.sampled_from(["keyId", "algorithm", "headers", "signature", "created", "expires",
                         "KEYID", "x"])
signature_headers = st.one_of(
    header_text,
    st.lists(st.tuples(param, header_text.map(lambda t: t.replace('"', ""))), max_size=6).map(
        lambda pairs: ",".join(f'{k}="{v}"' for k, v in pairs)),
)


@settings(max_examples=400, deadline=None)
@given(signature_headers)
def test_parse_signature_only_raises_signature_error(header):
    try:
        parsed = parse_signature(header)
    except SignatureError:
        return
    assert isinstance(parsed, ParsedSignature) and parsed.key_id


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "post"]),
    path=st.text(max_size=30),
    headers=st.dictionaries(st.sampled_from(["host", "date", "digest", "content-type",
                                             "Date", "Digest", "x-y"]), header_text,
                            max_size=5),
    body=st.binary(max_size=64),
    tamper=st.integers(min_value=0, max_value=3),
)
def test_verify_request_never_crashes_on_altered_requests(method, path, headers, body, tamper):
    url = "https://node.example/inbox"
    signed = sign_request("POST", url, KEY, body=b'{"a":1}',
                          headers={"Content-Type": ACTIVITY_JSON})
    sig = parse_signature(signed["Signature"])
    mixed = {**signed, **headers} if tamper else headers
    target = "/inbox" if tamper == 2 else path
    try:
        verify_request(sig, method, target, mixed, KEYS.public_pem, body)
    except SignatureError:
        return
    # Only the untouched request may verify.
    assert body == b'{"a":1}' and method == "POST" and target == "/inbox"


async def _counts(node: Node) -> dict[str, int]:
    return {t: int(await node.db.fetch_val(f"SELECT COUNT(*) FROM {t}")) for t in DOMAIN_TABLES}


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.0.3")
    remote.add_actor("fuzz")
    await remote.astart()
    yield remote
    await remote.astop()


def _bodies() -> st.SearchStrategy[bytes]:
    activity_like = st.fixed_dictionaries(
        {}, optional={"id": json_values | st.just("https://evil.example/a"),
                      "type": st.sampled_from(sorted(HANDLERS)) | json_values,
                      "actor": json_values | st.just("https://evil.example/u"),
                      "object": json_values, "to": json_values, "@context": json_values})
    return st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        activity_like.map(lambda v: json.dumps(v).encode()),
    )


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    body=_bodies(),
    signature=st.none() | signature_headers,
    extra=st.dictionaries(st.sampled_from(["Content-Type", "Date", "Digest", "Content-Digest",
                                           "Host", "Content-Encoding"]), header_text,
                          max_size=4),
    path=st.sampled_from(["/inbox", "/groups/voisins/inbox", "/actor/inbox",
                          "/users/nobody/inbox"]),
)
async def test_inbox_survives_garbage_unsigned_or_badly_signed(app_node, body, signature,
                                                               extra, path):
    node, client = app_node
    before = await _counts(node)
    log_before = await node.db.fetch_val("SELECT COUNT(*) FROM inbox_log")
    headers = {k: v for k, v in extra.items() if v.isascii()}
    if signature is not None and signature.isascii():
        headers["Signature"] = signature
    resp = await client.post(path, content=body, headers=headers)
    assert 400 <= resp.status_code < 500 or resp.status_code == 202, resp.text
    assert resp.status_code != 202 or "nothing to do" in resp.text
    assert await _counts(node) == before
    assert await node.db.fetch_val("SELECT COUNT(*) FROM inbox_log") == log_before


def _signed_activity(peer: RemotePeer) -> st.SearchStrategy[dict[str, Any]]:
    actor = peer.actors["fuzz"]
    return st.fixed_dictionaries({
        "id": st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12).map(
            lambda s: f"{peer.base}/activities/{s}"),
        "type": st.sampled_from(sorted(HANDLERS)) | st.text(max_size=10),
        "actor": st.just(actor.uri),
        "object": json_values,
    }, optional={"to": json_values, "cc": json_values, "target": json_values,
                 "result": json_values, "content": json_values})


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_inbox_survives_well_signed_nonsense(app_node, peer, data):
    """Signed by a real peer, so every handler runs on nonsense: 202 or a 4xx, never a 500,
    and no domain change (nothing in it names anything of this node)."""
    node, client = app_node
    actor = peer.actors["fuzz"]
    await get_actor(node, actor.uri)  # the key is cached, as after a first contact
    activity = data.draw(_signed_activity(peer))
    if activity["type"] == "Delete" and activity["object"] == actor.uri:
        return  # a real, allowed change: the actor deletes itself
    before = await _counts(node)
    resp = await peer.apost(client, actor, f"{BASE}/inbox", activity)
    assert resp.status_code in (202, 400, 401, 403, 422), resp.text
    assert await _counts(node) == before
