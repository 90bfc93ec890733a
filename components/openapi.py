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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from handlers.shared.models import REQUEST_MODELS

AUTHORIZER_TTL_SECONDS = 300
VALIDATOR = "body-and-params"

# Express turn errors → HTTP status. Anything not listed is a 502 (the turn failed).
TURN_ERROR_STATUS = {
    "DuplicateRequestError": 409,
    "SessionOwnershipError": 404,
    "ConflictError": 409,
    "MaxStepsExceeded": 422,
    "LlmUnavailableError": 503,
    "States.Timeout": 504,
}


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
    Gateway turns into its draft-4 models on import): one type per property, ``nullable``
    for optional values."""
    schema = msgspec.json.schema(model)
    name = schema["$ref"].rsplit("/", 1)[1]
    body = dict(schema["$defs"][name])
    body.pop("title", None)
    properties = {}
    for key, prop in body.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("default", None)
        if "anyOf" in prop:  # Optional[X]
            options = [o for o in prop.pop("anyOf") if o.get("type") != "null"]
            (option,) = options
            prop.update(option)
            prop["nullable"] = True
        if "enum" in prop and "type" not in prop:
            prop["type"] = "string"
        properties[key] = prop
    body["properties"] = properties
    return {"title": name, **body}


def _lambda_proxy(invoke_arn: str) -> dict[str, Any]:
    return {"type": "aws_proxy", "httpMethod": "POST", "uri": invoke_arn, "passthroughBehavior": "when_no_match"}


# The chat turn's input, built at the edge: nothing but the validated body, the path, the
# caller from the authorizer and the request id reaches the state machine.
# $util.escapeJavaScript turns ' into \', which is not JSON: every use undoes that.
_TURN_REQUEST = """#set($body = $input.path('$'))
#set($key = $input.params().header.get('Idempotency-Key'))
{
  "stateMachineArn": "%(machine)s",
  "name": "$context.requestId",
  "input": "{\\"sessionId\\": \\"$util.escapeJavaScript($input.params('sessionId')).replaceAll("\\\\'","'")\\", \\"userId\\": \\"$util.escapeJavaScript($context.authorizer.userId).replaceAll("\\\\'","'")\\", \\"message\\": $util.escapeJavaScript($input.json('$.message')).replaceAll("\\\\'","'"), \\"tools\\": #if($body.tools)$util.escapeJavaScript($input.json('$.tools')).replaceAll("\\\\'","'")#{else}null#end, \\"correlationId\\": \\"$context.requestId\\", \\"idempotencyKey\\": #if($key)\\"$util.escapeJavaScript($key).replaceAll("\\\\'","'")\\"#{else}null#end, \\"connectionId\\": null}",
  "traceHeader": "$input.params().header.get('X-Amzn-Trace-Id')"
}"""

_TURN_RESPONSE = """#set($result = $input.path('$'))
#set($context.responseOverride.header.x-request-id = $context.requestId)
#if($result.status == "SUCCEEDED")
$result.output
#else
#set($error = $result.error)
%(status_cases)s
{"error": {"code": "$util.escapeJavaScript($error)", "message": "the turn did not complete"}}
#end"""


def _turn_response_template() -> str:
    cases = []
    for index, (error, status) in enumerate(TURN_ERROR_STATUS.items()):
        keyword = "#if" if index == 0 else "#elseif"
        cases.append(f'{keyword}($error == "{error}")\n#set($context.responseOverride.status = {status})')
    cases.append("#else\n#set($context.responseOverride.status = 502)\n#end")
    return _TURN_RESPONSE % {"status_cases": "\n".join(cases)}


def _chat_turn_integration(targets: RestApiTargets) -> dict[str, Any]:
    return {
        "type": "aws",
        "httpMethod": "POST",
        "uri": f"arn:{targets.partition}:apigateway:{targets.region}:states:action/StartSyncExecution",
        "credentials": targets.turn_role_arn,
        # API Gateway's default (and, without a quota increase, its maximum) for REST
        # integrations: longer turns belong on the WebSocket API or in tasks.
        "timeoutInMillis": 29_000,
        "passthroughBehavior": "never",
        "requestTemplates": {"application/json": _TURN_REQUEST % {"machine": targets.turn_state_machine_arn}},
        "responses": {
            "default": {"statusCode": "200", "responseTemplates": {"application/json": _turn_response_template()}}
        },
    }


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(
    summary: str,
    integration: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body_model: str | None = None,
    authenticated: bool = True,
    success: str = "200",
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters or [],
        "responses": {
            success: {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": _error_response("the request is invalid; the error names the field"),
            "429": _error_response("throttled; retry after the Retry-After header"),
        },
        "x-amazon-apigateway-integration": integration,
    }
    if authenticated:
        operation["security"] = [{"jwt": [], "api_key": []}]
        operation["responses"]["401"] = _error_response("no valid token")
    else:
        operation["security"] = []
    if body_model:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body_model}"}}},
        }
        operation["x-amazon-apigateway-request-validator"] = VALIDATOR
    elif parameters:
        operation["x-amazon-apigateway-request-validator"] = VALIDATOR
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"},
    }


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
        "schema": {"type": "string", "maxLength": 128},
    }
    paths = {
        "/v1/sessions": {"get": _operation("the caller's recent sessions", router, parameters=_PAGE)},
        "/v1/sessions/{sessionId}/messages": {
            "post": _operation(
                "a chat turn (Step Functions StartSyncExecution on the Express turn, no Lambda in between)",
                _chat_turn_integration(targets),
                parameters=[_path_param("sessionId"), idempotency],
                body_model="ChatTurnRequest",
            ),
            "get": _operation(
                "the session's history, newest first", router, parameters=[_path_param("sessionId"), *_PAGE]
            ),
        },
        "/v1/tasks": {
            "post": _operation(
                "start a long-running task", router, parameters=[idempotency], body_model="TaskRequest", success="202"
            )
        },
        "/v1/tasks/{taskId}": {"get": _operation("a task's status", router, parameters=[_path_param("taskId")])},
        "/v1/approvals/{approvalId}": {
            "post": _operation(
                "approve or deny a waiting tool call",
                _lambda_proxy(targets.approval_invoke_arn),
                parameters=[_path_param("approvalId")],
                body_model="ApprovalRequest",
            )
        },
        "/v1/health": {
            "get": _operation(
                "deep health of this region (for Route 53)",
                _lambda_proxy(targets.health_invoke_arn),
                authenticated=False,
            )
        },
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
                        "identityValidationExpression": "^Bearer [-0-9A-Za-z._~+/]+=*$",
                    },
                },
                "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
            },
        },
        "x-amazon-apigateway-api-key-source": "HEADER",
        "x-amazon-apigateway-request-validators": {
            VALIDATOR: {"validateRequestBody": True, "validateRequestParameters": True},
        },
        "x-amazon-apigateway-gateway-responses": {
            kind: {
                "statusCode": status,
                "responseTemplates": {
                    "application/json": '{"error": {"code": "' + code + '", "message": $context.error.messageString}}'
                },
                "responseParameters": {"gatewayresponse.header.x-request-id": "context.requestId"},
            }
            for kind, status, code in (
                ("BAD_REQUEST_BODY", "400", "invalid_request"),
                ("BAD_REQUEST_PARAMETERS", "400", "invalid_request"),
                ("UNAUTHORIZED", "401", "unauthorized"),
                ("ACCESS_DENIED", "403", "forbidden"),
                ("THROTTLED", "429", "throttled"),
                ("QUOTA_EXCEEDED", "429", "quota_exceeded"),
                ("REQUEST_TOO_LARGE", "413", "payload_too_large"),
            )
        },
    }


def operations(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) of the document."""
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
