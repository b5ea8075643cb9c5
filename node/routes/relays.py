"""/admin/relays: the admin subscribes the node to relays by address, sees where each
subscription stands and since when, and unsubscribes (after confirming). The domain is in
node/relays.py."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from node import relays
from node.i18n import N_, _
from node.notices import flash
from node.web_support import CsrfError, check_csrf, confirm_first, current_user, node_of, render

PAGE = "/admin/relays"

# What the admin reads when an address cannot be subscribed to (RelayError.reason).
WHY = {
    "not_a_link": N_("Paste the relay's address, starting with https://: its actor (for "
                     "example https://relay.example/actor) or its inbox (for example "
                     "https://relay.example/inbox)."),
    "local": N_("This address is this node's own."),
    "no_actor": N_("No relay answered at this address. Check it, or try again later."),
}
STATE_NAMES = {
    "pending": N_("waiting for the relay's answer"),
    "subscribed": N_("subscribed"),
    "refused": N_("refused by the relay"),
    "failed": N_("failed: the subscription could not be delivered to the relay"),
}
STYLE_NAMES = {"litepub": N_("LitePub relay (actor)"), "mastodon": N_("Mastodon relay (inbox)")}


async def _admin(request: Request) -> dict | None:
    user = await current_user(request)
    return user if user is not None and user["role"] == "admin" else None


async def _page(request: Request, error: str = "", url: str = "", status: int = 200) -> Response:
    node = node_of(request)
    await relays.delivery_failed(node)
    return await render(request, "relays.html", status=status, relays=await relays.relays(node),
                        error=error, url=url, state_names=STATE_NAMES, style_names=STYLE_NAMES)


async def relays_page(request: Request) -> Response:
    if await _admin(request) is None:
        return RedirectResponse("/login?next=/admin/relays", status_code=303)
    return await _page(request)


async def subscribe_action(request: Request) -> Response:
    if await _admin(request) is None:
        return RedirectResponse("/login?next=/admin/relays", status_code=303)
    form = await request.form()
    url = str(form.get("url", ""))[: relays.URL_MAX + 1].strip()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _page(request, str(exc), url, status=403)
    try:
        relay = await relays.subscribe(node_of(request), url, again=form.get("again") == "1")
    except relays.RelayError as exc:
        return await _page(request, _(WHY[exc.reason]), url, status=400)
    flash(request, "relay_subscribed", url=relay.url)
    return RedirectResponse(PAGE, status_code=303)


async def unsubscribe_action(request: Request) -> Response:
    if await _admin(request) is None:
        return RedirectResponse("/login?next=/admin/relays", status_code=303)
    form = await request.form()
    try:
        check_csrf(request, form)
    except CsrfError as exc:
        return await _page(request, str(exc), status=403)
    asking = await confirm_first(
        request, form, _("Unsubscribe from this relay?"),
        _("This node's public offers and needs will no longer go to the relay, and the posts "
          "it passes on will no longer come in. You can subscribe again later."),
        _("Yes, unsubscribe"), PAGE)
    if asking is not None:
        return asking
    relay_id = str(form.get("relay", ""))
    node = node_of(request)
    if relay_id.isascii() and relay_id.isdigit() and await relays.unsubscribe(node, int(relay_id)):
        flash(request, "relay_unsubscribed")
    return RedirectResponse(PAGE, status_code=303)


routes = [
    Route(PAGE, relays_page),
    Route(f"{PAGE}/subscribe", subscribe_action, methods=["POST"]),
    Route(f"{PAGE}/unsubscribe", unsubscribe_action, methods=["POST"]),
]
