"""HTTP signatures with real RSA keys: what is accepted, what is refused and why.

The helper `_raw_signature` builds signatures by hand (signing string, RSA with `cryptography`)
so that the cases Mastodon, GoToSocial and bovine send — hs2019 with (created)/(expires),
RFC 9530 Content-Digest, partial header lists — are checked independently of `sign_request`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from email.utils import formatdate

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from activitypub.signatures import (
    CLOCK_SKEW_MARGIN,
    EXPIRATION_WINDOW,
    SignatureError,
    SigningKey,
    digest_header,
    parse_signature,
    sign_request,
    signature_fields,
    verify_request,
)
from keys.keypair import KeyPair, load_private_key
from node.actors import LocalActor
from tests.peers import test_keypair as make_keypair

URL = "http://node.example:8000/groups/voisins/inbox"
PATH = "/groups/voisins/inbox"
KEY_ID = "http://peer.example/users/ana#main-key"
BODY = b'{"type":"Follow","id":"http://peer.example/activities/1"}'
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return make_keypair()


@pytest.fixture(scope="module")
def other_keys(keys: KeyPair) -> KeyPair:
    other = make_keypair()
    while other.public_pem == keys.public_pem:
        other = make_keypair()
    return other


def _signed_post(keys: KeyPair, body: bytes = BODY, now: float = NOW) -> dict[str, str]:
    return sign_request("POST", URL, SigningKey(KEY_ID, keys.private_pem), body=body,
                        headers={"Content-Type": "application/activity+json"}, now=now)


def _verify(headers: dict[str, str], keys: KeyPair, body: bytes | None = BODY,
            method: str = "POST", path: str = PATH, now: float = NOW) -> None:
    sig = parse_signature(headers.get("Signature"))
    verify_request(sig, method, path, headers, keys.public_pem, body, now=now)


def _raw_signature(keys: KeyPair, lines: list[tuple[str, str]], algorithm: str = "hs2019",
                   **params: int) -> str:
    """A Signature header over `lines` ((name, value) pairs of the signing string)."""
    message = "\n".join(f"{name}: {value}" for name, value in lines).encode()
    raw = load_private_key(keys.private_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())
    extra = "".join(f",{name}={value}" for name, value in params.items())
    names = " ".join(name for name, _ in lines)
    return (f'keyId="{KEY_ID}",algorithm="{algorithm}"{extra},headers="{names}",'
            f'signature="{base64.b64encode(raw).decode()}"')


def _reason(excinfo: pytest.ExceptionInfo[SignatureError]) -> str:
    return str(excinfo.value)


# --- what passes ---------------------------------------------------------------------------

def test_good_post_verifies(keys: KeyPair) -> None:
    headers = _signed_post(keys)
    sig = parse_signature(headers["Signature"])
    assert sig.algorithm == "rsa-sha256"
    assert sig.headers == ["(request-target)", "host", "date", "digest", "content-type"]
    expected = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert headers["Digest"] == f"SHA-256={expected}"
    _verify(headers, keys)


def test_good_get_verifies(keys: KeyPair) -> None:
    url = "http://node.example:8000/groups/voisins?page=2"
    headers = sign_request("GET", url, SigningKey(KEY_ID, keys.private_pem),
                           headers={"Accept": "application/activity+json"}, now=NOW)
    assert "Digest" not in headers
    _verify(headers, keys, body=None, method="GET", path="/groups/voisins?page=2")


def test_date_inside_the_window_and_skew_verifies(keys: KeyPair) -> None:
    _verify(_signed_post(keys, now=NOW - EXPIRATION_WINDOW - CLOCK_SKEW_MARGIN + 60), keys)
    _verify(_signed_post(keys, now=NOW + CLOCK_SKEW_MARGIN - 60), keys)


# --- what is refused -----------------------------------------------------------------------

def test_forged_signature_other_key_is_refused(keys: KeyPair, other_keys: KeyPair) -> None:
    headers = sign_request("POST", URL, SigningKey(KEY_ID, other_keys.private_pem), body=BODY,
                           headers={"Content-Type": "application/activity+json"}, now=NOW)
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "does not verify" in _reason(excinfo)


@pytest.mark.parametrize("name,value", [
    ("Content-Type", "text/plain"),
    ("Host", "evil.example"),
    ("Date", formatdate(NOW + 5, usegmt=True)),
])
def test_tampered_signed_header_is_refused(keys: KeyPair, name: str, value: str) -> None:
    headers = _signed_post(keys)
    headers[name] = value
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "does not verify" in _reason(excinfo)


def test_other_path_or_method_is_refused(keys: KeyPair) -> None:
    headers = _signed_post(keys)
    with pytest.raises(SignatureError):
        _verify(headers, keys, path="/inbox")
    with pytest.raises(SignatureError):
        _verify(headers, keys, method="PUT")


def test_expired_date_is_refused(keys: KeyPair) -> None:
    headers = _signed_post(keys, now=NOW - EXPIRATION_WINDOW - CLOCK_SKEW_MARGIN - 1)
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "expired" in _reason(excinfo)


def test_date_far_in_the_future_is_refused(keys: KeyPair) -> None:
    headers = _signed_post(keys, now=NOW + CLOCK_SKEW_MARGIN + 60)
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "future" in _reason(excinfo)


def test_unreadable_or_missing_date_is_refused(keys: KeyPair) -> None:
    headers = _signed_post(keys)
    headers["Date"] = "yesterday-ish"
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "Date" in _reason(excinfo)
    del headers["Date"]
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "date" in _reason(excinfo).lower()


def test_wrong_digest_is_refused(keys: KeyPair) -> None:
    headers = _signed_post(keys)
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys, body=BODY + b" ")
    assert "Digest does not match" in _reason(excinfo)


def test_missing_digest_on_a_body_is_refused(keys: KeyPair) -> None:
    headers = _signed_post(keys)
    del headers["Digest"]
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "missing Digest" in _reason(excinfo)


def _signed_digest(keys: KeyPair, digest: str) -> dict[str, str]:
    date = formatdate(NOW, usegmt=True)
    headers = {"Host": "node.example:8000", "Date": date, "Digest": digest}
    headers["Signature"] = _raw_signature(keys, [
        ("(request-target)", f"post {PATH}"), ("host", "node.example:8000"), ("date", date),
        ("digest", digest)], algorithm="rsa-sha256")
    return headers


def test_digest_sha512_is_checked_and_unknown_algorithms_alone_refused(keys: KeyPair) -> None:
    """RFC 3230 SHA-512 is checked like SHA-256; an algorithm this node does not know vouches
    for nothing, so a digest made only of such values is refused."""
    sha512 = base64.b64encode(hashlib.sha512(BODY).digest()).decode()
    _verify(_signed_digest(keys, f"SHA-512={sha512}"), keys)
    with pytest.raises(SignatureError) as excinfo:
        _verify(_signed_digest(keys, f"SHA-512={sha512}"), keys, body=BODY + b" ")
    assert "Digest does not match the body (sha-512)" in _reason(excinfo)
    md5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()
    with pytest.raises(SignatureError) as excinfo:
        _verify(_signed_digest(keys, f"MD5={md5}"), keys)
    assert "no sha-256 or sha-512" in _reason(excinfo)


def _content_digest(body: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def test_content_digest_only_is_checked(keys: KeyPair) -> None:
    """bovine signs with RFC 9530 Content-Digest and no Digest: the digest must still match."""
    date = formatdate(NOW, usegmt=True)
    headers = {"Host": "node.example:8000", "Date": date, "Content-Digest": _content_digest(BODY)}
    headers["Signature"] = _raw_signature(keys, [
        ("(request-target)", f"post {PATH}"), ("host", "node.example:8000"), ("date", date),
        ("content-digest", headers["Content-Digest"])])
    _verify(headers, keys)
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys, body=b'{"type":"Delete"}')
    assert "Content-Digest does not match" in _reason(excinfo)


def test_hs2019_with_created_and_expires(keys: KeyPair) -> None:
    created, expires = int(NOW) - 30, int(NOW) + 300
    headers = {"Host": "node.example:8000", "Digest": digest_header(BODY)}
    lines = [("(request-target)", f"post {PATH}"), ("host", "node.example:8000"),
             ("(created)", str(created)), ("(expires)", str(expires)),
             ("digest", headers["Digest"])]
    headers["Signature"] = _raw_signature(keys, lines, created=created, expires=expires)
    sig = parse_signature(headers["Signature"])
    assert (sig.algorithm, sig.created, sig.expires) == ("hs2019", created, expires)
    _verify(headers, keys)

    # The same signature once (expires) is past (beyond the skew margin) is refused.
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys, now=expires + CLOCK_SKEW_MARGIN + 1)
    assert "expired" in _reason(excinfo)

    # A (created) value other than the one signed breaks the signature.
    forged = headers["Signature"].replace(f"created={created}", f"created={created + 1}")
    with pytest.raises(SignatureError) as excinfo:
        _verify({**headers, "Signature": forged}, keys)
    assert "does not verify" in _reason(excinfo)


def test_hs2019_created_too_old_is_refused(keys: KeyPair) -> None:
    created = int(NOW - EXPIRATION_WINDOW - CLOCK_SKEW_MARGIN - 10)
    headers = {"Host": "node.example:8000", "Digest": digest_header(BODY)}
    headers["Signature"] = _raw_signature(keys, [
        ("(request-target)", f"post {PATH}"), ("host", "node.example:8000"),
        ("(created)", str(created)), ("digest", headers["Digest"])], created=created)
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "expired" in _reason(excinfo)


@pytest.mark.parametrize("left_out,reason", [
    ("(request-target)", "(request-target)"),
    ("host", "host"),
    ("digest", "digest"),
])
def test_signature_must_cover_target_host_and_digest(
    keys: KeyPair, left_out: str, reason: str
) -> None:
    date = formatdate(NOW, usegmt=True)
    headers = {"Host": "node.example:8000", "Date": date, "Digest": digest_header(BODY)}
    lines = [("(request-target)", f"post {PATH}"), ("host", "node.example:8000"),
             ("date", date), ("digest", headers["Digest"])]
    lines = [(n, v) for n, v in lines if n != left_out]
    headers["Signature"] = _raw_signature(keys, lines, algorithm="rsa-sha256")
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert reason in _reason(excinfo)


def test_signature_without_date_or_created_is_refused(keys: KeyPair) -> None:
    headers = {"Host": "node.example:8000", "Digest": digest_header(BODY)}
    headers["Signature"] = _raw_signature(keys, [
        ("(request-target)", f"post {PATH}"), ("host", "node.example:8000"),
        ("digest", headers["Digest"])])
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, keys)
    assert "neither Date nor (created)" in _reason(excinfo)


@pytest.mark.parametrize("header,reason", [
    (None, "missing Signature"),
    ('algorithm="rsa-sha256",signature="AAAA"', "keyId"),
    (f'keyId="{KEY_ID}",algorithm="hmac-sha256",headers="date",signature="AAAA"',
     "unsupported signature algorithm"),
    (f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="date",signature="not base64!"',
     "base64"),
    (f'keyId="{KEY_ID}",headers="(created)",created="soon",signature="AAAA"', "created"),
])
def test_unparseable_signature_headers_are_refused(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as excinfo:
        parse_signature(header)
    assert reason in _reason(excinfo)


def test_unreadable_public_key_is_refused(keys: KeyPair) -> None:
    headers = _signed_post(keys)
    sig = parse_signature(headers["Signature"])
    with pytest.raises(SignatureError) as excinfo:
        verify_request(sig, "POST", PATH, headers, "-----BEGIN PUBLIC KEY-----\nxx\n", BODY,
                       now=NOW)
    assert "public key" in _reason(excinfo)


# --- private keys stay private -------------------------------------------------------------

def _secret_part(pem: str) -> str:
    return pem.splitlines()[5]  # a line from the middle of the base64 body


def test_private_keys_never_appear_in_repr(keys: KeyPair) -> None:
    secret = _secret_part(keys.private_pem)
    signing = SigningKey(KEY_ID, keys.private_pem)
    actor = LocalActor(
        id="a1", kind="Group", username="voisins", name="Voisins", summary="", icon_url=None,
        manually_approves=False, discoverable=True, public_key_pem=keys.public_pem,
        private_key_pem=keys.private_pem, created_at=NOW,
    )
    for value in (keys, signing, actor):
        assert secret not in repr(value)
        assert secret not in str(value)
        assert "PRIVATE" not in repr(value)
    assert KEY_ID in repr(signing)
    assert "voisins" in repr(actor)


def test_signing_and_refusals_log_no_private_key(
    keys: KeyPair, other_keys: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    signing = SigningKey(KEY_ID, keys.private_pem)
    logging.getLogger("tests").info("signing with %s, %r", signing, signing)
    headers = sign_request("POST", URL, signing, body=BODY, now=NOW)
    with pytest.raises(SignatureError) as excinfo:
        _verify(headers, other_keys)
    text = caplog.text + str(excinfo.value) + repr(excinfo.value) + str(headers)
    assert _secret_part(keys.private_pem) not in text
    assert "PRIVATE KEY" not in text


@pytest.mark.parametrize("header, fields", [
    # Mastodon's own form.
    ('keyId="https://m.example/users/a#main-key",algorithm="rsa-sha256",'
     'headers="(request-target) host date digest",signature="YWJj+/=="',
     {"keyid": "https://m.example/users/a#main-key", "algorithm": "rsa-sha256",
      "headers": "(request-target) host date digest", "signature": "YWJj+/=="}),
    # Spaces after commas, token values, an escaped quote, names in any case.
    ('KeyId="k", algorithm=hs2019, created=1402170695, headers="(created) host", '
     'signature="a\\"b"',
     {"keyid": "k", "algorithm": "hs2019", "created": "1402170695",
      "headers": "(created) host", "signature": 'a"b'}),
])
def test_signature_header_parameters_are_read(header: str, fields: dict[str, str]) -> None:
    assert signature_fields(header) == fields


@pytest.mark.parametrize("header", [
    'keyId', 'keyId="unterminated', '="no name"', 'a="x" b="y"', 'a=x y',
])
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError, match="malformed"):
        signature_fields(header)
