"""The local stack under load and hostile HTTP: every request gets an answer API Gateway would
give, and the history agrees with the answers given."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time

import pytest
import requests

from local.apigateway.gateway import TokenBucket
from local.stack import LocalStack

TURNS = 50
ANSWERS = {200, 409, 429, 504}


def start(**options) -> LocalStack:
    return LocalStack("dev", moto_port=None, log=lambda entry: None, **options).start()


@pytest.fixture(scope="module")
def roomy():
    """Throttling far above the load: all 50 turns reach the state machine and race."""
    running = start(throttle=(10_000, 20_000))
    yield running
    running.stop()


def turn(stack: LocalStack, session: str, text: str) -> requests.Response:
    return requests.post(
        f"{stack.rest.url}/v1/sessions/{session}/messages",
        headers={
            "Authorization": f"Bearer {stack.dev_token}",
            "x-api-key": stack.api_key,
            "content-type": "application/json",
        },
        json={"message": text},
        timeout=90,
    )


def history(stack: LocalStack, session: str) -> list[dict]:
    """Every message of the session, oldest first, read page by page over the API."""
    messages, cursor = [], None
    headers = {"Authorization": f"Bearer {stack.dev_token}", "x-api-key": stack.api_key}
    while True:
        query = "?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = requests.get(f"{stack.rest.url}/v1/sessions/{session}/messages{query}", headers=headers, timeout=30)
        assert page.status_code == 200, page.text
        body = page.json()
        messages.extend(body["messages"])
        if not (cursor := body["nextCursor"]):
            return list(reversed(messages))


def settle(stack: LocalStack) -> None:
    """Wait for turns API Gateway stopped waiting for (504) to end on their own."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = [
            e
            for e in stack.sfn.list_executions(stateMachineArn=stack.turn_arn)["executions"]
            if e["status"] == "RUNNING"
        ]
        if not running:
            return
        time.sleep(0.2)


def test_fifty_parallel_turns_on_one_session_all_answered_none_lost_or_doubled(roomy):
    texts = [f"parallel message {i}" for i in range(TURNS)]
    with concurrent.futures.ThreadPoolExecutor(TURNS) as pool:
        responses = list(pool.map(lambda text: turn(roomy, "s-load", text), texts))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= ANSWERS, statuses
    assert statuses.count(200) >= 1
    settle(roomy)
    stored = history(roomy, "s-load")
    users = [m["text"] for m in stored if m["role"] == "user"]
    assert len(users) == len(set(users)), "no message stored twice"
    for text, response in zip(texts, responses, strict=True):
        if response.status_code == 200:
            answer = response.json()
            reply = next(m for m in stored if m["messageId"] == answer["messageId"])
            assert reply["role"] == "assistant" and reply["text"] == answer["answer"]
            assert text in users, "an answered turn is in the history"
        elif response.status_code in (409, 429):
            assert text not in users, f"a refused turn ({response.status_code}) left nothing behind"
            assert response.json()["error"]["code"] in ("conflict", "throttled")
    # The history is whole turns in order: each user message followed by its reply.
    roles = [m["role"] for m in stored if m["role"] != "failed"]
    assert roles == ["user", "assistant"] * (len(roles) // 2)
    ids = [m["messageId"] for m in stored]
    assert ids == sorted(ids) and len(ids) == len(set(ids))


def test_throttled_turns_get_429_as_api_gateway_answers(roomy):
    # The dev stack's own limits (5 a second, bursts of 10) in place of the roomy ones: one
    # local stack runs at a time, as one Step Functions adapter is installed at a time. Its
    # clock held still, so the 30 requests arrive within one instant however busy the
    # machine is: the burst passes, every other request is throttled.
    api = roomy.config.api
    roomy_bucket, roomy.rest_api.stage_bucket = (
        roomy.rest_api.stage_bucket,
        TokenBucket(api.rate_limit, api.burst_limit, clock=lambda: 0.0),
    )
    try:
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(lambda i: turn(roomy, f"s-throttle-{i}", "hello"), range(30)))
    finally:
        roomy.rest_api.stage_bucket = roomy_bucket
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= ANSWERS and statuses.count(429) == 30 - api.burst_limit, statuses
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.json() == {"error": {"code": "throttled", "message": "Too Many Requests"}}


def test_the_bucket_lets_a_burst_through_then_the_rate():
    now = [0.0]
    bucket = TokenBucket(5, 10, clock=lambda: now[0])
    assert [bucket.take() for _ in range(11)] == [True] * 10 + [False]
    now[0] = 1.0  # a second later: five more tokens, never more than the burst
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    now[0] = 100.0
    assert sum(bucket.take() for _ in range(20)) == 10


def raw(stack: LocalStack, request: bytes) -> tuple[int, bytes]:
    host, port = stack.rest.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and len(data) > data.index(b"\r\n\r\n") + 4:
                break
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    ("content_length", "says"),
    [
        (b"-5", b"Content-Length"),
        (b"abc", b"Content-Length"),
    ],
)
def test_a_malformed_content_length_gets_a_400_that_says_so(roomy, content_length, says):
    # The attacks that found it: the old local gateway answered nothing at all.
    status, body = raw(
        roomy,
        b"POST /v1/tasks HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + content_length + b"\r\n\r\n{}",
    )
    assert status == 400 and says in body


def test_a_body_that_is_not_utf8_gets_a_400_not_a_dropped_connection(roomy):
    body = b'{"message": "\xff\xfe"}'
    request = (
        b"POST /v1/tasks HTTP/1.1\r\nHost: localhost\r\n"
        + f"Authorization: Bearer {roomy.dev_token}\r\nx-api-key: {roomy.api_key}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    status, answer = raw(roomy, request)
    assert status == 400
    assert json.loads(answer)["error"]["message"]
