"""Impact figures through the node's pages, on the in-process app: needs with known dates and
outcomes are stored, and every count, median and group is checked exactly, in the public
summary (small groups hidden, no medians), in the coordinators' view, in the CSV downloads and
in the admins' node-wide view; the charts are SVG with a title, and the same figures as a table."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import httpx
import pytest
import pytest_asyncio

from node import impact
from node.actors import actor_uri, by_username, create_actor
from node.auth import create_user
from node.context import Node
from node.posts import queries, responses, service
from node.posts.validation import TIMEZONE
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.asyncio(loop_scope="module")

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "long enough password"
HOUR = 3600.0


def brussels(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=TIMEZONE).timestamp()


# (created, category, neighbourhood, status, responses: (hours after, responder, status,
# hours to acceptance or None))
NEEDS = [
    ("2026-03-10T12:00", "food", "Ixelles", "fulfilled", [(2, "a", "accepted", 5)]),
    ("2026-03-11T09:00", "food", "Ixelles", "fulfilled",
     [(4, "b", "accepted", 10), (5, "c", "not_needed", None)]),
    ("2026-03-12T09:00", "food", "Ixelles", "withdrawn", [(6, "d", "declined", None)]),
    ("2026-03-13T09:00", "food", "Ixelles", "expired", []),
    # 21:30 UTC on 31 March is still March in Brussels.
    ("2026-03-31T23:30", "food", "Ixelles", "open", [(1, "e", "pending", None)]),
    ("2026-04-02T10:00", "housing", "Saint-Gilles", "fulfilled", [(3, "a", "accepted", 7)]),
    ("2026-04-03T10:00", "housing", "Saint-Gilles", "in_progress", [(8, "c", "accepted", 20)]),
    ("2026-04-04T10:00", "housing", "Saint-Gilles", "expired", []),
    ("2026-04-05T10:00", "housing", "Saint-Gilles", "open", []),
    ("2026-05-06T10:00", "transport", "Uccle", "fulfilled", [(1, "a", "accepted", 2)]),
]


async def _insert_post(node: Node, org_uri: str, index: int, created: float, kind: str,
                       category: str, neighbourhood: str, status: str, remote: int = 0) -> str:
    post_id = f"imp{index:04d}{kind[0]}{remote}{abs(hash(org_uri)) % 1000:03d}"
    await node.db.execute(
        "INSERT INTO posts (id, uri, org_uri, attributed_to, kind, category, title, "
        "neighbourhood, status, remote, created_at, updated_at) VALUES (:i, :u, :o, :o, :k, "
        ":c, :t, :n, :s, :r, :at, :at)",
        {"i": post_id, "u": f"{org_uri}/posts/{post_id}", "o": org_uri, "k": kind,
         "c": category, "t": f"Need {index}", "n": neighbourhood, "s": status, "r": remote,
         "at": created})
    return post_id


async def _insert_response(node: Node, post_id: str, created: float, responder: str,
                           status: str, accepted: float | None) -> None:
    response_id = f"{post_id}{responder}"
    await node.db.execute(
        "INSERT INTO responses (id, post_id, thread_uri, responder_uri, status, created_at, "
        "updated_at, accepted_at) VALUES (:i, :p, :t, :r, :s, :c, :c, :a)",
        {"i": response_id, "p": post_id, "t": f"https://elsewhere.example/t/{response_id}",
         "r": f"https://elsewhere.example/users/{responder}", "s": status, "c": created,
         "a": accepted})


async def _user(node: Node, email: str, role: str, org_id: str, person: str = "") -> dict:
    actor_id = (await create_actor(node, "Person", person, person.title())).id if person else None
    user_id = await create_user(node, email, PASSWORD, role=role, actor_id=actor_id)
    await node.db.execute("INSERT INTO memberships (user_id, org_id, role) VALUES (:u, :o, :r)",
                          {"u": user_id, "o": org_id, "r": role})
    return dict(await node.db.fetch_one("SELECT * FROM users WHERE id = :i", {"i": user_id}))


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
    client.cookies.clear()
    page = await client.get("/login")
    token = CSRF.search(page.text).group(1)
    resp = await client.post("/login", data={"email": email, "password": password,
                                             "csrf_token": token})
    assert resp.status_code == 303, resp.text


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(module_node):
    node, client = module_node
    client.headers["Accept-Language"] = "en"
    voisins = await by_username(node, "voisins", "Group")
    maison = await create_actor(node, "Group", "maison", "Maison de quartier")
    org_uri, other_uri = actor_uri(node, voisins), actor_uri(node, maison)
    for index, (created, category, place, status, answers) in enumerate(NEEDS):
        start = brussels(created)
        post_id = await _insert_post(node, org_uri, index, start, "need", category, place,
                                     status)
        for hours_after, responder, state, accepted in answers:
            await _insert_response(node, post_id, start + hours_after * HOUR, responder, state,
                                   None if accepted is None else start + accepted * HOUR)
    # Not counted for voisins: an offer, a need received from another server, another
    # organisation's needs (these two count in the node-wide view).
    await _insert_post(node, org_uri, 50, brussels("2026-03-15T10:00"), "offer", "food",
                       "Ixelles", "open")
    await _insert_post(node, org_uri, 51, brussels("2026-03-15T10:00"), "need", "food",
                       "Ixelles", "open", remote=1)
    for index in (60, 61):
        await _insert_post(node, other_uri, index, brussels("2026-04-20T10:00"), "need",
                           "clothes", "Anderlecht", "fulfilled")
    await _user(node, "coord@example.org", "coordinator", voisins.id)
    await _user(node, "other-coord@example.org", "coordinator", maison.id)
    await _user(node, "member@example.org", "member", voisins.id)
    return node, client


def _cells(page: str, caption: str) -> list[list[str]]:
    """The rows of the table with this caption, as text cells."""
    table = page.split(f"<caption>{caption}</caption>", 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def _totals(page: str) -> dict[str, str]:
    block = page.split('<dl class="impact-totals">', 1)[1].split("</dl>", 1)[0]
    return dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block))


async def test_coordinators_see_every_figure_exactly(world):
    node, client = world
    await login(client, "coord@example.org")
    page = await client.get("/groups/voisins/impact")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    assert _totals(page.text) == {
        "Needs posted": "10", "Met": "4", "Withdrawn": "1", "Expired": "2", "Still open": "3",
        # a, b and c were accepted; d (declined) and e (waiting) did not take part.
        "Helpers who took part": "3",
        # First responses after 2, 4, 6, 1, 3, 8, 1 hours; acceptances after 5, 10, 7, 20, 2.
        "Median time to the first response": "3.0 hours",
        "Median time to an accepted helper": "7.0 hours",
    }
    assert _cells(page.text, "By month") == [
        ["2026-03", "5", "2", "1", "1", "1", "2", "3.0", "7.5"],
        ["2026-04", "4", "1", "0", "1", "2", "2", "5.5", "13.5"],
        ["2026-05", "1", "1", "0", "0", "0", "1", "1.0", "2.0"],
    ]
    assert _cells(page.text, "By category") == [
        ["Meal or food", "5", "2", "1", "1", "1", "2", "3.0", "7.5"],
        ["Bed or housing", "4", "1", "0", "1", "2", "2", "5.5", "13.5"],
        ["Transport", "1", "1", "0", "0", "0", "1", "1.0", "2.0"],
    ]
    assert _cells(page.text, "By neighbourhood") == [
        ["Ixelles", "5", "2", "1", "1", "1", "2", "3.0", "7.5"],
        ["Saint-Gilles", "4", "1", "0", "1", "2", "2", "5.5", "13.5"],
        ["Uccle", "1", "1", "0", "0", "0", "1", "1.0", "2.0"],
    ]
    # Hours in the reader's language: a decimal comma in Dutch (and French).
    dutch = await client.get("/groups/voisins/impact?lang=nl")
    assert "3,0 uur" in dutch.text and "7,0 uur" in dutch.text and "3.0 uur" not in dutch.text
    await client.get("/groups/voisins/impact?lang=en")  # the switcher's cookie back to English
    # The charts: inline SVG images with a title, one pair of bars per group, no inline style
    # (the site's CSP allows style sheets from itself only) and no script.
    svgs = re.findall(r"<svg [^>]*>.*?</svg>", page.text, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        assert 'role="img"' in svg and re.search(r"<title id=\"t-\w+\">[^<]+</title>", svg)
        assert svg.count('class="bar-posted"') == 3 and svg.count('class="bar-met"') == 3
    assert "style=" not in page.text and "<script" not in page.text
    assert '<link rel="stylesheet" href="/static/impact.css">' in page.text
    css = await client.get("/static/impact.css")
    assert css.status_code == 200 and ".bar-met" in css.text


async def test_the_public_summary_hides_small_groups_and_medians(world):
    node, client = world
    client.cookies.clear()
    page = await client.get("/groups/voisins/impact")
    assert page.status_code == 200
    totals = _totals(page.text)
    assert totals == {"Needs posted": "10", "Met": "4", "Withdrawn": "1", "Expired": "2",
                      "Still open": "3", "Helpers who took part": "3"}
    assert "Median" not in page.text
    # May / Transport / Uccle hold one need: hidden. Alone, it would be the total minus the
    # others, so April / Bed or housing / Saint-Gilles (4) are hidden with it.
    for caption, shown in (("By month", "2026-03"), ("By category", "Meal or food"),
                           ("By neighbourhood", "Ixelles")):
        assert _cells(page.text, caption) == [[shown, "5", "2", "1", "1", "1", "2"]]
    assert page.text.count("2 groups of fewer than 3 needs are not shown.") == 3
    for word in ("Uccle", "Saint-Gilles", "2026-05", "Transport"):
        assert word not in page.text
    # Another organisation's coordinator is the public here.
    await login(client, "other-coord@example.org")
    assert "Median" not in (await client.get("/groups/voisins/impact")).text
    await login(client, "member@example.org")
    assert "Median" not in (await client.get("/groups/voisins/impact")).text


async def test_an_organisation_with_few_needs_shows_nothing_to_the_public(world):
    node, client = world
    client.cookies.clear()
    page = await client.get("/groups/maison/impact")
    assert page.status_code == 200
    assert "Fewer than 3 needs so far" in page.text and "<svg" not in page.text
    assert "Anderlecht" not in page.text
    data = (await client.get("/groups/maison/impact.csv")).text
    assert data == "dimension,group,posted,met,withdrawn,expired,still_open,helpers\r\n"
    assert (await client.get("/groups/nobody/impact")).status_code == 404


async def test_csv_downloads_public_and_full(world):
    node, client = world
    client.cookies.clear()
    resp = await client.get("/groups/voisins/impact.csv")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    assert resp.headers["content-disposition"] == 'attachment; filename="impact-voisins.csv"'
    assert list(csv.reader(io.StringIO(resp.text))) == [
        ["dimension", "group", "posted", "met", "withdrawn", "expired", "still_open",
         "helpers"],
        ["total", "all", "10", "4", "1", "2", "3", "3"],
        ["month", "2026-03", "5", "2", "1", "1", "1", "2"],
        ["category", "food", "5", "2", "1", "1", "1", "2"],
        ["neighbourhood", "Ixelles", "5", "2", "1", "1", "1", "2"],
    ]
    await login(client, "coord@example.org")
    resp = await client.get("/groups/voisins/impact.csv")
    assert resp.headers["cache-control"] == "private, no-store"
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0][-2:] == ["median_hours_to_first_response", "median_hours_to_accepted_helper"]
    assert rows[1] == ["total", "all", "10", "4", "1", "2", "3", "3", "3.0", "7.0"]
    assert rows[2:5] == [["month", "2026-03", "5", "2", "1", "1", "1", "2", "3.0", "7.5"],
                         ["month", "2026-04", "4", "1", "0", "1", "2", "2", "5.5", "13.5"],
                         ["month", "2026-05", "1", "1", "0", "0", "0", "1", "1.0", "2.0"]]
    assert rows[5:] == [
        ["category", "food", "5", "2", "1", "1", "1", "2", "3.0", "7.5"],
        ["category", "housing", "4", "1", "0", "1", "2", "2", "5.5", "13.5"],
        ["category", "transport", "1", "1", "0", "0", "0", "1", "1.0", "2.0"],
        ["neighbourhood", "Ixelles", "5", "2", "1", "1", "1", "2", "3.0", "7.5"],
        ["neighbourhood", "Saint-Gilles", "4", "1", "0", "1", "2", "2", "5.5", "13.5"],
        ["neighbourhood", "Uccle", "1", "1", "0", "0", "0", "1", "1.0", "2.0"],
    ]


async def test_the_node_wide_view_is_for_admins(world):
    node, client = world
    client.cookies.clear()
    resp = await client.get("/impact")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    assert (await client.get("/impact.csv")).status_code == 303
    await login(client, "coord@example.org")
    assert (await client.get("/impact")).status_code == 403
    assert (await client.get("/impact.csv")).status_code == 403
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = await client.get("/impact")
    assert page.status_code == 200
    totals = _totals(page.text)
    assert (totals["Needs posted"], totals["Met"], totals["Helpers who took part"]) == (
        "12", "6", "3")
    assert _cells(page.text, "By month")[1][:3] == ["2026-04", "6", "3"]
    by_org = page.text.split("<h2>By organisation</h2>", 1)[1].split("</table>", 1)[0]
    rows = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)[:4]
            for r in re.findall(r"<tr>(.*?)</tr>", by_org.split("<tbody>")[1])]
    assert ["Maison de quartier", "2", "2", "0"] in rows and len(rows) == 2
    # An admin sees every organisation's full figures.
    assert "Median" in (await client.get("/groups/maison/impact")).text
    data = (await client.get("/impact.csv")).text.splitlines()
    assert data[1] == "total,all,12,6,1,2,3,3,3.0,7.0"


async def test_accepting_a_helper_stamps_the_time_the_figures_use(world):
    node, client = world
    third = await create_actor(node, "Group", "troisieme", "Troisième")
    author = await _user(node, "author@example.org", "member", third.id, person="auteur")
    helper = await _user(node, "helper@example.org", "member", third.id, person="aidant")
    fields = service.check(node, {"category": "food", "title": "Soup", "neighbourhood":
                                  "Ixelles"}, ["fr"], "need", author)
    post = await service.create_post(node, author, fields)
    answer = await responses.respond(node, helper, post, "I can bring some.")
    await node.db.execute("UPDATE responses SET created_at = created_at - 7200 WHERE id = :i",
                          {"i": answer["id"]})
    await node.db.execute("UPDATE posts SET created_at = created_at - 36000 WHERE id = :i",
                          {"i": post["id"]})
    post = await queries.get_post(node, post["id"])
    await responses.accept(node, author, post, answer)
    stamped = await node.db.fetch_val("SELECT accepted_at FROM responses WHERE id = :i",
                                      {"i": answer["id"]})
    assert stamped is not None
    figures = await impact.figures(node, actor_uri(node, third), full=True)
    assert (figures.total.posted, figures.total.helpers, figures.total.still_open) == (1, 1, 1)
    assert figures.total.median_first_response == pytest.approx(8 * HOUR, abs=60)
    assert figures.total.median_accepted == pytest.approx(10 * HOUR, abs=60)
    # A message later moves updated_at, never the acceptance time; undoing clears it.
    await node.db.execute("UPDATE responses SET updated_at = updated_at + 99999 WHERE id = :i",
                          {"i": answer["id"]})
    again = await impact.figures(node, actor_uri(node, third), full=True)
    assert again.total.median_accepted == figures.total.median_accepted
    post = await queries.get_post(node, post["id"])
    answer = await responses.get_response(node, answer["id"])
    await responses.undo_acceptance(node, author, post, answer)
    assert await node.db.fetch_val("SELECT accepted_at FROM responses WHERE id = :i",
                                   {"i": answer["id"]}) is None
