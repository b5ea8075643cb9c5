"""Where the posts domain gets `_` (translate now, in the reader's locale) and `N_` (mark for
the catalogues, translate where shown). node.i18n provides them; English stays as a fallback so
the domain works on its own."""

from __future__ import annotations

try:
    from node.i18n import N_
    from node.i18n import gettext as _
except ImportError:  # pragma: no cover - only while node.i18n is absent from the tree
    def _(message: str) -> str:
        return message

    def N_(message: str) -> str:  # noqa: N802 - the name pybabel looks for
        return message

__all__ = ["_", "N_"]
