"""A hostile ActivityPub server for attack tests.

It signs with code of its own (`cryptography` and a hand-built signing string, nothing from
`activitypub/`), so that it can send exactly what an attacker sends: a valid signature over a
body that lies, a signature made for another host, a `Content-Digest` with only `sha-512`, an
unsigned `Digest`... It serves its actors, WebFinger and any object a test puts in `objects`,
and its inboxes can misbehave the ways a hostile follower does: hang, answer 500, drip the
answer one byte at a time.

Use it against a running node (tests/nodes.py) over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.peers import free_port, serve_in_thread

AP_JSON = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _new_key() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, pem


@dataclass
class HostileActor:
    username: str
    uri: str
    private_key: rsa.RSAPrivateKey
    public_pem: str
    kind: str = "Person"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key_id(self) -> str:
        return f"{self.uri}#main-key"


def sign(
    actor: HostileActor, method: str, url: str, body: bytes | None = None, *,
    headers: dict[str, str] | None = None,
    covered: list[str] | None = None,
    digest: str | None = "sha-256",
    content_digest: dict[str, bytes] | None = None,
    host: str | None = None,
    date: str | None = None,
) -> dict[str, str]:
    """Headers of a draft-cavage `rsa-sha256` signature, built by hand.

    `digest`: "sha-256" adds a true `Digest`; None adds none. `content_digest`: algorithm ->
    the bytes it should hash (pass other bytes to lie), sent as RFC 9530 `Content-Digest`.
    `host` signs (and sends) another Host than the URL's. `covered` picks the signed headers."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    out = {"Host": host or parts.netloc, "Date": date or formatdate(usegmt=True),
           **(headers or {})}
    if body is not None:
        out.setdefault("Content-Type", AP_JSON)
        if digest == "sha-256":
            out["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if content_digest:
            out["Content-Digest"] = ", ".join(
                f"{alg}=:{_b64(hashlib.new(alg.replace('-', ''), data).digest())}:"
                for alg, data in content_digest.items())
    if covered is None:
        covered = ["(request-target)", "host", "date"]
        covered += [h for h in ("digest", "content-digest") if h.title() in out
                    or h in {k.lower() for k in out}]
    lowered = {k.lower(): v for k, v in out.items()}
    lines = [f"(request-target): {method.lower()} {target}" if h == "(request-target)"
             else f"{h}: {lowered[h]}" for h in covered]
    signature = actor.private_key.sign("\n".join(lines).encode(), padding.PKCS1v15(),
                                       hashes.SHA256())
    out["Signature"] = (
        f'keyId="{actor.key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
        f'signature="{base64.b64encode(signature).decode()}"')
    return out


class HostilePeer:
    def __init__(self, host: str = "127.0.0.66") -> None:
        self.host_ip = host
        self.port = free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.actors: dict[str, HostileActor] = {}
        # Objects served at base + path, e.g. objects["/notes/1"] = {...}.
        self.objects: dict[str, dict[str, Any]] = {}
        # Web pages served as text/html at base + path, e.g. pages["/@food"] = "<html>...".
        self.pages: dict[str, str] = {}
        # The path of every GET, in order: what a node fetched here.
        self.fetched: list[str] = []
        # GETs of these paths never get an answer.
        self.hang_paths: set[str] = set()
        self.received: list[tuple[str, dict[str, Any]]] = []
        # How the inboxes answer: "ok", "hang", "error" (500) or "drip" (1 byte / 5 s).
        self.inbox_mode = "ok"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- actors and objects ---------------------------------------------------------------
    def add_actor(self, username: str, kind: str = "Person", **extra: Any) -> HostileActor:
        private, pem = _new_key()
        actor = HostileActor(username, f"{self.base}/users/{username}", private, pem, kind,
                             extra)
        self.actors[username] = actor
        return actor

    def document(self, actor: HostileActor) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/activitystreams",
                         "https://w3id.org/security/v1"],
            "id": actor.uri, "type": actor.kind, "preferredUsername": actor.username,
            "name": actor.username.title(), "inbox": f"{actor.uri}/inbox",
            "outbox": f"{actor.uri}/outbox", "followers": f"{actor.uri}/followers",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {"id": actor.key_id, "owner": actor.uri,
                          "publicKeyPem": actor.public_pem},
            **actor.extra,
        }

    def new_id(self, kind: str = "activities") -> str:
        return f"{self.base}/{kind}/{uuid.uuid4().hex}"

    def note(self, actor: HostileActor, content: Any, **fields: Any) -> dict[str, Any]:
        return {"id": self.new_id("notes"), "type": "Note", "attributedTo": actor.uri,
                "content": content, "to": [PUBLIC], "published": "2026-11-01T10:00:00Z",
                **fields}

    def create(self, actor: HostileActor, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {"@context": "https://www.w3.org/ns/activitystreams", "id": self.new_id(),
                "type": "Create", "actor": actor.uri, "object": obj,
                "to": obj.get("to", [PUBLIC]), **fields}

    def activity(self, actor: HostileActor, kind: str, obj: Any, **fields: Any) -> dict:
        return {"@context": "https://www.w3.org/ns/activitystreams", "id": self.new_id(),
                "type": kind, "actor": actor.uri, "object": obj, **fields}

    # --- sending ----------------------------------------------------------------------------
    def post(self, actor: HostileActor, url: str, activity: dict[str, Any] | bytes,
             **sign_options: Any) -> httpx.Response:
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        headers = sign(actor, "POST", url, body, **sign_options)
        return httpx.post(url, content=body, headers=headers, timeout=15)

    async def apost(self, actor: HostileActor, url: str, activity: dict[str, Any] | bytes,
                    **sign_options: Any) -> httpx.Response:
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        headers = sign(actor, "POST", url, body, **sign_options)
        async with httpx.AsyncClient(timeout=15) as client:
            return await client.post(url, content=body, headers=headers)

    # --- the server --------------------------------------------------------------------------
    def _app(self) -> Starlette:
        async def actor_view(request: Request) -> Response:
            self.fetched.append(request.url.path)
            actor = self.actors.get(request.path_params["name"])
            if actor is None:
                return JSONResponse({"error": "gone"}, status_code=404)
            return Response(json.dumps(self.document(actor)), media_type=AP_JSON)

        async def object_view(request: Request) -> Response:
            self.fetched.append(request.url.path)
            if request.url.path in self.hang_paths:
                await asyncio.sleep(3600)
            if request.url.path in self.pages:
                return Response(self.pages[request.url.path], media_type="text/html")
            obj = self.objects.get(request.url.path)
            if obj is None:
                return JSONResponse({"error": "not found"}, status_code=404)
            return Response(json.dumps(obj), media_type=AP_JSON)

        async def webfinger(request: Request) -> Response:
            resource = request.query_params.get("resource", "")
            actor = self.actors.get(resource.removeprefix("acct:").split("@")[0])
            if actor is None:
                return JSONResponse({}, status_code=404)
            return JSONResponse({"subject": resource, "links": [
                {"rel": "self", "type": AP_JSON, "href": actor.uri}]},
                media_type="application/jrd+json")

        async def inbox(request: Request) -> Response:
            body = await request.body()
            try:
                self.received.append((request.url.path, json.loads(body)))
            except ValueError:
                pass
            if self.inbox_mode == "hang":
                await asyncio.sleep(3600)
            if self.inbox_mode == "error":
                return JSONResponse({"error": "boom"}, status_code=500)
            if self.inbox_mode == "drip":
                async def drip():
                    for _ in range(720):
                        yield b" "
                        await asyncio.sleep(5)
                return StreamingResponse(drip(), status_code=202, media_type="text/plain")
            return Response(status_code=202)

        return Starlette(routes=[
            Route("/users/{name}", actor_view),
            Route("/.well-known/webfinger", webfinger),
            Route("/inbox", inbox, methods=["POST"]),
            Route("/users/{name}/inbox", inbox, methods=["POST"]),
            Route("/{path:path}", object_view),
        ])

    def received_of(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [a for _, a in self.received if kind is None or a.get("type") == kind]

    def start(self) -> HostilePeer:
        self._server, self._thread = serve_in_thread(self._app(), self.host_ip, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
