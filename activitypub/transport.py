"""Outgoing HTTP: signed GETs and POSTs over one pooled httpx client, with the limits a public
server needs (address checks, redirects, timeouts, bounded reads)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from activitypub.signatures import SigningKey, sign_request
from activitypub.vocab import ACTIVITY_JSON, LD_JSON

USER_AGENT = "entraide-node/0.1 (+ActivityPub)"
ACCEPT = f"{ACTIVITY_JSON}, {LD_JSON}"
MAX_REDIRECTS = 3


class FetchError(Exception):
    """A remote resource could not be fetched; the message says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise FetchError(f"{self.url} did not answer JSON") from exc


class Transport:
    def __init__(
        self,
        *,
        allow_private: bool,
        allow_http: bool,
        timeout: float = 10.0,
        max_bytes: int = 1024 * 1024,
    ) -> None:
        self.allow_private = allow_private
        self.allow_http = allow_http
        self.max_bytes = max_bytes
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def scheme_for(self, host: str) -> str:
        """WebFinger and handles carry no scheme: https, or http where the node allows it."""
        return "http" if self.allow_http else "https"

    async def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise FetchError(f"refusing URL {url!r}: not an http(s) URL")
        if parts.scheme == "http" and not self.allow_http:
            raise FetchError(f"refusing URL {url!r}: plain http is not allowed")
        if self.allow_private:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                type=socket.SOCK_STREAM,
            )
        except OSError as exc:
            raise FetchError(f"cannot resolve {parts.hostname}: {exc}") from exc
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise FetchError(f"refusing {parts.hostname}: {address} is not a public address")

    async def request(
        self,
        method: str,
        url: str,
        *,
        key: SigningKey | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            await self.check_url(current)
            send_headers = dict(headers or {})
            if key is not None:
                send_headers = sign_request(method, current, key, body=body, headers=send_headers)
            try:
                async with self.client.stream(
                    method, current, content=body, headers=send_headers
                ) as resp:
                    if resp.status_code in (301, 302, 303, 307, 308) and method == "GET":
                        location = resp.headers.get("location")
                        if not location:
                            raise FetchError(f"{current} redirected nowhere", resp.status_code)
                        current = urljoin(current, location)
                        continue
                    declared = resp.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.max_bytes:
                        raise FetchError(f"{current} answered more than {self.max_bytes} bytes")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise FetchError(
                                f"{current} answered more than {self.max_bytes} bytes"
                            )
                        chunks.append(chunk)
                    return Response(resp.status_code, resp.headers, b"".join(chunks), current)
            except httpx.TimeoutException as exc:
                raise FetchError(f"{current} timed out") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"{current}: {exc.__class__.__name__}: {exc}") from exc
        raise FetchError(f"{url} redirected more than {MAX_REDIRECTS} times")

    async def get_json(self, url: str, key: SigningKey | None, accept: str = ACCEPT) -> Any:
        resp = await self.request("GET", url, key=key, headers={"Accept": accept})
        if resp.status == 410:
            raise FetchError(f"{url} is gone", 410)
        if resp.status >= 400:
            raise FetchError(f"{url} answered HTTP {resp.status}", resp.status)
        return resp.json()

    async def post_activity(self, url: str, key: SigningKey, activity: dict[str, Any]) -> Response:
        body = json.dumps(activity, ensure_ascii=False).encode()
        return await self.request(
            "POST", url, key=key, body=body,
            headers={"Content-Type": ACTIVITY_JSON, "Accept": ACCEPT},
        )
