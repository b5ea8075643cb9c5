"""The one origin rule: "is this ours?" and "is this the signer's?" are the same comparison.

An origin is scheme, host and port, parsed once and compared whole (as Lemmy's
`verify_domains_match`). A string prefix or a bare `netloc` comparison is not enough:
`http://node.example:8000?x` has no path yet is ours, `HTTP://Node.Example:80/` equals
`http://node.example/`, and `http://node.example@evil.example/` is evil's.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = _DEFAULT_PORTS.get(self.scheme)
        port = "" if self.port == default else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}"


def origin_of(uri: str | None) -> Origin | None:
    """The origin of an http(s) URI; None for anything else (other schemes, credentials in the
    authority, no host, a bad port)."""
    if not isinstance(uri, str) or not uri:
        return None
    try:
        parts = urlsplit(uri.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    return Origin(scheme, host, port if port is not None else _DEFAULT_PORTS[scheme])


def same_origin(a: str | None, b: str | None) -> bool:
    """Both are http(s) URIs of one origin."""
    first = origin_of(a)
    return first is not None and first == origin_of(b)


def is_http_url(value: object) -> bool:
    """An absolute http(s) URL that may go into an href (never `javascript:`, `data:`...)."""
    return isinstance(value, str) and origin_of(value) is not None


def host_label(uri: str | None) -> str:
    """`host` or `host:port` of a URI, for display and per-host bookkeeping."""
    origin = origin_of(uri)
    if origin is None:
        return ""
    default = _DEFAULT_PORTS[origin.scheme]
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    return host if origin.port == default else f"{host}:{origin.port}"


def may_author(signer: str, object_id: str | None, author: str | None) -> bool:
    """The ownership rule: an object is created, changed or deleted only by its author, acting
    through its own server — the verified signer is the author, and the object's id is on the
    signer's origin (Lemmy's `verify_domains_match` plus `verify_is_remote_object`)."""
    return bool(object_id) and author == signer and same_origin(object_id, signer)
