"""A member's own settings: name, language, and the categories and neighbourhoods they follow
(new posts there become notifications)."""

from __future__ import annotations

from node.accounts.errors import FormError
from node.accounts.validation import name_problem
from node.context import Node
from node.i18n import LOCALES, _
from node.posts.categories import CATEGORIES
from node.posts.places import parse_places

CATEGORY = "category"
NEIGHBOURHOOD = "neighbourhood"


def category_choices() -> list[tuple[str, str]]:
    """(key, English label) of every category; the label is translated where it is shown."""
    return [(c.key, c.label) for c in CATEGORIES]


def neighbourhood_choices(node: Node) -> list[str]:
    return [p.name for p in parse_places(node.settings.neighbourhoods)]


async def followed(node: Node, user_id: str) -> dict[str, set[str]]:
    rows = await node.db.fetch_all(
        "SELECT kind, value FROM follow_preferences WHERE user_id = :u", {"u": user_id})
    found: dict[str, set[str]] = {CATEGORY: set(), NEIGHBOURHOOD: set()}
    for row in rows:
        found.setdefault(row["kind"], set()).add(row["value"])
    return found


async def save_settings(
    node: Node, user_id: str, *, display_name: str, locale: str, categories: list[str],
    neighbourhoods: list[str],
) -> None:
    """Replaces the member's settings; refuses unknown values and changes nothing then."""
    errors: dict[str, str] = {}
    display_name = " ".join(display_name.split())
    if not display_name:
        errors["display_name"] = _("Enter the name others will see.")
    elif problem := name_problem(display_name):
        errors["display_name"] = problem
    if locale and locale not in LOCALES:
        errors["locale"] = _("Choose one of the languages offered.")
    known_categories = {key for key, _label in category_choices()}
    if not set(categories) <= known_categories:
        errors["categories"] = _("Choose categories from the list.")
    if not set(neighbourhoods) <= set(neighbourhood_choices(node)):
        errors["neighbourhoods"] = _("Choose neighbourhoods from the list.")
    if errors:
        raise FormError(errors)
    rows = [{"u": user_id, "k": CATEGORY, "v": v} for v in sorted(set(categories))]
    rows += [{"u": user_id, "k": NEIGHBOURHOOD, "v": v} for v in sorted(set(neighbourhoods))]
    async with node.db.transaction():
        await node.db.execute(
            "UPDATE users SET display_name = :n, locale = :l WHERE id = :u",
            {"n": display_name, "l": locale, "u": user_id})
        await node.db.execute(
            "UPDATE actors SET name = :n WHERE id = (SELECT actor_id FROM users WHERE id = :u)",
            {"n": display_name, "u": user_id})
        await node.db.execute("DELETE FROM follow_preferences WHERE user_id = :u",
                              {"u": user_id})
        await node.db.execute_many(
            "INSERT INTO follow_preferences (user_id, kind, value) VALUES (:u, :k, :v)", rows)
