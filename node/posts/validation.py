"""Checking what a member typed into the offer / need form. Every problem names its field; a
form with any problem stores nothing."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from node.i18n import current_locale
from node.posts import categories, places
from node.posts.languages import WRITTEN
from node.posts.text import _

KINDS = ("offer", "need")
VISIBILITIES = ("public", "followers", "local")
UNITS = ("one", "night", "person", "meal", "hour")
URGENCIES = (0, 1, 2, 3)  # low, normal, high, urgent
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
TITLE_MAX = 120
DESCRIPTION_MAX = 5000
NOTES_MAX = 5000
CAPACITY_MAX = 1000
MAX_LANGUAGES = 8
# Dates typed in the form are the node's local time.
TIMEZONE = ZoneInfo("Europe/Brussels")


class PostError(ValueError):
    """What is wrong with a form, field by field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class PostFields:
    kind: str
    category: str
    title: str
    description_md: str
    neighbourhood: str
    latitude: float | None
    longitude: float | None
    starts_at: float | None
    ends_at: float | None
    capacity: int | None
    unit: str
    urgency: int
    languages: list[str] = field(default_factory=list)
    visibility: str = "public"
    proxied: bool = False
    beneficiary_notes: str = ""
    # The language of title and description, and the same text in other languages
    # ({"nl": (title, description_md)}): node/posts/languages.py.
    written_in: str = ""
    translations: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The photos the post ends up with (node/posts/photos.py); None leaves them as they are.
    photos: list[Any] | None = None


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _parse_when(raw: str, end_of_day: bool) -> float:
    """`2026-12-01` or `2026-12-01T18:00` in Brussels time -> a timestamp."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        day = datetime.fromisoformat(raw).date()
        moment = datetime.combine(day, time(23, 59) if end_of_day else time(0, 0))
    else:
        moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=TIMEZONE)
    return moment.timestamp()


def _coordinate(raw: str, low: float, high: float) -> float:
    value = float(raw)
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(raw)
    return value


def validate(
    form: Mapping[str, Any], languages: Sequence[str], kind: str, *,
    neighbourhoods: tuple[places.Place, ...], now: float, need_expiry_days: int,
    may_proxy: bool,
) -> PostFields:
    errors: dict[str, str] = {}
    if kind not in KINDS:
        errors["kind"] = _("Choose an offer or a need.")
    category = _text(form, "category")
    if categories.get(category) is None:
        errors["category"] = _("Choose a category from the list.")
    title = _text(form, "title")
    if not title:
        errors["title"] = _("A title is needed.")
    elif len(title) > TITLE_MAX:
        errors["title"] = _("The title holds at most %(n)d characters.") % {"n": TITLE_MAX}
    description = _text(form, "description")
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = _("The description holds at most %(n)d characters.") % {
            "n": DESCRIPTION_MAX}
    neighbourhood = _text(form, "neighbourhood")
    place = places.find(neighbourhoods, neighbourhood)
    if place is None:
        errors["neighbourhood"] = _("Choose a neighbourhood from the list.")
    latitude = longitude = None
    lat_raw, lon_raw = _text(form, "latitude"), _text(form, "longitude")
    if lat_raw or lon_raw:
        try:
            latitude = _coordinate(lat_raw, -90, 90)
            longitude = _coordinate(lon_raw, -180, 180)
        except ValueError:
            errors["latitude"] = _("Give both latitude and longitude as decimal degrees, "
                                   "or leave both empty.")
    elif place is not None and math.isfinite(place.latitude):
        latitude, longitude = place.latitude, place.longitude
    if latitude is not None and longitude is not None:
        # Rounded here, before anything is stored: an exact address never reaches the database.
        latitude = places.round_coordinate(latitude)
        longitude = places.round_coordinate(longitude)
    starts_at = ends_at = None
    try:
        raw = _text(form, "starts_at")
        starts_at = _parse_when(raw, end_of_day=False) if raw else None
    except ValueError:
        errors["starts_at"] = _("Give the start as a date (YYYY-MM-DD).")
    try:
        raw = _text(form, "ends_at")
        ends_at = _parse_when(raw, end_of_day=True) if raw else None
    except ValueError:
        errors["ends_at"] = _("Give the end as a date (YYYY-MM-DD).")
    if ends_at is not None and ends_at <= now:
        errors["ends_at"] = _("The end date is in the past.")
    elif ends_at is not None and starts_at is not None and ends_at < starts_at:
        errors["ends_at"] = _("The end date comes before the start date.")
    if kind == "need" and ends_at is None and "ends_at" not in errors:
        ends_at = now + timedelta(days=need_expiry_days).total_seconds()
    capacity = None
    raw = _text(form, "capacity")
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= CAPACITY_MAX:
            errors["capacity"] = _("The capacity is a whole number from 1 to %(n)d.") % {
                "n": CAPACITY_MAX}
        else:
            capacity = int(raw)
    unit = _text(form, "unit") or "one"
    if unit not in UNITS:
        errors["unit"] = _("Choose a unit from the list.")
    raw = _text(form, "urgency") or "1"
    urgency = int(raw) if raw.isdigit() and int(raw) in URGENCIES else -1
    if urgency < 0:
        errors["urgency"] = _("Choose an urgency from the list.")
    langs = [code.strip().lower() for code in languages if code.strip()]
    if len(langs) > MAX_LANGUAGES or not all(LANGUAGE.match(c) for c in langs):
        errors["languages"] = _("Choose languages from the list.")
    visibility = _text(form, "visibility") or "public"
    if visibility not in VISIBILITIES:
        errors["visibility"] = _("Choose who can see the post.")
    proxied = _text(form, "proxied") in ("1", "on", "yes")
    notes = _text(form, "beneficiary_notes")
    if (proxied or notes) and not may_proxy:
        errors["proxied"] = _("Only coordinators post needs on someone's behalf.")
    elif proxied and kind != "need":
        errors["proxied"] = _("Only needs are posted on someone's behalf.")
    if len(notes) > NOTES_MAX:
        errors["beneficiary_notes"] = _("The private notes hold at most %(n)d characters.") % {
            "n": NOTES_MAX}
    written_in, translations = _languages_written(form, langs, errors)
    if errors:
        raise PostError(errors)
    return PostFields(
        kind=kind, category=category, title=title, description_md=description,
        neighbourhood=neighbourhood, latitude=latitude, longitude=longitude,
        starts_at=starts_at, ends_at=ends_at, capacity=capacity, unit=unit, urgency=urgency,
        languages=list(dict.fromkeys(langs)), visibility=visibility, proxied=proxied,
        beneficiary_notes=notes if proxied else "",
        written_in=written_in, translations=translations,
    )


def _languages_written(form: Mapping[str, Any], spoken: Sequence[str],
                       errors: dict[str, str]) -> tuple[str, dict[str, tuple[str, str]]]:
    """The language of the main text and the other languages the author wrote it in; a language
    left empty is simply not written."""
    # A form that does not say (an older page, a script) is taken to be written in the first
    # language its author speaks, as before languages were asked, else the reader's.
    written_in = _text(form, "written_in") or next(
        (code for code in spoken if code in WRITTEN), current_locale())
    if written_in not in WRITTEN:
        errors["written_in"] = _("Choose the language you wrote in from the list.")
        return "", {}
    translations = {}
    for code in WRITTEN:
        title, description = _text(form, f"title_{code}"), _text(form, f"description_{code}")
        if not (title or description):
            continue
        if code == written_in:
            errors[f"title_{code}"] = _("This is the language of the text above: write it "
                                        "there, or choose another language.")
        elif not title:
            errors[f"title_{code}"] = _("A title is needed in this language too.")
        elif len(title) > TITLE_MAX:
            errors[f"title_{code}"] = _("The title holds at most %(n)d characters.") % {
                "n": TITLE_MAX}
        elif len(description) > DESCRIPTION_MAX:
            errors[f"description_{code}"] = _(
                "The description holds at most %(n)d characters.") % {"n": DESCRIPTION_MAX}
        else:
            translations[code] = (title, description)
    return written_in, translations
