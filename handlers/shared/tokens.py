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
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

ALGORITHMS = ("RS256",)
# DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 8_192


class TokenError(Exception):
    """The token is not acceptable; the message says why (logged, never sent to the client)."""


def b64url_decode(value: str) -> bytes:
    if not isinstance(value, str) or any(c in value for c in "+/="):
        raise TokenError("not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        raise TokenError("not base64url") from None


def _int(value: str) -> int:
    return int.from_bytes(b64url_decode(value), "big")


class RsaPublicKey:
    def __init__(self, n: int, e: int) -> None:
        if n.bit_length() < 2048:
            raise TokenError("RSA keys shorter than 2048 bits are refused")
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
        if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        if "kid" not in jwk:
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
                raise TokenError(f"the issuer's keys could not be fetched: {type(error).__name__}") from None
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


def http_jwks_fetcher(issuer: str, timeout: float = 3.0) -> Callable[[], Mapping[str, Any]]:
    """Reads ``jwks_uri`` from the issuer's OpenID discovery document, then the JWKS."""
    import urllib.request

    discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
    jwks_uri: dict[str, str] = {}

    def get(url: str) -> Mapping[str, Any]:
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise TokenError(f"refusing to fetch keys over {url.split(':', 1)[0]}")
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https (or loopback for the local stack)
            return json.loads(response.read(1_000_000))

    def fetch() -> Mapping[str, Any]:
        if "uri" not in jwks_uri:
            jwks_uri["uri"] = get(discovery)["jwks_uri"]
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
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise TokenError("header or payload is not JSON") from None
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
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise TokenError("exp is required")
        if now > exp + self.leeway:
            raise TokenError("expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or now + self.leeway < nbf):
            raise TokenError("not valid yet")
        iat = claims.get("iat")
        if iat is not None and (not isinstance(iat, (int, float)) or iat > now + self.leeway):
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
