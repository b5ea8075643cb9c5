"""The web app manifest: what a phone needs to put the node on its home screen (name of the
organisation, icons, colours, start page)."""

from __future__ import annotations

from typing import Any

from node.actors import organisations
from node.context import Node
from node.i18n import current_locale

# The accent colour of templates/static/style.css (--accent) and its background (--bg).
THEME_COLOUR = "#0b5d3b"
BACKGROUND_COLOUR = "#fdfcf8"
ICONS = (192, 512)
SHORT_NAME_CHARS = 12


async def manifest(node: Node) -> dict[str, Any]:
    """The manifest in the reader's language, named after the node's first organisation as it
    is called now (its settings may have renamed it since the node was set up)."""
    orgs = await organisations(node)
    name = (orgs[0].name if orgs and orgs[0].name else "") or node.settings.org_name
    short = name if len(name) <= SHORT_NAME_CHARS else name.split()[0][:SHORT_NAME_CHARS]
    return {
        "name": name,
        "short_name": short,
        "lang": current_locale(),
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        # "any maskable": the drawing keeps to the middle, so a round mask never cuts it.
        "icons": [{"src": f"/static/icon-{size}.png", "sizes": f"{size}x{size}",
                   "type": "image/png", "purpose": "any maskable"} for size in ICONS],
    }
