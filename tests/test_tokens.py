"""The token code against hostile input (issue 10): encodings, numbers, keys and key URLs.

Each attack is kept as the review found it. Tokens are signed here with cryptography, an
independent RSA implementation, so a forged token is forged for real.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from handlers.shared.tokens import (
    JwksCache,
    TokenError,
    TokenVerifier,
    b64url_decode,
    http_jwks_fetcher,
    keys_from_jwks,
)

ISSUER = "https://auth.example.com/"
AUDIENCE = "agent-infra"
NOW = 1_800_000_000
B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def b64url_int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(public_numbers, kid="k1", **overrides) -> dict:
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": b64url_int(public_numbers.n),
        "e": b64url_int(public_numbers.e),
        **overrides,
    }


def verifier_for(*jwks_keys) -> TokenVerifier:
    return TokenVerifier(ISSUER, AUDIENCE, JwksCache(lambda: {"keys": list(jwks_keys)}), clock=lambda: NOW)


def sign_raw(private_key, payload_text: str, kid: str = "k1") -> str:
    """A token whose payload is exactly ``payload_text`` (JSON that json.dumps would not write)."""
    header = b64url(json.dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}).encode())
    body = b64url(payload_text.encode())
    signature = private_key.sign(f"{header}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{body}.{b64url(signature)}"


def claims_text(**numbers: str) -> str:
    """The claims of a good token, with the given claims spelled as raw JSON."""
    fields = {"iss": json.dumps(ISSUER), "aud": json.dumps(AUDIENCE), "sub": '"alice"', "exp": str(NOW + 300)}
    fields.update(numbers)
    return "{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}"


def test_a_well_formed_token_verifies(key):
    assert verifier_for(jwk(key.public_key().public_numbers())).verify(sign_raw(key, claims_text()))["sub"] == "alice"


# -- base64url is decoded strictly ----------------------------------------------------------


@pytest.mark.parametrize("inserted", ["****", "%%%%", "~", "    ", "~~~~"])
def test_a_signature_with_characters_outside_base64url_is_refused(key, inserted):
    # Before: the decoder dropped what is not in the alphabet, so the token still verified.
    header, body, signature = sign_raw(key, claims_text()).split(".")
    tampered = f"{header}.{body}.{signature[:100]}{inserted}{signature[100:]}"
    with pytest.raises(TokenError, match="not base64url: character"):
        verifier_for(jwk(key.public_key().public_numbers())).verify(tampered)


def test_a_signature_whose_last_character_is_not_canonical_is_refused(key):
    # 256 signature bytes take 342 characters; the last carries 2 bits and 4 unused ones.
    # Setting an unused bit gave a second spelling of the same signature, which verified.
    header, body, signature = sign_raw(key, claims_text()).split(".")
    last = B64URL_ALPHABET.index(signature[-1])
    assert last & 0b1111 == 0
    respelled = signature[:-1] + B64URL_ALPHABET[last | 0b0001]
    with pytest.raises(TokenError, match="not base64url: the last character is not canonical"):
        verifier_for(jwk(key.public_key().public_numbers())).verify(f"{header}.{body}.{respelled}")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("QQ==", "character '='"),
        ("QQ=A", "character '='"),
        ("ab+/", r"character '\+'"),
        ("QUJD\n", "character '\\\\n'"),
        ("QUJDR", "4n\\+1 characters"),
        ("QR", "not canonical"),
        ("QUJ", "not canonical"),
        ("Ä", "character 'Ä'"),
        ("\uff21\uff21", "character"),
    ],
)
def test_strict_base64url(text, reason):
    with pytest.raises(TokenError, match=reason):
        b64url_decode(text)


def test_strict_base64url_decodes_what_is_canonical():
    assert b64url_decode("") == b""
    assert b64url_decode("QQ") == b"A"
    assert b64url_decode("QUI") == b"AB"
    assert b64url_decode("QUJD") == b"ABC"
    assert b64url_decode("-_8") == b"\xfb\xff"


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=B64URL_ALPHABET + "=+/ ~*%\n")))
@example("QR")
@example("QUJDR")
@example("QQ==")
@example("QU JD")
def test_any_string_decodes_to_its_only_spelling_or_is_refused(text):
    try:
        decoded = b64url_decode(text)
    except TokenError:
        return
    assert b64url(decoded) == text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_round_trip(raw):
    assert b64url_decode(b64url(raw)) == raw


# -- dates are finite numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "numbers",
    [
        {"exp": "NaN"},
        {"exp": "Infinity"},
        {"exp": "1e999"},
        {"nbf": "-Infinity"},
        {"nbf": "NaN"},
        {"iat": "NaN"},
        {"iat": "-1e999"},
    ],
    ids=lambda numbers: ",".join(f"{k}={v}" for k, v in numbers.items()),
)
def test_a_date_that_is_not_a_finite_number_is_refused_when_parsed(key, numbers):
    # Before: exp=NaN or Infinity (or 1e999, which Python reads as inf) made a token that
    # never expires; NaN also passed the nbf and iat checks.
    token = sign_raw(key, claims_text(**numbers))
    with pytest.raises(TokenError, match=r"header or payload is not JSON: .* is not a finite number"):
        verifier_for(jwk(key.public_key().public_numbers())).verify(token)


@pytest.mark.parametrize(
    ("numbers", "reason"),
    [
        ({"exp": "true"}, "exp must be a finite number of seconds, not True"),
        ({"exp": '"9999999999"'}, "exp must be a finite number of seconds, not '9999999999'"),
        ({"nbf": "true"}, "nbf must be a finite number of seconds, not True"),
        ({"iat": "[1]"}, r"iat must be a finite number of seconds, not \[1\]"),
        ({"nbf": str(NOW + 31)}, "not valid yet"),
        ({"iat": str(NOW + 31)}, "issued in the future"),
        ({"exp": str(NOW - 31)}, "expired"),
    ],
)
def test_dates_must_be_numbers(key, numbers, reason):
    token = sign_raw(key, claims_text(**numbers))
    with pytest.raises(TokenError, match=reason):
        verifier_for(jwk(key.public_key().public_numbers())).verify(token)


def test_finite_float_dates_are_accepted(key):
    token = sign_raw(key, claims_text(exp=f"{NOW + 0.5}", nbf=f"{NOW - 0.5}", iat="1.8e9"))
    assert verifier_for(jwk(key.public_key().public_numbers())).verify(token)["sub"] == "alice"


# -- keys ------------------------------------------------------------------------------------


def forged_with_exponent_one(modulus: int, sub: str) -> str:
    """A token any attacker can make when e = 1: the signature is the encoded message itself."""
    header = b64url(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
    body = b64url(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "exp": NOW + 300}).encode())
    size = (modulus.bit_length() + 7) // 8
    digest = (
        bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(f"{header}.{body}".encode()).digest()
    )
    encoded = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    return f"{header}.{body}.{b64url(encoded)}"


def test_a_key_with_exponent_one_cannot_be_used_to_forge_tokens(key):
    # Before: a JWKS key with e = 1 was kept, and this token, made without any private key,
    # verified for whatever sub it named.
    modulus = key.public_key().public_numbers().n
    weak = {"kty": "RSA", "kid": "k1", "n": b64url_int(modulus), "e": b64url_int(1)}
    with pytest.raises(TokenError, match="no signing key 'k1'"):
        verifier_for(weak).verify(forged_with_exponent_one(modulus, "admin"))


@pytest.mark.parametrize(
    ("exponent", "kept"),
    [(0, False), (1, False), (2, False), (4, False), (65536, False), (2**32 + 1, False), (3, True), (65537, True)],
)
def test_only_odd_public_exponents_from_three_are_kept(key, exponent, kept):
    modulus = key.public_key().public_numbers().n
    e = b64url_int(exponent) if exponent else "AA"
    found = keys_from_jwks({"keys": [{"kty": "RSA", "kid": "k1", "n": b64url_int(modulus), "e": e}]})
    assert ("k1" in found) is kept


def test_short_even_and_non_rsa_keys_are_dropped(key):
    modulus = key.public_key().public_numbers().n
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    jwks = {
        "keys": [
            jwk(short.public_key().public_numbers(), kid="short"),
            {"kty": "RSA", "kid": "even", "n": b64url_int(modulus + 1), "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": b64url_int(ec_key.x), "y": b64url_int(ec_key.y)},
            {"kty": "RSA", "kid": "padded", "n": b64url_int(modulus) + "=", "e": "AQAB"},
            {"kty": "RSA", "kid": ["not", "a", "string"], "n": b64url_int(modulus), "e": "AQAB"},
            "not a key",
            jwk(key.public_key().public_numbers(), kid="good"),
        ]
    }
    assert list(keys_from_jwks(jwks)) == ["good"]


# -- where keys are fetched from -------------------------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        ("http://localhost.attacker.invalid", "https is required"),
        ("http://127.0.0.1@attacker.invalid", r"user information \(@\)"),
        ("https://user:pw@auth.example.invalid", r"user information \(@\)"),
        ("http://127.0.0.1.attacker.invalid", "https is required"),
        ("http://auth.example.invalid", "https is required"),
        ("http://0177.0.0.1", "https is required"),
        ("http://127.1", "https is required"),
        ("http://localhost.", "https is required"),
        ("ftp://auth.example.invalid", "https is required"),
        ("file:///etc/passwd", "https is required"),
        ("https://", "no host"),
        ("https://auth.example.invalid:99999", "not a URL"),
        ("https://auth.example.invalid\\@127.0.0.1", "character"),
        ("https://auth.example.invalid /x", "character"),
    ],
)
def test_an_issuer_url_that_is_not_https_or_loopback_is_refused_before_connecting(issuer, reason):
    # Before: a string-prefix check let the first two through (the .invalid hosts make
    # sure nothing is reached either way: a connection attempt fails with URLError instead).
    with pytest.raises(TokenError, match=f"refusing to fetch keys from .*{reason}"):
        http_jwks_fetcher(issuer)()


class IssuerServer:
    """A loopback HTTP issuer whose answers each test sets, and which notes every request."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requested: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requested.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {}, b"{}"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def json(self, path: str, document: dict) -> None:
        self.routes[path] = (200, {"Content-Type": "application/json"}, json.dumps(document).encode())

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = (status, {"Location": location}, b"")


@pytest.fixture
def issuer_server() -> Iterator[IssuerServer]:
    server = IssuerServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join()


@contextmanager
def refused(reason: str):
    with pytest.raises(TokenError, match=reason) as caught:
        yield caught


def test_keys_come_from_the_loopback_issuer_of_the_local_stack(issuer_server, key):
    issuer_server.json("/.well-known/openid-configuration", {"jwks_uri": f"{issuer_server.base}/jwks"})
    issuer_server.json("/jwks", {"keys": [jwk(key.public_key().public_numbers())]})
    fetch = http_jwks_fetcher(issuer_server.base + "/")
    verifier = TokenVerifier(ISSUER, AUDIENCE, JwksCache(fetch), clock=lambda: NOW)
    assert verifier.verify(sign_raw(key, claims_text()))["sub"] == "alice"
    assert issuer_server.requested == ["/.well-known/openid-configuration", "/jwks"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirected_discovery_document_is_refused_not_followed(issuer_server, status):
    # Before: urllib followed redirects, wherever they led, without the URL check.
    elsewhere = f"{issuer_server.base}/elsewhere"
    issuer_server.redirect("/.well-known/openid-configuration", elsewhere, status)
    issuer_server.json("/elsewhere", {"jwks_uri": f"{issuer_server.base}/jwks"})
    with refused(f"answered {status} with a redirect to '{elsewhere}'"):
        http_jwks_fetcher(issuer_server.base)()
    assert issuer_server.requested == ["/.well-known/openid-configuration"], "the redirect was not followed"


def test_a_redirected_jwks_is_refused_not_followed(issuer_server):
    issuer_server.json("/.well-known/openid-configuration", {"jwks_uri": f"{issuer_server.base}/jwks"})
    issuer_server.redirect("/jwks", "https://keys.attacker.invalid/jwks")
    with refused("answered 302 with a redirect to 'https://keys.attacker.invalid/jwks'"):
        http_jwks_fetcher(issuer_server.base)()


def test_the_cache_logs_why_keys_could_not_be_fetched(issuer_server, key):
    issuer_server.redirect("/.well-known/openid-configuration", "http://127.0.0.1:1/x")
    cache = JwksCache(http_jwks_fetcher(issuer_server.base))
    with refused("the issuer's keys could not be fetched: .*redirect to 'http://127.0.0.1:1/x'"):
        TokenVerifier(ISSUER, AUDIENCE, cache).verify(sign_raw(key, claims_text()))


@pytest.mark.parametrize(
    ("jwks_uri", "reason"),
    [
        ("https://keys.attacker.invalid/jwks", "not on the loopback issuer's origin"),
        ("http://127.0.0.1:1/jwks", "not on the loopback issuer's origin"),
        ("http://localhost.attacker.invalid/jwks", "https is required"),
        ("http://127.0.0.1@attacker.invalid/jwks", r"user information \(@\)"),
        (["not", "a", "url"], "the discovery document's jwks_uri is not a string"),
    ],
)
def test_a_jwks_uri_elsewhere_than_the_issuer_is_refused_before_connecting(issuer_server, jwks_uri, reason):
    issuer_server.json("/.well-known/openid-configuration", {"jwks_uri": jwks_uri})
    with refused(reason):
        http_jwks_fetcher(issuer_server.base)()
    assert issuer_server.requested == ["/.well-known/openid-configuration"]


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("https://www.googleapis.com/oauth2/v3/certs", True),  # Google: keys on another host
        ("https://auth.example.com/.well-known/jwks.json", True),
        ("http://auth.example.com/jwks", False),
        ("http://127.0.0.1:9001/2018-06-01/runtime/invocation/next", False),  # the Lambda runtime API
        ("http://localhost/jwks", False),
        ("https://user@keys.example.com/jwks", False),
    ],
)
def test_an_https_issuer_may_serve_its_keys_from_any_https_host_only(uri, allowed):
    from handlers.shared.tokens import check_jwks_uri

    discovery = "https://accounts.example.com/.well-known/openid-configuration"
    if allowed:
        check_jwks_uri(discovery, uri)
    else:
        with pytest.raises(TokenError):
            check_jwks_uri(discovery, uri)


def test_an_error_status_is_named(issuer_server):
    with refused("answered 404"):
        http_jwks_fetcher(issuer_server.base)()
