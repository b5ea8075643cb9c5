"""Outgoing HTTP: signed GETs over one pooled httpx client, signed deliveries (POSTs) over one
aiohttp session, with the limits a public server needs (address checks, redirects, an overall
deadline per request, bounded reads).

Why two clients: a fan-out sends one POST to each of thousands of hosts, and httpx's connection
pool looks at every pooled connection for every request; bench/http_clients.py measured about
six times the CPU per POST of aiohttp's connector, which keeps its connections by host (README,
"Delivery client"). Both resolve through the same checked, pinned resolution (PinnedBackend)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from activitypub.signatures import SigningKey, digest_header, sign_request
from activitypub.vocab import ACTIVITY_JSON, LD_JSON

USER_AGENT = "entraide-node/0.1 (+ActivityPub)"
ACCEPT = f"{ACTIVITY_JSON}, {LD_JSON}"
MAX_REDIRECTS = 3


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchError(Exception):
    """A remote resource could not be fetched; the message says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _DroppedConnection(Exception):
    """The connection ended before any answer (aiohttp's ServerDisconnectedError or a reset)."""


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


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), if any: each of
    these reaches that IPv4 host, so it is the one to judge."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: Address) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None and not is_public_address(inner):
        return False
    return address.is_global and not address.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from exc
    # Scoped IPv6 addresses come back as 'fe80::1%eth0'; the scope is not part of the address.
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


class AddressPolicy:
    """Which addresses outgoing requests may reach: public ones, plus the networks configured,
    plus every address when private addresses are allowed (tests, development)."""

    def __init__(self, allow_private: bool, allowed_networks: Iterable[Network] = ()) -> None:
        self.allow_private = allow_private
        self.allowed_networks = tuple(allowed_networks)

    def permits(self, address: Address) -> bool:
        if self.allow_private or is_public_address(address):
            return True
        return any(address in net for net in self.allowed_networks
                   if net.version == address.version)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host once, checks every address it resolves to, and connects to one of those
    very addresses: a DNS answer that changes between the check and the connection (rebinding)
    cannot lead the node to an address it did not check. TLS still verifies the host name,
    because httpcore starts TLS with the origin's name, not the address."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            addresses = [ipaddress.ip_address(a) for a in await self.resolver(host, port)]
        if not addresses:
            raise FetchError(f"cannot resolve {host}: no address")
        for address in addresses:
            if not self.policy.permits(address):
                raise FetchError(f"refusing {host}: {address} is not a public address")
        return [str(a) for a in addresses]

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's API)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await self.resolve(host, port):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's API)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise FetchError("unix sockets are not reachable from the network")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: PinnedBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class PinnedResolver(AbstractResolver):
    """aiohttp's name resolution through PinnedBackend: aiohttp connects only to addresses the
    policy checked, so a DNS answer that changes after the check (rebinding) is never used. An
    IP literal skips resolvers in aiohttp; `Transport.check_url` checks it before each request."""

    def __init__(self, backend: PinnedBackend) -> None:
        self.backend = backend

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [{"hostname": host, "host": address, "port": port,
                 "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST}
                for address in await self.backend.resolve(host, port)]

    async def close(self) -> None:
        pass


@dataclass(frozen=True)
class EncodedActivity:
    """An activity's body and its Digest header, made once for all of its deliveries."""

    body: bytes
    digest: str

    @classmethod
    def of(cls, activity: dict[str, Any]) -> EncodedActivity:
        body = json.dumps(activity, ensure_ascii=False).encode()
        return cls(body, digest_header(body))


class Transport:
    def __init__(
        self,
        *,
        allow_private: bool,
        allow_http: bool,
        timeout: float = 10.0,
        max_bytes: int = 1024 * 1024,
        allowed_networks: Iterable[Network] = (),
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allow_private = allow_private
        self.allow_http = allow_http
        self.max_bytes = max_bytes
        # httpx's timeouts bound each read, not the whole answer: a server dripping one byte
        # every few seconds would hold the request for hours. This bounds it all together.
        self.deadline = timeout
        # Set by the node: answers whether a URL's domain is blocked by its admins, so that no
        # fetch or delivery anywhere reaches a blocked domain.
        self.is_refused: Callable[[str], Awaitable[bool]] | None = None
        self.policy = AddressPolicy(allow_private, allowed_networks)
        self.backend = PinnedBackend(self.policy, resolver)
        # Roomy: a pool that slow hosts could fill would make every other request wait for a
        # connection (the delivery worker bounds how many requests it has open).
        limits = httpx.Limits(max_connections=1024, max_keepalive_connections=64)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=PinnedTransport(self.backend, limits),
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would bypass the address checks
            headers={"User-Agent": USER_AGENT},
        )

        self._timeout = timeout
        # The delivery session, made in the event loop that uses it (aiohttp binds to one).
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def _delivery_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            connector = aiohttp.TCPConnector(resolver=PinnedResolver(self.backend), limit=1024)
            session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=min(self._timeout, 5.0),
                                              sock_read=self._timeout),
                headers={"User-Agent": USER_AGENT},
            )
            self._session, self._session_loop = session, loop
        return session

    async def aclose(self) -> None:
        await self.client.aclose()
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(RuntimeError):  # made in a loop that is gone
                await self._session.close()

    def scheme_for(self, host: str) -> str:
        """WebFinger and handles carry no scheme: https, or http where the node allows it."""
        return "http" if self.allow_http else "https"

    async def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise FetchError(f"refusing URL {url!r}: not an http(s) URL")
        if parts.scheme == "http" and not self.allow_http:
            raise FetchError(f"refusing URL {url!r}: plain http is not allowed")
        if parts.username or parts.password:
            raise FetchError(f"refusing URL {url!r}: credentials in a URL")
        if self.is_refused is not None and await self.is_refused(url):
            raise FetchError(f"refusing {parts.hostname}: the domain is blocked on this node")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise FetchError(f"refusing URL {url!r}: bad port") from exc
        # An early, clear refusal; the connection itself is checked again by PinnedBackend, on
        # the address it actually connects to.
        await self.backend.resolve(parts.hostname, port)

    async def request(
        self,
        method: str,
        url: str,
        *,
        key: SigningKey | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> Response:
        """One request, redirects followed; resolving, connecting, the headers and the whole
        body must all be done within `deadline` seconds (default: the transport's timeout)."""
        limit = self.deadline if deadline is None else deadline
        try:
            async with asyncio.timeout(limit):
                return await self._request(method, url, key=key, body=body, headers=headers)
        except TimeoutError as exc:
            raise FetchError(f"{url} timed out: no complete answer within {limit:g} s") from exc

    async def _request(
        self,
        method: str,
        url: str,
        *,
        key: SigningKey | None,
        body: bytes | None,
        headers: dict[str, str] | None,
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

    async def post_activity(
        self, url: str, key: SigningKey, activity: dict[str, Any] | EncodedActivity,
        deadline: float | None = None,
    ) -> Response:
        """Deliver an activity: one signed POST, never redirected, within `deadline` seconds
        (default: the transport's timeout) from resolving to the answer's last byte."""
        encoded = activity if isinstance(activity, EncodedActivity) else \
            EncodedActivity.of(activity)
        limit = self.deadline if deadline is None else deadline
        try:
            async with asyncio.timeout(limit):
                return await self._post(url, key, encoded)
        except TimeoutError as exc:
            raise FetchError(f"{url} timed out: no complete answer within {limit:g} s") from exc

    async def _post(self, url: str, key: SigningKey, encoded: EncodedActivity) -> Response:
        await self.check_url(url)
        headers = sign_request("POST", url, key, body=encoded.body, digest=encoded.digest,
                               headers={"Content-Type": ACTIVITY_JSON, "Accept": ACCEPT})
        try:
            return await self._post_once(url, headers, encoded)
        except _DroppedConnection:
            # A kept-alive connection the server closed just as it was reused (its keep-alive
            # ran out: 5 s for uvicorn, more for others) fails without an answer. Once more on
            # a new connection, at once: inboxes take an activity once by its id, so a POST
            # that did arrive is not taken twice. The same signature is still fresh.
            try:
                return await self._post_once(url, headers, encoded)
            except _DroppedConnection as exc:
                raise FetchError(f"{url}: {exc.__class__.__name__}: {exc}") from exc

    async def _post_once(self, url: str, headers: dict[str, str],
                         encoded: EncodedActivity) -> Response:
        try:
            async with self._delivery_session().post(
                url, data=encoded.body, headers=headers, allow_redirects=False
            ) as resp:
                declared = resp.content_length
                if declared is not None and declared > self.max_bytes:
                    raise FetchError(f"{url} answered more than {self.max_bytes} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchError(f"{url} answered more than {self.max_bytes} bytes")
                    chunks.append(chunk)
                return Response(resp.status, httpx.Headers(list(resp.headers.items())),
                                b"".join(chunks), url)
        except aiohttp.ClientConnectorError as exc:  # no connection made: not a dropped one
            raise FetchError(f"{url}: {exc.__class__.__name__}: {exc}") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise _DroppedConnection(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise FetchError(f"{url}: {exc.__class__.__name__}: {exc}") from exc
