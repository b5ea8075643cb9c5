"""Desk references: the short name of a post at its organisation's desk ("A12"), easy to say
on the phone and to write on paper. A post keeps its number for good (stored in
posts.desk_seq, given once at creation, migration 23); the letters only make it shorter to
say: 99 numbers per letter, A1…A99, B1…, and letters that are not mistaken for digits or for
each other when spoken (no I, O or Q)."""

from __future__ import annotations

import re

from node.context import Node

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
PER_LETTER = 99
_REF = re.compile(r"^\s*([A-Za-z]{1,3})\s*[-.]?\s*(\d{1,2})\s*$")


def format_ref(seq: int | None) -> str:
    """1 -> "A1", 99 -> "A99", 100 -> "B1"; after Z99 come two letters (AA1)."""
    if not seq or seq < 1:
        return ""
    block, number = divmod(seq - 1, PER_LETTER)
    letters = ""
    block += 1  # bijective base: A..Z, then AA..
    while block:
        block, digit = divmod(block - 1, len(LETTERS))
        letters = LETTERS[digit] + letters
    return f"{letters}{number + 1}"


def parse_ref(text: str) -> int | None:
    """The number behind a reference as typed or heard ("a12", "A-12", "A 12"), else None."""
    match = _REF.match(text or "")
    if not match:
        return None
    letters, number = match.group(1).upper(), int(match.group(2))
    if not 1 <= number <= PER_LETTER or any(c not in LETTERS for c in letters):
        return None
    block = 0
    for c in letters:
        block = block * len(LETTERS) + LETTERS.index(c) + 1
    return (block - 1) * PER_LETTER + number


async def assign(node: Node, post_id: str, org_uri: str) -> int:
    """Gives the post its organisation's next number (call it in the post's transaction)."""
    seq = await node.db.fetch_val(
        "INSERT INTO desk_counters (org_uri, last) VALUES (:o, 1) ON CONFLICT (org_uri) "
        "DO UPDATE SET last = desk_counters.last + 1 RETURNING last", {"o": org_uri})
    await node.db.execute("UPDATE posts SET desk_seq = :s WHERE id = :i",
                          {"s": seq, "i": post_id})
    return int(seq)
