"""API Gateway REST proxy events in and out: typed errors, JSON bodies, the caller, routes.

Every error response has the shape ``{"error": {"code", "message", "field"?}}`` and the
request id in ``x-request-id``; nothing internal (a stack trace, an ARN) leaves here. A REST
handler names its routes and calls :func:`handle_routes`: an unknown route is 404, a known
resource with another method 405 with ``Allow``, a request without a caller 401, and an AWS
error the handler did not catch becomes 429, 503 or 500 (:func:`aws_error`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from handlers.shared.log import log_context
from handlers.shared.models import CORRELATION_ID_PATTERN

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

T = TypeVar("T")

JSON_TYPES = ("application/json",)
_THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}
_UNAVAILABLE = {"InternalServerError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException"}
# Our own table or state machine is missing: an outage, not the client's fault.
_MISSING_RESOURCE = {"ResourceNotFoundException", "StateMachineDoesNotExist"}
_FIELD_AT = re.compile(r"at `\$\.?([^`]*)`")
_FIELD_NAMED = re.compile(r"field `([^`]+)`")


class ApiError(Exception):
    """An error the client can act on; becomes its HTTP status and a JSON error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


class Request(msgspec.Struct, frozen=True):
    """The parts of a REST proxy event the handlers use."""

    method: str
    resource: str  # the route template, e.g. /v1/sessions/{sessionId}/messages
    path_params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    request_id: str
    caller: str | None
    correlation_id: str
    raw: dict[str, Any] = msgspec.field(default_factory=dict)
    body_problem: str | None = None
    """Why the body could not be read as bytes of UTF-8 text, if it could not."""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


_CORRELATION = re.compile(CORRELATION_ID_PATTERN)


def parse_event(event: dict[str, Any]) -> Request:
    context = event.get("requestContext") or {}
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}
    raw_body, body_problem = _body_bytes(event.get("body") or "", bool(event.get("isBase64Encoded")))
    request_id = context.get("requestId") or "unknown"
    authorizer = context.get("authorizer") or {}
    caller = authorizer.get("userId") or authorizer.get("principalId")
    # A client may bring its own correlation id; anything odd-looking is replaced, not echoed.
    offered = headers.get("x-correlation-id", "")
    correlation = offered if _CORRELATION.fullmatch(offered) else request_id
    return Request(
        method=(event.get("httpMethod") or "").upper(),
        resource=event.get("resource") or event.get("path") or "",
        path_params=dict(event.get("pathParameters") or {}),
        query=dict(event.get("queryStringParameters") or {}),
        headers=headers,
        body=raw_body,
        request_id=request_id,
        caller=str(caller) if caller else None,
        correlation_id=correlation,
        raw=event,
        body_problem=body_problem,
    )


def _body_bytes(body: str, base64_encoded: bool) -> tuple[bytes, str | None]:
    """The body's bytes, or why there are none: API Gateway hands over binary bodies as
    base64, and a text body that holds a lone surrogate cannot be UTF-8."""
    if base64_encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b"", "the body is marked as base64 but is not valid base64"
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            return b"", "the body holds a lone surrogate (half of a UTF-16 pair); send UTF-8 text"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return b"", f"the body is not valid UTF-8 (byte {error.start})"
    return raw, None


def field_of(error: msgspec.ValidationError) -> str | None:
    """The JSON path of the field a msgspec error is about, e.g. ``message`` or ``tools[0]``."""
    text = str(error)
    for pattern in (_FIELD_AT, _FIELD_NAMED):
        found = pattern.search(text)
        if found:
            return found.group(1) or None
    return None


def parse_body(request: Request, model: type[T], max_bytes: int) -> T:
    """Decode and validate a JSON body: 415 for another content type, 413 when too large,
    400 naming the field for a bad value."""
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {content_type or 'no content type'!r}",
        )
    if request.body_problem:
        raise ApiError(400, "invalid_body", request.body_problem)
    if len(request.body) > max_bytes:
        raise ApiError(
            413, "payload_too_large", f"the body is {len(request.body)} bytes; at most {max_bytes} are accepted"
        )
    try:
        return msgspec.json.decode(request.body, type=model)
    except msgspec.ValidationError as error:
        found = field_of(error)
        message = str(error).split(" - at ")[0]
        raise ApiError(400, "invalid_request", message, field=found) from None
    except msgspec.DecodeError as error:
        raise ApiError(
            400, "invalid_json", f"the body is not valid JSON: {_decode_problem(request.body, error)}"
        ) from None


def _decode_problem(body: bytes, error: msgspec.DecodeError) -> str:
    """msgspec refuses an escaped lone surrogate ("\\ud800") as "truncated"; say what it is."""
    import json

    try:
        json.loads(body)
    except ValueError:
        return str(error)
    return "it holds an escaped lone surrogate (\\uD800-\\uDFFF without its pair)"


def parse_query(request: Request, model: type[T]) -> T:
    """Validate query parameters (strings converted to the field types)."""
    try:
        return msgspec.convert(request.query, model, strict=False)
    except msgspec.ValidationError as error:
        raise ApiError(400, "invalid_request", str(error).split(" - at ")[0], field=field_of(error)) from None


def respond(status: int, body: Any, request: Request | None = None, headers: dict[str, str] | None = None) -> dict:
    out_headers = {"content-type": "application/json"}
    if request is not None:
        out_headers["x-request-id"] = request.request_id
        out_headers["x-correlation-id"] = request.correlation_id
    out_headers.update(headers or {})
    return {
        "statusCode": status,
        "headers": out_headers,
        "body": msgspec.json.encode(body).decode() if body is not None else "",
    }


def error_response(error: ApiError, request: Request | None) -> dict:
    return respond(error.status, error.body(), request, error.headers)


def internal_error(request: Request | None) -> dict:
    return respond(
        500, {"error": {"code": "internal", "message": "internal error; quote the x-request-id header"}}, request
    )


def handle_proxy(
    event: dict[str, Any],
    serve: Callable[[Request], dict],
    logger: logging.Logger,
    on_aws_error: Callable[[ClientError], ApiError] | None = None,
) -> dict:
    """One REST proxy request, end to end: parse, log every line with the correlation id,
    turn ApiError (and, with ``on_aws_error``, botocore's ClientError) into its response, and
    anything unexpected into a 500 that shows no internals."""
    from botocore.exceptions import ClientError

    try:
        request = parse_event(event)
    except Exception:
        logger.exception("malformed proxy event")
        return internal_error(None)
    with log_context(correlationId=request.correlation_id, requestId=request.request_id, caller=request.caller):
        try:
            response = serve(request)
        except ApiError as error:
            logger.info("request refused", extra={"status": error.status, "code": error.code, "field": error.field})
            return error_response(error, request)
        except ClientError as error:
            if on_aws_error is None:
                logger.exception("unexpected AWS error")
                return internal_error(request)
            return error_response(on_aws_error(error), request)
        except Exception:
            logger.exception("unexpected error")
            return internal_error(request)
        logger.info(
            "request served",
            extra={"method": request.method, "resource": request.resource, "status": response["statusCode"]},
        )
        return response


# -- routes ----------------------------------------------------------------------------------

Route = Callable[[Request], dict]


def dispatch(routes: Mapping[tuple[str, str], Route], request: Request) -> dict:
    """The route for the request's method and resource (API Gateway's route template): 404
    when the resource is not one of ours, 405 with ``Allow`` when the method is not, 401
    when the request carries no caller."""
    route = routes.get((request.method, request.resource))
    if route is None:
        allowed = sorted(m for m, r in routes if r == request.resource)
        if allowed:
            raise ApiError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                headers={"allow": ", ".join(allowed)},
            )
        raise ApiError(404, "not_found", f"no route {request.method} {request.resource}")
    if request.caller is None:
        raise ApiError(401, "unauthorized", "the request carries no caller identity")
    return route(request)


def aws_error(error: ClientError, logger: logging.Logger, not_found_codes: Mapping[str, str] | None = None) -> ApiError:
    """The answer to an AWS error a route did not handle: throttling is 429 and an outage
    503, both with ``retry-after``; an error code in ``not_found_codes`` is a 404 of the thing
    it names; anything else a 500. The code is logged, never sent."""
    code = error.response.get("Error", {}).get("Code", "")
    if code in _THROTTLED:
        logger.warning("throttled by AWS", extra={"awsError": code})
        return ApiError(429, "throttled", "too many requests; retry after a pause", headers={"retry-after": "1"})
    if code in _UNAVAILABLE:
        logger.warning("AWS unavailable", extra={"awsError": code})
        return ApiError(
            503, "unavailable", "a backing service is unavailable; retry shortly", headers={"retry-after": "2"}
        )
    missing = (not_found_codes or {}).get(code)
    if missing is not None:
        logger.warning(f"{missing} missing", extra={"awsError": code})
        return not_found(missing)
    if code in _MISSING_RESOURCE:
        logger.error("backing resource missing", extra={"awsError": code})
        return ApiError(
            503, "unavailable", "a backing service is unavailable; retry shortly", headers={"retry-after": "5"}
        )
    logger.error("AWS error", extra={"awsError": code})
    return ApiError(500, "internal", "internal error; quote the x-request-id header")


def handle_routes(
    event: dict[str, Any],
    routes: Mapping[tuple[str, str], Route],
    logger: logging.Logger,
    not_found_codes: Mapping[str, str] | None = None,
) -> dict:
    """One REST proxy request to one of ``routes`` (:func:`handle_proxy`, :func:`dispatch`,
    :func:`aws_error`)."""
    return handle_proxy(
        event,
        lambda request: dispatch(routes, request),
        logger,
        lambda error: aws_error(error, logger, not_found_codes),
    )
