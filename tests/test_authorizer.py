"""The JWT authorizer against real tokens minted by PyJWT with keys generated here."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from handlers.authorizer import Authorizer, Unauthorized
from handlers.shared.tokens import JwksCache, TokenError, TokenVerifier

ISSUER = "https://auth.example.com/"
AUDIENCE = "agent-infra"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/v1/sessions"


def b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def keys():
    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return signing, other


def jwks_of(*pairs):
    return {
        "keys": [
            {
                "kty": "RSA",
                "kid": kid,
                "use": "sig",
                "alg": "RS256",
                "n": b64(k.public_key().public_numbers().n),
                "e": b64(k.public_key().public_numbers().e),
            }
            for kid, k in pairs
        ]
    }


def claims(**overrides):
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(key, kid="k1", alg="RS256", **overrides):
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def authorizer(keys):
    signing, _ = keys
    cache = JwksCache(lambda: jwks_of(("k1", signing)))
    return Authorizer(TokenVerifier(ISSUER, AUDIENCE, cache))


def token_event(token):
    return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": METHOD_ARN}


def test_a_valid_token_gets_a_stage_wide_policy_and_the_user(authorizer, keys):
    result = authorizer.handle(token_event(mint(keys[0])))
    assert result["principalId"] == "alice"
    assert result["context"] == {"userId": "alice"}
    (statement,) = result["policyDocument"]["Statement"]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*",
    }


def test_the_websocket_connect_event_reads_the_query_token(authorizer, keys):
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:ws123/v1/$connect",
        "queryStringParameters": {"token": mint(keys[0], sub="bob")},
        "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "abc="},
    }
    assert authorizer.handle(event)["context"] == {"userId": "bob"}


def _forged_none(key):
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).decode().rstrip("=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).decode().rstrip("=")
    return f"{header}.{body}."


def _hmac_confusion(key):
    # The classic attack: sign with HS256 using the server's *public* key as the secret.
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode()).decode().rstrip("=")
    )
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).decode().rstrip("=")
    import hashlib
    import hmac

    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}." + base64.urlsafe_b64encode(signature).decode().rstrip("=")


def _tampered(key):
    token = mint(key)
    header, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: mint(k[0], exp=int(time.time()) - 120), "expired"),
        (lambda k: mint(k[0], nbf=int(time.time()) + 600), "not valid yet"),
        (lambda k: mint(k[0], iss="https://evil.example.com/"), "wrong issuer"),
        (lambda k: mint(k[0], aud="someone-else"), "wrong audience"),
        (lambda k: mint(k[0], exp=None), "exp is required"),
        (lambda k: mint(k[0], sub=None), "sub is missing"),
        (lambda k: _tampered(k[0]), "bad signature"),
        (lambda k: mint(k[1]), "bad signature"),
        (lambda k: mint(k[1], kid="unknown"), "no signing key 'unknown'"),
        (lambda k: _forged_none(k[0]), "algorithm 'none' is not allowed"),
        (lambda k: _hmac_confusion(k[0]), "algorithm 'HS256' is not allowed"),
        (lambda k: mint(ec.generate_private_key(ec.SECP256R1()), alg="ES256"), "algorithm 'ES256' is not allowed"),
        (lambda k: "not.a.jwt", "not base64url: the last character is not canonical"),
        (lambda k: "bm90.e30.c2ln", "header or payload is not JSON"),
        (lambda k: "", "missing or oversized token"),
    ],
)
def test_refused_tokens(authorizer, keys, capsys, make, reason):
    with pytest.raises(Unauthorized, match=r"^Unauthorized$"):
        authorizer.handle(token_event(make(keys)))
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(reason in line.get("reason", "") for line in logged), logged


def test_audience_lists_and_the_leeway(keys):
    now = int(time.time())
    # The verifier's clock is fixed: the leeway is checked exactly, not against the wall clock.
    verifier = TokenVerifier(ISSUER, AUDIENCE, JwksCache(lambda: jwks_of(("k1", keys[0]))), clock=lambda: now)
    assert verifier.verify(mint(keys[0], aud=["other", AUDIENCE]))["sub"] == "alice"
    assert verifier.verify(mint(keys[0], iat=now - 60, exp=now - 10))["sub"] == "alice", "within 30 s of leeway"
    with pytest.raises(TokenError, match="expired"):
        verifier.verify(mint(keys[0], iat=now - 60, exp=now - 31))


def test_the_bearer_scheme_is_required(authorizer, keys):
    with pytest.raises(Unauthorized):
        authorizer.handle({"type": "TOKEN", "authorizationToken": mint(keys[0]), "methodArn": METHOD_ARN})


def test_jwks_is_cached_and_refetched_on_rotation_but_not_flooded(keys):
    now = [0.0]
    served = {"jwks": jwks_of(("k1", keys[0]))}
    cache = JwksCache(lambda: served["jwks"], ttl=600, refetch_interval=30, clock=lambda: now[0])
    verifier = TokenVerifier(ISSUER, AUDIENCE, cache)
    for _ in range(5):
        verifier.verify(mint(keys[0]))
    assert cache.fetches == 1
    served["jwks"] = jwks_of(("k1", keys[0]), ("k2", keys[1]))  # the issuer rotates in a new key
    with pytest.raises(TokenError):
        verifier.verify(mint(keys[1], kid="k2"))  # too soon after the last fetch
    now[0] = 31
    assert verifier.verify(mint(keys[1], kid="k2"))["sub"] == "alice"
    assert cache.fetches == 2
    for _ in range(10):
        with pytest.raises(TokenError):
            verifier.verify(mint(keys[1], kid="forged"))
    assert cache.fetches == 2, "unknown kids do not hammer the issuer"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_short_rsa_keys_are_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    cache = JwksCache(lambda: jwks_of(("k1", small)))
    with pytest.raises(TokenError, match="no signing key"):
        TokenVerifier(ISSUER, AUDIENCE, cache).verify(mint(small))


def test_an_issuer_outage_keeps_the_cached_keys_and_does_not_hammer_it(keys):
    now = [0.0]
    calls = {"n": 0, "up": True}

    def fetch():
        calls["n"] += 1
        if not calls["up"]:
            raise OSError("issuer down")
        return jwks_of(("k1", keys[0]))

    cache = JwksCache(fetch, ttl=600, refetch_interval=30, clock=lambda: now[0])
    verifier = TokenVerifier(ISSUER, AUDIENCE, cache)
    verifier.verify(mint(keys[0]))
    calls["up"] = False
    now[0] = 700  # past the TTL, the issuer is down
    for _ in range(20):
        assert verifier.verify(mint(keys[0]))["sub"] == "alice", "stale keys still verify"
    assert calls["n"] == 2, "one failed refresh, then a pause"
    empty = JwksCache(fetch, clock=lambda: now[0])
    with pytest.raises(TokenError, match="could not be fetched"):
        TokenVerifier(ISSUER, AUDIENCE, empty).verify(mint(keys[0]))


def test_a_deeply_nested_header_is_refused_not_a_crash(authorizer):
    nested = base64.urlsafe_b64encode(("[" * 5000).encode()).decode().rstrip("=")
    with pytest.raises(Unauthorized):
        authorizer.handle(token_event(f"{nested}.e30.c2ln"))
