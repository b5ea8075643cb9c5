"""The desk of an organisation, through real HTTP on a served node (uvicorn on loopback): the
needs its coordinators posted on behalf of people without an account with their desk
references, responses waiting and last activity; who may open it; who reads private notes and
how the page says so; on behalf of someone as the first choice of the form with the
organisation's visibility; the paper list and its PDF (text extracted, QR codes decoded);
desk references given to posts that existed before migration 23."""

from __future__ import annotations

import asyncio
import io
import re
import time

import httpx
import pytest
import pytest_asyncio
from pypdf import PdfReader

from node.auth import create_user
from node.db import Database, now
from node.i18n import format_datetime, translate
from node.migrations import _render, load_migrations, migrate
from node.posts.desk_refs import format_ref
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, serve
from tests.test_organisations import CSRF, PASSWORD, signed_in, token

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOST = "127.0.16.1"
NOT_YOURS = "Only the coordinators of this organisation can open its desk."
PHONE = "02 600 54 11"
NOTES = "Mme Dupont, 0470 12 34 56, 2nd floor"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served(module_database):
    """Voisins solidaires with coordinators Ann and Karim, a member Mia, the admin Zoé; the
    Maison de quartier with its coordinator Oscar; an admin Root who coordinates nothing."""
    tmp, url = module_database
    async with serve(tmp, url, HOST) as (node, base):
        people = {}
        for name, role in (("ann", "coordinator"), ("karim", "coordinator"), ("mia", "member"),
                           ("oscar", "coordinator"), ("root", "admin")):
            people[name] = await create_user(node, f"{name}@example.org", PASSWORD, role=role)
            await node.db.execute("UPDATE users SET display_name = :n WHERE id = :i",
                                  {"n": name.title(), "i": people[name]})
        await node.db.execute("UPDATE users SET display_name = 'Zoé' WHERE email = :e",
                              {"e": ADMIN_EMAIL})
        voisins = await node.db.fetch_val("SELECT id FROM actors WHERE username = 'voisins'")
        async with signed_in(base, "root@example.org") as root:
            resp = await root.post("/admin/organisations", data={
                "csrf_token": await token(root, "/admin/organisations"),
                "username": "maison", "name": "Maison de quartier"})
            assert resp.status_code == 303, resp.text
        maison = await node.db.fetch_val("SELECT id FROM actors WHERE username = 'maison'")
        for name, org, role in (("ann", voisins, "coordinator"), ("karim", voisins, "coordinator"),
                                ("mia", voisins, "member"), ("oscar", maison, "coordinator")):
            await node.db.execute("INSERT INTO memberships (user_id, org_id, role) VALUES "
                                  "(:u, :o, :r)", {"u": people[name], "o": org, "r": role})
        async with signed_in(base, ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
            resp = await admin.post("/admin/organisations/voisins", data={
                "csrf_token": await token(admin, "/admin/organisations/voisins"),
                "name": "Voisins solidaires", "description_fr": "Entraide.",
                "contact_phone": PHONE, "opening_hours": "Monday to Friday, 9:00 to 12:00"},
                files={"avatar": ("", b"")})
            assert resp.status_code == 303, resp.text
        yield node, base, people


def form_fields(html: str) -> list[str]:
    """The names of the post form's fields in the order a person meets them."""
    form = re.search(r'<form method="post"[^>]*action="/posts/new.*?</form>', html, re.S).group(0)
    return re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', form)


def selected(html: str, name: str) -> str:
    """The chosen value of a select, or of a group of radio buttons."""
    block = re.search(rf'<select[^>]*name="{name}".*?</select>', html, re.S)
    if block is None:
        return re.search(rf'<input type="radio" name="{name}" value="([^"]*)" checked',
                         html).group(1)
    return re.search(r'<option value="([^"]*)"[^>]*selected', block.group(0)).group(1)


async def post_need(client: httpx.AsyncClient, title: str, **fields: str) -> str:
    page = await client.get("/posts/new?kind=need")
    data = {"csrf_token": CSRF.search(page.text).group(1), "kind": "need",
            "category": "food", "title": title, "description": f"{title}, please.",
            "neighbourhood": "Saint-Gilles", "urgency": "2",
            "visibility": selected(page.text, "visibility"), "publish_as_written": "1",
            **fields}
    resp = await client.post("/posts/new?kind=need", data=data)
    assert resp.status_code == 303, resp.text[-2000:]
    return resp.headers["location"].rsplit("/", 1)[1]


async def test_on_behalf_is_the_first_choice_with_the_organisations_visibility(served) -> None:
    node, base, _ = served
    async with signed_in(base, "ann@example.org") as ann:
        # The organisation chooses, on its settings page (a form that is not public).
        settings = await ann.get("/admin/organisations/voisins")
        assert 'action="/groups/voisins/desk/visibility"' in settings.text
        assert selected(settings.text, "proxied_visibility") == "local"  # the safe default
        resp = await ann.post("/groups/voisins/desk/visibility", data={
            "csrf_token": CSRF.search(settings.text).group(1),
            "proxied_visibility": "followers"})
        assert resp.status_code == 303
        bad = await ann.post("/groups/voisins/desk/visibility", data={
            "csrf_token": CSRF.search(settings.text).group(1), "proxied_visibility": "all"})
        assert bad.status_code == 400 and "Choose who can see the post." in bad.text
        assert await node.db.fetch_val(
            "SELECT proxied_visibility FROM actors WHERE username = 'voisins'") == "followers"

        page = await ann.get("/posts/new?kind=need")
        fields = form_fields(page.text)
        # After the hidden token and kind, the first thing asked is for whom.
        assert fields[:3] == ["csrf_token", "kind", "proxied"], fields[:5]
        assert re.search(r'name="proxied" value="1" checked', page.text)
        assert selected(page.text, "visibility") == "followers"
        need = await post_need(ann, "Warm meal for a family", proxied="1",
                               beneficiary_notes=NOTES)
    row = await node.db.fetch_one("SELECT * FROM posts WHERE id = :i", {"i": need})
    assert row["proxied"] == 1 and row["visibility"] == "followers" and row["desk_seq"]
    # A member posts in their own name, for everyone as before.
    async with signed_in(base, "mia@example.org") as mia:
        page = await mia.get("/posts/new?kind=need")
        assert 'name="proxied"' not in page.text and 'name="beneficiary_notes"' not in page.text
        assert selected(page.text, "visibility") == "public"
    # Oscar's organisation chose nothing: its default stays this node only.
    async with signed_in(base, "oscar@example.org") as oscar:
        assert selected((await oscar.get("/posts/new?kind=need")).text, "visibility") == "local"


async def test_the_desk_lists_the_organisations_posts_with_references(served) -> None:
    node, base, people = served
    async with signed_in(base, "ann@example.org") as ann:
        first = await post_need(ann, "Bed for two nights", proxied="1")
        second = await post_need(ann, "Help with CPAS forms", proxied="1")
    async with signed_in(base, "mia@example.org") as mia:
        page = await mia.get("/posts/new?kind=offer")
        resp = await mia.post("/posts/new?kind=offer", data={
            "csrf_token": CSRF.search(page.text).group(1), "kind": "offer",
            "category": "company", "title": "Coffee and a chat", "description": "Tuesdays.",
            "neighbourhood": "Saint-Gilles", "visibility": "public"})
        offer = resp.headers["location"].rsplit("/", 1)[1]
        resp = await mia.post(f"/posts/{first}/respond", data={
            "csrf_token": CSRF.search((await mia.get(f"/posts/{first}")).text).group(1),
            "message": "I have a spare room."})
        assert resp.status_code == 303, resp.text
    posts = {r["id"]: r for r in await node.db.fetch_all(
        "SELECT id, title, desk_seq, updated_at FROM posts WHERE id IN (:a, :b, :c)",
        {"a": first, "b": second, "c": offer})}
    refs = {pid: format_ref(r["desk_seq"]) for pid, r in posts.items()}
    assert len(set(refs.values())) == 3 and all(re.fullmatch(r"[A-Z]\d{1,2}", v)
                                                for v in refs.values())
    response = await node.db.fetch_one("SELECT * FROM responses WHERE post_id = :p",
                                       {"p": first})

    async with signed_in(base, "karim@example.org") as karim:
        resp = await karim.get("/groups/voisins/desk")
        assert resp.status_code == 200
        assert resp.headers["cache-control"] == "private, no-store"
        rows = re.findall(r'<tr class="desk-row[^"]*" data-ref="([^"]+)">(.*?)</tr>',
                          resp.text, re.S)
        by_ref = dict(rows)
        # Responses waiting come first.
        assert rows[0][0] == refs[first]
        waiting_row = by_ref[refs[first]]
        assert "on behalf of someone" in waiting_row and "Bed for two nights" in waiting_row
        assert f'href="/posts/{first}/responses"><strong>1</strong>' in waiting_row
        assert "Open" in waiting_row and "Ann" in waiting_row
        assert format_datetime(response["updated_at"], "short", "en") in waiting_row
        assert "on behalf of someone" not in by_ref[refs[offer]] and "Mia" in by_ref[refs[offer]]
        assert format_datetime(posts[second]["updated_at"], "short", "en") \
            in by_ref[refs[second]]

        async def refs_for(query: str) -> list[str]:
            page = await karim.get(f"/groups/voisins/desk?{query}")
            assert page.status_code == 200
            return re.findall(r'data-ref="([^"]+)"', page.text)

        assert await refs_for("waiting=1") == [refs[first]]
        assert await refs_for("kind=offer") == [refs[offer]]
        assert refs[second] in await refs_for("kind=need")
        assert refs[offer] not in await refs_for("kind=need")
        # A reference as heard on the phone, in lower case or with a space.
        spoken = refs[second].lower()
        assert await refs_for(f"q={spoken}") == [refs[second]]
        assert await refs_for(f"q={spoken[0]}+{spoken[1:]}") == [refs[second]]
        assert await refs_for("q=CPAS+forms") == [refs[second]]
        assert await refs_for("status=fulfilled") == []
        assert await refs_for("status=nonsense&kind=nonsense") == await refs_for("")
        # Status words in the reader's language.
        french = await karim.get("/groups/voisins/desk?lang=fr")
        assert translate("fr", "Open") in french.text and "Guichet" in french.text
        # The desk reference on the post page, for the organisation's coordinators only.
        page = await karim.get(f"/posts/{second}?lang=en")
        assert f"<strong>Desk reference: {refs[second]}</strong>" in page.text
    async with signed_in(base, "mia@example.org") as mia:
        assert "Desk reference" not in (await mia.get(f"/posts/{second}")).text


async def test_only_the_organisations_coordinators_and_admins_open_the_desk(served) -> None:
    node, base, _ = served
    async with httpx.AsyncClient(base_url=base) as anonymous:
        resp = await anonymous.get("/groups/voisins/desk")
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=")
    for email in ("mia@example.org", "oscar@example.org"):
        async with signed_in(base, email) as client:
            resp = await client.get("/groups/voisins/desk", headers={"Accept": "text/html"})
            assert resp.status_code == 403
            assert resp.headers["content-type"].startswith("text/html")
            assert NOT_YOURS in resp.text and "Bed for two nights" not in resp.text
            resp = await client.post("/groups/voisins/desk/visibility", data={
                "csrf_token": CSRF.search((await client.get("/account")).text).group(1),
                "proxied_visibility": "public"})
            assert resp.status_code == 403
    assert await node.db.fetch_val(
        "SELECT proxied_visibility FROM actors WHERE username = 'voisins'") == "followers"
    async with signed_in(base, "mia@example.org") as mia:
        assert (await mia.get("/desk")).status_code == 403
    # A coordinator of no organisation yet (the menu shows them "Desk") is told why, not refused.
    await create_user(node, "lone@example.org", PASSWORD, role="coordinator")
    async with signed_in(base, "lone@example.org") as lone:
        page = await lone.get("/desk", headers={"Accept-Language": "fr"})
        assert page.status_code == 200 and "aucune organisation" in page.text
    async with signed_in(base, "oscar@example.org") as oscar:
        resp = await oscar.get("/desk")
        assert resp.status_code == 303 and resp.headers["location"] == "/groups/maison/desk"
        assert (await oscar.get("/groups/maison/desk")).status_code == 200
    async with signed_in(base, "root@example.org") as root:
        page = await root.get("/groups/voisins/desk")
        assert page.status_code == 200
        # An admin who does not coordinate the organisation sees what waits, but the
        # conversations are its coordinators' (parties.py): no link that would refuse them.
        first = await node.db.fetch_val("SELECT id FROM posts WHERE title = 'Bed for two nights'")
        row = re.search(r'<tr class="desk-row desk-waiting".*?</tr>', page.text, re.S).group(0)
        assert "<strong>1</strong>" in row and f"/posts/{first}/responses" not in row
        choose = await root.get("/desk")
        assert "/groups/voisins/desk" in choose.text and "/groups/maison/desk" in choose.text
        assert (await root.get("/groups/nobody/desk")).status_code == 404


async def test_private_notes_are_for_the_organisations_coordinators_and_say_so(served) -> None:
    node, base, _ = served
    need = await node.db.fetch_val("SELECT id FROM posts WHERE title = 'Warm meal for a family'")
    wording = "Visible to the coordinators of Voisins solidaires: Zoé, Ann, Karim."
    for email, password in (("karim@example.org", PASSWORD), (ADMIN_EMAIL, ADMIN_PASSWORD)):
        async with signed_in(base, email, password) as client:
            page = (await client.get(f"/posts/{need}")).text
            assert NOTES in page and wording in page
            edit = (await client.get(f"/posts/{need}/edit")).text
            assert NOTES in edit and wording in edit
    # A coordinator of another organisation, an admin who coordinates nothing, a member: no.
    for email in ("oscar@example.org", "root@example.org", "mia@example.org"):
        async with signed_in(base, email) as client:
            page = await client.get(f"/posts/{need}")
            assert page.status_code == 200 and NOTES not in page.text
            assert "Private notes" not in page.text
            edit = await client.get(f"/posts/{need}/edit")
            assert NOTES not in edit.text
            if edit.status_code == 200:  # coordinators and admins may edit the post itself
                fields = {k: v for k, v in re.findall(
                    r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', edit.text)}
                resp = await client.post(f"/posts/{need}/edit", data={
                    **fields, "category": "food", "neighbourhood": "Saint-Gilles",
                    "title": "Warm meal for a family", "description": "Please.",
                    "beneficiary_notes": "overwritten", "publish_as_written": "1"})
                assert resp.status_code == 303, resp.text[-1500:]
    assert await node.db.fetch_val("SELECT notes FROM beneficiary_notes WHERE post_id = :p",
                                   {"p": need}) == NOTES
    # The desk says the same rule, with the same names.
    async with signed_in(base, "ann@example.org") as ann:
        desk = (await ann.get("/groups/voisins/desk")).text
        assert ("visible to the coordinators of Voisins solidaires only: Zoé, Ann, Karim."
                in desk)


async def test_paper_list_and_pdf(served) -> None:
    node, base, _ = served
    async with signed_in(base, "ann@example.org") as ann:
        public = await post_need(ann, "Winter coat size 40", visibility="public",
                                 category="clothes", languages="nl")
        hidden = await post_need(ann, "Only for members", visibility="local")
    ref = format_ref(await node.db.fetch_val("SELECT desk_seq FROM posts WHERE id = :i",
                                             {"i": public}))
    url = f"{base}/posts/{public}"
    async with httpx.AsyncClient(base_url=base) as anonymous:
        page = await anonymous.get("/groups/voisins/paper?lang=en")
        assert page.status_code == 200
        assert "Winter coat size 40" in page.text and "Coffee and a chat" in page.text
        assert "Only for members" not in page.text and hidden not in page.text
        assert f"To answer, call {PHONE} and give the reference {ref}." in page.text
        assert "Opening hours: Monday to Friday, 9:00 to 12:00" in page.text
        assert '<svg' in page.text and f"<title>{url}</title>" in page.text
        assert "@media print" in (await anonymous.get("/static/desk.css")).text
        for query, shown in (("category=clothes", True), ("category=food", False),
                             ("language=nl", True), ("language=fr", False),
                             ("neighbourhood=Saint-Gilles", True),
                             ("neighbourhood=Uccle", False)):
            text = (await anonymous.get(f"/groups/voisins/paper?{query}")).text
            assert ("Winter coat size 40" in text) is shown, query
        # In Dutch: the words and the place names (Sint-Gillis) of a Dutch reader.
        dutch = (await anonymous.get("/groups/voisins/paper?lang=nl&category=clothes")).text
        assert f"Om te antwoorden: bel {PHONE} en geef de referentie {ref}." in dutch
        assert "Sint-Gillis" in dutch and "Kleding" in dutch
        # The organisation's page links to the paper list and the impact page.
        group = (await anonymous.get("/groups/voisins", headers={"Accept": "text/html"})).text
        assert "/groups/voisins/paper" in group and "/groups/voisins/impact" in group

        pdf = await anonymous.get("/groups/voisins/paper.pdf?lang=fr&category=clothes")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        reader = PdfReader(io.BytesIO(pdf.content))
        text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
        assert "Winter coat size 40" in text and "Coffee and a chat" not in text
        assert f"Pour répondre, appelez le {PHONE} et donnez la référence {ref}." in text
        assert "Voisins solidaires" in text and "Besoin" in text and "Saint-Gilles" in text
        # Printed again: the same PDF, not drawn anew (its bytes carry the moment it was
        # drawn); a new post in the list draws it anew.
        drawn_at = reader.metadata.creation_date
        # A PDF drawn after this would carry a later second.
        await asyncio.sleep(max(0.0, drawn_at.timestamp() + 1.05 - time.time()))
        again = await anonymous.get("/groups/voisins/paper.pdf?lang=fr&category=clothes")
        assert again.content == pdf.content
        async with signed_in(base, "ann@example.org") as ann:
            await post_need(ann, "Shoes size 38", visibility="public", category="clothes")
        changed = await anonymous.get("/groups/voisins/paper.pdf?lang=fr&category=clothes")
        assert "Shoes size 38" in " ".join(
            p.extract_text() for p in PdfReader(io.BytesIO(changed.content)).pages)
        dutch = PdfReader(io.BytesIO((await anonymous.get(
            "/groups/voisins/paper.pdf?lang=nl&category=clothes")).content))
        dutch_text = " ".join(" ".join(p.extract_text().split()) for p in dutch.pages)
        assert "Sint-Gillis" in dutch_text and f"geef de referentie {ref}." in dutch_text
        assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.5)  # A4
        # The QR code printed beside the post opens the post.
        zxingcpp = pytest.importorskip("zxingcpp")
        images = [image.image for p in reader.pages for image in p.images]
        assert [r.text for i in images for r in zxingcpp.read_barcodes(i)] == [url]


async def test_posts_that_existed_before_get_references_in_order(database_url) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        await db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                         "description TEXT NOT NULL, applied_at "
                         + ("DOUBLE PRECISION" if db.is_postgres else "REAL") + " NOT NULL)")
        for version, description, statements in load_migrations():
            if version >= 23:
                continue
            for sql in statements:
                if isinstance(sql, dict):
                    if db.dialect not in sql:
                        continue
                    sql = sql[db.dialect]
                await db.execute(_render(sql, db.dialect))
            await db.execute("INSERT INTO schema_migrations VALUES (:v, :d, :t)",
                             {"v": version, "d": description, "t": now()})
        rows = [("p3", "org-a", 30, 0), ("p1", "org-a", 10, 0), ("p2", "org-b", 20, 0),
                ("p4", "org-a", 40, 0), ("r1", "org-a", 5, 1)]
        for pid, org, created, remote in rows:
            await db.execute(
                "INSERT INTO posts (id, uri, org_uri, attributed_to, kind, category, title, "
                "remote, created_at, updated_at) VALUES (:i, :u, :o, :o, 'need', 'food', 't', "
                ":r, :c, :c)", {"i": pid, "u": f"https://x/{pid}", "o": org, "r": remote,
                                "c": created})
        assert 23 in await migrate(db)
        seqs = {r["id"]: r["desk_seq"] for r in await db.fetch_all(
            "SELECT id, desk_seq FROM posts")}
        assert seqs == {"p1": 1, "p3": 2, "p4": 3, "p2": 1, "r1": None}
        counters = {r["org_uri"]: r["last"] for r in await db.fetch_all(
            "SELECT * FROM desk_counters")}
        assert counters == {"org-a": 3, "org-b": 1}
    finally:
        await db.disconnect()


async def test_a_coordinator_manages_the_posts_of_their_own_organisation_only(served) -> None:
    """Two organisations on one node: Oscar coordinates the Maison de quartier, not Voisins
    solidaires; he can neither edit, withdraw, nor fulfil Voisins' posts. Their coordinators and
    the node's admin (who moderates) can."""
    node, base, _ = served
    async with signed_in(base, "ann@example.org") as ann:
        need = await post_need(ann, "Help to fill in a form")
    async with signed_in(base, "oscar@example.org") as oscar:
        page = await oscar.get(f"/posts/{need}")
        assert page.status_code == 200 and f"/posts/{need}/edit" not in page.text
        assert (await oscar.get(f"/posts/{need}/edit")).status_code == 403
        assert (await oscar.get(f"/posts/{need}/status",
                                params={"action": "withdraw"})).status_code == 403
        resp = await oscar.post(f"/posts/{need}/status", data={
            "csrf_token": CSRF.search(page.text).group(1), "action": "withdraw",
            "confirm": "yes"})
        assert resp.status_code == 403 and "Only the author or a coordinator" in resp.text
        resp = await oscar.post(f"/posts/{need}/edit", data={
            "csrf_token": CSRF.search(page.text).group(1), "title": "Taken over",
            "description": "x", "category": "food", "publish_as_written": "1"})
        assert resp.status_code == 403
    row = await node.db.fetch_one("SELECT title, status FROM posts WHERE id = :i", {"i": need})
    assert (row["title"], row["status"]) == ("Help to fill in a form", "open")
    for email, password in (("karim@example.org", PASSWORD), ("root@example.org", PASSWORD)):
        async with signed_in(base, email, password) as client:
            assert (await client.get(f"/posts/{need}/edit")).status_code == 200, email
    async with signed_in(base, "karim@example.org") as karim:
        confirm = await karim.get(f"/posts/{need}/status", params={"action": "withdraw"})
        resp = await karim.post(f"/posts/{need}/status", data={
            "csrf_token": CSRF.search(confirm.text).group(1), "action": "withdraw",
            "confirm": "yes"})
        assert resp.status_code == 303, resp.text[-1500:]
    assert await node.db.fetch_val("SELECT status FROM posts WHERE id = :i",
                                   {"i": need}) == "withdrawn"
