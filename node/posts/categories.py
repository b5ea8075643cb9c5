"""The fixed list of categories of offers and needs, with their ValueFlows action and hashtag."""

from __future__ import annotations

from dataclasses import dataclass

from node.posts.text import N_


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    # ValueFlows: goods handed over are a `transfer`, help given is a `deliverService`.
    action: str
    hashtag: str


CATEGORIES: tuple[Category, ...] = (
    Category("housing", N_("Bed or housing"), "deliverService", "housing"),
    Category("shower", N_("Shower"), "deliverService", "shower"),
    Category("food", N_("Meal or food"), "transfer", "food"),
    Category("clothes", N_("Clothes"), "transfer", "clothes"),
    Category("paperwork", N_("Administrative help"), "deliverService", "paperwork"),
    Category("company", N_("Conversation or company"), "deliverService", "company"),
    Category("moving", N_("Help moving"), "deliverService", "moving"),
    Category("transport", N_("Transport"), "deliverService", "transport"),
    Category("childcare", N_("Childcare"), "deliverService", "childcare"),
    Category("language", N_("Language help"), "deliverService", "languagehelp"),
    Category("other", N_("Other"), "deliverService", "mutualaid"),
)

BY_KEY = {c.key: c for c in CATEGORIES}
BY_HASHTAG = {c.hashtag: c for c in CATEGORIES}


def get(key: str) -> Category | None:
    return BY_KEY.get(key)
