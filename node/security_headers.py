"""Security headers on every response, set in one middleware.

The site needs no JavaScript, so the Content-Security-Policy allows no script at all, styles
only from our own stylesheets (no inline `<style>` or `style=`: templates keep their CSS in
`templates/static/`), forms that post only to this node, and no framing (clickjacking).
Images may come from other servers over https (remote avatars); a node that allows plain http
(development, tests) allows http images too.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(allow_http_images: bool = False) -> str:
    images = "'self' https:" + (" http:" if allow_http_images else "")
    return "; ".join([
        "default-src 'none'",
        "style-src 'self'",
        f"img-src {images}",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def security_headers(allow_http_images: bool = False) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(allow_http_images),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    }


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response (HTML pages, JSON, static files alike), without
    replacing one a route set on purpose."""

    def __init__(self, app: ASGIApp, allow_http_images: bool = False) -> None:
        self.app = app
        self.headers = security_headers(allow_http_images)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
