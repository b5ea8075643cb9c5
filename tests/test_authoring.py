"""Writing a post in several languages, and with photos, through the real pages of an
in-process node (a real database, real multipart forms) and, for what crosses the network, a
real peer on loopback with real signatures.

Languages: a post written in French and Dutch federates with `nameMap`/`contentMap`, French
first and as `name`/`content` (what Mastodon reads: tests/test_mastodon_view.py); a Dutch reader
reads Dutch, an English reader the French original with its mark; a remote post keeps every
language it came with. Photos: EXIF and GPS are gone after upload, the photo federates as an
`Image` with its size and blurhash, each bad upload is refused with a clear error and nothing
typed or uploaded is lost, a photo can be removed, remote pictures stay behind a content
warning."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from node.db import now
from node.images import media_dir
from node.posts import photos
from tests.nodes import NodeProcess, csrf_from
from tests.peers import RemotePeer
from tests.test_mastodon_view import mastodon_status
from tests.test_posts_federation import create, remote_post
from tests.test_posts_pages import NEED, csrf, login, member

AP = {"Accept": "application/activity+json"}
BASE = "http://127.0.0.1:8999"
ORG = f"{BASE}/groups/voisins"
DUTCH = {"title_nl": "Een bed voor twee nachten",
         "description_nl": "Een moeder en haar kind zoeken **een bed** voor twee nachten."}
FRENCH = {**NEED, "written_in": "fr", "title": "Un lit pour deux nuits",
          "description": "Une mère et son enfant cherchent **un lit** pour deux nuits."}
CAMERA = b"PhoneCam-Model-X"
HIDDEN = re.compile(r'name="photo_name_(\d)" value="([0-9a-f]{32}\.(?:jpg|png))"')


def jpeg_with_gps(size: tuple[int, int] = (2400, 1800)) -> bytes:
    """A JPEG as a phone writes it: camera make and a GPS position in its EXIF."""
    image = Image.new("RGB", size, (180, 90, 40))
    exif = Image.Exif()
    exif[0x010F] = CAMERA.decode()  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (50.0, 49.0, 57.0), 3: "E", 4: (4.0, 20.0, 10.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    data = out.getvalue()
    with Image.open(io.BytesIO(data)) as check:  # the test image really carries them
        assert check.getexif().get_ifd(0x8825)[2] == (50.0, 49.0, 57.0)
    assert CAMERA in data
    return data


async def send_form(client: httpx.AsyncClient, url: str, fields: dict,
                    files: dict[str, tuple[str, bytes, str]] | None = None) -> httpx.Response:
    page = await client.get(url)
    data = {"csrf_token": csrf(page), **fields}
    # Multipart, as the browser sends this form (an empty file part when no photo is chosen).
    parts = files or {"new_photo_0": ("", b"", "application/octet-stream")}
    return await client.post(url, data=data, files=parts)


async def new_need(client: httpx.AsyncClient, fields: dict, files=None) -> httpx.Response:
    return await send_form(client, "/posts/new?kind=need", {"kind": "need", **fields}, files)


def post_id(resp: httpx.Response) -> str:
    assert resp.status_code == 303, resp.text[:2000]
    return resp.headers["location"].rsplit("/", 1)[-1]


# --- several languages -------------------------------------------------------------------------

async def test_a_post_in_french_and_dutch_federates_with_language_maps(app_node) -> None:
    node, client = app_node
    await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    ident = post_id(await new_need(client, {**FRENCH, **DUTCH}))
    note = (await client.get(f"/posts/{ident}", headers=AP)).json()
    assert list(note["contentMap"]) == ["fr", "nl"] and list(note["nameMap"]) == ["fr", "nl"]
    assert note["name"] == note["nameMap"]["fr"] == "Un lit pour deux nuits"
    assert note["nameMap"]["nl"] == "Een bed voor twee nachten"
    assert note["content"] == note["contentMap"]["fr"] and "un lit" in note["content"]
    assert "een bed" in note["contentMap"]["nl"] and "un lit" not in note["contentMap"]["nl"]
    # What Mastodon makes of the Create the followers received: French text, language fr.
    activity = (await node.db.fetch_one(
        "SELECT payload FROM activities WHERE type = 'Create' AND object_uri = :u",
        {"u": note["id"]}))["payload"]
    status = mastodon_status(json.loads(activity), f"{BASE}/users/ana/followers")
    assert status["language"] == "fr" and "un lit" in status["text"]

    # A Dutch reader reads Dutch, marked as the author's translation, with its language.
    page = (await client.get(f"/posts/{ident}?lang=nl")).text
    assert '<h1 lang="nl">Een bed voor twee nachten</h1>' in page
    assert 'lang="nl"><p>Een moeder' in page
    assert "Vertaald door de auteur uit het Frans" in page
    # An English reader reads the French original, marked as such.
    page = (await client.get(f"/posts/{ident}?lang=en")).text
    assert '<h1 lang="fr">Un lit pour deux nuits</h1>' in page
    assert "Written in French" in page and "Een bed" not in page
    # Cards in lists too: the title and first words in the reader's language, with the mark.
    listing = (await client.get("/posts?lang=nl")).text
    assert f'href="/posts/{ident}" lang="nl">Een bed voor twee nachten</a>' in listing
    assert 'lang="nl">Een moeder en haar kind' in listing
    listing = (await client.get("/posts?lang=en")).text
    assert f'href="/posts/{ident}" lang="fr">Un lit pour deux nuits</a>' in listing
    assert "Written in French" in listing
    # A French reader reads the original without a mark.
    page = (await client.get(f"/posts/{ident}?lang=fr")).text
    assert '<h1 lang="fr">Un lit pour deux nuits</h1>' in page and "Écrit en" not in page

    # Editing keeps both languages in the form, folded away behind <details open>.
    form = (await client.get(f"/posts/{ident}/edit?lang=en")).text
    assert 'value="Een bed voor twee nachten"' in form and '<details class="other-languages" open' \
        in form


async def test_one_language_only_and_mistakes_in_other_languages(app_node) -> None:
    node, client = app_node
    await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    form = (await client.get("/posts/new?kind=need&lang=nl")).text
    # Someone writing in one language: the others are folded away, the language is theirs.
    assert '<details class="other-languages">' in form
    assert '<option value="nl" lang="nl" selected>' in form
    await client.get("/posts?lang=en")  # the messages below are checked in English
    ident = post_id(await new_need(client, FRENCH))
    note = (await client.get(f"/posts/{ident}", headers=AP)).json()
    assert note["contentMap"] == {"fr": note["content"]} and note["nameMap"] == {
        "fr": "Un lit pour deux nuits"}

    # A Dutch text without a Dutch title, and a "translation" into the language above.
    resp = await new_need(client, {**FRENCH, "description_nl": DUTCH["description_nl"],
                                   "title_fr": "Doublon"})
    assert resp.status_code == 400
    assert "A title is needed in this language too." in resp.text
    assert "This is the language of the text above" in resp.text
    # Nothing typed is lost, and the other languages are open to show the mistake.
    assert DUTCH["description_nl"].replace("**", "") in resp.text.replace("**", "")
    assert 'value="Un lit pour deux nuits"' in resp.text
    assert '<details class="other-languages" open' in resp.text
    assert await node.db.fetch_val("SELECT COUNT(*) FROM posts") == 1


async def test_a_remote_post_keeps_its_languages_and_hides_pictures_behind_its_warning(
        app_node, peer) -> None:
    node, client = app_node
    group, author = peer.actors["refuge"], peer.actors["other_node_member"]
    await node.db.execute(
        "INSERT INTO follows (follower_uri, followee_uri, activity_id, state, created_at) "
        "VALUES (:f, :e, :a, 'accepted', :t)",
        {"f": ORG, "e": group.uri, "a": f"{BASE}/activities/f1", "t": now()})
    note = remote_post(peer, group, author, written_in="nl", title="Soep vanavond",
                       description_html="<p>Warme soep voor 20</p>",
                       translations='{"en": {"title": "Soup tonight", '
                                    '"description_html": "<p>Hot soup for 20</p>"}}')
    note["attachment"] = [
        {"type": "Image", "mediaType": "image/jpeg", "url": f"{peer.base}/media/soup.jpg",
         "name": "A pot of soup", "width": 1200, "height": 800, "blurhash": "LEHV6nWB2yk8"},
        {"type": "Image", "mediaType": "image/png", "url": "javascript:alert(1)", "name": "x"},
        {"type": "Document", "mediaType": "application/pdf", "url": f"{peer.base}/a.pdf"}]
    note["summary"] = "Zicht op een keuken"
    assert (await peer.apost(client, author, f"{BASE}/inbox",
                             create(peer, author, note))).status_code == 202
    post = await node.db.fetch_one("SELECT * FROM posts")
    assert post["written_in"] == "nl" and '"en"' in post["translations"]
    english = (await client.get(f"/posts/{post['id']}?lang=en")).text
    assert '<h1 lang="en">Soup tonight</h1>' in english
    assert "Translated by the author from Dutch" in english
    french = (await client.get(f"/posts/{post['id']}?lang=fr")).text
    assert '<h1 lang="nl">Soep vanavond</h1>' in french and "Écrit en néerlandais" in french
    # The picture: from its origin, sized, lazy, inside the content warning; nothing else.
    warning = french.index('<details class="content-warning">')
    picture = french.index(f'src="{peer.base}/media/soup.jpg"')
    assert warning < picture < french.index("</details>", warning)
    assert 'alt="A pot of soup" width="1200" height="800" loading="lazy"' in french
    assert "javascript:" not in french and "a.pdf" not in french


@pytest.fixture
async def peer() -> AsyncIterator[RemotePeer]:
    remote = RemotePeer("127.0.14.2")
    remote.add_actor("other_node_member")
    remote.add_actor("refuge", kind="Group")
    await remote.astart()
    yield remote
    await remote.astop()


# --- photos ------------------------------------------------------------------------------------

def stored_files(node) -> set[str]:
    folder = media_dir(Path(node.settings.data_dir))
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


async def test_an_uploaded_photo_loses_its_metadata_and_federates_as_an_image(app_node) -> None:
    node, client = app_node
    await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    ident = post_id(await new_need(client, {**FRENCH, "new_alt_0": "Le lit pliant"}, {
        "new_photo_0": ("IMG_0001.jpg", jpeg_with_gps(), "image/jpeg")}))
    note = (await client.get(f"/posts/{ident}", headers=AP)).json()
    [image] = note["attachment"]
    assert image["type"] == "Image" and image["mediaType"] == "image/jpeg"
    assert image["name"] == "Le lit pliant"
    assert (image["width"], image["height"]) == (1600, 1200)  # fitted inside 1600 px
    assert re.fullmatch(r"[0-9A-Za-z#$%*+,.:;=?@\[\]^_{|}~-]{6,}", image["blurhash"])
    assert image["url"].startswith(f"{BASE}/media/")
    served = await client.get(image["url"].removeprefix(BASE))
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert "immutable" in served.headers["cache-control"]
    assert CAMERA not in served.content and b"Exif" not in served.content
    with Image.open(io.BytesIO(served.content)) as cleaned:
        assert not cleaned.getexif() and cleaned.size == (1600, 1200)
    # Shown on the post page with its description and size.
    page = (await client.get(f"/posts/{ident}")).text
    assert 'alt="Le lit pliant" width="1600" height="1200" loading="lazy"' in page


async def test_bad_photos_are_refused_clearly_and_nothing_is_lost(app_node) -> None:
    node, client = app_node
    await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    photo = jpeg_with_gps((800, 600))

    # A photo without its description: refused, the photo itself comes back kept.
    resp = await new_need(client, FRENCH, {"new_photo_0": ("a.jpg", photo, "image/jpeg")})
    assert resp.status_code == 400 and "Describe this photo" in resp.text
    assert 'value="Un lit pour deux nuits"' in resp.text
    [(slot, kept)] = HIDDEN.findall(resp.text)
    assert await node.db.fetch_val("SELECT COUNT(*) FROM posts") == 0

    # Not an image, and an oversized one: said with the file's name; the kept photo stays.
    resp = await new_need(client, {**FRENCH, f"photo_name_{slot}": kept}, {
        "new_photo_0": ("notes.txt", b"just some text", "text/plain"),
        "new_photo_1": ("huge.jpg", b"\xff\xd8" + b"\0" * (5 * 1024 * 1024 + 10),
                        "image/jpeg")})
    assert resp.status_code == 400
    assert "notes.txt: This file is not an image the node can read." in resp.text
    assert "huge.jpg: The image is too large (at most 5 MB)." in resp.text
    assert HIDDEN.findall(resp.text) == [("0", kept)]
    assert 'value="Un lit pour deux nuits"' in resp.text

    # A decompression bomb: a small file declaring a huge canvas.
    bomb = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(bomb, "PNG")
    resp = await new_need(client, FRENCH, {"new_photo_0": ("bomb.png", bomb.getvalue(),
                                                           "image/png")})
    assert resp.status_code == 400 and "bomb.png: The image has too many pixels." in resp.text

    # A fifth photo: refused with the rule, all five come back to choose from.
    files = {f"new_photo_{j}": (f"p{j}.png", _png(j), "image/png") for j in range(4)}
    alts = {f"new_alt_{j}": f"Photo {j}" for j in range(4)}
    resp = await new_need(client, {**FRENCH, **alts, "photo_name_0": kept,
                                   "photo_alt_0": "Le lit"}, files)
    assert resp.status_code == 400 and "A post has at most 4 photos" in resp.text
    shown = HIDDEN.findall(resp.text)
    assert len(shown) == 5 and shown[0] == ("0", kept)
    # Each description typed comes back with its photo.
    for j in range(4):
        assert f'value="Photo {j}"' in resp.text

    # Leaving one out publishes the four others.
    fields = {**FRENCH, "photo_remove_4": "1", "photo_alt_0": "Le lit",
              **{f"photo_name_{i}": name for i, name in shown},
              **{f"photo_alt_{i}": f"Photo {i - 1}" for i in range(1, 5)}}
    ident = post_id(await new_need(client, fields))
    note = (await client.get(f"/posts/{ident}", headers=AP)).json()
    assert [a["name"] for a in note["attachment"]] == ["Le lit", "Photo 0", "Photo 1",
                                                         "Photo 2"]
    # The photo left out was used nowhere: its file is gone.
    assert shown[4][1] not in stored_files(node)


async def test_photos_of_forms_never_sent_again_are_swept_after_a_week(app_node) -> None:
    node, client = app_node
    await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    # One photo is published, one stays in a refused form that is never sent again.
    ident = post_id(await new_need(client, {**FRENCH, "new_alt_0": "Gardée"}, {
        "new_photo_0": ("kept.png", _png(7), "image/png")}))
    resp = await new_need(client, FRENCH, {"new_photo_0": ("left.png", _png(8), "image/png")})
    assert resp.status_code == 400
    [(_, left)] = HIDDEN.findall(resp.text)
    [kept] = [a["url"].rsplit("/", 1)[-1] for a in (
        await client.get(f"/posts/{ident}", headers=AP)).json()["attachment"]]
    folder = media_dir(Path(node.settings.data_dir))
    assert await photos.sweep_abandoned(node) == []  # both are recent
    week_ago = now() - photos.ABANDONED_AFTER - 60
    for name in (kept, left):
        os.utime(folder / name, (week_ago, week_ago))
    assert await photos.sweep_abandoned(node) == [left]
    assert kept in stored_files(node) and left not in stored_files(node)


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300 + seed, 200), (seed * 40, 100, 200)).save(out, "PNG")
    return out.getvalue()


async def test_a_member_removes_a_photo_and_erasure_deletes_the_files(app_node) -> None:
    node, client = app_node
    user_id = await member(node, "ana@example.org", person="ana")
    await login(client, "ana@example.org")
    ident = post_id(await new_need(client, {**FRENCH, "new_alt_0": "Un", "new_alt_1": "Deux"}, {
        "new_photo_0": ("1.png", _png(1), "image/png"),
        "new_photo_1": ("2.png", _png(2), "image/png")}))
    form = (await client.get(f"/posts/{ident}/edit")).text
    first, second = [name for _, name in HIDDEN.findall(form)]
    assert {first, second} <= stored_files(node)
    resp = await send_form(client, f"/posts/{ident}/edit", {
        **FRENCH, "photo_name_0": first, "photo_alt_0": "Un", "photo_remove_0": "1",
        "photo_name_1": second, "photo_alt_1": "Deux, autrement dit"})
    assert resp.status_code == 303, resp.text[:2000]
    note = (await client.get(f"/posts/{ident}", headers=AP)).json()
    assert [a["name"] for a in note["attachment"]] == ["Deux, autrement dit"]
    assert first not in stored_files(node) and second in stored_files(node)

    # The member deletes their account: the post and its photo files go.
    from node.moderation.account_data import delete_account
    await delete_account(node, user_id)
    assert second not in stored_files(node)
    assert await node.db.fetch_val("SELECT COUNT(*) FROM posts") == 0


# --- two real nodes ----------------------------------------------------------------------------

@pytest.mark.e2e
def test_photos_and_languages_round_trip_between_two_nodes(tmp_path) -> None:
    """Node B follows node A's organisation; A's admin posts a need in French and Dutch with a
    phone photo; B lists it with both languages and shows the photo from A, without metadata."""
    a = NodeProcess(tmp_path / "a", host="127.0.14.3", org="quartier").start()
    b = NodeProcess(tmp_path / "b", host="127.0.14.4", org="voisins").start()
    try:
        a.login()
        b.login()
        assert b.admin_action("follow", target=a.handle).status_code == 303
        b.wait_until("SELECT 1 FROM follows WHERE followee_uri = :a AND state = 'accepted'",
                     {"a": a.org_uri})
        page = a.client.get("/posts/new?kind=need")
        resp = a.client.post("/posts/new?kind=need", data={
            "csrf_token": csrf_from(page.text), "kind": "need", **FRENCH, **DUTCH,
            "new_alt_0": "Le lit pliant"},
            files={"new_photo_0": ("IMG_0001.jpg", jpeg_with_gps(), "image/jpeg")})
        assert resp.status_code == 303, resp.text[:2000]
        [row] = b.wait_until("SELECT * FROM posts WHERE remote = 1")
        assert row["title"] == "Un lit pour deux nuits" and row["written_in"] == "fr"
        assert json.loads(row["translations"])["nl"]["title"] == "Een bed voor twee nachten"

        dutch = b.client.get(f"/posts/{row['id']}?lang=nl").text
        assert '<h1 lang="nl">Een bed voor twee nachten</h1>' in dutch
        english = b.client.get(f"/posts/{row['id']}?lang=en").text
        assert '<h1 lang="fr">Un lit pour deux nuits</h1>' in english
        assert "Written in French" in english
        # The photo: shown by B from A, with its description and size, without metadata.
        found = re.search(r'<img src="(http://127\.0\.14\.3:\d+/media/[0-9a-f]{32}\.jpg)" '
                          r'alt="Le lit pliant" width="1600" height="1200" loading="lazy" '
                          r'referrerpolicy="no-referrer">', english)
        assert found, english
        [stored] = b.query("SELECT model FROM objects WHERE uri = :u", {"u": row["uri"]})
        [attachment] = json.loads(stored["model"])["attachments"]
        assert attachment["width"] == 1600 and attachment["blurhash"]
        served = httpx.get(found.group(1))
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert CAMERA not in served.content and b"Exif" not in served.content
        with Image.open(io.BytesIO(served.content)) as image:
            assert not image.getexif()
    finally:
        a.close()
        b.close()


@pytest.mark.e2e
def test_fedify_reads_both_languages_and_the_photo(tmp_path) -> None:
    """An independent implementation (the suite's Fedify peer, which re-reads every activity
    through its own JSON-LD model) gets the name and content in French and Dutch, French first,
    and the photo as an Image with its type, size and description."""
    from tests.test_fedify_peer import FedifyPeer  # skips when Node.js or Fedify is missing

    node = NodeProcess(tmp_path / "node", host="127.0.14.5", org="voisins").start()
    peer = FedifyPeer(tmp_path, host="127.0.14.6")
    try:
        node.login()
        peer.control("follow", handle=node.handle)
        node.wait_until("SELECT 1 FROM follows WHERE follower_uri = :p AND state = 'accepted'",
                        {"p": peer.actor_uri})
        token = csrf_from(node.client.get("/posts/new?kind=need").text)
        resp = node.client.post("/posts/new?kind=need", data={
            "csrf_token": token, "kind": "need", **FRENCH, **DUTCH, "new_alt_0": "Le lit"},
            files={"new_photo_0": ("IMG_0001.jpg", jpeg_with_gps(), "image/jpeg")})
        assert resp.status_code == 303, resp.text[:2000]
        note = peer.wait_for("inbox", type="Create", actor=node.org_uri)["activity"]["object"]
        assert list(note["contentMap"]) == ["fr", "nl"]
        assert "un lit" in note["contentMap"]["fr"] and "een bed" in note["contentMap"]["nl"]
        assert note["nameMap"] == {"fr": "Un lit pour deux nuits",
                                   "nl": "Een bed voor twee nachten"}
        image = note["attachment"]
        image = image[0] if isinstance(image, list) else image
        assert image["type"] == "Image" and image["mediaType"] == "image/jpeg"
        assert (image["width"], image["height"]) == (1600, 1200) and image["name"] == "Le lit"
        assert image["url"].startswith(f"{node.base}/media/")
    finally:
        peer.close()
        node.close()
