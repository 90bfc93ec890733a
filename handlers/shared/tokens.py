"""JWT verification for the API authorizers: RS256 against the issuer's JWKS, nothing else.

Written here rather than taken from PyJWT + cryptography: cryptography's arm64 wheel alone
is 4.7 MB zipped (over the 5 MB per-function budget with its layer) and costs tens of
milliseconds to import. RS256 verification is small and standard: the signature is
checked by rebuilding the whole PKCS#1 v1.5 encoded message and comparing it (RFC 8017
§8.2.2), never by parsing the decrypted block. The tests mint tokens with PyJWT and
cryptography, an independent implementation.

What is refused: any ``alg`` but RS256 (so ``none`` and HMAC-with-the-public-key cannot
pass), a ``kid`` the JWKS does not have, a bad signature, and claims that fail: ``exp``
(required), ``nbf``, ``iat`` in the future, ``iss`` and ``aud`` against the configured
values, a missing ``sub``.

Hostile input is refused, not repaired: base64url is decoded strictly (one spelling per
byte string, so a signature cannot be re-spelled and still verify), JSON with NaN or an
infinite number is not JSON, dates are finite numbers, a JWKS key must be a real RSA
signing key (an exponent of 1 would let anyone "sign"), and keys are fetched over https
(or plain http to a loopback address, for the local stack) from the issuer's own origin,
never through a redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

ALGORITHMS = ("RS256",)
# DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 8_192
MIN_MODULUS_BITS = 2_048
# Bounds on what one verification costs; real issuers use 2048..4096 bits and e = 65537.
MAX_MODULUS_BITS = 16_384
MAX_EXPONENT_BITS = 32
MAX_DOCUMENT_BYTES = 1_000_000
_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class TokenError(Exception):
    """The token is not acceptable; the message says why (logged, never sent to the client)."""


def b64url_decode(value: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 §2): the bytes ``value`` is the only spelling of.

    Only ``A-Z a-z 0-9 - _``, no padding, not 4n+1 characters long, and the bits the last
    character does not use are zero (RFC 4648 §3.5). A lenient decoder skips characters it
    does not know and ignores those bits, so one signature has many spellings.
    """
    if not isinstance(value, str):
        raise TokenError("not base64url: not a string")
    if not _B64URL_ALPHABET.issuperset(value):
        stray = next(c for c in value if c not in _B64URL_ALPHABET)
        raise TokenError(f"not base64url: character {stray!r}")
    if len(value) % 4 == 1:
        raise TokenError("not base64url: 4n+1 characters encode no whole number of bytes")
    decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != value.encode("ascii"):
        raise TokenError("not base64url: the last character is not canonical (its unused bits are set)")
    return decoded


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    # Python reads 1e999 as inf: a date that never comes.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _strict_json(raw: bytes | str) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, no number too large for a float."""
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)


def _int(value: str) -> int:
    return int.from_bytes(b64url_decode(value), "big")


class RsaPublicKey:
    def __init__(self, n: int, e: int) -> None:
        if n.bit_length() < MIN_MODULUS_BITS:
            raise TokenError(f"RSA keys shorter than {MIN_MODULUS_BITS} bits are refused")
        if n.bit_length() > MAX_MODULUS_BITS:
            raise TokenError(f"RSA keys longer than {MAX_MODULUS_BITS} bits are refused")
        if n % 2 == 0:
            raise TokenError("an even RSA modulus is not an RSA modulus")
        # e = 1 makes every message its own signature; an even e is not an RSA exponent.
        if e < 3 or e % 2 == 0 or e.bit_length() > MAX_EXPONENT_BITS:
            raise TokenError(f"RSA public exponent {e} is refused: it must be odd, at least 3 and below 2**32")
        self.n, self.e = n, e
        self.size = (n.bit_length() + 7) // 8

    def verify_sha256(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != self.size:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        em = pow(s, self.e, self.n).to_bytes(self.size, "big")
        digest = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        expected = b"\x00\x01" + b"\xff" * (self.size - len(digest) - 3) + b"\x00" + digest
        return hmac.compare_digest(em, expected)


def keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, RsaPublicKey]:
    """The RS256 signing keys of a JWKS document, by ``kid``; other keys are ignored."""
    keys: dict[str, RsaPublicKey] = {}
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, Mapping):
            continue
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        if not isinstance(jwk.get("kid"), str):
            continue
        try:
            keys[jwk["kid"]] = RsaPublicKey(_int(jwk["n"]), _int(jwk["e"]))
        except (KeyError, TokenError):
            continue
    return keys


class JwksCache:
    """The issuer's keys, fetched once and kept ``ttl`` seconds. An unknown ``kid`` refetches
    (key rotation), at most once per ``refetch_interval`` so a flood of forged kids cannot
    hammer the issuer."""

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, Any]],
        ttl: float = 600.0,
        refetch_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._keys: dict[str, RsaPublicKey] = {}
        self._fetched_at = -1e18
        self._attempted_at = -1e18
        self._lock = threading.Lock()
        self.fetches = 0

    def _refresh(self) -> None:
        # Whatever happens, the next attempt waits: an issuer outage must not turn every
        # request into a fetch.
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            keys = keys_from_jwks(self._fetch())
        except Exception as error:
            if not self._keys:
                # Our own refusals say why (a redirect, a URL); others by type, no details.
                reason = str(error) if isinstance(error, TokenError) else type(error).__name__
                raise TokenError(f"the issuer's keys could not be fetched: {reason}") from None
            return  # keep serving the keys we have until the issuer answers again
        self._keys = keys
        self._fetched_at = self._clock()

    def key(self, kid: str) -> RsaPublicKey:
        with self._lock:
            now = self._clock()
            age = now - self._fetched_at
            since_attempt = now - self._attempted_at
            stale = age > self._ttl or kid not in self._keys
            if stale and (since_attempt > self._refetch_interval or not self._keys):
                self._refresh()
            found = self._keys.get(kid)
        if found is None:
            raise TokenError(f"no signing key {kid!r} in the issuer's JWKS")
        return found


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, or an address in a spelling ip_address does not take (127.1)
        return False


def key_url_origin(url: str) -> tuple[str, str, int]:
    """The origin (scheme, host, port) of a URL the issuer's keys may be fetched from.

    https only, or plain http to a literal loopback address (``127.0.0.0/8``, ``::1``, or the
    host ``localhost``) for the local stack; no user information, whose ``@`` hides the host
    really connected to. TokenError names what is wrong otherwise.
    """
    from urllib.parse import urlsplit

    def refuse(why: str) -> TokenError:
        return TokenError(f"refusing to fetch keys from {url!r}: {why}")

    if not isinstance(url, str):
        raise TokenError("refusing to fetch keys: the URL is not a string")
    # Printable ASCII only: URL parsers disagree on spaces, control characters and
    # backslashes, and the URL checked here must be the one urllib connects to.
    stray = next((c for c in url if not "!" <= c <= "~" or c == "\\"), None)
    if stray is not None:
        raise refuse(f"character {stray!r}")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise refuse(f"not a URL ({error})") from None
    if "@" in parts.netloc:
        raise refuse("user information (@) in the URL")
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and _is_loopback(host or "")):
        raise refuse("https is required (plain http only to a loopback address)")
    if not host:
        raise refuse("no host")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def check_jwks_uri(discovery: str, uri: str) -> None:
    """Where a discovery document may send the authorizer for keys. An https issuer's keys
    must be served over https, on any host (Google's issuer serves them from another one);
    never plain http, so never a loopback service such as the Lambda runtime API. A loopback
    issuer (the local stack) may only name its own origin."""
    scheme, *_ = issuer_origin = key_url_origin(discovery)
    target = key_url_origin(uri)
    if scheme == "https" and target[0] != "https":
        raise TokenError(f"refusing to fetch keys from {uri!r}: an https issuer's keys must be served over https")
    if scheme == "http" and target != issuer_origin:
        raise TokenError(f"refusing to fetch keys from {uri!r}: not on the loopback issuer's origin {discovery!r}")


def http_jwks_fetcher(issuer: str, timeout: float = 3.0) -> Callable[[], Mapping[str, Any]]:
    """Reads ``jwks_uri`` from the issuer's OpenID discovery document, then the JWKS.

    Both URLs must pass :func:`key_url_origin` and :func:`check_jwks_uri`. A redirect is an
    error naming its target, never followed.
    """
    import urllib.error
    import urllib.request

    discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
    jwks_uri: dict[str, str] = {}

    class RefuseRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            fp.close()
            raise TokenError(
                f"{req.full_url} answered {code} with a redirect to {newurl!r}; redirects are not followed"
            )

    opener = urllib.request.build_opener(RefuseRedirects)

    def get(url: str) -> Mapping[str, Any]:
        key_url_origin(url)
        try:
            with opener.open(url, timeout=timeout) as response:  # https, or loopback http for the local stack
                return _strict_json(response.read(MAX_DOCUMENT_BYTES))
        except urllib.error.HTTPError as error:
            error.close()
            raise TokenError(f"{url} answered {error.code}") from None

    def fetch() -> Mapping[str, Any]:
        if "uri" not in jwks_uri:
            document = get(discovery)
            uri = document.get("jwks_uri") if isinstance(document, Mapping) else None
            if not isinstance(uri, str):
                raise TokenError("the discovery document's jwks_uri is not a string")
            check_jwks_uri(discovery, uri)
            jwks_uri["uri"] = uri
        return get(jwks_uri["uri"])

    return fetch


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: JwksCache,
        clock: Callable[[], float] = time.time,
        leeway: int = LEEWAY_SECONDS,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self._clock = clock
        self.leeway = leeway

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if every check passes; TokenError otherwise."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
            raise TokenError("missing or oversized token")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("not a compact JWS")
        try:
            header = _strict_json(b64url_decode(parts[0]))
            claims = _strict_json(b64url_decode(parts[1]))
        except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
            raise TokenError(f"header or payload is not JSON: {error}") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenError("header or payload is not a JSON object")
        if header.get("alg") not in ALGORITHMS:
            raise TokenError(f"algorithm {header.get('alg')!r} is not allowed")
        if "crit" in header:
            raise TokenError("critical header extensions are not supported")
        key = self.jwks.key(str(header.get("kid", "")))
        if not key.verify_sha256(f"{parts[0]}.{parts[1]}".encode("ascii"), b64url_decode(parts[2])):
            raise TokenError("bad signature")
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp = _numeric_date(claims, "exp")
        if exp is None:
            raise TokenError("exp is required")
        if now > exp + self.leeway:
            raise TokenError("expired")
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and now + self.leeway < nbf:
            raise TokenError("not valid yet")
        iat = _numeric_date(claims, "iat")
        if iat is not None and iat > now + self.leeway:
            raise TokenError("issued in the future")
        if claims.get("iss") != self.issuer:
            raise TokenError("wrong issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise TokenError("wrong audience")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or "#" in subject or len(subject) > 256:
            raise TokenError("sub is missing or not usable as a user id")


def _numeric_date(claims: Mapping[str, Any], name: str) -> int | float | None:
    """A NumericDate claim (RFC 7519 §2): absent, or a finite number of seconds.

    Anything else is refused, not skipped: a NaN compares false with every time, so a
    token with ``exp: NaN`` would never expire.
    """
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"{name} must be a finite number of seconds, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise TokenError(f"{name} must be a finite number of seconds, not {value!r}")
    return value
