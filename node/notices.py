"""Notices ("Your settings are saved.") shown once on the next page.

A notice is a key of the fixed set below, kept in the reader's server-side session by the
request that did the thing, and shown, translated into the reader's language, by the next page
rendered for them. Nothing from the query string or a form ever becomes a notice, so a link
cannot make the site say something in its own voice. Parameters (a domain, a handle) are the
server's own values, escaped like any text.

Add a key here when a new action needs a notice (with its French and Dutch translations).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from node.i18n import N_, gettext

NOTICES: dict[str, str] = {
    # accounts
    "welcome": N_("Welcome! Your account is ready."),
    "settings_saved": N_("Your settings are saved."),
    "notification_choices_saved": N_("Your choices are saved."),
    "role_changed": N_("The role is changed."),
    "password_changed": N_("Your password is changed. You are signed out everywhere else."),
    "password_reset_done": N_("Your new password is set, and every device was signed out. "
                              "Log in with it."),
    "signed_out_everywhere": N_("You are signed out on every device, this one included."),
    "account_deleted": N_("Your account is deleted."),
    # posts
    "published": N_("Published."),
    "saved": N_("Saved."),
    "status_changed": N_("Status changed."),
    "response_accepted": N_("Response accepted."),
    "response_declined": N_("Response declined."),
    "acceptance_undone": N_("Acceptance undone."),
    # the organisation's federation admin
    "follow_sent": N_("Follow request sent to %(handle)s."),
    "unfollowed": N_("Unfollowed."),
    "already_following": N_("You already follow %(handle)s."),
    "follow_accepted": N_("Follow request accepted."),
    "follow_refused": N_("Follow refused."),
    "note_published": N_("Published %(id)s."),
    "note_deleted": N_("Deleted."),
    # relays (node/routes/relays.py)
    "relay_subscribed": N_("Subscription sent to the relay %(url)s."),
    "relay_unsubscribed": N_("Unsubscribed from the relay."),
    # moderation
    "domain_blocked": N_("%(domain)s is blocked: no delivery, no fetch, its activities are "
                         "refused."),
    "domain_unblocked": N_("Domain unblocked."),
    "actor_blocked": N_("%(actor)s is blocked on this node."),
    "actor_unblocked": N_("Account unblocked."),
    "report_closed": N_("Report closed."),
    "report_forwarded": N_("Report forwarded to the account's server."),
    "post_withdrawn": N_("Post withdrawn, and a Delete was sent to those who had it."),
    "post_hidden": N_("Post hidden on this node."),
    "post_removed": N_("Post removed, and a Delete was sent to the author's followers."),
    "account_suspended": N_("Account suspended: it is signed out and cannot act."),
    "suspension_lifted": N_("Suspension lifted."),
}
SESSION_KEY = "notice"


def flash(request: Request, key: str, **params: Any) -> None:
    """Shows the notice `key` on the next page this reader sees."""
    if key not in NOTICES:
        raise KeyError(f"unknown notice {key!r}: add it to node.notices.NOTICES")
    request.session[SESSION_KEY] = [key, {k: str(v)[:300] for k, v in params.items()}]


def take(request: Request) -> str | None:
    """The pending notice in the reader's language (and forgets it), or None."""
    if SESSION_KEY not in request.session:
        return None
    stored = request.session.pop(SESSION_KEY)
    if not (isinstance(stored, list) and len(stored) == 2 and stored[0] in NOTICES
            and isinstance(stored[1], dict)):
        return None
    text = gettext(NOTICES[stored[0]])
    try:
        return text % stored[1] if stored[1] else text
    except (KeyError, ValueError, TypeError):
        return text
