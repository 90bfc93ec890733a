"""The APIs under Pulumi mocks: auth on every route but health, limits, validation, logs, the chat integration."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from components.openapi import RestApiTargets, operations, rest_api_document
from local.pulumi_mocks import run_program, stack_config

REST = "aws:apigateway/restApi:RestApi"


@pytest.fixture(scope="module")
def runs():
    return {stack: run_program(stack_config(stack), stack) for stack in ("dev", "prod")}


def regions(stack):
    return stack_config(stack)["agent-infra:regions"]


def documents(run):
    return {r.inputs["region"]: json.loads(r.inputs["body"]) for r in run.of_type(REST)}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_regional_rest_api_and_one_websocket_api_per_region(runs, stack):
    run = runs[stack]
    rest = run.of_type(REST)
    assert sorted(r.inputs["region"] for r in rest) == sorted(regions(stack))
    assert all(r.inputs["endpointConfiguration"]["types"] == "REGIONAL" for r in rest)
    ws = run.of_type("aws:apigatewayv2/api:Api")
    assert sorted(a.inputs["region"] for a in ws) == sorted(regions(stack))
    assert all(a.inputs["protocolType"] == "WEBSOCKET" for a in ws)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_method_but_health_has_the_jwt_authorizer_and_an_api_key(runs, stack):
    for document in documents(runs[stack]).values():
        ops = operations(document)
        assert {(p, m) for p, m, _ in ops} == {
            ("/v1/sessions", "get"),
            ("/v1/sessions/{sessionId}/messages", "post"),
            ("/v1/sessions/{sessionId}/messages", "get"),
            ("/v1/tasks", "post"),
            ("/v1/tasks/{taskId}", "get"),
            ("/v1/approvals/{approvalId}", "post"),
            ("/v1/health", "get"),
        }
        for path, method, op in ops:
            if path == "/v1/health":
                assert op["security"] == [], "health is open, for Route 53"
            else:
                assert op["security"] == [{"jwt": [], "api_key": []}], (path, method)
        authorizer = document["components"]["securitySchemes"]["jwt"]["x-amazon-apigateway-authorizer"]
        assert authorizer["type"] == "token" and authorizer["authorizerResultTtlInSeconds"] == 300
        assert ":function:" in authorizer["authorizerUri"] and "authorizer" in authorizer["authorizerUri"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_body_routes_are_validated_at_the_edge_with_the_handlers_models(runs, stack):
    for document in documents(runs[stack]).values():
        assert document["x-amazon-apigateway-request-validators"]["body-and-params"] == {
            "validateRequestBody": True,
            "validateRequestParameters": True,
        }
        for path, method, op in operations(document):
            if method == "post":
                schema_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                model = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
                assert op["x-amazon-apigateway-request-validator"] == "body-and-params", path
                assert model["additionalProperties"] is False
        chat = document["components"]["schemas"]["ChatTurnRequest"]
        assert chat["properties"]["message"]["maxLength"] == 32_000 and chat["required"] == ["message"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_rest_turn_times_out_before_api_gateway_stops_waiting(runs, stack):
    """API Gateway waits 29 s for a REST integration
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html):
    the turn it waits on must time out first, so its caller gets the response template's 504
    (TIMED_OUT) and the turn stops, not API Gateway's own 504 while the turn goes on."""
    run = runs[stack]
    machines = {m.state["arn"]: m for m in run.of_type("aws:sfn/stateMachine:StateMachine")}
    for region, document in documents(run).items():
        chat = document["paths"]["/v1/sessions/{sessionId}/messages"]["post"]["x-amazon-apigateway-integration"]
        (turn,) = [m for arn, m in machines.items() if arn in chat["requestTemplates"]["application/json"]]
        assert turn.inputs["type"] == "EXPRESS" and turn.inputs["region"] == region
        assert chat["timeoutInMillis"] <= 29_000
        turn_timeout = json.loads(turn.inputs["definition"])["TimeoutSeconds"]
        assert turn_timeout * 1000 < chat["timeoutInMillis"], f"{region}: the turn may run {turn_timeout} s"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_chat_route_calls_start_sync_execution_with_no_lambda(runs, stack):
    run = runs[stack]
    machines = {
        m.inputs["region"]: m for m in run.of_type("aws:sfn/stateMachine:StateMachine") if m.inputs["type"] == "EXPRESS"
    }
    for region, document in documents(run).items():
        chat = document["paths"]["/v1/sessions/{sessionId}/messages"]["post"]["x-amazon-apigateway-integration"]
        assert chat["type"] == "aws"
        assert chat["uri"] == f"arn:aws:apigateway:{region}:states:action/StartSyncExecution"
        assert machines[region].state["arn"] in chat["requestTemplates"]["application/json"]
        assert "lambda" not in chat["uri"]
        role = next(r for r in run.of_type("aws:iam/role:Role") if r.state["arn"] == chat["credentials"])
        (policy,) = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.state["name"]]
        statement = json.loads(policy.inputs["policy"])["Statement"][0]
        assert statement["Action"] == ["states:StartSyncExecution"] and statement["Resource"] == [
            machines[region].state["arn"]
        ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_throttling_usage_plans_and_quotas_match_the_config(runs, stack):
    run = runs[stack]
    api = stack_config(stack)["agent-infra:api"]
    settings = [
        m for m in run.of_type("aws:apigateway/methodSettings:MethodSettings") if m.inputs["methodPath"] == "*/*"
    ]
    assert len(settings) == len(regions(stack))
    for method_settings in settings:
        s = method_settings.inputs["settings"]
        assert (s["throttlingRateLimit"], s["throttlingBurstLimit"]) == (api["rateLimit"], api["burstLimit"])
        assert s["dataTraceEnabled"] is False
    health = [
        m
        for m in run.of_type("aws:apigateway/methodSettings:MethodSettings")
        if m.inputs["methodPath"] == "v1/health/GET"
    ]
    assert all(m.inputs["settings"]["throttlingRateLimit"] <= 5 for m in health), "health is cheap and rate limited"
    plans = run.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert len(plans) == len(regions(stack))
    for plan in plans:
        assert plan.inputs["quotaSettings"] == {"limit": api["quotaPerDay"], "period": "DAY"}
        assert plan.inputs["throttleSettings"] == {"rateLimit": api["rateLimit"], "burstLimit": api["burstLimit"]}
    assert len(run.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")) == len(regions(stack)) * len(
        api.get("clients", ["default"])
    )
    for stage in run.of_type("aws:apigatewayv2/stage:Stage"):
        route = stage.inputs["defaultRouteSettings"]
        assert (route["throttlingRateLimit"], route["throttlingBurstLimit"]) == (api["rateLimit"], api["burstLimit"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_access_logs_and_tracing_on_every_stage(runs, stack):
    run = runs[stack]
    groups = {g.state["arn"] for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    rest_stages = run.of_type("aws:apigateway/stage:Stage")
    assert len(rest_stages) == len(regions(stack))
    for stage in rest_stages:
        assert stage.inputs["xrayTracingEnabled"] is True
        logs = stage.inputs["accessLogSettings"]
        assert logs["destinationArn"] in groups
        fields = json.loads(logs["format"])
        assert fields["requestId"] == "$context.requestId" and fields["caller"] == "$context.authorizer.userId"
    for stage in run.of_type("aws:apigatewayv2/stage:Stage"):
        assert stage.inputs["accessLogSettings"]["destinationArn"] in groups
    expected_level = stack_config(stack)["agent-infra:api"].get("executionLogLevel", "ERROR")
    assert {
        m.inputs["settings"]["loggingLevel"] for m in run.of_type("aws:apigateway/methodSettings:MethodSettings")
    } == {expected_level}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deployments_are_redeployed_when_the_api_changes(runs, stack):
    import hashlib

    run = runs[stack]
    bodies = {r.state["id"]: r.inputs["body"] for r in run.of_type(REST)}
    for deployment in run.of_type("aws:apigateway/deployment:Deployment"):
        assert (
            deployment.inputs["triggers"]["document"]
            == hashlib.sha256(bodies[deployment.inputs["restApi"]].encode()).hexdigest()
        )
    for deployment in run.of_type("aws:apigatewayv2/deployment:Deployment"):
        assert len(deployment.inputs["triggers"]["routes"]) == 64


def test_websocket_routes_and_the_connect_authorizer(runs):
    run = runs["dev"]
    routes = run.of_type("aws:apigatewayv2/route:Route")
    by_region: dict[str, set] = {}
    for route in routes:
        by_region.setdefault(route.inputs["region"], set()).add(route.inputs["routeKey"])
        assert route.inputs["authorizationType"] == ("CUSTOM" if route.inputs["routeKey"] == "$connect" else "NONE")
    assert all(keys == {"$connect", "$disconnect", "sendMessage", "$default"} for keys in by_region.values())
    for authorizer in run.of_type("aws:apigatewayv2/authorizer:Authorizer"):
        assert authorizer.inputs["identitySources"] == ["route.request.querystring.token"]


def test_the_agent_step_may_stream_to_its_own_regions_websocket_only(runs):
    run = runs["prod"]
    ws_ids = {a.inputs["region"]: a.state["id"] for a in run.of_type("aws:apigatewayv2/api:Api")}
    for function in run.of_type("aws:lambda/function:Function"):
        if function.inputs["handler"] != "handlers.agent_step.handler":
            continue
        region = function.inputs["region"]
        assert (
            function.inputs["environment"]["variables"]["WEBSOCKET_ENDPOINT"]
            == f"https://{ws_ids[region]}.execute-api.{region}.amazonaws.com/live"
        )


def test_the_openapi_document_passes_an_independent_validator(runs):
    for document in documents(runs["prod"]).values():
        validate(document)


def test_the_validator_catches_a_broken_document():
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    document = rest_api_document(
        RestApiTargets("us-east-1", "arn:r", "arn:a", "arn:h", "arn:z", "arn:states:turn", "arn:iam:role")
    )
    validate(document)
    document["paths"]["/v1/tasks"]["post"]["responses"] = "not a map"
    with pytest.raises(OpenAPIValidationError):
        validate(document)


def test_review_fixes_hold(runs):
    run = runs["prod"]
    for integration in run.of_type("aws:apigatewayv2/integration:Integration"):
        assert integration.inputs["integrationMethod"] == "POST"
    for document in documents(run).values():
        chat = document["paths"]["/v1/sessions/{sessionId}/messages"]["post"]["x-amazon-apigateway-integration"]
        templates = [
            chat["requestTemplates"]["application/json"],
            *(r["responseTemplates"]["application/json"] for r in chat["responses"].values()),
        ]
        for template in templates:
            assert template.count("escapeJavaScript") == template.count(""".replaceAll("\\\\'","'")"""), (
                "every escape is undone for JSON"
            )
        assert chat["timeoutInMillis"] == 29_000
    for function in run.of_type("aws:lambda/function:Function"):
        if function.inputs["handler"] == "handlers.agent_step.handler":
            region = function.inputs["region"]
            (policy,) = [
                p
                for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
                if p.inputs["role"] == function.inputs["role"].rsplit("/", 1)[1]
            ]
            actions = {a for s in json.loads(policy.inputs["policy"])["Statement"] for a in s["Action"]}
            assert "bedrock:InvokeModelWithResponseStream" in actions, region
