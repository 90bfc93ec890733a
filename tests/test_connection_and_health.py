"""The WebSocket connection handler and the health check, with real event shapes, on moto."""

from __future__ import annotations

import json

import boto3
import pytest

from handlers.connection import Connections, ConnectionSettings
from handlers.health import Health, HealthSettings
from tests.conftest import REGION, TABLE_NAME

TURN = "agent-infra-test-turn"


@pytest.fixture
def machines(dynamodb):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    turn = sfn.create_state_machine(name=TURN, definition=definition, roleArn=role, type="EXPRESS")["stateMachineArn"]
    task = sfn.create_state_machine(name="agent-infra-test-task", definition=definition, roleArn=role)[
        "stateMachineArn"
    ]
    return sfn, turn, task


def ws_event(route, connection_id="abc123=", body=None, user="alice"):
    context = {
        "routeKey": route,
        "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE"),
        "connectionId": connection_id,
        "requestId": "req-0001-abcdef",
        "domainName": "ws123.execute-api.us-east-1.amazonaws.com",
        "stage": "v1",
        "apiId": "ws123",
        "connectedAt": 1795700000000,
        "requestTimeEpoch": 1795700000100,
        "identity": {"sourceIp": "203.0.113.9"},
    }
    if user:
        context["authorizer"] = {"principalId": user, "userId": user}
    event = {"requestContext": context, "isBase64Encoded": False}
    if body is not None:
        event["body"] = json.dumps(body)
    return event


@pytest.fixture
def connections(store, machines):
    sfn, turn, _ = machines
    return Connections(
        ConnectionSettings(TABLE_NAME=TABLE_NAME, AWS_REGION=REGION, TURN_STATE_MACHINE_ARN=turn), store, lambda: sfn
    )


def test_connect_stores_the_connection_with_user_region_and_ttl(connections, store):
    assert connections.handle(ws_event("$connect"))["statusCode"] == 200
    stored = store.connections.get("abc123=")
    assert (stored.user_id, stored.region) == ("alice", REGION)
    assert connections.handle(ws_event("$connect", user=None))["statusCode"] == 401


def test_send_message_starts_a_turn_with_the_connection(connections, machines):
    sfn, turn, _ = machines
    connections.handle(ws_event("$connect"))
    response = connections.handle(
        ws_event("sendMessage", body={"action": "sendMessage", "sessionId": "s1", "message": "hi"})
    )
    assert response["statusCode"] == 202
    (execution,) = sfn.list_executions(stateMachineArn=turn)["executions"]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["connectionId"] == "abc123=" and started["userId"] == "alice" and started["message"] == "hi"
    assert set(started) >= {"sessionId", "tools", "correlationId", "idempotencyKey"}


def test_bad_messages_and_unknown_actions(connections):
    connections.handle(ws_event("$connect"))
    bad = connections.handle(
        ws_event("sendMessage", body={"action": "sendMessage", "sessionId": "bad id!", "message": "x"})
    )
    assert bad["statusCode"] == 400
    assert json.loads(bad["body"]) == {
        "type": "error",
        "code": "invalid_request",
        "message": "sessionId must be 1-64 letters, digits, '-' or '_'",
        "field": "sessionId",
    }
    unknown = connections.handle(ws_event("$default", body={"action": "dance"}))
    assert unknown["statusCode"] == 400 and json.loads(unknown["body"])["code"] == "unknown_action"


def test_disconnect_forgets_the_connection_and_later_messages_are_refused(connections, store):
    connections.handle(ws_event("$connect"))
    assert connections.handle(ws_event("$disconnect"))["statusCode"] == 200
    assert store.connections.get("abc123=") is None
    late = connections.handle(
        ws_event("sendMessage", body={"action": "sendMessage", "sessionId": "s1", "message": "hi"})
    )
    assert late["statusCode"] == 410


def test_health_is_ok_when_table_and_machines_are_active_and_cached(dynamodb, machines):
    sfn, turn, task = machines
    calls = []

    class CountingDynamo:
        def describe_table(self, **kwargs):
            calls.append(1)
            return dynamodb.describe_table(**kwargs)

    now = [0.0]
    settings = HealthSettings(
        TABLE_NAME=TABLE_NAME, AWS_REGION=REGION, TURN_STATE_MACHINE_ARN=turn, TASK_STATE_MACHINE_ARN=task
    )
    health = Health(settings, CountingDynamo(), sfn, clock=lambda: now[0])
    response = health.handle({"resource": "/v1/health", "httpMethod": "GET"})
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {
        "status": "ok",
        "region": REGION,
        "checks": {"table": "ok", "turn": "ok", "task": "ok"},
    }
    health.handle({})
    assert len(calls) == 1, "cached between health checks"
    now[0] = 11
    health.handle({})
    assert len(calls) == 2


def test_health_reports_what_is_down(dynamodb, machines):
    sfn, turn, _ = machines
    settings = HealthSettings(
        TABLE_NAME="missing-table",
        AWS_REGION=REGION,
        TURN_STATE_MACHINE_ARN=turn,
        TASK_STATE_MACHINE_ARN=turn.replace("turn", "gone"),
    )
    response = Health(settings, dynamodb, sfn).handle({})
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["checks"] == {"table": "unreachable", "turn": "ok", "task": "unreachable"}
