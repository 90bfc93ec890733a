"""Real API Gateway REST proxy event shapes (with a Lambda authorizer), for handler tests."""

from __future__ import annotations

import json
from typing import Any

from local.apigateway.gateway import rest_event as gateway_event


def rest_event(
    method: str,
    resource: str,
    *,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    user: str | None = "alice",
) -> dict[str, Any]:
    """The event the local gateway sends (``local.apigateway.gateway.rest_event``: one shape
    for both), with a test's defaults: a JSON body, the headers a client sends, and the
    Lambda authorizer's context for ``user``."""
    all_headers = {
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "pytest",
        "X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000",
    }
    if body is not None or raw_body is not None:
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    return gateway_event(
        method,
        resource,
        path_params=path_params,
        query=query,
        headers=all_headers,
        body=raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        authorizer={"principalId": user, "userId": user, "integrationLatency": 12} if user else None,
    )


def json_body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response["body"] else None
