"""The paper list of an organisation as a PDF (fpdf2): A4, type large enough to read at arm's
length, each post with its desk reference, dates, description, how to answer through the desk
and the QR code of its address. The texts are in the reader's language (node/i18n's locale of
the request, carried into the worker thread with the context)."""

from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from node.actors import LocalActor
from node.i18n import _, current_locale, format_date
from node.posts import categories
from node.posts.places import local_name

# A font with the glyphs of every language of the node (’, narrow no-break space, Cyrillic,
# Turkish…): Debian's DejaVu (fonts-dejavu-core, also pulled by chromium). Without it the PDF
# falls back to the PDF core font, whose texts are limited to Latin-1.
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts"))
BODY = 13  # points: arm's length on A4
TITLE = 17
REF = 20
QR_MM = 34
MAX_DESCRIPTION = 700


@dataclass(frozen=True)
class Desk:
    """How to answer through the organisation's desk."""
    name: str
    phone: str
    hours: str
    address: str


def desk_of(org: LocalActor) -> Desk:
    return Desk(org.name, org.contact_phone, org.opening_hours, org.desk_address)


class RecentPdfs:
    """The last PDFs drawn, by everything they were drawn from (the organisation's contact,
    the posts and their last change, the language, the day): the paper list is public, and
    drawing a long one costs a second or two of CPU, so a reload or a second person printing
    the same list gets the same bytes."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._pdfs: OrderedDict[tuple, bytes] = OrderedDict()

    def get(self, key: tuple) -> bytes | None:
        if key in self._pdfs:
            self._pdfs.move_to_end(key)
        return self._pdfs.get(key)

    def put(self, key: tuple, pdf: bytes) -> None:
        self._pdfs[key] = pdf
        self._pdfs.move_to_end(key)
        while len(self._pdfs) > self.size:
            self._pdfs.popitem(last=False)


def _font_files() -> tuple[Path, Path] | None:
    for folder in FONT_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


class _Sheet(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4", unit="mm")
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=15)
        fonts = _font_files()
        if fonts:
            self.add_font("body", "", str(fonts[0]))
            self.add_font("body", "B", str(fonts[1]))
            self.body_font = "body"
            self.has_unicode = True
        else:
            self.body_font = "helvetica"
            self.has_unicode = False

    def text_of(self, value: str) -> str:
        if self.has_unicode:
            return value
        value = value.replace("\u2019", "'").replace("\u202f", " ").replace("\u2026", "...")
        return value.encode("latin-1", "replace").decode("latin-1")

    def write_block(self, text: str, size: int, bold: bool = False, width: float = 0) -> None:
        self.set_font(self.body_font, "B" if bold else "", size)
        self.multi_cell(width, size * 0.5, self.text_of(text), new_x="LMARGIN", new_y="NEXT")


def how_to_answer(desk: Desk, ref: str) -> str:
    if desk.phone:
        text = _("To answer, call %(phone)s and give the reference %(ref)s.") % {
            "phone": desk.phone, "ref": ref}
    else:
        text = _("To answer, come to the desk of %(org)s and give the reference %(ref)s.") % {
            "org": desk.name, "ref": ref}
    return text


def dates_of(post: dict) -> str:
    parts = []
    if post["starts_at"]:
        parts.append(_("From %(date)s") % {"date": format_date(post["starts_at"], "long")})
    if post["ends_at"]:
        parts.append(_("until %(date)s") % {"date": format_date(post["ends_at"], "long")})
    return " ".join(parts)


def build(desk: Desk, posts: list[dict], qr_pngs: dict[str, bytes], printed_on: float) -> bytes:
    """The whole list as PDF bytes; `qr_pngs` maps each post's id to its QR code image."""
    pdf = _Sheet()
    pdf.set_title(desk.name)
    pdf.set_creator(desk.name)
    pdf.add_page()
    pdf.write_block(desk.name, 22, bold=True)
    pdf.write_block(_("Offers and needs, printed on %(date)s") % {
        "date": format_date(printed_on, "long")}, BODY)
    contact = [line for line in (
        _("Phone: %(phone)s") % {"phone": desk.phone} if desk.phone else "",
        _("Opening hours: %(hours)s") % {"hours": desk.hours} if desk.hours else "",
        _("Address: %(address)s") % {"address": desk.address} if desk.address else "",
    ) if line]
    for line in contact:
        pdf.write_block(line, BODY, bold=True)
    pdf.ln(4)
    if not posts:
        pdf.write_block(_("No open offer or need matches this list."), BODY)
    text_width = pdf.epw - QR_MM - 5
    for post in posts:
        if pdf.will_page_break(70):
            pdf.add_page()
        top, first_page = pdf.get_y(), pdf.page
        pdf.line(pdf.l_margin, top, pdf.l_margin + pdf.epw, top)
        pdf.ln(2)
        kind = _("Offer") if post["kind"] == "offer" else _("Need")
        pdf.write_block(f"{post['ref']} · {kind}", REF, bold=True, width=text_width)
        pdf.write_block(post["title"], TITLE, bold=True, width=text_width)
        category = categories.get(post["category"])
        meta = " · ".join(v for v in (_(category.label) if category else "",
                                      local_name(post["neighbourhood"], current_locale()),
                                      dates_of(post)) if v)
        pdf.write_block(meta, BODY, width=text_width)
        description = post["text"]
        if len(description) > MAX_DESCRIPTION:
            description = description[:MAX_DESCRIPTION].rsplit(" ", 1)[0] + " …"
        if description:
            pdf.write_block(description, BODY, width=text_width)
        pdf.write_block(how_to_answer(desk, post["ref"]), BODY, bold=True, width=text_width)
        bottom = pdf.get_y()
        if post["id"] in qr_pngs and pdf.page == first_page:
            pdf.image(io.BytesIO(qr_pngs[post["id"]]), x=pdf.l_margin + text_width + 5, y=top + 3,
                      w=QR_MM, h=QR_MM)
            bottom = max(bottom, top + QR_MM + 5)
        pdf.set_y(bottom + 4)
    return bytes(pdf.output())
