"""Impact figures: the needs an organisation posted (or the whole node's), what became of them
(met, withdrawn, expired, still open), the helpers who took part and how long people waited for
a first response and for an accepted helper; in total, by month, by category and by
neighbourhood.

Counts are SQL that SQLite and PostgreSQL both run (`COUNT(DISTINCT CASE ...)`); months are
buckets between Brussels month starts computed here, since the two databases share no date
function. Medians are computed over the rows of one organisation in Python.

The public summary shows counts only, and never a group of fewer than `SMALL` needs: in a
neighbourhood with two needs a month, "1 met" points at a person."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from node.context import Node
from node.i18n import format_number
from node.posts.validation import TIMEZONE

SMALL = 3
DIMENSIONS = ("month", "category", "neighbourhood")
COUNTS = ("posted", "met", "withdrawn", "expired", "still_open", "helpers")

_AGGREGATE = """
    COUNT(DISTINCT p.id) AS posted,
    COUNT(DISTINCT CASE WHEN p.status = 'fulfilled' THEN p.id END) AS met,
    COUNT(DISTINCT CASE WHEN p.status = 'withdrawn' THEN p.id END) AS withdrawn,
    COUNT(DISTINCT CASE WHEN p.status = 'expired' THEN p.id END) AS expired,
    COUNT(DISTINCT CASE WHEN p.status IN ('open', 'in_progress') THEN p.id END) AS still_open,
    COUNT(DISTINCT r.responder_uri) AS helpers
"""
# Helpers "took part" when their response was accepted.
_FROM = """
    FROM posts p LEFT JOIN responses r ON r.post_id = p.id AND r.status = 'accepted'
    WHERE p.kind = 'need' AND p.remote = 0
"""


@dataclass
class Group:
    label: str
    posted: int = 0
    met: int = 0
    withdrawn: int = 0
    expired: int = 0
    still_open: int = 0
    helpers: int = 0
    # Seconds; None when no need of the group got a response (or an accepted helper).
    median_first_response: float | None = None
    median_accepted: float | None = None


@dataclass
class Impact:
    total: Group
    groups: dict[str, list[Group]]
    full: bool  # coordinators' figures: every group, medians
    hidden: dict[str, int] = field(default_factory=dict)  # groups left out, per dimension

    @property
    def total_shown(self) -> bool:
        return self.full or self.total.posted >= SMALL


def month_of(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).astimezone(TIMEZONE).strftime("%Y-%m")


def _month_start(year: int, month: int) -> float:
    return datetime(year, month, 1, tzinfo=TIMEZONE).timestamp()


def _month_buckets(first: float, last: float) -> tuple[str, dict[str, Any]]:
    """A CASE expression naming the Brussels month of `p.created_at`, for months first..last."""
    start = datetime.fromtimestamp(first, UTC).astimezone(TIMEZONE)
    end = month_of(last)
    year, month = start.year, start.month
    whens, params = [], {}
    while True:
        label = f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        index = len(whens)
        params[f"m{index}"], params[f"b{index}"] = label, _month_start(year, month)
        whens.append(f"WHEN p.created_at < :b{index} THEN :m{index}")
        if label >= end:
            break
    return f"CASE {' '.join(whens)} END", params


def _scope(org_uri: str | None) -> tuple[str, dict[str, Any]]:
    if org_uri is None:
        return "", {}
    return " AND p.org_uri = :org", {"org": org_uri}


async def _grouped(node: Node, expression: str, where: str,
                   params: dict[str, Any]) -> list[Group]:
    rows = await node.db.fetch_all(
        # By position: a month's CASE holds parameters, which PostgreSQL would not recognise
        # as the same expression twice.
        f"SELECT {expression} AS label, {_AGGREGATE} {_FROM} {where} GROUP BY 1 ORDER BY 1",
        params)
    return [Group(label=str(row["label"]), **{c: int(row[c]) for c in COUNTS}) for row in rows]


async def _waits(node: Node, where: str, params: dict[str, Any]) -> list[dict]:
    """One row per need: when it was posted, its groups, its first response and acceptance."""
    return [dict(row) for row in await node.db.fetch_all(
        "SELECT p.id, p.created_at, p.category, p.neighbourhood, "
        "(SELECT MIN(f.created_at) FROM responses f WHERE f.post_id = p.id) AS first_response, "
        "(SELECT MIN(a.accepted_at) FROM responses a WHERE a.post_id = p.id "
        "AND a.status = 'accepted') AS accepted "
        f"FROM posts p WHERE p.kind = 'need' AND p.remote = 0 {where}", params)]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _set_medians(group: Group, waits: list[dict]) -> None:
    group.median_first_response = _median(
        [w["first_response"] - w["created_at"] for w in waits if w["first_response"] is not None])
    group.median_accepted = _median(
        [w["accepted"] - w["created_at"] for w in waits if w["accepted"] is not None])


async def figures(node: Node, org_uri: str | None, full: bool) -> Impact:
    """The figures of one organisation's needs (`org_uri`), or of every local need (None).
    Without `full`, small groups are left out and no medians are given."""
    where, params = _scope(org_uri)
    rows = await node.db.fetch_all(f"SELECT {_AGGREGATE} {_FROM} {where}", params)
    total = Group(label="", **{c: int(rows[0][c]) for c in COUNTS})
    groups: dict[str, list[Group]] = {d: [] for d in DIMENSIONS}
    if total.posted:
        span = await node.db.fetch_one(
            f"SELECT MIN(p.created_at) AS first, MAX(p.created_at) AS last {_FROM} {where}",
            params)
        month, month_params = _month_buckets(float(span["first"]), float(span["last"]))
        groups["month"] = await _grouped(node, month, where, {**params, **month_params})
        groups["category"] = await _grouped(node, "p.category", where, params)
        groups["neighbourhood"] = await _grouped(node, "p.neighbourhood", where, params)
    impact = Impact(total=total, groups=groups, full=full)
    if full:
        waits = await _waits(node, where, params)
        _set_medians(total, waits)
        keys = {"month": lambda w: month_of(w["created_at"]),
                "category": lambda w: w["category"],
                "neighbourhood": lambda w: w["neighbourhood"]}
        for dimension, key in keys.items():
            for group in groups[dimension]:
                _set_medians(group, [w for w in waits if key(w) == group.label])
    else:
        _suppress(impact)
    return impact


def _suppress(impact: Impact) -> None:
    """Leave out groups of fewer than SMALL needs. When only one group goes, the total minus
    the others would give it back, so the next smallest goes with it."""
    for dimension, rows in impact.groups.items():
        small = [g for g in rows if g.posted < SMALL]
        kept = [g for g in rows if g.posted >= SMALL]
        if len(small) == 1 and kept:
            smallest = min(kept, key=lambda g: (g.posted, g.label))
            kept.remove(smallest)
            small.append(smallest)
        impact.groups[dimension] = kept
        impact.hidden[dimension] = len(small)
    if not impact.total_shown:
        impact.groups = {d: [] for d in DIMENSIONS}


def hours(seconds: float | None) -> str:
    """Hours with one decimal, as the CSV gives them (a dot, whatever the reader's language)."""
    return "" if seconds is None else f"{seconds / 3600:.1f}"


def hours_shown(seconds: float | None) -> str:
    """Hours with one decimal in the reader's language: "3,5" in French and Dutch."""
    return "" if seconds is None else format_number(seconds / 3600, digits=1)


def _cell(value: str) -> str:
    # A spreadsheet runs a cell that starts like a formula; neighbourhood names are typed in.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(impact: Impact) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = ["dimension", "group", *COUNTS]
    if impact.full:
        header += ["median_hours_to_first_response", "median_hours_to_accepted_helper"]
    writer.writerow(header)

    def line(dimension: str, group: Group) -> None:
        row = [dimension, _cell(group.label), *(getattr(group, c) for c in COUNTS)]
        if impact.full:
            row += [hours(group.median_first_response), hours(group.median_accepted)]
        writer.writerow(row)

    if impact.total_shown:
        line("total", Group(**{**impact.total.__dict__, "label": "all"}))
    for dimension in DIMENSIONS:
        for group in impact.groups[dimension]:
            line(dimension, group)
    return out.getvalue()


def chart(groups: list[Group], width: int = 560, bar: int = 14) -> dict[str, Any]:
    """Geometry of a horizontal bar chart (posted and met per group), for the template."""
    label_width, gap = 150, 10
    most = max((g.posted for g in groups), default=0) or 1
    scale = (width - label_width - 40) / most
    rows = []
    for index, group in enumerate(groups):
        y = index * (2 * bar + gap)
        rows.append({"group": group, "y": y, "posted_width": round(group.posted * scale, 1),
                     "met_width": round(group.met * scale, 1)})
    return {"rows": rows, "width": width, "height": max(1, len(groups) * (2 * bar + gap)),
            "bar": bar, "label_width": label_width}
