"""API Gateway, locally: the REST API run from its own OpenAPI document, and the WebSocket API.

Nothing here re-implements what an integration does. ``RestApi`` reads the document the
Pulumi component deploys (``components.openapi.rest_api_document``) and does what API
Gateway does with it, in API Gateway's order:

1. route: the document's paths and methods; anything else is MISSING_AUTHENTICATION_TOKEN (403);
2. throttle: the stage's rate and burst (and the health route's own), THROTTLED (429);
3. authorize: the ``jwt`` security scheme's Lambda authorizer (TOKEN, its identity validation
   expression, results cached for the scheme's TTL), then the ``x-api-key`` (403);
4. validate: the operation's request validator, with the document's models checked by a JSON
   Schema draft 4 validator as API Gateway does
   (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html);
5. integrate: ``aws_proxy`` builds the REST proxy event and calls the function; ``aws`` renders
   the operation's real request template (``local.apigateway.vtl``), calls Step Functions'
   ``StartSyncExecution`` through boto3 (``local.stepfunctions.adapter`` answers it), and
   renders the real response template over the answer; the integration's timeout gives
   INTEGRATION_TIMEOUT (504);
6. API Gateway's own answers are the document's gateway responses, rendered the same way.

The servers are aiohttp's (HTTP and WebSocket on one event loop in a background thread); the
integrations are blocking and run on a thread pool, so a slow turn never holds up the others.

Not emulated: TLS and custom domain names (plain HTTP on 127.0.0.1), usage plans' quotas (a
key is checked, never counted), WAF, and API Gateway's access and execution logs (the stack
logs each request its own way).

One module on purpose: REST and WebSocket share the route table read from the OpenAPI
document, the authorizer's cache, throttling and the access log, as one API Gateway stage
does.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from components import naming
from handlers.shared.streaming import ConnectionGone
from local.apigateway.vtl import render_request_template, render_response_template

Handler = Callable[[dict[str, Any]], dict[str, Any]]

# API Gateway's hard limit on a REST request's payload
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# "Total combined size of request line and header values": 10240 bytes (same page).
MAX_REQUEST_LINE_AND_HEADERS = 10_240
# API Gateway WebSocket messages are at most 128 KB (same page, WebSocket API quotas).
MAX_WEBSOCKET_MESSAGE = 128 * 1024

# API Gateway's default status and message for each response type it raises here
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html).
_RESPONSE_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "UNAUTHORIZED": (401, "Unauthorized"),
    "ACCESS_DENIED": (403, "User is not authorized to access this resource"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "THROTTLED": (429, "Too Many Requests"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "BAD_REQUEST_PARAMETERS": (400, "Missing required request parameters"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "INTEGRATION_FAILURE": (502, "Internal server error"),
    "AUTHORIZER_FAILURE": (500, "Internal server error"),
}


class GatewayError(Exception):
    """An answer API Gateway gives itself, before or instead of the integration's;
    ``validation`` is the request validator's reason ($context.error.validationErrorString)."""

    def __init__(self, response_type: str, message: str | None = None, validation: str = "") -> None:
        status, default = _RESPONSE_TYPES[response_type]
        super().__init__(message or default)
        self.response_type = response_type
        self.status = status
        self.message = message or default
        self.validation = validation


NESTED_TOO_DEEP = "the body is nested too deeply to parse"
# API Gateway's request validator is java-json-tools' json-schema-validator: its messages
# (https://github.com/java-json-tools/json-schema-validator/blob/master/src/main/resources/com/github/fge/jsonschema/validator/validation.properties),
# JSON values and lists written as JSON without spaces, the whole report in [ ], as a deployed
# API's $context.error.validationErrorString reads in a recorded check of one (a public
# CloudWatch Synthetics canary asserting its API's 400 answers), e.g.
# '[object has missing required properties (["transactionId"])]' and
# '[instance type (boolean) does not match any allowed primitive type (allowed: ["string"])]'.
_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "null")


def _validator_message(error: Any) -> str:
    """One jsonschema (draft 4) error in json-schema-validator's words; its own words for a
    keyword our models do not use."""
    keyword, rule, value = error.validator, error.validator_value, error.instance
    messages = {
        "type": lambda: (
            f"instance type ({_json_type(value)}) does not match any allowed primitive type"
            f" (allowed: {_json(rule if isinstance(rule, list) else [rule])})"
        ),
        "additionalProperties": lambda: (
            "object instance has properties which are not allowed by the schema: "
            + _json(sorted(set(value) - set(error.schema.get("properties", {}))))
        ),
        "maxLength": lambda: f'string "{value}" is too long (length: {len(value)}, maximum allowed: {rule})',
        "minLength": lambda: f'string "{value}" is too short (length: {len(value)}, required minimum: {rule})',
        "pattern": lambda: f'ECMA 262 regex "{rule}" does not match input string "{value}"',
        "enum": lambda: f"instance value ({_json(value)}) not found in enum (possible values: {_json(rule)})",
        "minimum": lambda: f"numeric instance is lower than the required minimum (minimum: {rule}, found: {value})",
        "maximum": lambda: f"numeric instance is greater than the required maximum (maximum: {rule}, found: {value})",
        "minItems": lambda: (
            f"array is too short: must have at least {rule} elements but instance has {len(value)} elements"
        ),
        "maxItems": lambda: (
            f"array is too long: must have at most {rule} elements but instance has {len(value)} elements"
        ),
    }
    return messages[keyword]() if keyword in messages else error.message


def validation_error_string(errors: Sequence[Any]) -> str:
    """jsonschema's errors as API Gateway's $context.error.validationErrorString. The missing
    properties of one object are one message, as json-schema-validator reports them."""
    messages: list[str] = []
    reported: set[tuple] = set()
    for error in sorted(errors, key=lambda e: (list(e.absolute_path), e.validator)):
        if error.validator != "required":
            messages.append(_validator_message(error))
        elif tuple(error.absolute_path) not in reported:
            reported.add(tuple(error.absolute_path))
            absent = [name for name in error.validator_value if name not in error.instance]
            messages.append(f"object has missing required properties ({_json(sorted(absent))})")
    return "[" + ", ".join(messages) + "]"


@dataclass
class TokenBucket:
    """Rate and burst, as API Gateway's throttling applies them (token bucket)."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    """Seconds, monotonic; a test may hold it still."""
    _tokens: float = field(init=False)
    _at: float = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._tokens, self._at = float(self.burst), self.clock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


@dataclass(frozen=True)
class Route:
    resource: str
    method: str
    operation: dict[str, Any]
    pattern: re.Pattern


def _routes(document: Mapping[str, Any]) -> list[Route]:
    routes = []
    for resource, item in document["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(resource)) + "$")
        for method, operation in item.items():
            routes.append(Route(resource, method.upper(), operation, pattern))
    return routes


def rest_event(
    method: str,
    resource: str,
    *,
    path: str | None = None,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    base64_encoded: bool = False,
    authorizer: dict[str, Any] | None = None,
    request_id: str | None = None,
    api_key_id: str | None = None,
) -> dict[str, Any]:
    """A REST proxy integration event as API Gateway sends it (authorizer context included)
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html)."""
    if path is None:
        path = resource
        for name, value in (path_params or {}).items():
            path = path.replace("{" + name + "}", value)
    headers = dict(headers or {})
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{naming.STAGE}{path}",
            "stage": naming.STAGE,
            "requestId": request_id or str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": naming.STAND_IN_ACCOUNT_ID,
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1", "apiKeyId": api_key_id},
            "authorizer": authorizer,
            "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def _function_name(invoke_arn: str) -> str:
    """``arn:aws:apigateway:r:lambda:path/2015-03-31/functions/<function arn>/invocations`` → name."""
    function_arn = invoke_arn.split("/functions/", 1)[1].rsplit("/invocations", 1)[0]
    return function_arn.split(":")[6]


def _wire_json(value: Any) -> Any:
    """A boto3 answer as its JSON wire form (timestamps are epoch seconds there)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _wire_json(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_wire_json(v) for v in value]
    return value


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class RestApi:
    """The REST API of one region, run from its OpenAPI document (see the module docstring)."""

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        functions: Mapping[str, Handler],
        authorizer: Handler,
        api_keys: Mapping[str, str],
        stepfunctions: Any,
        rate_limit: float,
        burst_limit: int,
        method_limits: Mapping[tuple[str, str], tuple[float, int]] | None = None,
        log: Callable[[dict[str, Any]], None] = lambda entry: None,
        integration_workers: int = 64,
    ) -> None:
        """``functions``: function name → handler; ``api_keys``: key value → key id."""
        self.document = document
        self.routes = _routes(document)
        self.functions = dict(functions)
        self.authorizer = authorizer
        self.api_keys = dict(api_keys)
        self.stepfunctions = stepfunctions
        self.log = log
        self.stage_bucket = TokenBucket(rate_limit, burst_limit)
        self.method_buckets = {key: TokenBucket(*limits) for key, limits in (method_limits or {}).items()}
        self._auth_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._integrations = concurrent.futures.ThreadPoolExecutor(integration_workers, "local-integration")

    def close(self) -> None:
        self._integrations.shutdown(wait=False, cancel_futures=True)

    # -- one request, end to end ------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        refused: dict[str, str] = {}
        try:
            reply = self._handle(method, raw_path, dict(headers), body, request_id)
        except GatewayError as error:
            reply = self._gateway_response(error, request_id, method, urlsplit(raw_path).path)
            # API Gateway's own answer: which one and why, as its execution log says it.
            refused = {"errorType": error.response_type, "error": error.validation or error.message}
        reply.headers.setdefault("x-amzn-RequestId", request_id)
        self.log(
            {
                "message": "request",
                "correlationId": reply.headers.get("x-correlation-id", request_id),
                "requestId": request_id,
                "method": method,
                "path": urlsplit(raw_path).path,
                "status": reply.status,
                **refused,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
        )
        return reply

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, request_id: str) -> Reply:
        head = len(method) + len(raw_path) + sum(len(k) + len(v) for k, v in headers.items())
        if len(body) > MAX_PAYLOAD_BYTES or head > MAX_REQUEST_LINE_AND_HEADERS:
            raise GatewayError("REQUEST_TOO_LARGE")
        parts = urlsplit(raw_path)
        route, path_params = self._route(method, parts.path)
        bucket = self.method_buckets.get((route.method, route.resource), self.stage_bucket)
        if not bucket.take():
            raise GatewayError("THROTTLED")
        operation = route.operation
        authorizer, api_key_id = self._authorize(operation, route, headers)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self._validate(operation, headers, query, body)
        integration = operation["x-amazon-apigateway-integration"]
        timeout = integration.get("timeoutInMillis", 29_000) / 1000
        call: Callable[[], Reply]
        if integration["type"] == "aws_proxy":
            event = rest_event(
                method,
                route.resource,
                path=parts.path,
                path_params=path_params,
                query=query,
                headers=headers,
                **self._proxy_body(body),
                authorizer=authorizer,
                request_id=request_id,
                api_key_id=api_key_id,
            )

            def call() -> Reply:
                return self._lambda_proxy(_function_name(integration["uri"]), event)
        else:
            context = {
                "requestId": request_id,
                "stage": naming.STAGE,
                "accountId": naming.STAND_IN_ACCOUNT_ID,
                "apiId": "local",
                "resourcePath": route.resource,
                "httpMethod": method,
                "authorizer": authorizer or {},
                "identity": {"sourceIp": "127.0.0.1", "apiKeyId": api_key_id},
            }

            def call() -> Reply:
                return self._aws_integration(integration, headers, path_params, query, body, context)

        future = self._integrations.submit(call)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            # API Gateway stops waiting; the integration itself goes on (an execution runs to its end).
            raise GatewayError("INTEGRATION_TIMEOUT") from None

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for route in self.routes:
            match = route.pattern.match(path)
            if match and route.method == method:
                return route, match.groupdict()
        # An unknown resource or method, authenticated or not: API Gateway's 403.
        raise GatewayError("MISSING_AUTHENTICATION_TOKEN")

    # -- auth ----------------------------------------------------------------------------

    def _authorize(
        self, operation: Mapping[str, Any], route: Route, headers: Mapping[str, str]
    ) -> tuple[dict[str, Any] | None, str | None]:
        schemes = {name for requirement in operation.get("security", []) for name in requirement}
        authorizer = None
        declared = self.document["components"]["securitySchemes"]
        if "jwt" in schemes:
            authorizer = self._run_authorizer(declared["jwt"], route, headers)
        api_key_id = None
        if "api_key" in schemes:
            key = _header(headers, declared["api_key"]["name"])
            if key is None or key not in self.api_keys:
                raise GatewayError("INVALID_API_KEY")
            api_key_id = self.api_keys[key]
        return authorizer, api_key_id

    def _run_authorizer(self, scheme: Mapping[str, Any], route: Route, headers: Mapping[str, str]) -> dict[str, Any]:
        settings = scheme["x-amazon-apigateway-authorizer"]
        token = _header(headers, scheme["name"])
        expression = settings.get("identityValidationExpression")
        if not token or (expression and not re.fullmatch(expression, token)):
            raise GatewayError("UNAUTHORIZED")
        cached = self._auth_cache.get(token)
        now = time.monotonic()
        if cached is None or cached[0] <= now:
            try:
                decision = self.authorizer(
                    {
                        "type": "TOKEN",
                        "authorizationToken": token,
                        "methodArn": f"arn:aws:execute-api:local:{naming.STAND_IN_ACCOUNT_ID}:local/{naming.STAGE}/{route.method}{route.resource}",
                    }
                )
            except Exception:
                # A TOKEN authorizer answers "Unauthorized" by raising it (any error is a 401 here).
                raise GatewayError("UNAUTHORIZED") from None
            cached = (now + settings.get("authorizerResultTtlInSeconds", 300), decision)
            self._auth_cache[token] = cached
        decision = cached[1]
        statements = decision.get("policyDocument", {}).get("Statement", [])
        if not any(s.get("Effect") == "Allow" for s in statements):
            raise GatewayError("ACCESS_DENIED")
        # The context's values reach integrations as strings; principalId rides along.
        return {"principalId": decision.get("principalId"), **(decision.get("context") or {})}

    # -- validation --------------------------------------------------------------------------

    def _validate(
        self, operation: Mapping[str, Any], headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> None:
        name = operation.get("x-amazon-apigateway-request-validator")
        if name is None:
            return
        validator = self.document["x-amazon-apigateway-request-validators"][name]
        if validator.get("validateRequestParameters"):
            missing = [
                p["name"]
                for p in operation.get("parameters", [])
                if p.get("required")
                and p["in"] in ("header", "query")
                and not (_header(headers, p["name"]) if p["in"] == "header" else query.get(p["name"]))
            ]
            if missing:
                raise GatewayError(
                    "BAD_REQUEST_PARAMETERS", f"Missing required request parameters: [{', '.join(missing)}]"
                )
        content = (operation.get("requestBody") or {}).get("content", {})
        content_type = (_header(headers, "content-type") or "application/json").split(";")[0].strip().lower()
        if validator.get("validateRequestBody") and content_type in content:
            import jsonschema

            schema = _resolve(self.document, content[content_type]["schema"])
            try:
                document = json.loads(body.decode("utf-8") if body else "")
            except (UnicodeDecodeError, ValueError) as error:
                raise GatewayError("BAD_REQUEST_BODY", validation=f"[the body is not JSON: {error}]") from None
            except RecursionError:  # nested deeper than Python's parser goes: refused, not a 500
                raise GatewayError("BAD_REQUEST_BODY", validation=f"[{NESTED_TOO_DEEP}]") from None
            try:
                errors = list(jsonschema.Draft4Validator(schema).iter_errors(document))
            except RecursionError:
                raise GatewayError("BAD_REQUEST_BODY", validation=f"[{NESTED_TOO_DEEP}]") from None
            if errors:
                raise GatewayError("BAD_REQUEST_BODY", validation=validation_error_string(errors))

    # -- integrations --------------------------------------------------------------------

    @staticmethod
    def _proxy_body(body: bytes) -> dict[str, Any]:
        """Text as text; bytes that are not UTF-8 as base64, as API Gateway hands over binary."""
        if not body:
            return {"body": None, "base64_encoded": False}
        try:
            return {"body": body.decode("utf-8"), "base64_encoded": False}
        except UnicodeDecodeError:
            return {"body": base64.b64encode(body).decode(), "base64_encoded": True}

    def _lambda_proxy(self, function_name: str, event: dict[str, Any]) -> Reply:
        try:
            response = self.functions[function_name](event)
            status = int(response["statusCode"])
            headers = {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()}
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        except Exception as error:  # a function error or a malformed proxy answer: API Gateway's 502
            self.log({"message": "integration failed", "function": function_name, "error": type(error).__name__})
            raise GatewayError("INTEGRATION_FAILURE") from None
        return Reply(status, headers, data)

    def _aws_integration(
        self,
        integration: Mapping[str, Any],
        headers: Mapping[str, str],
        path_params: Mapping[str, str],
        query: Mapping[str, str],
        body: bytes,
        context: dict[str, Any],
    ) -> Reply:
        action = integration["uri"].rsplit("/", 1)[1]
        if action != "StartSyncExecution":
            raise GatewayError("INTEGRATION_FAILURE", f"the local stack has no integration for {action}")
        content_type = (_header(headers, "content-type") or "application/json").split(";")[0].strip().lower()
        template = integration.get("requestTemplates", {}).get(content_type)
        if template is None and integration.get("passthroughBehavior") == "never":
            raise GatewayError("UNSUPPORTED_MEDIA_TYPE")
        rendered = render_request_template(
            template,
            body=body.decode("utf-8", "replace"),
            path_params=path_params,
            query=query,
            headers=headers,
            context=context,
        )
        status, answer = self._start_sync_execution(rendered)
        responses = integration.get("responses", {})
        chosen = next(
            (r for pattern, r in responses.items() if pattern != "default" and re.fullmatch(pattern, str(status))),
            responses.get("default", {"statusCode": "200"}),
        )
        response_template = chosen.get("responseTemplates", {}).get("application/json")
        text = json.dumps(answer)
        out_headers = {"content-type": "application/json"}
        status_code = int(chosen.get("statusCode", 200))
        if response_template is not None:
            result = render_response_template(
                response_template,
                body=text,
                context=context,
                path_params=path_params,
                query=query,
                headers=headers,
            )
            text = result.body
            status_code = result.status_override or status_code
            out_headers.update({k.lower(): v for k, v in result.header_overrides.items()})
        return Reply(status_code, out_headers, text.strip().encode())

    def _start_sync_execution(self, rendered: str) -> tuple[int, dict[str, Any]]:
        """Send the rendered request to Step Functions as API Gateway does: its answer, or its
        error in the AWS JSON protocol's shape (``__type``, ``message``) with its status."""
        from botocore.exceptions import ClientError

        try:
            request = json.loads(rendered)
        except ValueError:
            return 400, {"__type": "SerializationException", "message": "the request is not JSON"}
        try:
            return 200, _wire_json(self.stepfunctions.start_sync_execution(**request))
        except ClientError as error:
            details = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            return status, {"__type": details.get("Code", ""), "message": details.get("Message", "")}
        except TypeError as error:  # a parameter StartSyncExecution does not take
            return 400, {"__type": "ValidationException", "message": str(error)}

    # -- API Gateway's own answers ---------------------------------------------------------

    def _gateway_response(self, error: GatewayError, request_id: str, method: str, path: str) -> Reply:
        responses = self.document.get("x-amazon-apigateway-gateway-responses", {})
        family = "DEFAULT_4XX" if error.status < 500 else "DEFAULT_5XX"
        configured = responses.get(error.response_type) or responses.get(family) or {}
        status = int(configured.get("statusCode") or error.status)
        template = configured.get("responseTemplates", {}).get("application/json")
        context = {
            "requestId": request_id,
            "httpMethod": method,
            "path": f"/{naming.STAGE}{path}",
            "error": {
                "message": error.message,
                "messageString": json.dumps(error.message),
                "responseType": error.response_type,
                # Arrives JSON-escaped: the recorded answers (see validation_error_string) parse
                # as JSON with the reason's quotes inside the template's "...".
                "validationErrorString": json.dumps(error.validation, ensure_ascii=False)[1:-1],
            },
        }
        if template is None:
            text = json.dumps({"message": error.message})
        else:
            text = render_response_template(template, body="{}", context=context).body
        headers = {"content-type": "application/json", "x-amzn-ErrorType": error.response_type}
        return Reply(status, headers, text.encode())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _resolve(document: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return dict(schema)
    name = ref.rsplit("/", 1)[1]
    return dict(document["components"]["schemas"][name])


# -- the servers ------------------------------------------------------------------------------


class EventLoopThread:
    """One asyncio loop in a daemon thread: the servers live on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="local-gateway-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float | None = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class PortInUseError(OSError):
    """The port the stack was asked to listen on is taken."""


async def _listen(app: Any, host: str, port: int) -> tuple[Any, int]:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise PortInUseError(error.errno, f"{host}:{port} is already in use") from None
    bound = site._server.sockets[0].getsockname()[1]  # the port chosen when 0 was asked
    return runner, bound


REQUEST_WORKERS = 128  # requests handled at once; more wait in the kernel's accept queue


def _drop(request: Any) -> None:
    """End a request's connection without an answer: what a client of a region that is down
    sees (the connection fails; there is no one to send a status)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


class RestServer:
    """Serves a :class:`RestApi` over HTTP on a loopback port. While ``available()`` is false
    (its region is down), every connection is dropped without an answer, those in flight
    included."""

    def __init__(
        self,
        api: RestApi,
        loop: EventLoopThread,
        host: str = "127.0.0.1",
        port: int = 0,
        available: Callable[[], bool] = lambda: True,
    ) -> None:
        from aiohttp import web

        self.api, self.loop, self.host = api, loop, host
        # Every request is handled as it arrives (throttled on arrival, as API Gateway does), not
        # queued behind the event loop's default executor (a handful of threads on a small machine).
        self._requests = concurrent.futures.ThreadPoolExecutor(REQUEST_WORKERS, "local-rest")

        self._in_flight: dict[int, Any] = {}  # requests are mappings, not hashable

        async def serve(request: web.Request) -> web.StreamResponse:
            if not available():
                _drop(request)
                return web.Response(status=503)  # never sent: the connection is gone
            self._in_flight[id(request)] = request
            try:
                return await handle(request)
            finally:
                self._in_flight.pop(id(request), None)

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            headers = dict(request.headers.items())
            reply = await asyncio.get_running_loop().run_in_executor(
                self._requests, api.handle, request.method, request.path_qs, headers, body
            )
            if not available():  # the region went down while the request ran
                _drop(request)
            return web.Response(status=reply.status, headers=reply.headers, body=reply.body)

        # The HTTP parser's own limits sit above API Gateway's, so API Gateway's answer is the one given.
        limits = 4 * MAX_REQUEST_LINE_AND_HEADERS
        app = web.Application(
            client_max_size=MAX_PAYLOAD_BYTES + 1024,
            handler_args={"max_line_size": limits, "max_field_size": limits},
        )
        app.router.add_route("*", "/{tail:.*}", serve)
        self._runner, self.port = loop.run(_listen(app, host, port))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def drop_all(self) -> None:
        """End every request in flight without an answer (its region went down)."""

        async def drop() -> None:
            for request in list(self._in_flight.values()):
                _drop(request)

        self.loop.run(drop())

    def stop(self) -> None:
        self.loop.run(self._runner.cleanup())
        self._requests.shutdown(wait=False, cancel_futures=True)
        self.api.close()


class WebSocketApi:
    """The WebSocket API: ``$connect`` through the REQUEST authorizer (``?token=``), messages
    routed by ``$request.body.action`` to the connection function, whose response body goes
    back to the client (the routes have a route response), and ``post`` for
    ``PostToConnection``."""

    def __init__(
        self,
        connection_handler: Handler,
        authorizer: Handler,
        loop: EventLoopThread,
        log: Callable[[dict[str, Any]], None] = lambda entry: None,
        host: str = "127.0.0.1",
        port: int = 0,
        available: Callable[[], bool] = lambda: True,
    ) -> None:
        from aiohttp import WSMsgType, web

        self.available = available

        self.connection_handler, self.authorizer, self.loop, self.log, self.host = (
            connection_handler,
            authorizer,
            loop,
            log,
            host,
        )
        self.connections: dict[str, Any] = {}
        self._lock = threading.Lock()

        async def session(request: web.Request) -> web.StreamResponse:
            if not self.available():
                _drop(request)
                return web.Response(status=503)  # never sent
            run = asyncio.get_running_loop().run_in_executor
            token = request.query.get("token", "")
            try:
                decision = await run(None, self.authorizer, self._authorizer_event(token))
                user = (decision.get("context") or {}).get("userId") or decision["principalId"]
            except Exception:
                self.log({"message": "websocket refused", "status": 401})
                return web.Response(status=401, text="Unauthorized\n")
            connection_id = base64.b64encode(uuid.uuid4().bytes[:9]).decode()
            connected = await run(None, self.connection_handler, self._event("$connect", connection_id, user))
            if connected.get("statusCode") != 200:
                return web.Response(status=int(connected.get("statusCode") or 403), text="Forbidden\n")
            websocket = web.WebSocketResponse(max_msg_size=MAX_WEBSOCKET_MESSAGE)
            await websocket.prepare(request)
            with self._lock:
                self.connections[connection_id] = websocket
            self.log({"message": "websocket connected", "connectionId": connection_id, "caller": user})
            try:
                async for message in websocket:
                    if message.type != WSMsgType.TEXT:
                        continue
                    route = self._route_of(message.data)
                    reply = await run(
                        None, self.connection_handler, self._event(route, connection_id, user, message.data)
                    )
                    if reply.get("body"):
                        await websocket.send_str(reply["body"])
            finally:
                with self._lock:
                    self.connections.pop(connection_id, None)
                await run(None, self.connection_handler, self._event("$disconnect", connection_id, user))
                self.log({"message": "websocket disconnected", "connectionId": connection_id})
            return websocket

        app = web.Application()
        app.router.add_get("/", session)
        self._runner, self.port = loop.run(_listen(app, host, port))

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @staticmethod
    def _route_of(text: str) -> str:
        try:
            action = json.loads(text).get("action")
        except (ValueError, AttributeError):
            action = None
        return "sendMessage" if action == "sendMessage" else "$default"

    @staticmethod
    def _authorizer_event(token: str) -> dict[str, Any]:
        return {
            "type": "REQUEST",
            "methodArn": f"arn:aws:execute-api:local:{naming.STAND_IN_ACCOUNT_ID}:local/{naming.STAGE}/$connect",
            "queryStringParameters": {"token": token},
        }

    @staticmethod
    def _event(route: str, connection_id: str, user: str | None, body: str | None = None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "routeKey": route,
            "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
            "connectionId": connection_id,
            "requestId": str(uuid.uuid4()),
            "stage": naming.STAGE,
            "apiId": "local",
            "domainName": "localhost",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
        }
        if user:
            context["authorizer"] = {"principalId": user, "userId": user}
        event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
        if body is not None:
            event["body"] = body
        return event

    def drop_all(self) -> None:
        """Cut every connection (its region went down): clients see them end abnormally."""

        async def drop() -> None:
            for websocket in list(self.connections.values()):
                transport = getattr(websocket, "_req", None) and websocket._req.transport
                if transport is not None:
                    transport.abort()

        self.loop.run(drop())

    def post(self, connection_id: str, data: bytes) -> None:
        """``PostToConnection``: ConnectionGone when the client is no longer there; a message
        over API Gateway's limit is refused as it would be."""
        if len(data) > MAX_WEBSOCKET_MESSAGE:
            raise ValueError(f"PayloadTooLargeException: {len(data)} bytes, at most {MAX_WEBSOCKET_MESSAGE}")
        with self._lock:
            websocket = self.connections.get(connection_id)
        if websocket is None or websocket.closed:
            raise ConnectionGone(connection_id)
        try:
            self.loop.run(websocket.send_str(data.decode()), timeout=10)
        except Exception:
            raise ConnectionGone(connection_id) from None

    def stop(self) -> None:
        async def close_all() -> None:
            for websocket in list(self.connections.values()):
                await websocket.close()
            await self._runner.cleanup()

        self.loop.run(close_all())
