"""The error a form shows: one message per field, already in the reader's language."""

from __future__ import annotations


class FormError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors
