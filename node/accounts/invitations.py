"""Invitations: a coordinator or an admin of an organisation makes a link for an email
address; whoever opens it before it expires creates an account in that organisation."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from node.accounts.errors import FormError
from node.accounts.members import NewMember, create_member
from node.accounts.validation import email_problem, normalise_email
from node.actors import LocalActor, by_id
from node.context import Node
from node.db import now
from node.i18n import _, current_locale, format_date
from node.mailqueue import enqueue_email

VALID_DAYS = 14
# Who may invite whom: a coordinator brings in members, an admin also coordinators.
MAY_INVITE = {"coordinator": ("member",), "admin": ("member", "coordinator")}


@dataclass(frozen=True)
class Invitation:
    token: str
    org: LocalActor
    email: str
    role: str
    expires_at: float
    used_at: float | None

    @property
    def path(self) -> str:
        return f"/invite/{self.token}"


def roles_invitable_by(role: str) -> tuple[str, ...]:
    return MAY_INVITE.get(role, ())


async def create_invitation(
    node: Node, org: LocalActor, email: str, role: str, inviter: dict,
    days: int = VALID_DAYS,
) -> Invitation:
    email = normalise_email(email)
    errors: dict[str, str] = {}
    if problem := email_problem(email):
        errors["email"] = problem
    elif await node.db.fetch_one("SELECT id FROM users WHERE email = :e", {"e": email}):
        errors["email"] = _("This person has an account already.")
    if role not in roles_invitable_by(inviter["role"]):
        errors["role"] = _("You cannot invite someone with this role.")
    if errors:
        raise FormError(errors)
    token = secrets.token_urlsafe(24)
    created = now()
    expires = created + days * 86400
    await node.db.execute(
        "INSERT INTO invitations (token, org_id, email, role, created_by, created_at, "
        "expires_at) VALUES (:t, :o, :e, :r, :b, :c, :x)",
        {"t": token, "o": org.id, "e": email, "r": role, "b": inviter["id"], "c": created,
         "x": expires},
    )
    invitation = Invitation(token, org, email, role, expires, None)
    await send_invitation_email(node, invitation, inviter)
    return invitation


async def send_invitation_email(node: Node, invitation: Invitation, inviter: dict) -> None:
    """The link, in the inviter's language (the invited person has none yet)."""
    values = {"org": invitation.org.name, "by": inviter.get("display_name") or inviter["email"],
              "url": node.url(invitation.path), "date": format_date(invitation.expires_at)}
    await enqueue_email(node, invitation.email, _("%(by)s invites you to join %(org)s") % values,
                        _("Create your account with this link: %(url)s\n"
                          "It works once, until %(date)s.") % values + "\n",
                        locale=current_locale())


async def _from_row(node: Node, row: dict | None) -> Invitation | None:
    if row is None:
        return None
    org = await by_id(node, row["org_id"])
    if org is None:
        return None
    return Invitation(row["token"], org, row["email"], row["role"], row["expires_at"],
                      row["used_at"])


async def find_usable(node: Node, token: str) -> Invitation:
    """The invitation behind a token, if it can still be used; else FormError."""
    row = None
    if token and len(token) <= 64:
        row = await node.db.fetch_one("SELECT * FROM invitations WHERE token = :t",
                                      {"t": token})
    invitation = await _from_row(node, row)
    if invitation is None:
        raise FormError({"token": _("This invitation link is not valid. Ask your "
                                    "organisation for a new one.")})
    if invitation.used_at is not None:
        raise FormError({"token": _("This invitation has been used already. Log in instead.")})
    if invitation.expires_at < now():
        raise FormError({"token": _("This invitation has expired. Ask your organisation for "
                                    "a new one.")})
    return invitation


async def accept_invitation(node: Node, token: str, form: NewMember) -> str:
    """Creates the invited account (in the inviting organisation, with the invited role)."""
    invitation = await find_usable(node, token)
    if form.email and normalise_email(form.email) != invitation.email:
        raise FormError({"email": _("This invitation is for another email address.")})
    form = NewMember(email=invitation.email, password=form.password, confirm=form.confirm,
                     username=form.username, display_name=form.display_name,
                     locale=form.locale)
    user_id = await create_member(node, form, org=invitation.org, role=invitation.role)
    # A second submission of the same link fails on the unique email of the first account.
    await node.db.execute(
        "UPDATE invitations SET used_at = :t, used_by = :u WHERE token = :k AND used_at IS NULL",
        {"t": now(), "u": user_id, "k": token})
    return user_id


async def pending(node: Node, org: LocalActor) -> list[Invitation]:
    rows = await node.db.fetch_all(
        "SELECT * FROM invitations WHERE org_id = :o AND used_at IS NULL AND expires_at > :n "
        "ORDER BY created_at DESC", {"o": org.id, "n": now()})
    found = [await _from_row(node, r) for r in rows]
    return [i for i in found if i is not None]

