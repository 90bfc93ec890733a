"""The router Lambda on moto, with real REST proxy event shapes."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from botocore.stub import Stubber

from handlers.router import Router, RouterSettings, execution_arn
from handlers.shared.store import NewMessage, Store
from tests.conftest import REGION, TABLE_NAME
from tests.events import json_body, rest_event

MACHINE_NAME = "agent-infra-test-task"


@pytest.fixture
def machine(dynamodb):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    return sfn.create_state_machine(name=MACHINE_NAME, definition=definition, roleArn=role)["stateMachineArn"]


@pytest.fixture
def clients():
    return {}


@pytest.fixture
def router(dynamodb, machine, clients):
    settings = RouterSettings(
        TABLE_NAME=TABLE_NAME, AWS_REGION=REGION, TASK_STATE_MACHINE_ARN=machine, MAX_BODY_BYTES=2048
    )
    store = Store(TABLE_NAME, REGION, ttl_days=30, client=dynamodb)

    def stepfunctions(region):
        if region not in clients:
            clients[region] = boto3.client("stepfunctions", region_name=region)
        return clients[region]

    return Router(settings, store, stepfunctions)


def start(router, body, headers=None, user="alice"):
    return router.handle(rest_event("POST", "/v1/tasks", body=body, headers=headers, user=user))


def test_start_task_returns_202_with_a_task_id_and_starts_one_execution(router, machine):
    response = start(router, {"message": "summarise my tickets"})
    assert response["statusCode"] == 202
    body = json_body(response)
    assert body["status"] == "RUNNING" and body["taskId"] and body["sessionId"]
    assert response["headers"]["location"] == f"/v1/tasks/{body['taskId']}"
    assert response["headers"]["x-request-id"]
    executions = boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=machine)[
        "executions"
    ]
    assert [e["name"] for e in executions] == [body["taskId"]]
    task_input = json.loads(
        boto3.client("stepfunctions", region_name=REGION).describe_execution(
            executionArn=executions[0]["executionArn"]
        )["input"]
    )
    assert task_input["userId"] == "alice" and task_input["message"] == "summarise my tickets"
    assert task_input["correlationId"]
    # Everything the task machine's first state reads is there.
    from components.workflows import ModelCall, ToolRoute, WorkflowFunctions, WorkflowLimits, task_definition

    fn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    functions = WorkflowFunctions(fn, fn, fn, fn, [ToolRoute("calculator", fn)])
    begin = task_definition(functions, ModelCall("bedrock"), WorkflowLimits(4, 60))["States"]["Begin"]
    read = {p.split(".")[1] for k, p in begin["Parameters"].items() if k.endswith(".$") and p.startswith("$.")}
    assert read <= set(task_input)


def test_idempotent_replay_returns_the_first_response_and_never_starts_twice(router, machine):
    headers = {"Idempotency-Key": "order-42"}
    first = start(router, {"message": "do it"}, headers)
    second = start(router, {"message": "do it"}, headers)
    assert first["statusCode"] == second["statusCode"] == 202
    assert json_body(first) == json_body(second)
    assert second["headers"]["idempotent-replayed"] == "true"
    executions = boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=machine)[
        "executions"
    ]
    assert len(executions) == 1
    # The same key from another user is another request.
    other = start(router, {"message": "do it"}, headers, user="bob")
    assert json_body(other)["taskId"] != json_body(first)["taskId"]


def test_a_reused_key_with_another_body_is_422(router):
    start(router, {"message": "one"}, {"Idempotency-Key": "k1"})
    response = start(router, {"message": "two"}, {"Idempotency-Key": "k1"})
    assert response["statusCode"] == 422
    assert json_body(response)["error"] == {
        "code": "idempotency_key_reused",
        "message": "this Idempotency-Key was used with a different request body",
        "field": "Idempotency-Key",
    }


def test_a_key_still_in_progress_is_409_and_an_abandoned_one_is_taken_over(router, machine):
    key_hash_claim = router.store.idempotency.claim
    # Simulate a first request that claimed the key and died before finishing.
    import hashlib

    import msgspec

    from handlers.shared.models import TaskRequest

    key_hash = hashlib.sha256(b"alice\nk2").hexdigest()[:40]
    request_hash = hashlib.sha256(msgspec.json.encode(TaskRequest(message="go"))).hexdigest()
    assert key_hash_claim("alice", key_hash, request_hash) is None
    busy = start(router, {"message": "go"}, {"Idempotency-Key": "k2"})
    assert busy["statusCode"] == 409 and busy["headers"]["retry-after"] == "1"
    router._clock = lambda: 10**10  # much later: the claim is abandoned
    taken = start(router, {"message": "go"}, {"Idempotency-Key": "k2"})
    assert taken["statusCode"] == 202
    replay = start(router, {"message": "go"}, {"Idempotency-Key": "k2"})
    assert json_body(replay) == json_body(taken)


@pytest.mark.parametrize(
    ("body", "raw", "headers", "status", "field"),
    [
        ({"message": ""}, None, None, 400, "message"),
        ({"message": 3}, None, None, 400, "message"),
        ({}, None, None, 400, "message"),
        ({"message": "x", "extra": 1}, None, None, 400, "extra"),
        ({"message": "x", "sessionId": "bad id!"}, None, None, 400, "sessionId"),
        # null is never a value: API Gateway's draft-4 models refuse it, and so does the router.
        ({"message": "x", "sessionId": None}, None, None, 400, "sessionId"),
        ({"message": "x", "sessionId": "s" * 65}, None, None, 400, "sessionId"),
        (None, "{not json", None, 400, None),
        ({"message": "x" * 3000}, None, None, 413, None),
        ({"message": "x"}, None, {"Content-Type": "text/plain"}, 415, None),
        ({"message": "x"}, None, {"Idempotency-Key": "has space"}, 400, "Idempotency-Key"),
    ],
)
def test_bad_requests_get_a_clear_status_naming_the_field(router, body, raw, headers, status, field):
    event = rest_event("POST", "/v1/tasks", body=body, raw_body=raw, headers=headers)
    response = router.handle(event)
    assert response["statusCode"] == status
    error = json_body(response)["error"]
    assert error.get("field") == field
    assert error["message"]
    assert "Traceback" not in response["body"]


@pytest.mark.parametrize(
    ("body", "base64_encoded", "message"),
    [
        # The attacks that found it: each was a 500.
        ('{"message": "a\ud800b"}', False, "lone surrogate"),
        ("not base64 at all!", True, "not valid base64"),
        (base64.b64encode(b'{"message": "\xff\xfe"}').decode(), True, "not valid UTF-8"),
        ('{"message": "a\\ud800b"}', False, "escaped lone surrogate"),
    ],
)
def test_a_body_that_is_not_utf8_text_is_a_400_saying_why(router, body, base64_encoded, message):
    event = rest_event("POST", "/v1/tasks", raw_body="{}")
    event["body"], event["isBase64Encoded"] = body, base64_encoded
    response = router.handle(event)
    assert response["statusCode"] == 400, response
    assert message in json_body(response)["error"]["message"]


def test_task_status_reads_the_execution_and_hides_other_users_tasks(router):
    task_id = json_body(start(router, {"message": "hi"}))["taskId"]
    mine = router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": task_id}))
    assert mine["statusCode"] == 200
    assert json_body(mine)["taskId"] == task_id and json_body(mine)["status"] in ("RUNNING", "SUCCEEDED")
    theirs = router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": task_id}, user="bob"))
    assert theirs["statusCode"] == 404
    unknown = router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": "nope"}))
    assert unknown["statusCode"] == 404
    assert json_body(theirs) == json_body(unknown), "another user's task looks exactly like a missing one"


def test_a_running_task_shows_the_approval_it_waits_for(router):
    task_id = json_body(start(router, {"message": "open a ticket"}))["taskId"]
    router.store.approvals.put(task_id, 100, "create_ticket", {"title": "printer"}, "alice", "s1", "token-1", 3600)
    body = json_body(router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": task_id})))
    assert body["status"] == "RUNNING"
    assert body["pendingApproval"] == {
        "approvalId": f"{task_id}.100",
        "tool": "create_ticket",
        "input": {"title": "printer"},
    }
    router.store.approvals.decide(router.store.approvals.get(task_id, 100), "approve", "alice", None)
    body = json_body(router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": task_id})))
    assert "pendingApproval" not in body


def test_task_status_with_answer_and_failure(router, machine, clients):
    task_id = json_body(start(router, {"message": "hi"}))["taskId"]
    client = clients[REGION]
    arn = execution_arn(machine, task_id)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_execution",
            {
                "executionArn": arn,
                "stateMachineArn": machine,
                "status": "SUCCEEDED",
                "startDate": 0,
                "output": json.dumps({"answer": "42"}),
            },
            {"executionArn": arn},
        )
        stub.add_response(
            "describe_execution",
            {
                "executionArn": arn,
                "stateMachineArn": machine,
                "status": "FAILED",
                "startDate": 0,
                "error": "MaxStepsExceededError",
                "cause": "arn:aws:lambda:... internal",
            },
            {"executionArn": arn},
        )
        done = router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": task_id}))
        failed = router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": task_id}))
    assert json_body(done)["answer"] == "42"
    assert json_body(failed)["error"] == {"code": "MaxStepsExceededError"}
    assert "arn:aws" not in failed["body"], "the cause (internals) never leaves"


def test_throttling_becomes_429_with_retry_after(router, clients):
    task_id = json_body(start(router, {"message": "hi"}))["taskId"]
    with Stubber(clients[REGION]) as stub:
        stub.add_client_error("describe_execution", "ThrottlingException", "Rate exceeded", 400)
        response = router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": task_id}))
    assert response["statusCode"] == 429
    assert response["headers"]["retry-after"] == "1"
    assert json_body(response)["error"]["code"] == "throttled"


def test_history_is_newest_first_paginated_and_private(router):
    store = router.store
    store.sessions.create("alice", "s1")
    for i in range(5):
        store.conversations.append_message("s1", NewMessage(role="user", text=f"m{i}"))
    first = router.handle(
        rest_event("GET", "/v1/sessions/{sessionId}/messages", path_params={"sessionId": "s1"}, query={"limit": "2"})
    )
    assert first["statusCode"] == 200
    page = json_body(first)
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"]
    second = router.handle(
        rest_event(
            "GET",
            "/v1/sessions/{sessionId}/messages",
            path_params={"sessionId": "s1"},
            query={"limit": "2", "cursor": page["nextCursor"]},
        )
    )
    assert [m["text"] for m in json_body(second)["messages"]] == ["m2", "m1"]
    for user, cursor in (("bob", None), ("bob", page["nextCursor"])):
        query = {"cursor": cursor} if cursor else None
        response = router.handle(
            rest_event(
                "GET", "/v1/sessions/{sessionId}/messages", path_params={"sessionId": "s1"}, query=query, user=user
            )
        )
        assert response["statusCode"] == 404
        assert "m4" not in response["body"] and "m1" not in response["body"]
    missing = router.handle(rest_event("GET", "/v1/sessions/{sessionId}/messages", path_params={"sessionId": "nope"}))
    assert missing["statusCode"] == 404
    bad_limit = router.handle(
        rest_event("GET", "/v1/sessions/{sessionId}/messages", path_params={"sessionId": "s1"}, query={"limit": "500"})
    )
    assert bad_limit["statusCode"] == 400 and json_body(bad_limit)["error"]["field"] == "limit"
    bad_cursor = router.handle(
        rest_event(
            "GET", "/v1/sessions/{sessionId}/messages", path_params={"sessionId": "s1"}, query={"cursor": "garbage"}
        )
    )
    assert bad_cursor["statusCode"] == 400 and json_body(bad_cursor)["error"]["field"] == "cursor"


def test_recent_sessions_are_the_callers_own(router):
    router.store.sessions.create("alice", "a1", title="first")
    router.store.sessions.create("bob", "b1")
    response = router.handle(rest_event("GET", "/v1/sessions"))
    assert [s["sessionId"] for s in json_body(response)["sessions"]] == ["a1"]
    assert json_body(response)["sessions"][0]["title"] == "first"


def test_a_task_on_another_users_session_is_404(router):
    router.store.sessions.create("bob", "bobs")
    response = start(router, {"message": "read bob's", "sessionId": "bobs"})
    assert response["statusCode"] == 404


def test_routing_errors_and_missing_identity(router):
    assert router.handle(rest_event("GET", "/v1/nowhere"))["statusCode"] == 404
    wrong = router.handle(rest_event("DELETE", "/v1/tasks"))
    assert wrong["statusCode"] == 405 and wrong["headers"]["allow"] == "POST"
    anonymous = router.handle(rest_event("GET", "/v1/sessions", user=None))
    assert anonymous["statusCode"] == 401


def test_an_unexpected_error_is_a_500_without_internals(router, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail arn:aws:dynamodb:...")

    router.store.sessions.recent = broken
    response = router.handle(rest_event("GET", "/v1/sessions", headers={"X-Correlation-Id": "corr-12345678"}))
    assert response["statusCode"] == 500
    assert "secret internal detail" not in response["body"]
    assert response["headers"]["x-correlation-id"] == "corr-12345678"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    errors = [line for line in logged if line["level"] == "ERROR"]
    assert errors and errors[0]["correlationId"] == "corr-12345678"
    assert "RuntimeError" in errors[0]["exception"]


def test_a_failed_start_gives_the_idempotency_key_back(router, clients):
    start(router, {"message": "warm up"})  # creates the client
    with Stubber(clients[REGION]) as stub:
        stub.add_client_error("start_execution", "ThrottlingException", "slow down", 400)
        throttled = start(router, {"message": "go"}, {"Idempotency-Key": "k-retry"})
    assert throttled.get("statusCode") == 429
    retried = start(router, {"message": "go"}, {"Idempotency-Key": "k-retry"})
    assert retried["statusCode"] == 202, "not a 409: nothing was running"


def test_a_failure_after_the_start_gives_the_key_back_and_a_retry_finds_the_execution(router, machine):
    put = router.store.tasks.put
    failures = [RuntimeError("the task record could not be written")]

    def flaky_put(*args, **kwargs):
        if failures:
            raise failures.pop()
        return put(*args, **kwargs)

    router.store.tasks.put = flaky_put
    failed = start(router, {"message": "go"}, {"Idempotency-Key": "k3"})
    assert failed["statusCode"] == 500
    retried = start(router, {"message": "go"}, {"Idempotency-Key": "k3"})
    assert retried["statusCode"] == 202, "no lock left behind: the retry runs at once"
    executions = boto3.client("stepfunctions", region_name=REGION).list_executions(stateMachineArn=machine)[
        "executions"
    ]
    assert [e["name"] for e in executions] == [json_body(retried)["taskId"]], "the execution of the first attempt"
    assert router.store.tasks.get(json_body(retried)["taskId"]) is not None


def test_a_missing_backing_resource_is_an_outage_not_a_404(router, clients):
    task_id = json_body(start(router, {"message": "hi"}))["taskId"]
    with Stubber(clients[REGION]) as stub:
        stub.add_client_error("describe_execution", "StateMachineDoesNotExist", "gone", 400)
        response = router.handle(rest_event("GET", "/v1/tasks/{taskId}", path_params={"taskId": task_id}))
    assert response["statusCode"] == 503
