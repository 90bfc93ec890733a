"""Lambda authorizer for the REST API (TOKEN: ``Authorization: Bearer <jwt>``) and the
WebSocket ``$connect`` route (REQUEST: ``?token=<jwt>``). Same verification for both.

An accepted token yields an IAM policy for the whole stage (API Gateway caches it per
token, so one policy must serve every route) and the caller's ``userId`` (the JWT ``sub``)
as context. Anything else raises ``Unauthorized``, which API Gateway turns into a 401;
why a token was refused is logged, never returned.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from handlers import init_done
from handlers.shared.log import get_logger
from handlers.shared.settings import load_settings
from handlers.shared.tokens import JwksCache, TokenError, TokenVerifier, http_jwks_fetcher

logger = get_logger("authorizer")


class AuthorizerSettings(msgspec.Struct, frozen=True):
    AUTH_ISSUER: str
    AUTH_AUDIENCE: str
    JWKS_TTL_SECONDS: int = 600
    LOG_LEVEL: str = "INFO"


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__("Unauthorized")  # the exact message API Gateway maps to 401


def stage_wildcard(method_arn: str) -> str:
    """``arn:...:apiId/stage/GET/v1/x`` → ``arn:...:apiId/stage/*``."""
    prefix, _, path = method_arn.partition(":execute-api:")
    parts = path.split("/")
    if not prefix or len(parts) < 2:
        raise Unauthorized()
    return f"{prefix}:execute-api:{parts[0]}/{parts[1]}/*"


def token_of(event: dict[str, Any]) -> str:
    if event.get("type") == "TOKEN":
        raw = event.get("authorizationToken") or ""
        scheme, _, token = raw.partition(" ")
        # The scheme is case-insensitive (https://www.rfc-editor.org/rfc/rfc7235#section-2.1).
        return token.strip() if scheme.lower() == "bearer" else ""
    query = event.get("queryStringParameters") or {}
    return query.get("token") or ""


class Authorizer:
    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            claims = self.verifier.verify(token_of(event))
        except TokenError as error:
            logger.info("token refused", extra={"reason": str(error), "methodArn": event.get("methodArn")})
            raise Unauthorized() from None
        user = claims["sub"]
        return {
            "principalId": user,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": "execute-api:Invoke",
                        "Effect": "Allow",
                        "Resource": stage_wildcard(event.get("methodArn", "")),
                    }
                ],
            },
            "context": {"userId": user},
        }


def from_environment() -> Authorizer:
    settings = load_settings(AuthorizerSettings)
    logger.setLevel(settings.LOG_LEVEL)
    jwks = JwksCache(http_jwks_fetcher(settings.AUTH_ISSUER), ttl=settings.JWKS_TTL_SECONDS)
    return Authorizer(TokenVerifier(settings.AUTH_ISSUER, settings.AUTH_AUDIENCE, jwks))


app: Authorizer | None = from_environment() if "AUTH_ISSUER" in os.environ else None
init_done()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global app
    if app is None:
        app = from_environment()
    return app.handle(event)
