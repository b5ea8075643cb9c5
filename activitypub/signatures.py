"""HTTP Signatures (draft-cavage-http-signatures-12) as Mastodon speaks them.

`httpsig` builds the signing string and the header; `cryptography` does the RSA work, because
it is about thirty times faster than the pure-Python path underneath `httpsig`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from httpsig.utils import build_signature_template, generate_message

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
    digest: str | None = None,
) -> dict[str, str]:
    """Headers for a signed request: Host, Date, Digest (with a body) and Signature. `digest`:
    the body's Digest header when the caller made it already (a fan-out sends one body to
    every host)."""
    host, path = _target(url)
    out = {k: v for k, v in (headers or {}).items()}
    out["Host"] = host
    out["Date"] = formatdate(now if now is not None else time.time(), usegmt=True)
    signed = list(GET_HEADERS)
    if body is not None:
        out["Digest"] = digest or digest_header(body)
        signed.append("digest")
        if any(k.lower() == "content-type" for k in out):
            signed.append("content-type")
    message = generate_message(signed, out, host=host, method=method, path=path)
    raw = load_private_key(key.private_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())
    template = build_signature_template(key.key_id, "rsa-sha256", signed, sign_header="signature")
    out["Signature"] = template % base64.b64encode(raw).decode()
    return out


# One `name=value` of a Signature header: a token, and a token or a quoted string (with
# backslash escapes), as RFC 7235's auth-param and Mastodon's own parser take them.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf'[ \t]*({_TOKEN})[ \t]*=[ \t]*'
                    rf'(?:"([^"\\]*(?:\\.[^"\\]*)*)"|({_TOKEN}))[ \t]*(?:,|$)')
_ESCAPE = re.compile(r"\\(.)")


def signature_fields(value: str) -> dict[str, str]:
    """The parameters of a Signature header, names in lower case. (httpsig's parser walks the
    header a character at a time in Python: 5 % of an inbox request's CPU.)"""
    fields: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = _PARAM.match(value, position)
        if match is None or match.end() == position:
            raise SignatureError("malformed Signature header")
        name, quoted, token = match.groups()
        fields[name.lower()] = (_ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted) \
            if quoted is not None else token
        position = match.end()
    return fields


def parse_signature(value: str | None) -> ParsedSignature:
    if not value:
        raise SignatureError("missing Signature header")
    fields = signature_fields(value)
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


# RFC 3230 `Digest` and RFC 9530 `Content-Digest` share these names (case aside).
DIGEST_ALGORITHMS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
DIGEST_HEADERS = {"digest": "Digest", "content-digest": "Content-Digest"}


def _digest_entries(value: str) -> list[tuple[str, str]]:
    """(algorithm, base64 value) pairs of a Digest or Content-Digest header; Content-Digest
    wraps each value in colons (an RFC 8941 byte sequence)."""
    entries = []
    for part in value.split(","):
        algorithm, _, raw = part.partition("=")
        entries.append((algorithm.strip().lower(), raw.split(";")[0].strip().strip(":")))
    return entries


def check_digest(covered: Sequence[str], headers: Mapping[str, str], body: bytes) -> None:
    """The body must match every digest the signature covers, and one at least is required.

    A digest header counts only when the signature covers it: an unsigned one proves nothing,
    whoever added it. In a covered header, every sha-256 and sha-512 value is checked; other
    algorithms beside a checked one are ignored (RFC 9530 lets a recipient pick), but a covered
    header with none that this node knows is refused, since it would vouch for nothing."""
    lowered = {k.lower(): v for k, v in headers.items()}
    names = [name for name in DIGEST_HEADERS if name in covered]
    if not names:
        raise SignatureError("a signed request with a body must cover its digest "
                             "(Digest or Content-Digest)")
    for name in names:
        label = DIGEST_HEADERS[name]
        value = lowered.get(name)
        if value is None:
            raise SignatureError(f"missing {label} header, which the signature covers")
        checked = 0
        for algorithm, raw in _digest_entries(value):
            hasher = DIGEST_ALGORITHMS.get(algorithm)
            if hasher is None:
                continue
            try:
                claimed = base64.b64decode(raw, validate=True)
            except ValueError as exc:
                raise SignatureError(f"{label} {algorithm} value is not base64") from exc
            if claimed != hasher(body).digest():
                raise SignatureError(f"{label} does not match the body ({algorithm})")
            checked += 1
        if not checked:
            raise SignatureError(f"{label} has no sha-256 or sha-512 value, the only digests "
                                 "this node checks")


def _authority(value: str) -> str:
    value = value.strip().lower()
    for default_port in (":80", ":443"):
        value = value.removesuffix(default_port)
    return value


def check_host(headers: Mapping[str, str], expected_host: str) -> None:
    """The Host the request was signed for must be this node's: a request signed for another
    server must not replay here."""
    received = {k.lower(): v for k, v in headers.items()}.get("host")
    if received is None:
        raise SignatureError("the request has no Host header")
    if _authority(received) != _authority(expected_host):
        raise SignatureError(f"the request is signed for host {received!r}, "
                             f"but this node is {expected_host!r}")


def checked_signing_string(
    sig: ParsedSignature,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes | None = None,
    now: float | None = None,
    expected_host: str | None = None,
) -> bytes:
    """Every check that needs no key (covered headers, host, digest, time); returns the signing
    string that the signer's key must then verify. `path` is the request target as received,
    query included; `expected_host`, when given, is this node's host[:port]."""
    now = time.time() if now is None else now
    if "(request-target)" not in sig.headers:
        raise SignatureError("the signature must cover (request-target)")
    if "host" not in sig.headers:
        raise SignatureError("the signature must cover host")
    if expected_host is not None:
        check_host(headers, expected_host)
    if body is not None:
        check_digest(sig.headers, headers, body)
    _check_time(sig, headers, now)
    return _signing_string(sig, method, path, headers)


def check_signature(sig: ParsedSignature, message: bytes, public_pem: str) -> None:
    try:
        key = load_public_key(public_pem)
    except ValueError as exc:
        raise SignatureError("the signer's public key cannot be read") from exc
    try:
        key.verify(sig.signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc


def verify_request(
    sig: ParsedSignature,
    method: str,
    path: str,
    headers: Mapping[str, str],
    public_pem: str,
    body: bytes | None = None,
    now: float | None = None,
    expected_host: str | None = None,
) -> None:
    """Raise SignatureError unless `sig` is a valid, fresh signature of this request."""
    message = checked_signing_string(sig, method, path, headers, body, now, expected_host)
    check_signature(sig, message, public_pem)
