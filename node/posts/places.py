"""Neighbourhoods and approximate places. An exact address is never kept: coordinates are
rounded to about a kilometre before they are stored, so nothing finer can ever be published."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Place:
    name: str
    latitude: float
    longitude: float


# The 19 municipalities of the Brussels-Capital Region, with approximate centres.
BRUSSELS: tuple[Place, ...] = (
    Place("Anderlecht", 50.836, 4.308),
    Place("Auderghem", 50.816, 4.427),
    Place("Berchem-Sainte-Agathe", 50.864, 4.292),
    Place("Bruxelles", 50.847, 4.352),
    Place("Etterbeek", 50.836, 4.389),
    Place("Evere", 50.871, 4.402),
    Place("Forest", 50.811, 4.324),
    Place("Ganshoren", 50.871, 4.317),
    Place("Ixelles", 50.827, 4.372),
    Place("Jette", 50.877, 4.328),
    Place("Koekelberg", 50.862, 4.329),
    Place("Molenbeek-Saint-Jean", 50.855, 4.322),
    Place("Saint-Gilles", 50.827, 4.345),
    Place("Saint-Josse-ten-Noode", 50.853, 4.373),
    Place("Schaerbeek", 50.867, 4.378),
    Place("Uccle", 50.802, 4.337),
    Place("Watermael-Boitsfort", 50.800, 4.415),
    Place("Woluwe-Saint-Lambert", 50.847, 4.429),
    Place("Woluwe-Saint-Pierre", 50.832, 4.441),
)

# The Dutch name of each Brussels place whose names differ (the French name is the one stored
# and federated: choices, filters and hashtags stay stable whatever the reader's language).
# Laeken, Neder-Over-Heembeek and Haren are parts of the City of Brussels a node may list.
DUTCH_NAMES: dict[str, str] = {
    "Auderghem": "Oudergem",
    "Berchem-Sainte-Agathe": "Sint-Agatha-Berchem",
    "Bruxelles": "Brussel",
    "Forest": "Vorst",
    "Ixelles": "Elsene",
    "Molenbeek-Saint-Jean": "Sint-Jans-Molenbeek",
    "Saint-Gilles": "Sint-Gillis",
    "Saint-Josse-ten-Noode": "Sint-Joost-ten-Node",
    "Schaerbeek": "Schaarbeek",
    "Uccle": "Ukkel",
    "Watermael-Boitsfort": "Watermaal-Bosvoorde",
    "Woluwe-Saint-Lambert": "Sint-Lambrechts-Woluwe",
    "Woluwe-Saint-Pierre": "Sint-Pieters-Woluwe",
    "Laeken": "Laken",
}
FRENCH_NAMES: dict[str, str] = {dutch: french for french, dutch in DUTCH_NAMES.items()}


def local_name(name: str, locale: str) -> str:
    """A place's name in the reader's language: Dutch for Dutch readers, French otherwise (as
    English speakers in Brussels read the French names). A name written in Dutch by another
    node reads in French for French readers; names outside the table stay as written."""
    if locale == "nl":
        return DUTCH_NAMES.get(name, name)
    return FRENCH_NAMES.get(name, name)


def canonical_name(name: str) -> str:
    """The stored (French) name of a place given in either language."""
    return FRENCH_NAMES.get(name, name)


# Two decimals of a degree: about 1.1 km north-south, 0.7 km east-west at Brussels' latitude.
ROUNDING_DECIMALS = 2


def round_coordinate(value: float) -> float:
    return round(float(value), ROUNDING_DECIMALS)


def parse_places(spec: str) -> tuple[Place, ...]:
    """`Name:lat:lon;Other:lat:lon` (coordinates optional) -> places; empty -> Brussels' 19."""
    if not spec.strip():
        return BRUSSELS
    places = []
    for item in spec.split(";"):
        parts = [p.strip() for p in item.split(":")]
        if not parts[0]:
            continue
        if len(parts) == 3:
            places.append(Place(parts[0], float(parts[1]), float(parts[2])))
        else:
            places.append(Place(parts[0], float("nan"), float("nan")))
    return tuple(places) or BRUSSELS


def find(places: tuple[Place, ...], name: str) -> Place | None:
    return next((p for p in places if p.name == name), None)


def hashtag(name: str) -> str:
    """`Saint-Josse-ten-Noode` -> `SaintJosseTenNoode` (hashtags cannot hold hyphens)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.split(r"[^A-Za-z0-9]+", ascii_name)
    return "".join(w[:1].upper() + w[1:] for w in words if w)
