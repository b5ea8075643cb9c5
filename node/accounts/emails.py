"""The emails about an account (reset link, sign-up confirmation, "someone tried to sign up
with your address", "your password was changed"), written in the member's language and queued
in the durable email queue (node/mailqueue.py). Without an SMTP server nothing is sent."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from node.actors import site_name
from node.context import Node
from node.i18n import N_, _, current_locale, reset_locale, set_locale
from node.mailqueue import enqueue_email


@contextlib.contextmanager
def in_locale(locale: str) -> Iterator[str]:
    """Translates in `locale` (else the current request's language) inside the block."""
    token = set_locale(locale or current_locale())
    try:
        yield current_locale()
    finally:
        reset_locale(token)


async def _values(node: Node, **extra: str) -> dict[str, str]:
    return {"site": await site_name(node), "login": node.url("/login"),
            "forgot": node.url("/password/forgot"), **extra}


async def _send(node: Node, to: str, locale: str, subject: str, body: str, **extra: str) -> None:
    """One email in the member's language: `subject` and `body` are catalogue ids (marked with
    N_ where they are written), translated here and filled with the site's links and `extra`."""
    with in_locale(locale) as lang:
        values = await _values(node, **extra)
        await enqueue_email(node, to, _(subject) % values, _(body) % values, locale=lang)


async def reset_link(node: Node, to: str, locale: str, url: str) -> None:
    await _send(
        node, to, locale, N_("Choose a new password for %(site)s"),
        N_("Someone, probably you, asked to choose a new password for your account on "
           "%(site)s.\n\nChoose it with this link (it works once, for one hour):\n%(url)s\n\n"
           "If you did not ask for it, ignore this email: your password stays as it "
           "is.\n"), url=url)


async def reset_started_by_coordinator(node: Node, to: str, locale: str, by: str) -> None:
    await _send(
        node, to, locale, N_("A password reset was started for your account on %(site)s"),
        N_("%(by)s made a link to choose a new password for your account on %(site)s, to "
           "hand it to you in person.\n\nIf you did not ask your organisation for this, "
           "tell it, and choose a new password yourself: %(forgot)s\n"), by=by)


async def password_changed(node: Node, to: str, locale: str) -> None:
    await _send(
        node, to, locale, N_("Your password on %(site)s was changed"),
        N_("The password of your account on %(site)s was just changed, and every other "
           "device was signed out.\n\nIf it was not you, choose a new password now: "
           "%(forgot)s\nand tell your organisation.\n"))


async def confirm_signup(node: Node, to: str, locale: str, url: str) -> None:
    await _send(
        node, to, locale, N_("Confirm your new account on %(site)s"),
        N_("To finish creating your account on %(site)s, open this link (it works once, "
           "for one day):\n%(url)s\n\nIf you did not sign up, ignore this email: no "
           "account is made.\n"), url=url)


async def signup_attempt_on_known_address(node: Node, to: str, locale: str) -> None:
    await _send(
        node, to, locale, N_("Someone tried to sign up on %(site)s with your address"),
        N_("Someone tried to create an account on %(site)s with this email address, which "
           "has an account already. Nothing was changed.\n\nIf it was you: log in at "
           "%(login)s\nor, if you forgot your password, choose a new one at %(forgot)s\n\n"
           "If it was not you, there is nothing to do.\n"))
