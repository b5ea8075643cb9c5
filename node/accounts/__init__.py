"""Members' accounts: sign-up, invitations by an organisation, roles, and personal settings.

Everything here validates first and writes after, in one transaction, so that a refused form
stores nothing. Error messages are translated in the request's language (node.i18n).
"""
