"""A remote ActivityPub server for tests: real uvicorn on a loopback address, real RSA keys,
real signatures. It serves actor documents and WebFinger, records what its inboxes receive
(with the signature checked against our node's published key) and signs what it sends.

Like GoToSocial's testrig, it lets a test name the remote it talks to; unlike a mock, every
byte crosses a real socket."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from activitypub.signatures import (
    SignatureError,
    SigningKey,
    parse_signature,
    sign_request,
    verify_request,
)
from activitypub.vocab import ACTIVITY_JSON, actor_document
from keys.keypair import KeyPair, generate_keypair

_KEYS: list[KeyPair] = []


def test_keypair() -> KeyPair:
    """Key generation takes ~50 ms; a small pool keeps the suite fast without sharing one key."""
    if len(_KEYS) < 8:
        _KEYS.append(generate_keypair())
        return _KEYS[-1]
    _KEYS.append(_KEYS.pop(0))
    return _KEYS[-1]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve_in_thread(app: Any, host: str, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """A real uvicorn server for a test peer, in a thread, returned once it listens."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"test peer on {host}:{port} did not start")
        time.sleep(0.02)
    return server, thread


@dataclass
class PeerActor:
    username: str
    uri: str
    keys: KeyPair
    kind: str = "Person"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> SigningKey:
        return SigningKey(f"{self.uri}#main-key", self.keys.private_pem)

    @property
    def inbox(self) -> str:
        return f"{self.uri}/inbox"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    signature_error: str | None

    @property
    def activity(self) -> dict[str, Any]:
        return json.loads(self.body)


class RemotePeer:
    def __init__(self, host: str = "127.0.0.3", require_signed_get: bool = False) -> None:
        self.host_ip = host
        self.port = free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.actors: dict[str, PeerActor] = {}
        self.received: list[Received] = []
        self.get_log: list[tuple[str, str | None]] = []
        self.require_signed_get = require_signed_get
        self.verified_get_signers: list[str] = []
        self.inbox_status = 202
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- actors -------------------------------------------------------------------------------
    def add_actor(self, username: str, kind: str = "Person", **extra: Any) -> PeerActor:
        actor = PeerActor(username, f"{self.base}/users/{username}", test_keypair(), kind, extra)
        self.actors[username] = actor
        return actor

    def document(self, actor: PeerActor) -> dict[str, Any]:
        doc = actor_document(
            uri=actor.uri, kind=actor.kind, username=actor.username, name=actor.username.title(),
            summary="", url=actor.uri, public_key_pem=actor.keys.public_pem,
            shared_inbox=f"{self.base}/inbox",
        )
        doc.update(actor.extra)
        return doc

    def activity_id(self) -> str:
        return f"{self.base}/activities/{uuid.uuid4().hex}"

    # --- sending ------------------------------------------------------------------------------
    def post(
        self, actor: PeerActor, url: str, activity: dict[str, Any] | bytes,
        key: SigningKey | None = None, headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        signed = sign_request("POST", url, key or actor.key, body=body,
                              headers={"Content-Type": ACTIVITY_JSON, **(headers or {})})
        return httpx.post(url, content=body, headers=signed, timeout=10)

    async def apost(
        self, client: httpx.AsyncClient, actor: PeerActor, url: str,
        activity: dict[str, Any] | bytes, key: SigningKey | None = None,
    ) -> httpx.Response:
        """The same signed POST, through a client that may be an in-process ASGI transport."""
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        signed = sign_request("POST", url, key or actor.key, body=body,
                              headers={"Content-Type": ACTIVITY_JSON})
        return await client.post(url, content=body, headers=signed)

    def signed_get(self, actor: PeerActor, url: str) -> httpx.Response:
        headers = sign_request("GET", url, actor.key, headers={"Accept": ACTIVITY_JSON})
        return httpx.get(url, headers=headers, timeout=10)

    def inbox_activities(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = [r.activity for r in self.received]
        return [a for a in out if kind is None or a.get("type") == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.inbox_activities(kind)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{self.base} received {self.inbox_activities()} not {count} {kind}")

    # --- the server ---------------------------------------------------------------------------
    def _app(self) -> Starlette:
        async def actor_view(request: Request) -> Response:
            signature = request.headers.get("signature")
            self.get_log.append((str(request.url), signature))
            if self.require_signed_get:
                # As a server in authorized-fetch mode: the GET must verify against the
                # signer's published key, not merely carry a Signature header.
                signer, error = await self._check_get_signature(request)
                if signer is None:
                    return JSONResponse({"error": f"signature required: {error}"},
                                        status_code=401)
                self.verified_get_signers.append(signer)
            actor = self.actors.get(request.path_params["name"])
            if actor is None:
                return JSONResponse({"error": "gone"}, status_code=404)
            return Response(json.dumps(self.document(actor)), media_type=ACTIVITY_JSON)

        async def webfinger(request: Request) -> Response:
            resource = request.query_params.get("resource", "")
            name = resource.removeprefix("acct:").split("@")[0]
            actor = self.actors.get(name)
            if actor is None:
                return JSONResponse({}, status_code=404)
            return JSONResponse({
                "subject": resource,
                "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": actor.uri}],
            }, media_type="application/jrd+json")

        async def inbox(request: Request) -> Response:
            body = await request.body()
            ok, error = await self._check_signature(request, body)
            self.received.append(Received(request.url.path, dict(request.headers), body, ok, error))
            if not ok:
                return JSONResponse({"error": error}, status_code=401)
            return Response(status_code=self.inbox_status)

        return Starlette(routes=[
            Route("/users/{name}", actor_view),
            Route("/.well-known/webfinger", webfinger),
            Route("/inbox", inbox, methods=["POST"]),
            Route("/users/{name}/inbox", inbox, methods=["POST"]),
        ])

    async def _check_signature(self, request: Request, body: bytes) -> tuple[bool, str | None]:
        try:
            sig = parse_signature(request.headers.get("signature"))
            async with httpx.AsyncClient(timeout=5) as client:
                headers = sign_request("GET", sig.key_id.split("#")[0],
                                       next(iter(self.actors.values())).key,
                                       headers={"Accept": ACTIVITY_JSON})
                doc = (await client.get(sig.key_id.split("#")[0], headers=headers)).json()
            verify_request(sig, "POST", request.url.path, dict(request.headers),
                           doc["publicKey"]["publicKeyPem"], body)
            return True, None
        except (SignatureError, httpx.HTTPError, KeyError, ValueError) as exc:
            return False, str(exc)

    async def _check_get_signature(self, request: Request) -> tuple[str | None, str | None]:
        """The keyId of a valid GET signature (its key fetched unsigned, as the instance
        actor's key must be readable), or None and the reason."""
        try:
            sig = parse_signature(request.headers.get("signature"))
            if sig.key_id.startswith(self.base):
                actor = self.actors[sig.key_id.split("#")[0].rsplit("/", 1)[-1]]
                pem = actor.keys.public_pem
            else:
                async with httpx.AsyncClient(timeout=5) as client:
                    resp = await client.get(sig.key_id.split("#")[0],
                                            headers={"Accept": ACTIVITY_JSON})
                    pem = resp.json()["publicKey"]["publicKeyPem"]
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            verify_request(sig, "GET", path, dict(request.headers), pem)
            return sig.key_id, None
        except (SignatureError, httpx.HTTPError, KeyError, ValueError) as exc:
            return None, str(exc)

    def start(self) -> RemotePeer:
        self._server, self._thread = serve_in_thread(self._app(), self.host_ip, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None

    async def astart(self) -> RemotePeer:
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)
