"""The chat route's real mapping templates, rendered with a Velocity engine that behaves like API
Gateway's (``local/apigateway/vtl.py``), for hostile values of every field the caller controls."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.openapi import (
    TURN_ERRORS,
    TURN_FAILED,
    TURN_TIMED_OUT,
    RestApiTargets,
    rest_api_document,
)
from local.apigateway.vtl import render_request_template, render_response_template

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:agent-infra-test-turn"
DOCUMENT = rest_api_document(
    RestApiTargets(
        "us-east-1", "arn:r", "arn:a", "arn:h", "arn:z", MACHINE, "arn:aws:iam::123456789012:role/turn-integration"
    )
)
CHAT = DOCUMENT["paths"]["/v1/sessions/{sessionId}/messages"]["post"]["x-amazon-apigateway-integration"]
REQUEST_TEMPLATE = CHAT["requestTemplates"]["application/json"]
RESPONSE_TEMPLATE = CHAT["responses"]["default"]["responseTemplates"]["application/json"]
REQUEST_ID = "6c1d8b2e-0f3a-4b5c-9d7e-1a2b3c4d5e6f"

# Quotes, backslashes (a trailing one too), ', control characters, U+2028/2029, non-ASCII,
# an emoji (a surrogate pair in UTF-16), and text that looks like VTL or JSON structure.
HOSTILE = [
    'k", "userId": "alice',
    "ends with a backslash \\",
    "\\",
    "it's",
    "\\'",
    '\\"',
    "\u2028line\u2029para",
    "\x00\x01\x08\x0b\x1f\x7f",
    "tab\there\nnewline\rreturn",
    "naïve 日本語",
    "🎉",
    "</script>",
    "\\u0022",
    "$context.requestId",
    "#set($x = 1)",
    '{"a": [1, "b"]}',
]


def render(
    body: dict,
    *,
    session: str = "s1",
    user: str = "alice",
    headers: dict[str, str] | None = None,
) -> tuple[dict, dict]:
    """The StartSyncExecution request the template makes, and the state machine input in it."""
    text = render_request_template(
        REQUEST_TEMPLATE,
        body=json.dumps(body),
        path_params={"sessionId": session},
        query={},
        headers=headers or {},
        context={"requestId": REQUEST_ID, "authorizer": {"userId": user, "principalId": user}},
    )
    request = json.loads(text)  # must be JSON, whatever the values held
    return request, json.loads(request["input"])


def test_a_plain_turn():
    request, turn = render({"message": "hello"})
    assert request["stateMachineArn"] == MACHINE and request["name"] == REQUEST_ID
    assert "traceHeader" not in request
    assert turn == {
        "sessionId": "s1",
        "userId": "alice",
        "message": "hello",
        "tools": None,
        "correlationId": REQUEST_ID,
        "idempotencyKey": None,
        "connectionId": None,
    }


def test_the_idempotency_key_cannot_add_a_second_user():
    # The attack that found it: a header that closes the string and adds "userId".
    request, turn = render({"message": "hi"}, user="mallory", headers={"Idempotency-Key": 'k", "userId": "alice'})
    assert turn["userId"] == "mallory"
    assert turn["idempotencyKey"] == 'k", "userId": "alice'
    assert request["input"].count('"userId"') == 1


@pytest.mark.parametrize("value", HOSTILE)
def test_every_templated_field_stays_one_string(value):
    _, turn = render(
        {"message": value},
        session=value,
        user=value,
        headers={"Idempotency-Key": value, "X-Amzn-Trace-Id": value},
    )
    assert turn["message"] == value
    assert turn["sessionId"] == value
    assert turn["userId"] == value
    assert turn["idempotencyKey"] == value
    assert set(turn) == {"sessionId", "userId", "message", "tools", "correlationId", "idempotencyKey", "connectionId"}


@settings(max_examples=150, deadline=None)
@given(
    message=st.text(min_size=1, max_size=40),
    session=st.text(min_size=1, max_size=20),
    user=st.text(min_size=1, max_size=20),
    key=st.text(min_size=1, max_size=20),
)
def test_any_text_in_any_field_round_trips(message, session, user, key):
    _, turn = render({"message": message}, session=session, user=user, headers={"idempotency-key": key})
    assert (turn["message"], turn["sessionId"], turn["userId"], turn["idempotencyKey"]) == (message, session, user, key)


def test_tools_are_tested_for_presence_not_truthiness():
    assert render({"message": "m", "tools": []})[1]["tools"] == [], "[] means no tools"
    assert render({"message": "m"})[1]["tools"] is None, "absent means every tool"
    assert render({"message": "m", "tools": ["calculator", "memory"]})[1]["tools"] == ["calculator", "memory"]


def test_an_absent_or_empty_header_is_null_not_an_empty_string():
    # In API Gateway a missing value reads as "", which is true in #if.
    assert render({"message": "m"})[1]["idempotencyKey"] is None
    assert render({"message": "m"}, headers={"Idempotency-Key": ""})[1]["idempotencyKey"] is None


@pytest.mark.parametrize("name", ["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"])
def test_header_names_match_in_any_case(name):
    assert render({"message": "m"}, headers={name: "key-1"})[1]["idempotencyKey"] == "key-1"


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ("corr-12345678", "corr-12345678"),
        ("trace.id:ABC_def-9", "trace.id:ABC_def-9"),
        ("short", REQUEST_ID),  # under 8 characters
        ('corr", "userId": "x', REQUEST_ID),
        ("x" * 129, REQUEST_ID),
        ("", REQUEST_ID),
    ],
)
def test_the_callers_correlation_id_is_used_only_when_it_is_a_token(offered, expected):
    assert render({"message": "m"}, headers={"X-Correlation-Id": offered})[1]["correlationId"] == expected


def test_the_trace_header_is_passed_on():
    request, _ = render({"message": "m"}, headers={"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"})
    assert request["traceHeader"] == "Root=1-5759e988-bd862e3fe1be46a994272793"


# -- the response template ----------------------------------------------------------------


def respond(result: dict):
    return render_response_template(RESPONSE_TEMPLATE, body=json.dumps(result), context={"requestId": REQUEST_ID})


def test_a_succeeded_turn_answers_its_output():
    output = {"sessionId": "s1", "messageId": "m1", "answer": 'it\'s \\ "fine" 🎉', "toolCalls": [], "usage": {}}
    rendered = respond({"status": "SUCCEEDED", "output": json.dumps(output), "executionArn": "arn:x"})
    assert rendered.status_override is None
    assert json.loads(rendered.body) == output
    assert rendered.header_overrides == {"x-request-id": REQUEST_ID}


@pytest.mark.parametrize("error", sorted(TURN_ERRORS))
def test_each_mapped_error_has_its_status_and_body(error):
    expected = TURN_ERRORS[error]
    rendered = respond({"status": "FAILED", "error": error, "cause": 'anything, even " or \\'})
    assert rendered.status_override == expected.status
    body = json.loads(rendered.body)["error"]
    assert (body["code"], body["message"], body.get("field")) == (expected.code, expected.message, expected.field)


def test_a_timed_out_turn_is_504_though_it_carries_no_error():
    rendered = respond({"status": "TIMED_OUT", "executionArn": "arn:x"})
    assert rendered.status_override == 504
    assert json.loads(rendered.body)["error"]["code"] == TURN_TIMED_OUT.code


@pytest.mark.parametrize("error", ["TypeError", "States.Runtime", 'x"y', ""])
def test_any_other_failure_is_502_and_names_nothing_internal(error):
    rendered = respond({"status": "FAILED", "error": error, "cause": "Traceback: secret detail"})
    assert rendered.status_override == 502
    assert json.loads(rendered.body) == {"error": {"code": TURN_FAILED.code, "message": TURN_FAILED.message}}


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"__type": "com.amazonaws.swf.service.v2.model#ThrottlingException", "message": "Rate exceeded"}, 429),
        ({"__type": "ExecutionLimitExceeded", "message": "too many"}, 429),
        ({"__type": "StateMachineDoesNotExist", "message": "gone"}, 502),
        ({"message": "Internal Server Error"}, 502),
    ],
)
def test_an_error_of_step_functions_itself(answer, status):
    rendered = respond(answer)
    assert rendered.status_override == status
    assert json.loads(rendered.body)["error"]["message"]
