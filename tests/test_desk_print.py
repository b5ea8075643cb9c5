"""The paper list as Debian's Chromium prints it (Playwright, `executable_path`, never
`playwright install`): a real node process, posts made through its forms, the page printed to
an A4 PDF whose text is extracted and compared (titles, desk references, the desk's phone, no
menus or filters), type large enough at arm's length, and the printed QR code read back to the
post's address."""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator

import httpx
import pytest
from pypdf import PdfReader

from node.posts.desk_refs import format_ref
from tests.browser import launched_chromium
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.nodes import NodeProcess, csrf_from

pytestmark = pytest.mark.e2e

HOST = "127.0.16.2"
PHONE = "02 600 54 11"
POSTS = [("need", "Lit pour deux nuits", "housing", "public"),
         ("offer", "Repas chaud le mardi", "food", "public"),
         ("need", "Aide pour les papiers", "paperwork", "local")]


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[tuple[NodeProcess, dict[str, str], dict[str, str]]]:
    """A node whose admin set the desk's phone and posted two public posts and one for this
    node only, through the forms: the node, and each title's post id and desk reference."""
    process = NodeProcess(tmp_path_factory.mktemp("desk-print"), host=HOST, org="voisins",
                          NODE_RATE_LOGIN_PER_ADDRESS="0").start()
    try:
        client = process.client
        resp = client.post("/login", data={
            "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
            "csrf_token": csrf_from(client.get("/login").text)})
        assert resp.status_code == 303, resp.text
        settings = "/admin/organisations/voisins"
        resp = client.post(settings, data={
            "csrf_token": csrf_from(client.get(settings).text), "name": "CPAS de Saint-Gilles",
            "description_fr": "Le CPAS aide.", "contact_phone": PHONE,
            "opening_hours": "Du lundi au vendredi, de 9 h à 12 h"},
            files={"avatar": ("", b"")})
        assert resp.status_code == 303, resp.text
        ids = {}
        for kind, title, category, visibility in POSTS:
            page = client.get(f"/posts/new?kind={kind}")
            resp = client.post(f"/posts/new?kind={kind}", data={
                "csrf_token": csrf_from(page.text), "kind": kind, "category": category,
                "title": title, "description": f"{title} : écrivez-nous.",
                "neighbourhood": "Saint-Gilles", "visibility": visibility,
                "proxied": "1" if kind == "need" else "", "publish_as_written": "1"})
            assert resp.status_code == 303, resp.text[-1500:]
            ids[title] = resp.headers["location"].rsplit("/", 1)[1]
        refs = {title: format_ref(process.query(
            "SELECT desk_seq FROM posts WHERE id = :i", {"i": pid})[0]["desk_seq"])
            for title, pid in ids.items()}
        yield process, ids, refs
    finally:
        process.close()


@pytest.fixture(scope="module")
def browser(node):
    with launched_chromium() as browser:  # after the node (tests/browser.py says why)
        yield browser


def test_the_printed_list_has_what_a_person_needs_and_no_menus(node, browser) -> None:
    process, ids, refs = node
    screen = httpx.get(f"{process.base}/groups/voisins/paper?lang=fr").text
    # What the screen shows and paper must not: menus, language links, filters.
    left_out = ["Se connecter", "Nederlands", "Imprimée en", "Télécharger le PDF",
                "Aller au contenu"]
    assert all(word in screen for word in left_out)
    # The site's brand is the organisation's name as its admin edited it (not NODE_ORG_NAME).
    assert re.search(r'class="brand"[^>]*>\s*CPAS de Saint-Gilles\s*<', screen)
    home = httpx.get(f"{process.base}/", headers={"Accept": "text/html"}).text
    assert "CPAS de Saint-Gilles" in home and "Voisins</" not in home

    context = browser.new_context(locale="fr-BE", base_url=process.base)
    page = context.new_page()
    page.goto("/groups/voisins/paper?lang=fr")
    pdf = PdfReader(io.BytesIO(page.pdf(format="A4", print_background=True)))
    box = pdf.pages[0].mediabox
    # A4 is 595.3 × 841.9 points; Chromium rounds the page to whole CSS pixels.
    assert float(box.width) == pytest.approx(595.3, abs=1.5)
    assert float(box.height) == pytest.approx(841.9, abs=1.5)
    # NFKC: the font's ligatures (ﬀ) as letters; split(): every space (the narrow no-break
    # space of French typography too) as one space.
    text = " ".join(" ".join(unicodedata.normalize("NFKC", p.extract_text()).split())
                    for p in pdf.pages)
    assert "CPAS de Saint-Gilles" in text and f"Téléphone : {PHONE}" in text
    for title in ("Lit pour deux nuits", "Repas chaud le mardi"):
        assert title in text and refs[title] in text
        assert (f"Pour répondre, appelez le {PHONE} et donnez la référence {refs[title]}."
                in text)
    assert "Aide pour les papiers" not in text  # this node only: never on paper
    for word in left_out:
        assert word not in text, word

    # Read at arm's length: the printed body is at least 14 pt (18.67 px), titles larger.
    page.emulate_media(media="print")
    sizes = page.evaluate("""() => [getComputedStyle(document.body).fontSize,
        getComputedStyle(document.querySelector('.paper-post h3')).fontSize,
        getComputedStyle(document.querySelector('header.top')).display]""")
    assert float(sizes[0].rstrip("px")) >= 18.6 and float(sizes[1].rstrip("px")) >= 24
    assert sizes[2] == "none"

    # The printed QR code of each post opens that post.
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    page.set_viewport_size({"width": 900, "height": 1200})
    for title in ("Lit pour deux nuits", "Repas chaud le mardi"):
        figure = page.locator(f'article[data-ref="{refs[title]}"] .paper-qr svg')
        image = Image.open(io.BytesIO(figure.screenshot(scale="device"))).convert("L")
        # A quiet zone around it, as on paper.
        framed = Image.new("L", (image.width + 40, image.height + 40), 255)
        framed.paste(image, (20, 20))
        decoded = [r.text for r in zxingcpp.read_barcodes(framed)]
        assert decoded == [f"{process.base}/posts/{ids[title]}"], (title, decoded)
    context.close()
    assert re.search(r"@media print", httpx.get(f"{process.base}/static/desk.css").text)
