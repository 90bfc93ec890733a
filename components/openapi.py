"""The REST API as one OpenAPI 3 document with API Gateway extensions.

Pure: no Pulumi import. The document is the API: the component hands it to
``aws.apigateway.RestApi(body=...)`` and hashes it into the deployment's triggers, so any
change to a route, an integration or a model redeploys the stage. The tests validate it
with an independent OpenAPI validator and read the authorizers, validators and
integrations from it.

Request models are generated from the same msgspec structs the handlers decode with
(``handlers.shared.models``), so the edge and the function agree on what is valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from components.config import REST_INTEGRATION_TIMEOUT_SECONDS
from handlers.shared.models import (
    APPROVAL_ID_PATTERN,
    CORRELATION_ID_PATTERN,
    ID_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    REQUEST_MODELS,
    TURN_ERRORS,
    TURN_FAILED,
    TURN_TIMED_OUT,
    TurnError,
)

AUTHORIZER_TTL_SECONDS = 300
VALIDATOR = "body-and-params"
# The Idempotency-Key header as the routes read it: a key, or an empty value, which the router
# (handlers/shared/idempotent.py) and the turn's request template alike take for no key.
IDEMPOTENCY_HEADER_PATTERN = f"^({IDEMPOTENCY_KEY_PATTERN.removeprefix('^').removesuffix('$')})?$"
# The health route's own throttling (method settings): Route 53 probes it, nobody else should.
HEALTH_RATE_LIMIT = 5.0
HEALTH_BURST_LIMIT = 10


@dataclass(frozen=True)
class RestApiTargets:
    """What the routes call, in one region."""

    region: str
    router_invoke_arn: str
    approval_invoke_arn: str
    health_invoke_arn: str
    authorizer_invoke_arn: str
    turn_state_machine_arn: str
    turn_role_arn: str
    """Role API Gateway assumes to call StartSyncExecution on the turn."""
    partition: str = "aws"


def model_schema(model: type) -> dict[str, Any]:
    """A msgspec struct's JSON schema as an OpenAPI 3.0 schema object (the dialect API
    Gateway turns into its draft-4 models on import): one type per property. Optional
    fields are absent, never null: API Gateway's draft-4 models ignore ``nullable``
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/models-mappings-models.html),
    so a model that allows null is refused here rather than deployed to mean something else."""
    schema = msgspec.json.schema(model)
    name = schema["$ref"].rsplit("/", 1)[1]
    body = dict(schema["$defs"][name])
    body.pop("title", None)
    properties = {}
    for key, prop in body.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("default", None)
        if "anyOf" in prop or prop.get("type") == "null":
            raise ValueError(f"{name}.{key} allows null or several types; API Gateway models cannot say so")
        if "enum" in prop and "type" not in prop:
            prop["type"] = "string"
        properties[key] = prop
    body["properties"] = properties
    return {"title": name, **body}


# API Gateway's response types we shape (https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html).
# MISSING_AUTHENTICATION_TOKEN is also what a route or method that does not exist answers.
GATEWAY_RESPONSES = (
    ("BAD_REQUEST_BODY", "400", "invalid_request"),
    ("BAD_REQUEST_PARAMETERS", "400", "invalid_request"),
    ("UNAUTHORIZED", "401", "unauthorized"),
    ("ACCESS_DENIED", "403", "forbidden"),
    ("INVALID_API_KEY", "403", "forbidden"),
    ("MISSING_AUTHENTICATION_TOKEN", "403", "no_route"),
    ("THROTTLED", "429", "throttled"),
    ("QUOTA_EXCEEDED", "429", "quota_exceeded"),
    ("REQUEST_TOO_LARGE", "413", "payload_too_large"),
    ("UNSUPPORTED_MEDIA_TYPE", "415", "unsupported_media_type"),
    ("DEFAULT_4XX", None, "client_error"),
    ("DEFAULT_5XX", None, "gateway_error"),
)


# What API Gateway's own answers say beyond its default message, from the $context variables a
# gateway response's template may read
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html#context-variable-reference):
# the validator's reason ($context.error.validationErrorString), the method and path of a
# request no route matches ($context.httpMethod, $context.path). A static template cannot list
# the routes; the OpenAPI document does (make openapi).
_GATEWAY_MESSAGES = {
    "BAD_REQUEST_BODY": '"Invalid request body: $context.error.validationErrorString"',
    "MISSING_AUTHENTICATION_TOKEN": '"no route $context.httpMethod $context.path: this API has no such resource or'
    ' method (the routes are in its OpenAPI document)"',
    "INVALID_API_KEY": '"the x-api-key header is missing or not an API key of this API"',
}


def _lambda_proxy(invoke_arn: str) -> dict[str, Any]:
    return {"type": "aws_proxy", "httpMethod": "POST", "uri": invoke_arn, "passthroughBehavior": "when_no_match"}


# -- the chat turn's mapping templates (Velocity, rendered by API Gateway) -----------------
#
# The state machine's input is JSON inside the JSON string ``input`` of the StartSyncExecution
# request, so a value the caller controls is escaped twice: once to be a JSON string inside
# the input, once more for the input to be a JSON string itself. $util.escapeJavaScript is
# commons-lang's (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html#util-template-reference):
# it escapes ' as \', which JSON does not know, so every use turns \' back into '. Every
# other escape it writes (\" \\ \/ \b \f \n \r \t \uXXXX) is JSON. A value of any content
# (quotes, backslashes, control characters, U+2028, non-ASCII) then stays one string.
_UNDO_QUOTE = """.replaceAll("\\\\'","'")"""


def _escaped(expression: str) -> str:
    """VTL for ``expression`` escaped once: JSON text inside one JSON string."""
    return f"$util.escapeJavaScript({expression}){_UNDO_QUOTE}"


def _escaped_twice(expression: str) -> str:
    """VTL for the string ``expression`` as the content of a JSON string inside a JSON string."""
    return _escaped(_escaped(expression))


def turn_request_template(state_machine_arn: str) -> str:
    """The StartSyncExecution request for a chat turn. Only the validated body, the path's
    session id, the caller from the authorizer, the Idempotency-Key and a well-formed
    x-correlation-id (else the request id) reach the state machine. ``tools`` is tested for
    presence, not truthiness: ``[]`` means no tools, absent means every tool."""
    if '"' in state_machine_arn or "$" in state_machine_arn or "#" in state_machine_arn:
        raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
    fields = ", ".join(
        [
            f'\\"sessionId\\": \\"{_escaped_twice("$sessionId")}\\"',
            f'\\"userId\\": \\"{_escaped_twice("$context.authorizer.userId")}\\"',
            '\\"message\\": ' + _escaped("$input.json('$.message')"),
            "\\\"tools\\\": #if($body.containsKey('tools'))" + _escaped("$input.json('$.tools')") + "#{else}null#end",
            f'\\"correlationId\\": \\"{_escaped_twice("$correlation")}\\"',
            '\\"idempotencyKey\\": #if("$!key" != "")\\"' + _escaped_twice("$key") + '\\"#{else}null#end',
            '\\"connectionId\\": null',
        ]
    )
    return "\n".join(
        [
            "#set($body = $input.path('$'))",
            "#set($sessionId = $input.params().path.get('sessionId'))",
            # Header names are matched without regard to case (HTTP/2 clients send them in
            # lower case); a missing or empty value reads as "" in API Gateway, and "" is true
            # in #if, so presence is tested as "$!x" != "".
            *(f'#set(${var} = "")' for var, _ in _HEADERS),
            "#foreach($name in $input.params().header.keySet())",
            *(
                f'#if($name.toLowerCase() == "{header}")#set(${var} = $input.params().header.get($name))#end'
                for var, header in _HEADERS
            ),
            "#end",
            f"#if($offered.matches('{CORRELATION_ID_PATTERN}'))#set($correlation = $offered)"
            "#{else}#set($correlation = $context.requestId)#end",
            "{",
            f'  "stateMachineArn": "{state_machine_arn}",',
            '  "name": "$context.requestId",',
            '#if("$!trace" != "")',
            f'  "traceHeader": "{_escaped("$trace")}",',
            "#end",
            f'  "input": "{{{fields}}}"',
            "}",
        ]
    )


# Headers the turn reads: template variable, lower-case header name.
_HEADERS = (("key", "idempotency-key"), ("offered", "x-correlation-id"), ("trace", "x-amzn-trace-id"))


def _error_body(error: TurnError) -> str:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.field:
        body["field"] = error.field
    text = json.dumps({"error": body})
    if "$" in text or "#" in text:  # static text: nothing Velocity would read as a reference
        raise ValueError(f"turn error text may not hold $ or #: {text}")
    return text


def _answer_with(error: TurnError) -> list[str]:
    return [f"#set($context.responseOverride.status = {error.status})", _error_body(error)]


def turn_response_template() -> str:
    """The StartSyncExecution answer as the API's: the turn's output on SUCCEEDED; else the
    status and error body of TURN_ERRORS (TIMED_OUT: 504; anything else: 502). An error from
    Step Functions itself (no ``status``: throttling, a missing machine) is 429 or 502."""
    lines = [
        "#set($result = $input.path('$'))",
        "#set($context.responseOverride.header.x-request-id = $context.requestId)",
        '#if($result.status == "SUCCEEDED")',
        "$result.output",
        '#elseif($result.status == "TIMED_OUT")',
        *_answer_with(TURN_TIMED_OUT),
        # An error of Step Functions itself has no status ("" here: null reads as "").
        '#elseif("$!result.status" == "")',
        "#set($type = \"$!result.get('__type')\")",
        "#if($type.contains('Throttling') || $type.contains('ExecutionLimitExceeded'))",
        *_answer_with(TurnError(429, "throttled", "too many requests; retry after a pause")),
        "#else",
        *_answer_with(TURN_FAILED),
        "#end",
        "#else",
        "#set($error = $result.error)",
    ]
    for index, (name, error) in enumerate(TURN_ERRORS.items()):
        lines.append(f'{"#if" if index == 0 else "#elseif"}($error == "{name}")')
        lines.extend(_answer_with(error))
    lines += ["#else", *_answer_with(TURN_FAILED), "#end", "#end"]
    return "\n".join(lines)


def _chat_turn_integration(targets: RestApiTargets) -> dict[str, Any]:
    return {
        "type": "aws",
        "httpMethod": "POST",
        "uri": f"arn:{targets.partition}:apigateway:{targets.region}:states:action/StartSyncExecution",
        "credentials": targets.turn_role_arn,
        # API Gateway's default (and, without a quota increase, its maximum) for REST
        # integrations. The turn's own timeout is below it (workflow.expressTimeoutSeconds), so a
        # slow turn stops and answers with the response template's 504; longer work is a task.
        "timeoutInMillis": REST_INTEGRATION_TIMEOUT_SECONDS * 1000,
        "passthroughBehavior": "never",
        "requestTemplates": {"application/json": turn_request_template(targets.turn_state_machine_arn)},
        "responses": {
            "default": {"statusCode": "200", "responseTemplates": {"application/json": turn_response_template()}}
        },
    }


# What each status means; every operation lists exactly the statuses it can answer.
STATUS_MEANINGS = {
    "400": "the request is invalid; the error names the field",
    "401": "no valid token",
    "403": "no valid API key, or a route that does not exist",
    "404": "not found (or not the caller's)",
    "409": "conflicts with the current state (already decided, in progress, used key)",
    "410": "no longer waiting for a decision",
    "413": "the body, or the request line and headers, too large",
    "415": "the body is not application/json",
    "422": "the request cannot be processed as sent",
    "429": "throttled; retry after a pause",
    "500": "internal error; quote the x-request-id header",
    "502": "the turn did not complete",
    "503": "a backing service or the model is unavailable; retry shortly",
    "504": "the turn took too long",
}
# Every route can answer these (API Gateway: throttling, a request line and headers over its
# 10,240-byte quota); every authenticated one these too (auth, API key, validation, an AWS
# dependency down); every one with a body, these.
_ANY = ("413", "429")
_AUTHENTICATED = ("400", "401", "403", "503")
_WITH_BODY = ("415",)


def _error_response(status: str) -> dict[str, Any]:
    return {
        "description": STATUS_MEANINGS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(
    summary: str,
    integration: dict[str, Any],
    *,
    statuses: tuple[str, ...],
    parameters: list[dict[str, Any]] | None = None,
    body_model: str | None = None,
    authenticated: bool = True,
    success: str = "200",
) -> dict[str, Any]:
    errors = sorted({*statuses, *_ANY, *(_AUTHENTICATED if authenticated else ()), *(_WITH_BODY if body_model else ())})
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters or [],
        "responses": {
            success: {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
            **{status: _error_response(status) for status in errors},
        },
        "x-amazon-apigateway-integration": integration,
    }
    operation["security"] = [{"jwt": [], "api_key": []}] if authenticated else []
    if body_model:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body_model}"}}},
        }
        operation["x-amazon-apigateway-request-validator"] = VALIDATOR
    elif parameters:
        operation["x-amazon-apigateway-request-validator"] = VALIDATOR
    return operation


def _path_param(name: str, pattern: str = ID_PATTERN) -> dict[str, Any]:
    # API Gateway checks only that a path parameter is there, not its pattern; the
    # integration behind each route enforces it, with the same 400 everywhere.
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": pattern}}


_PAGE = [
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 1024}},
]


def rest_api_document(targets: RestApiTargets, title: str = "agent-infra") -> dict[str, Any]:
    router = _lambda_proxy(targets.router_invoke_arn)
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "1-128 visible ASCII characters; an empty value is no key",
        "schema": {"type": "string", "pattern": IDEMPOTENCY_HEADER_PATTERN},
    }
    paths = {
        "/v1/sessions": {
            "get": _operation("the caller's recent sessions", router, statuses=("500",), parameters=_PAGE)
        },
        "/v1/sessions/{sessionId}/messages": {
            "post": _operation(
                "a chat turn (Step Functions StartSyncExecution on the Express turn, no Lambda in between)",
                _chat_turn_integration(targets),
                statuses=tuple(sorted({str(e.status) for e in (*TURN_ERRORS.values(), TURN_TIMED_OUT, TURN_FAILED)})),
                parameters=[_path_param("sessionId"), idempotency],
                body_model="ChatTurnRequest",
            ),
            "get": _operation(
                "the session's history, newest first",
                router,
                statuses=("404", "500"),
                parameters=[_path_param("sessionId"), *_PAGE],
            ),
        },
        "/v1/tasks": {
            "post": _operation(
                "start a long-running task",
                router,
                statuses=("404", "409", "422", "500"),
                parameters=[idempotency],
                body_model="TaskRequest",
                success="202",
            )
        },
        "/v1/tasks/{taskId}": {
            "get": _operation("a task's status", router, statuses=("404", "500"), parameters=[_path_param("taskId")])
        },
        "/v1/approvals/{approvalId}": {
            "post": _operation(
                "approve or deny a waiting tool call",
                _lambda_proxy(targets.approval_invoke_arn),
                statuses=("404", "409", "410", "500"),
                parameters=[_path_param("approvalId", APPROVAL_ID_PATTERN)],
                body_model="ApprovalRequest",
            )
        },
        "/v1/health": {
            "get": _operation(
                "deep health of this region (for Route 53)",
                _lambda_proxy(targets.health_invoke_arn),
                statuses=("429", "503"),
                authenticated=False,
            )
        },
    }
    # Health answers 503 with the same report as its 200 (which check failed), not an error.
    paths["/v1/health"]["get"]["responses"]["503"] = {
        "description": "a dependency of this region is unhealthy; Route 53 routes elsewhere",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    schemas: dict[str, Any] = {name: model_schema(model) for name, model in REQUEST_MODELS.items()}
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
            }
        },
    }
    return {
        "openapi": "3.0.1",
        "info": {"title": title, "version": "1.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "jwt": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "custom",
                    "x-amazon-apigateway-authorizer": {
                        "type": "token",
                        "authorizerUri": targets.authorizer_invoke_arn,
                        "authorizerResultTtlInSeconds": AUTHORIZER_TTL_SECONDS,
                        # The scheme in any case (RFC 7235 section 2.1: "a case-insensitive token",
                        # https://www.rfc-editor.org/rfc/rfc7235#section-2.1), then the token68.
                        "identityValidationExpression": "^[Bb][Ee][Aa][Rr][Ee][Rr] +[-0-9A-Za-z._~+/]+=*$",
                    },
                },
                "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
            },
        },
        "x-amazon-apigateway-api-key-source": "HEADER",
        "x-amazon-apigateway-request-validators": {
            VALIDATOR: {"validateRequestBody": True, "validateRequestParameters": True},
        },
        # API Gateway's own answers (auth, throttling, validation, unknown routes) in the
        # API's error shape. Their header mappings may only take request parameters or
        # literals (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-gateway-responses.responseParameters.html),
        # so the request id is the x-amzn-RequestId header API Gateway adds to every answer;
        # the body templates may read $context
        # (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-gatewayResponse-definition.html).
        "x-amazon-apigateway-gateway-responses": {
            kind: {
                # The DEFAULT_ types keep the status of whatever answer they shape.
                **({"statusCode": status} if status else {}),
                "responseTemplates": {
                    "application/json": '{"error": {"code": "'
                    + code
                    + '", "message": '
                    + _GATEWAY_MESSAGES.get(kind, "$context.error.messageString")
                    + "}}"
                },
            }
            for kind, status, code in GATEWAY_RESPONSES
        },
    }


def operations(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of the document."""
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
