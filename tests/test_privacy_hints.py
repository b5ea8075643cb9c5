"""Privacy by default: phone numbers, email addresses and street addresses typed into a post's
title or description are pointed out before anything is published, the author chooses, and the
text is published exactly as written. The detector on its own (what it must find, and the
numbers it must leave alone), then the form flow through the node's pages in French and Dutch,
for a new post and an edit."""

from __future__ import annotations

import re

import httpx
import pytest
import pytest_asyncio

from node.actors import create_actor
from node.auth import create_user
from node.posts.privacy import find, find_in_post

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "long enough password"


@pytest.mark.parametrize(("text", "kind", "found"), [
    ("Appelez-moi au 0470 12 34 56 le soir", "phone", "0470 12 34 56"),
    ("gsm 0485/12.34.56", "phone", "0485/12.34.56"),
    ("tél. 02/512.34.56", "phone", "02/512.34.56"),
    ("bel +32 (0)470 12 34 56", "phone", "+32 (0)470 12 34 56"),
    ("ou 0032 2 512 34 56", "phone", "0032 2 512 34 56"),
    ("à Lille: +33 6 12 34 56 78", "phone", "+33 6 12 34 56 78"),
    ("whatsapp +32470123456!", "phone", "+32470123456"),
    ("écrire à ana.b+aide@example.org.", "email", "ana.b+aide@example.org"),
    ("mail jan.peeters@telenet.be", "email", "jan.peeters@telenet.be"),
    ("J'habite Rue de la Loi 16, 1000 Bruxelles", "address", "Rue de la Loi 16"),
    ("au 12, rue Haute", "address", "12, rue Haute"),
    ("chaussée de Waterloo 123 (sonner)", "address", "chaussée de Waterloo 123"),
    ("Avenue Louise 54 bte 3", "address", "Avenue Louise 54 bte 3"),
    ("devant place Flagey 3", "address", "place Flagey 3"),
    ("boulevard Anspach 1", "address", "boulevard Anspach 1"),
    ("Ik woon in de Wetstraat 16.", "address", "Wetstraat 16"),
    ("Waterloosesteenweg 123, Sint-Gillis", "address", "Waterloosesteenweg 123"),
    ("Kerkstraat 12 bus 3", "address", "Kerkstraat 12 bus 3"),
    ("op het Flageyplein 3", "address", "Flageyplein 3"),
    ("Louizalaan 54", "address", "Louizalaan 54"),
])
def test_personal_details_are_found(text, kind, found):
    assert [(f.kind, f.text) for f in find(text)] == [(kind, found)]


@pytest.mark.parametrize("text", [
    "2 beds for 3 nights", "open 9-12", "ouvert de 9:00 à 12:00", "le 01/02/2026 10h",
    "du 2026-12-01 au 2026-12-05", "tot 12/03", "le 31.12.2026", "une place pour 2 personnes",
    "Place Flagey 3 personnes", "1 place de parking", "3 kg de pommes", "1000 Bruxelles",
    "rue Haute", "kamer voor 2 nachten", "onderweg 2 dagen", "2 x 3 lits", "de 14 à 16h",
    "capacité: 12", "entre 10 et 20 euros", "2 chambres, 1er étage", "tel: bientôt",
])
def test_ordinary_numbers_and_dates_are_left_alone(text):
    assert find(text) == []


def test_a_handle_is_an_address_like_any_email():
    # A fediverse handle is public by nature, yet it reads as an email; pointing it out costs
    # a tick, so the detector does not try to tell them apart.
    assert [f.kind for f in find("@voisins@example.org")] == ["email"]


def test_findings_name_their_field_and_an_edit_asks_only_about_new_details():
    found = find_in_post("Lit, tél 0470 12 34 56", "Rue Haute 5 ou a@b.be")
    assert [(f.field, f.kind) for f in found] == [
        ("title", "phone"), ("description", "address"), ("description", "email")]
    before = "Lit, tél 0470 12 34 56\nRue Haute 5"
    assert [f.text for f in find_in_post("Lit, tél 0470 12 34 56", "Rue Haute 5 ou a@b.be",
                                         before)] == ["a@b.be"]


# --- the form, through the node's pages ----------------------------------------------------

@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def signed_in(module_node):
    node, client = module_node
    actor = await create_actor(node, "Person", "lea", "Léa")
    user_id = await create_user(node, "lea@example.org", PASSWORD, actor_id=actor.id)
    org = await node.db.fetch_val("SELECT id FROM actors WHERE kind = 'Group'")
    await node.db.execute("INSERT INTO memberships (user_id, org_id, role) VALUES (:u, :o, "
                          "'member')", {"u": user_id, "o": org})
    page = await client.get("/login")
    resp = await client.post("/login", data={"email": "lea@example.org", "password": PASSWORD,
                                             "csrf_token": CSRF.search(page.text).group(1)})
    assert resp.status_code == 303
    return node, client


async def _post(client: httpx.AsyncClient, url: str, lang: str, fields: dict) -> httpx.Response:
    client.headers["Accept-Language"] = lang
    page = await client.get(url)
    token = CSRF.search(page.text).group(1)
    return await client.post(url, data={"csrf_token": token, **fields})


NEED_FR = {"kind": "need", "category": "housing", "title": "Un lit pour deux nuits",
           "description": "Pour une maman et son fils. Appelez le 0470 12 34 56, "
                          "on habite Rue de la Loi 16.",
           "neighbourhood": "Ixelles", "languages": ["fr"]}
NEED_NL = {"kind": "need", "category": "food", "title": "Soep voor de buren, Wetstraat 16",
           "description": "Mail naar jan.peeters@telenet.be", "neighbourhood": "Ixelles",
           "languages": ["nl"]}


@pytest.mark.asyncio(loop_scope="module")
async def test_nothing_is_published_until_the_author_confirms_then_it_is_as_written(signed_in):
    node, client = signed_in
    before = await node.db.fetch_val("SELECT COUNT(*) FROM posts")
    sent = await node.db.fetch_val("SELECT COUNT(*) FROM activities")
    resp = await _post(client, "/posts/new?kind=need", "fr", NEED_FR)
    assert resp.status_code == 200
    assert "Ceci sera public\u202f: retirez-le ou déplacez-le dans les notes privées." in resp.text
    assert "Rien n’est encore publié." in resp.text
    assert "<q>0470 12 34 56</q> (un numéro de téléphone)" in resp.text
    assert "<q>Rue de la Loi 16</q> (une adresse postale)" in resp.text
    assert 'name="publish_as_written"' in resp.text and "Publier tel quel" in resp.text
    # What was typed stays in the form, unchanged.
    assert "Appelez le 0470 12 34 56, on habite Rue de la Loi 16." in resp.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM posts") == before
    assert await node.db.fetch_val("SELECT COUNT(*) FROM activities") == sent

    resp = await _post(client, "/posts/new?kind=need", "fr",
                       {**NEED_FR, "publish_as_written": "1"})
    assert resp.status_code == 303, resp.text
    post = await node.db.fetch_one("SELECT * FROM posts ORDER BY created_at DESC LIMIT 1")
    assert post["description_md"] == NEED_FR["description"]
    assert "0470 12 34 56" in post["description_html"]
    assert await node.db.fetch_val("SELECT COUNT(*) FROM activities") > sent

    # An edit that adds nothing personal goes through without asking again ...
    edit = f"/posts/{post['id']}/edit"
    resp = await _post(client, edit, "fr", {**NEED_FR, "title": "Un lit pour trois nuits"})
    assert resp.status_code == 303
    # ... one that adds an email address asks first.
    changed = {**NEED_FR, "description": NEED_FR["description"] + " Ou lea@example.org"}
    resp = await _post(client, edit, "fr", changed)
    assert resp.status_code == 200 and "<q>lea@example.org</q> (une adresse e-mail)" in resp.text
    assert "0470 12 34 56</q>" not in resp.text
    assert await node.db.fetch_val("SELECT description_md FROM posts WHERE id = :i",
                                   {"i": post["id"]}) == NEED_FR["description"]
    resp = await _post(client, edit, "fr", {**changed, "publish_as_written": "1"})
    assert resp.status_code == 303
    assert await node.db.fetch_val("SELECT description_md FROM posts WHERE id = :i",
                                   {"i": post["id"]}) == changed["description"]


@pytest.mark.asyncio(loop_scope="module")
async def test_dutch_hints_and_plain_texts_publish_at_once(signed_in):
    node, client = signed_in
    resp = await _post(client, "/posts/new?kind=need", "nl", NEED_NL)
    assert resp.status_code == 200
    assert "Dit wordt openbaar: verwijder het of zet het in de privénotities." in resp.text
    assert "<q>Wetstraat 16</q> (een adres)" in resp.text
    assert "<q>jan.peeters@telenet.be</q> (een e-mailadres)" in resp.text
    assert "Publiceren zoals geschreven" in resp.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM posts WHERE title = :t",
                                   {"t": NEED_NL["title"]}) == 0
    plain = {**NEED_NL, "title": "Soep voor 2 gezinnen",
             "description": "Open 9-12, tot 12/03/2027, 3 kg groenten"}
    resp = await _post(client, "/posts/new?kind=need", "nl", plain)
    assert resp.status_code == 303, resp.text
    assert await node.db.fetch_val("SELECT description_md FROM posts WHERE title = :t",
                                   {"t": plain["title"]}) == plain["description"]
