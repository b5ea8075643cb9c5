"""HTTP Signatures (draft-cavage-http-signatures-12) as Mastodon speaks them.

`httpsig` builds the signing string and the header; `cryptography` does the RSA work, because
it is about thirty times faster than the pure-Python path underneath `httpsig`.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from httpsig.utils import build_signature_template, generate_message, parse_signature_header

from keys.keypair import load_private_key, load_public_key

# Mastodon: EXPIRATION_WINDOW_LIMIT = 12 hours, CLOCK_SKEW_MARGIN = 1 hour.
EXPIRATION_WINDOW = 12 * 3600
CLOCK_SKEW_MARGIN = 3600

POST_HEADERS = ["(request-target)", "host", "date", "digest", "content-type"]
GET_HEADERS = ["(request-target)", "host", "date"]


class SignatureError(Exception):
    """A request whose signature cannot be accepted; the message says why."""


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private_pem: str

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"


@dataclass(frozen=True)
class ParsedSignature:
    key_id: str
    algorithm: str
    headers: list[str]
    signature: bytes
    created: int | None = None
    expires: int | None = None


def digest_header(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def _target(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.netloc, path


def sign_request(
    method: str,
    url: str,
    key: SigningKey,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """Headers for a signed request: Host, Date, Digest (with a body) and Signature."""
    host, path = _target(url)
    out = {k: v for k, v in (headers or {}).items()}
    out["Host"] = host
    out["Date"] = formatdate(now if now is not None else time.time(), usegmt=True)
    signed = list(GET_HEADERS)
    if body is not None:
        out["Digest"] = digest_header(body)
        signed.append("digest")
        if any(k.lower() == "content-type" for k in out):
            signed.append("content-type")
    message = generate_message(signed, out, host=host, method=method, path=path)
    raw = load_private_key(key.private_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())
    template = build_signature_template(key.key_id, "rsa-sha256", signed, sign_header="signature")
    out["Signature"] = template % base64.b64encode(raw).decode()
    return out


def parse_signature(value: str | None) -> ParsedSignature:
    if not value:
        raise SignatureError("missing Signature header")
    # httpsig's dict lowercases keys on item access but not in get(); use plain lowercase keys.
    fields = {k.lower(): v for k, v in parse_signature_header(value).items()}
    key_id = fields.get("keyid")
    sig = fields.get("signature")
    if not key_id or not sig:
        raise SignatureError("Signature header lacks keyId or signature")
    algorithm = (fields.get("algorithm") or "hs2019").lower()
    if algorithm not in {"rsa-sha256", "hs2019"}:
        raise SignatureError(f"unsupported signature algorithm {algorithm!r}")
    try:
        signature = base64.b64decode(sig, validate=True)
    except ValueError as exc:
        raise SignatureError("signature is not valid base64") from exc

    def _int(name: str) -> int | None:
        raw = fields.get(name)
        if raw is None:
            return None
        try:
            return int(float(raw))
        except ValueError as exc:
            raise SignatureError(f"bad {name} parameter") from exc

    headers = (fields.get("headers") or "date").lower().split()
    return ParsedSignature(key_id, algorithm, headers, signature, _int("created"), _int("expires"))


def _signing_string(
    sig: ParsedSignature, method: str, path: str, headers: Mapping[str, str]
) -> bytes:
    lowered = {k.lower(): v for k, v in headers.items()}
    lines: list[bytes] = []
    for name in sig.headers:
        if name == "(created)":
            if sig.created is None:
                raise SignatureError("(created) is signed but has no value")
            lines.append(f"(created): {sig.created}".encode())
        elif name == "(expires)":
            if sig.expires is None:
                raise SignatureError("(expires) is signed but has no value")
            lines.append(f"(expires): {sig.expires}".encode())
        else:
            if name != "(request-target)" and name not in lowered:
                raise SignatureError(f"signed header {name!r} is missing from the request")
            try:
                lines.append(
                    generate_message([name], lowered, host=None, method=method, path=path)
                )
            except UnicodeEncodeError as exc:
                raise SignatureError(f"header {name!r} is not ASCII") from exc
    return b"\n".join(lines)


def _check_time(sig: ParsedSignature, headers: Mapping[str, str], now: float) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    if "date" in sig.headers:
        if "date" not in lowered:
            raise SignatureError("the signature covers Date but the request has no Date header")
        try:
            when = parsedate_to_datetime(lowered["date"]).timestamp()
        except (TypeError, ValueError, IndexError) as exc:
            raise SignatureError("Date header is not an HTTP date") from exc
    elif "(created)" in sig.headers and sig.created is not None:
        when = float(sig.created)
    else:
        raise SignatureError("the signature covers neither Date nor (created)")
    if when > now + CLOCK_SKEW_MARGIN:
        raise SignatureError("signature date is in the future")
    if when < now - EXPIRATION_WINDOW - CLOCK_SKEW_MARGIN:
        raise SignatureError("signature has expired")
    if sig.expires is not None and sig.expires < now - CLOCK_SKEW_MARGIN:
        raise SignatureError("signature has expired")


def check_digest(headers: Mapping[str, str], body: bytes) -> None:
    """A body must come with a Digest (or RFC 9530 Content-Digest) that matches it."""
    lowered = {k.lower(): v for k, v in headers.items()}
    digest = lowered.get("digest")
    content_digest = lowered.get("content-digest")
    if digest is None and content_digest is None:
        raise SignatureError("missing Digest header")
    sha = hashlib.sha256(body).digest()
    if digest is not None:
        ok = False
        for part in digest.split(","):
            algo, _, value = part.strip().partition("=")
            if algo.lower() == "sha-256":
                ok = value.strip() == base64.b64encode(sha).decode()
                break
        else:
            raise SignatureError("Digest header has no SHA-256 value")
        if not ok:
            raise SignatureError("Digest does not match the body")
    if content_digest is not None:
        for part in content_digest.split(","):
            algo, _, value = part.strip().partition("=")
            if algo.strip().lower() == "sha-256":
                if value.strip().strip(":") != base64.b64encode(sha).decode():
                    raise SignatureError("Content-Digest does not match the body")
                break
        else:
            if digest is None:
                raise SignatureError("Content-Digest has no sha-256 value")


def verify_request(
    sig: ParsedSignature,
    method: str,
    path: str,
    headers: Mapping[str, str],
    public_pem: str,
    body: bytes | None = None,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless `sig` is a valid, fresh signature of this request."""
    now = time.time() if now is None else now
    if "(request-target)" not in sig.headers:
        raise SignatureError("the signature must cover (request-target)")
    if "host" not in sig.headers:
        raise SignatureError("the signature must cover host")
    if body is not None:
        if "digest" not in sig.headers and "content-digest" not in sig.headers:
            raise SignatureError("a signed POST must cover its digest")
        check_digest(headers, body)
    _check_time(sig, headers, now)
    message = _signing_string(sig, method, path, headers)
    try:
        key = load_public_key(public_pem)
    except ValueError as exc:
        raise SignatureError("the signer's public key cannot be read") from exc
    try:
        key.verify(sig.signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc
