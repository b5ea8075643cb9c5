"""Spotting personal details in a post's public text before it is published: phone numbers
(Belgian and international), email addresses and street addresses with a house number (French
and Dutch street words). The author is told and chooses; the text itself is never changed.

Pure functions: text in, findings out. A false alarm costs a tick in a checkbox, a miss costs
someone's address on the fediverse, yet numbers that are plainly not personal (dates, hours,
"2 beds") must stay quiet or people learn to tick without reading."""

from __future__ import annotations

import re
from dataclasses import dataclass

from node.posts.text import N_

KINDS = {
    "phone": N_("a phone number"),
    "email": N_("an email address"),
    "address": N_("a street address"),
}

# International: +32 / 0032 and the rest; the (0) Belgians often keep after +32 is allowed.
_INTERNATIONAL = (r"(?<![\w+])(?:\+|00)\d{1,3}[ .\-]?(?:\(0\)[ .\-]?)?"
                  r"\(?\d\)?(?:[ ./\-]?\(?\d\)?){5,13}(?!\w)")
# National (Belgium): a leading 0 and 9 or 10 digits in all, in groups split by one space,
# dot, slash or dash ("0470 12 34 56", "02/123.45.67").
_NATIONAL = r"(?<![\w/.\-])0\d(?:[ ./\-]?\d){7,8}(?![\w])"
_PHONE = re.compile(f"{_INTERNATIONAL}|{_NATIONAL}")
# A date written with separators looks like a number with groups: "01/02/2026 10h".
_DATE = re.compile(r"\d{1,2}([./\-])\d{1,2}\1\d{2,4}(?!\d)|\d{4}-\d{2}-\d{2}")

_EMAIL = re.compile(r"(?<![\w.+\-])[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}(?!\w)")

_FR_STREETS = (r"rue|ruelle|avenue|av\.|chauss[ée]e|ch\.|boulevard|bd|bld|place|pl\.|quai|"
               r"square|dr[èe]ve|impasse|all[ée]e|chemin|clos|galerie|parvis|rempart|sentier")
_LINK = r"(?:(?:de|du|des|la|le|les|au|aux|d'|l'|d’|l’|van|der|den|sur|en)\s*)"
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][\w'’\-]*"
# A house number, but not a quantity, an hour or an amount ("Place Flagey 3 personnes").
_NUMBER = (r"\d{1,4}(?:[A-Za-z](?![\w]))?(?:\s*(?:bte|boîte|bus)\s*\d{1,4})?(?![\w,.]?\d)"
           r"(?!\s*(?:h\b|heures?|uur|u\b|personnes?|pers\b|nuits?|nachten|euros?|€|km|m\b|"
           r"min|ans|jaar|jours?|dagen|places|plaatsen|%))")
_FR_ADDRESS = re.compile(
    rf"\b(?i:{_FR_STREETS})\s+{_LINK}*{_NAME_WORD}(?:[\s\-]+{_LINK}*{_NAME_WORD}){{0,4}}"
    rf",?\s+{_NUMBER}"
    # The French order: "12, rue Haute".
    rf"|(?<![\w.,])\d{{1,4}}[a-z]?,?\s+(?i:{_FR_STREETS})\s+{_LINK}*{_NAME_WORD}")
_NL_SUFFIXES = r"straat|laan|steenweg|plein|dreef|kaai|lei|singel|gracht|markt|weg|baan|dijk"
_NL_ADDRESS = re.compile(
    # "Wetstraat 16", "Sint-Jansplein 5"; lower case only for the unmistakable words.
    rf"(?<![\w\-])(?:[A-ZÀ-Þ][\w\-]*(?:{_NL_SUFFIXES})|[a-zà-ÿ][\w\-]*(?:straat|laan|steenweg|plein))"
    rf",?\s+{_NUMBER}")


@dataclass(frozen=True)
class Finding:
    kind: str  # phone, email or address
    field: str  # the form field it was found in
    text: str  # exactly as written

    @property
    def label(self) -> str:
        return KINDS[self.kind]


def find(text: str, field: str = "description") -> list[Finding]:
    """Every phone number, email address and street address in `text`, in order of place."""
    spans: list[tuple[int, Finding]] = []
    emails = list(_EMAIL.finditer(text))
    taken = [m.span() for m in emails]
    for m in emails:
        spans.append((m.start(), Finding("email", field, m.group())))
    for pattern in (_FR_ADDRESS, _NL_ADDRESS):
        for m in pattern.finditer(text):
            if not _overlaps(m.span(), taken):
                taken.append(m.span())
                spans.append((m.start(), Finding("address", field, m.group().strip())))
    for m in _PHONE.finditer(text):
        if _DATE.match(m.group()) or _overlaps(m.span(), taken):
            continue
        taken.append(m.span())
        spans.append((m.start(), Finding("phone", field, m.group().strip())))
    return [finding for _, finding in sorted(spans, key=lambda pair: pair[0])]


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def find_in_post(title: str, description: str, already_public: str = "") -> list[Finding]:
    """Findings in a post's public fields, leaving out what `already_public` (the text the post
    had before an edit, which its author already chose to publish) holds."""
    found = find(title, "title") + find(description, "description")
    return [f for f in found if f.text not in already_public]
