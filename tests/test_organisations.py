"""Organisation profiles and several organisations on one node, through real HTTP on a served
node (uvicorn on loopback, its delivery worker running) and a real RemotePeer that follows the
organisation and checks the signature of what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from PIL import Image

from node.actors import by_username, create_actor
from node.auth import create_user
from node.context import Node
from node.follows import follow_handle
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, serve, until
from tests.databases import drop_postgres_database, make_database_url
from tests.peers import RemotePeer

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOST = "127.0.0.150"
PEER_HOST = "127.0.0.151"
SECOND_HOST = "127.0.0.152"
PASSWORD = "long enough password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
AP = {"Accept": "application/activity+json"}
GPS_IFD = 0x8825


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served(module_database):
    tmp, url = module_database
    async with serve(tmp, url, HOST) as (node, base):
        # A member, and a coordinator of another organisation of the node.
        await create_user(node, "mia@example.org", PASSWORD)
        other = await create_actor(node, "Group", "maison", "Maison de quartier")
        oscar = await create_user(node, "oscar@example.org", PASSWORD, role="coordinator")
        await node.db.execute("INSERT INTO memberships (user_id, org_id, role) VALUES "
                              "(:u, :o, 'coordinator')", {"u": oscar, "o": other.id})
        yield node, base


@contextlib.asynccontextmanager
async def signed_in(base: str, email: str,
                    password: str = PASSWORD) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, timeout=10,
                                 headers={"Accept-Language": "en"}) as client:
        page = await client.get("/login")
        resp = await client.post("/login", data={"email": email, "password": password,
                                                 "csrf_token": CSRF.search(page.text).group(1)})
        assert resp.status_code == 303, resp.text
        yield client


async def token(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text[:300]
    return CSRF.search(page.text).group(1)


def profile(**overrides: str) -> dict[str, str]:
    return {
        "name": "CPAS de Saint-Gilles",
        "description_fr": "Le CPAS aide les habitants.\n\nPermanence sociale.",
        "description_nl": "Het OCMW helpt de inwoners.",
        "description_en": "The public social welfare centre helps residents.",
        "contact_phone": "02 600 54 11", "contact_email": "Accueil@CPAS.example",
        "opening_hours": "Monday to Friday, 9:00 to 12:00",
        "desk_address": "Rue Fernand Bernier 40, 1060 Saint-Gilles",
        "website": "https://cpas.example/aide", **overrides,
    }


def jpeg_with_gps() -> bytes:
    """A photo as a phone writes it: EXIF with a camera, a date and a GPS position."""
    image = Image.new("RGB", (900, 600), (200, 60, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2026:11:30 10:00:00"  # DateTime
    exif[GPS_IFD] = {1: "N", 2: (50.0, 49.0, 48.0), 3: "E", 4: (4.0, 20.0, 30.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"home of Mme Dupont")
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)  # the test's own premise
    return data


async def post_settings(client: httpx.AsyncClient, org: str, fields: dict[str, str],
                        files: dict | None = None, places: tuple[str, ...] = ()) -> httpx.Response:
    path = f"/admin/organisations/{org}"
    data: dict[str, Any] = {"csrf_token": await token(client, path), **fields}
    if places:
        data["neighbourhoods"] = list(places)
    return await client.post(path, data=data, files=files or {"avatar": ("", b"")})


async def actor_row(node: Node, username: str) -> dict:
    return await node.db.fetch_one("SELECT * FROM actors WHERE username = :u", {"u": username})


async def test_a_member_or_a_coordinator_of_another_organisation_cannot_edit(served) -> None:
    node, base = served
    before = await actor_row(node, "voisins")
    async with httpx.AsyncClient(base_url=base) as anonymous:
        assert (await anonymous.get("/admin/organisations/voisins")).status_code == 303
    for email in ("mia@example.org", "oscar@example.org"):
        async with signed_in(base, email) as client:
            assert (await client.get("/admin/organisations/voisins")).status_code == 403
            page = await client.get("/account")
            resp = await client.post("/admin/organisations/voisins", data={
                "csrf_token": CSRF.search(page.text).group(1), **profile(name="Pwned")})
            assert resp.status_code == 403
            resp = await client.post("/admin/organisations", data={
                "csrf_token": CSRF.search(page.text).group(1), "username": "x", "name": "X"})
            assert resp.status_code in (400, 403)
    assert await actor_row(node, "voisins") == before
    assert await node.db.fetch_one("SELECT 1 FROM actors WHERE username = 'x'") is None
    # The coordinator of the other organisation edits their own.
    async with signed_in(base, "oscar@example.org") as client:
        resp = await post_settings(client, "maison", profile(name="Maison Mosaïque"))
        assert resp.status_code == 303, resp.text
    assert (await actor_row(node, "maison"))["name"] == "Maison Mosaïque"


async def test_bad_input_is_refused_with_a_clear_error_and_nothing_lost(served) -> None:
    node, base = served
    before = await actor_row(node, "voisins")
    async with signed_in(base, ADMIN_EMAIL, ADMIN_PASSWORD) as client:
        resp = await post_settings(client, "voisins", profile(website="javascript:alert(1)"))
        assert resp.status_code == 400
        assert "The website must be an address starting with https:// or http://." in resp.text
        # What was typed is still in the form.
        assert "Het OCMW helpt de inwoners." in resp.text and "02 600 54 11" in resp.text
        for files, message in [
            ({"avatar": ("cv.pdf", b"%PDF-1.4 not an image" * 10, "image/jpeg")},
             "This file is not an image the node can read."),
            ({"header": ("big.jpg", b"\xff\xd8" + b"0" * (5 * 1024 * 1024 + 10), "image/jpeg")},
             "The image is too large"),
        ]:
            resp = await post_settings(client, "voisins", profile(), files=files)
            assert resp.status_code == 400 and message in resp.text
            assert "Het OCMW helpt de inwoners." in resp.text
        # A body far beyond the limit is refused before it is read.
        resp = await post_settings(client, "voisins", profile(), files={
            "avatar": ("huge.png", b"\x89PNG" + b"0" * (11 * 1024 * 1024), "image/png")})
        assert resp.status_code == 413
        # A body of undeclared length (chunked) is refused without being read.
        async def chunks():
            yield b"--x\r\n" + b"0" * 1024
        resp = await client.post("/admin/organisations/voisins", content=chunks(),
                                 headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert resp.status_code == 411
        resp = await post_settings(client, "voisins", profile(), places=("Atlantis",))
        assert resp.status_code == 400 and "Choose neighbourhoods from the list." in resp.text
        french = await client.get("/admin/organisations/voisins?lang=fr")
        assert "Réglages de l’organisation" in french.text and "Quartiers" in french.text
    assert await actor_row(node, "voisins") == before
    # A refused form stores no image either.
    assert not list((node.settings.data_dir / "media").glob("*"))


async def test_a_second_organisation_has_its_own_handle_and_actor(served) -> None:
    node, base = served
    async with signed_in(base, ADMIN_EMAIL, ADMIN_PASSWORD) as client:
        path = "/admin/organisations"
        resp = await client.post(path, data={"csrf_token": await token(client, path),
                                             "username": "voisins", "name": "Again"})
        assert resp.status_code == 400 and "cannot be used or is taken" in resp.text
        resp = await client.post(path, data={"csrf_token": await token(client, path),
                                             "username": "epicerie", "name": "Épicerie sociale"})
        assert resp.status_code == 303
        assert resp.headers["location"] == "/admin/organisations/epicerie"
        listing = await client.get(path)
        assert "Épicerie sociale" in listing.text
        assert 'href="/admin/organisations/epicerie"' in listing.text
        host = base.split("://")[1]
        finger = await client.get("/.well-known/webfinger",
                                  params={"resource": f"acct:epicerie@{host}"})
        assert finger.status_code == 200
        self_link = [x for x in finger.json()["links"] if x.get("rel") == "self"][0]
        assert self_link["href"] == f"{base}/groups/epicerie"
        # Described in Dutch only: that text is its `summary`, and French readers see it.
        resp = await post_settings(client, "epicerie", profile(
            name="Épicerie sociale", description_fr="", description_en="",
            description_nl="Sociale kruidenier."))
        assert resp.status_code == 303
        page = await client.get("/groups/epicerie?lang=fr", headers={"Accept": "text/html"})
        assert "Sociale kruidenier." in page.text
        doc = (await client.get("/groups/epicerie", headers=AP)).json()
        assert doc["summary"] == "<p>Sociale kruidenier.</p>"
        assert doc["summaryMap"] == {"nl": "<p>Sociale kruidenier.</p>"}
        voisins = (await client.get("/groups/voisins", headers=AP)).json()
    assert doc["type"] == "Group" and doc["name"] == "Épicerie sociale"
    assert doc["inbox"] == f"{base}/groups/epicerie/inbox"
    assert doc["publicKey"]["publicKeyPem"] != voisins["publicKey"]["publicKeyPem"]


async def test_the_profile_federates_as_an_update_and_images_lose_their_metadata(served) -> None:
    node, base = served
    peer = RemotePeer(PEER_HOST)
    lena = peer.add_actor("lena")
    await peer.astart()
    try:
        org = f"{base}/groups/voisins"
        follow = {"@context": "https://www.w3.org/ns/activitystreams", "id": peer.activity_id(),
                  "type": "Follow", "actor": lena.uri, "object": org}
        resp = await asyncio.to_thread(peer.post, lena, f"{org}/inbox", follow)
        assert resp.status_code == 202, resp.text
        await asyncio.to_thread(peer.wait_for, "Accept")

        async with signed_in(base, ADMIN_EMAIL, ADMIN_PASSWORD) as client:
            resp = await post_settings(
                client, "voisins", profile(), places=("Saint-Gilles", "Forest"),
                files={"avatar": ("me.jpg", jpeg_with_gps(), "image/jpeg"),
                       "header": ("street.jpg", jpeg_with_gps(), "image/jpeg")})
            assert resp.status_code == 303, resp.text

            updates = await asyncio.to_thread(peer.wait_for, "Update")
            received = [r for r in peer.received if r.activity.get("type") == "Update"][0]
            assert received.signature_ok, received.signature_error
            group = updates[0]["object"]
            assert updates[0]["actor"] == org and group["id"] == org
            assert group["type"] == "Group" and group["name"] == "CPAS de Saint-Gilles"
            # `summary` is the HTML of the node's language (French); all three in summaryMap.
            assert group["summary"] == ("<p>Le CPAS aide les habitants.</p>"
                                        "<p>Permanence sociale.</p>")
            assert group["summaryMap"]["nl"] == "<p>Het OCMW helpt de inwoners.</p>"
            assert group["summaryMap"]["en"].startswith("<p>The public social welfare")
            fields = {a["name"]: a["value"] for a in group["attachment"]}
            assert fields["Phone"] == "02 600 54 11"
            assert fields["Email"] == "accueil@cpas.example"
            assert 'href="https://cpas.example/aide"' in fields["Website"]
            assert group["icon"]["mediaType"] == "image/jpeg"
            assert group["icon"]["url"].startswith(f"{base}/media/")

            # The avatar and the header as a peer downloads them: resized, no metadata left.
            for key, size in (("icon", (400, 400)), ("image", (1500, 500))):
                served_image = await client.get(group[key]["url"].removeprefix(base))
                assert served_image.status_code == 200
                assert served_image.headers["content-type"] == "image/jpeg"
                data = served_image.content
                image = Image.open(io.BytesIO(data))
                assert image.size == size
                assert not image.getexif() and "exif" not in image.info
                assert "comment" not in image.info and b"Exif" not in data
                assert b"PhoneMaker" not in data and b"Dupont" not in data
            assert (await client.get("/media/..%2Fnode.db")).status_code == 404

            # The organisation's page, in each reader's language.
            for lang, text, places in (
                    ("fr", "Le CPAS aide les habitants.", "Forest, Saint-Gilles"),
                    ("nl", "Het OCMW helpt de inwoners.", "Vorst, Sint-Gillis"),
                    ("en", "The public social welfare centre helps residents.",
                     "Forest, Saint-Gilles")):
                page = await client.get(f"/groups/voisins?lang={lang}",
                                        headers={"Accept": "text/html"})
                assert text in page.text and "CPAS de Saint-Gilles" in page.text
                assert "02 600 54 11" in page.text and places in page.text
                assert "Rue Fernand Bernier 40" in page.text
            assert "Het OCMW" not in (await client.get(
                "/groups/voisins?lang=en", headers={"Accept": "text/html"})).text
    finally:
        await peer.astop()
    row = await actor_row(node, "voisins")
    # Kept in the order of the node's list, whatever order the form sent.
    assert json.loads(row["neighbourhoods"]) == ["Forest", "Saint-Gilles"]


async def test_a_second_node_following_the_organisation_shows_its_new_profile(
        served, tmp_path_factory) -> None:
    node, base = served
    tmp = tmp_path_factory.mktemp("second")
    # The helpers run their own event loop: in a thread, beside this test's loop.
    url = await asyncio.to_thread(make_database_url, tmp)
    try:
        async with serve(tmp, url, SECOND_HOST) as (other, _other_base):
            org_uri = f"{base}/groups/voisins"
            follower = (await other.db.fetch_one(
                "SELECT * FROM actors WHERE kind = 'Group'"))["username"]
            group = await by_username(other, follower, "Group")
            await follow_handle(other, group, f"@voisins@{base.split('://')[1]}")
            await until(lambda: node.db.fetch_one(
                "SELECT 1 FROM follows WHERE followee_uri = :o AND state = 'accepted'",
                {"o": org_uri}))
            async with signed_in(base, ADMIN_EMAIL, ADMIN_PASSWORD) as client:
                resp = await post_settings(
                    client, "voisins", profile(name="CPAS — accueil social"),
                    files={"avatar": ("me.png", png_logo(), "image/png")})
                assert resp.status_code == 303, resp.text
            row = await until(lambda: other.db.fetch_one(
                "SELECT * FROM remote_actors WHERE uri = :u AND name = :n",
                {"u": org_uri, "n": "CPAS — accueil social"}))
            assert row["summary"].startswith("<p>Le CPAS aide les habitants.</p>")
            assert row["icon_url"].startswith(f"{base}/media/") and row["icon_url"].endswith(
                ".png")
    finally:
        if url.startswith("postgresql"):
            await asyncio.to_thread(drop_postgres_database, url)


def png_logo() -> bytes:
    """A logo with transparency: it stays a PNG (a JPEG has no alpha)."""
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    image.paste((20, 120, 200, 255), (50, 50, 250, 250))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
