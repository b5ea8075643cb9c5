"""Distances between neighbourhoods and posts, on the rounded coordinates only (node/posts/
places.py rounds them to about a kilometre before anything is stored).

Within a city, a flat map is exact enough: a degree of latitude is 111.2 km, a degree of
longitude that times the cosine of the latitude. The same arithmetic runs in SQL on both
databases (no trigonometry in SQLite), with the cosine computed here once per query."""

from __future__ import annotations

import math
from typing import Any

from node.posts import places

KM_PER_DEGREE = 111.2
# The distances a reader may choose on the network view, in kilometres.
CHOICES_KM = (1, 2, 5, 10, 20)
# A post that names no neighbourhood is named after the nearest one within this distance.
NAMING_RADIUS_KM = 1.5


def _finite(place: places.Place) -> bool:
    return math.isfinite(place.latitude) and math.isfinite(place.longitude)


def km_between(lat_a: float, lon_a: float, lat_b: float, lon_b: float) -> float:
    k = math.cos(math.radians((lat_a + lat_b) / 2))
    return KM_PER_DEGREE * math.hypot(lat_a - lat_b, (lon_a - lon_b) * k)


def centre(known: tuple[places.Place, ...], name: str) -> tuple[float, float] | None:
    """The rounded centre of a neighbourhood of the list, when the list gives one."""
    place = places.find(known, name)
    if place is None or not _finite(place):
        return None
    return places.round_coordinate(place.latitude), places.round_coordinate(place.longitude)


def within_clause(lat: float, lon: float, km: float) -> tuple[str, dict[str, float]]:
    """SQL over `posts` (and its values): posts whose rounded place lies within `km` of the
    point. Posts without coordinates are left out: nobody can say how far they are."""
    lat, lon = places.round_coordinate(lat), places.round_coordinate(lon)
    values = {"near_lat": lat, "near_lon": lon, "near_k": math.cos(math.radians(lat)),
              "near_r2": (km / KM_PER_DEGREE) ** 2}
    return ("(latitude IS NOT NULL AND longitude IS NOT NULL AND "
            "(latitude - :near_lat) * (latitude - :near_lat) + "
            "(longitude - :near_lon) * :near_k * (longitude - :near_lon) * :near_k "
            "<= :near_r2)", values)


def placed(fields: dict[str, Any], known: tuple[places.Place, ...]) -> dict[str, Any]:
    """A remote post's place completed from the neighbourhood list: the stored name of a place
    written in the other language ("Vorst" is Forest), coordinates from a known neighbourhood's
    name, or the name of the nearest neighbourhood from coordinates. Other servers often give
    only one of the two; filters need both."""
    lat, lon = fields.get("latitude"), fields.get("longitude")
    name = places.canonical_name(fields.get("neighbourhood") or "")
    fields = {**fields, "neighbourhood": name}
    if (lat is None or lon is None) and name:
        found = centre(known, name)
        if found is not None:
            return {**fields, "latitude": found[0], "longitude": found[1]}
    if lat is not None and lon is not None and not name:
        nearest = min((p for p in known if _finite(p)), default=None,
                      key=lambda p: km_between(lat, lon, p.latitude, p.longitude))
        if nearest is not None and km_between(
                lat, lon, nearest.latitude, nearest.longitude) <= NAMING_RADIUS_KM:
            return {**fields, "neighbourhood": nearest.name}
    return fields
