"""The emails about an account (reset link, sign-up confirmation, "someone tried to sign up
with your address", "your password was changed"), written in the member's language and queued
in the durable email queue (node/mailqueue.py). Without an SMTP server nothing is sent."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from node.context import Node
from node.i18n import _, current_locale, reset_locale, set_locale
from node.mailqueue import enqueue_email


@contextlib.contextmanager
def in_locale(locale: str) -> Iterator[str]:
    """Translates in `locale` (else the current request's language) inside the block."""
    token = set_locale(locale or current_locale())
    try:
        yield current_locale()
    finally:
        reset_locale(token)


def _values(node: Node, **extra: str) -> dict[str, str]:
    return {"site": node.settings.org_name, "login": node.url("/login"),
            "forgot": node.url("/password/forgot"), **extra}


async def reset_link(node: Node, to: str, locale: str, url: str) -> None:
    with in_locale(locale) as lang:
        values = _values(node, url=url)
        await enqueue_email(
            node, to, _("Choose a new password for %(site)s") % values,
            _("Someone, probably you, asked to choose a new password for your account on "
              "%(site)s.\n\nChoose it with this link (it works once, for one hour):\n%(url)s\n\n"
              "If you did not ask for it, ignore this email: your password stays as it "
              "is.\n") % values, locale=lang)


async def reset_started_by_coordinator(node: Node, to: str, locale: str, by: str) -> None:
    with in_locale(locale) as lang:
        values = _values(node, by=by)
        await enqueue_email(
            node, to, _("A password reset was started for your account on %(site)s") % values,
            _("%(by)s made a link to choose a new password for your account on %(site)s, to "
              "hand it to you in person.\n\nIf you did not ask your organisation for this, "
              "tell it, and choose a new password yourself: %(forgot)s\n") % values,
            locale=lang)


async def password_changed(node: Node, to: str, locale: str) -> None:
    with in_locale(locale) as lang:
        values = _values(node)
        await enqueue_email(
            node, to, _("Your password on %(site)s was changed") % values,
            _("The password of your account on %(site)s was just changed, and every other "
              "device was signed out.\n\nIf it was not you, choose a new password now: "
              "%(forgot)s\nand tell your organisation.\n") % values, locale=lang)


async def confirm_signup(node: Node, to: str, locale: str, url: str) -> None:
    with in_locale(locale) as lang:
        values = _values(node, url=url)
        await enqueue_email(
            node, to, _("Confirm your new account on %(site)s") % values,
            _("To finish creating your account on %(site)s, open this link (it works once, "
              "for one day):\n%(url)s\n\nIf you did not sign up, ignore this email: no "
              "account is made.\n") % values, locale=lang)


async def signup_attempt_on_known_address(node: Node, to: str, locale: str) -> None:
    with in_locale(locale) as lang:
        values = _values(node)
        await enqueue_email(
            node, to, _("Someone tried to sign up on %(site)s with your address") % values,
            _("Someone tried to create an account on %(site)s with this email address, which "
              "has an account already. Nothing was changed.\n\nIf it was you: log in at "
              "%(login)s\nor, if you forgot your password, choose a new one at %(forgot)s\n\n"
              "If it was not you, there is nothing to do.\n") % values, locale=lang)
