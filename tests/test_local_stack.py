"""End to end: the local stack on free loopback ports, spoken to only over HTTP and WebSocket."""

from __future__ import annotations

import json
import time

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from handlers.tools.create_ticket import TicketStore
from local.stack import LocalStack


@pytest.fixture(scope="module")
def stack():
    logged: list[dict] = []
    # Stage throttling well above what the tests send (the dev stack's is 5/s); throttling
    # itself is tested on a stack of its own.
    running = LocalStack("dev", moto_port=None, log=logged.append, throttle=(1000, 2000)).start()
    running.logged = logged
    yield running
    running.stop()


def call(stack, method, path, body=None, token=None, headers=None, raw=None):
    all_headers = {"Authorization": f"Bearer {token or stack.dev_token}", "x-api-key": stack.api_key, **(headers or {})}
    if body is not None or raw is not None:
        all_headers.setdefault("content-type", "application/json")
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return requests.request(method, f"{stack.rest.url}{path}", headers=all_headers, data=data, timeout=30)


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("condition not met")


def test_health_is_open_and_deep(stack):
    response = requests.get(f"{stack.rest.url}/v1/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["checks"] == {"table": "ok", "turn": "ok", "task": "ok"}
    assert response.headers["x-amzn-RequestId"]


def test_auth_failures(stack):
    assert requests.get(f"{stack.rest.url}/v1/sessions", timeout=10).status_code == 401
    assert call(stack, "GET", "/v1/sessions", token="not.a.token").status_code == 401
    expired = stack.issuer.token(ttl=-3600)
    assert call(stack, "GET", "/v1/sessions", token=expired).json() == {
        "error": {"code": "unauthorized", "message": "Unauthorized"}
    }
    other_audience = stack.issuer.token(aud="someone-else")
    assert call(stack, "GET", "/v1/sessions", token=other_audience).status_code == 401
    # A valid token without the client's API key: API Gateway's 403, as deployed.
    for key in (None, "not-a-key"):
        headers = {"Authorization": f"Bearer {stack.dev_token}", **({"x-api-key": key} if key else {})}
        refused = requests.get(f"{stack.rest.url}/v1/sessions", headers=headers, timeout=10)
        # API Gateway's 403 (INVALID_API_KEY), saying which header is wrong.
        assert refused.status_code == 403 and refused.json() == {
            "error": {"code": "forbidden", "message": "the x-api-key header is missing or not an API key of this API"}
        }


def test_the_authorization_scheme_is_matched_in_any_case(stack):
    """RFC 7235 section 2.1: the scheme is case-insensitive; `bearer` was refused with 401."""
    for scheme in ("bearer", "BEARER", "Bearer"):
        headers = {"Authorization": f"{scheme} {stack.dev_token}", "x-api-key": stack.api_key}
        assert requests.get(f"{stack.rest.url}/v1/sessions", headers=headers, timeout=10).status_code == 200, scheme
    for wrong in (f"Basic {stack.dev_token}", f"Bearer{stack.dev_token}", stack.dev_token):
        headers = {"Authorization": wrong, "x-api-key": stack.api_key}
        assert requests.get(f"{stack.rest.url}/v1/sessions", headers=headers, timeout=10).status_code == 401, wrong


def refusal(response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-ErrorType"] == "BAD_REQUEST_BODY"
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    return error["message"]


def test_a_bad_body_is_refused_at_the_edge_saying_which_field_and_why(stack):
    """What a new user sent, each answered with API Gateway's validator's reason (the
    BAD_REQUEST_BODY gateway response's $context.error.validationErrorString), in the
    answer and in the stack's log."""
    turn = "/v1/sessions/s-bad/messages"
    cases = [
        (turn, "{not json", "Invalid request body: [the body is not JSON: Expecting property name enclosed in"),
        (turn, "{}", 'Invalid request body: [object has missing required properties (["message"])]'),
        (
            turn,
            '{"message": null}',
            "Invalid request body: [instance type (null) does not match any allowed primitive type"
            ' (allowed: ["string"])]',
        ),
        (
            turn,
            '{"message": "hi", "extra": 1}',
            'Invalid request body: [object instance has properties which are not allowed by the schema: ["extra"]]',
        ),
        (turn, json.dumps({"message": ""}), 'Invalid request body: [string "" is too short (length: 0, required'),
        ("/v1/tasks", "{not json", "Invalid request body: [the body is not JSON"),
    ]
    for path, raw, expected in cases:
        assert refusal(call(stack, "POST", path, raw=raw)).startswith(expected), raw
    long = refusal(call(stack, "POST", turn, body={"message": "x" * 61_440}))
    assert long.endswith("is too long (length: 61440, maximum allowed: 32000)]")
    logged = [e for e in stack.logged if e.get("errorType") == "BAD_REQUEST_BODY"]
    assert any(e["error"] == '[object has missing required properties (["message"])]' for e in logged)


def test_the_message_limit_is_stated_in_the_api_document(stack):
    message = stack.rest.api.document["components"]["schemas"]["ChatTurnRequest"]["properties"]["message"]
    assert message["maxLength"] == 32_000 and "1 to 32,000 characters" in message["description"]


def test_a_body_nested_20000_deep_is_a_400_not_a_500(stack):
    for path in ("/v1/sessions/s-deep/messages", "/v1/tasks"):
        nested = call(stack, "POST", path, raw='{"message": "m", "tools": ' + "[" * 20_000 + "]" * 20_000 + "}")
        assert refusal(nested) == "Invalid request body: [the body is nested too deeply to parse]"


def test_unknown_routes_and_methods_answer_like_api_gateway_naming_the_request(stack):
    for method, path, token in (("GET", "/v1/nowhere", None), ("DELETE", "/v1/tasks", None), ("GET", "/", "")):
        headers = {} if token == "" else {"Authorization": f"Bearer {stack.dev_token}"}
        response = requests.request(method, f"{stack.rest.url}{path}", headers=headers, timeout=10)
        assert response.status_code == 403, (method, path)
        assert response.json() == {
            "error": {
                "code": "no_route",
                "message": f"no route {method} /live{path}: this API has no such resource or method"
                " (the routes are in its OpenAPI document)",
            }
        }
        assert response.headers["x-amzn-ErrorType"] == "MISSING_AUTHENTICATION_TOKEN"


def test_a_bad_session_id_is_the_same_400_on_every_route(stack):
    expected = {
        "error": {
            "code": "invalid_request",
            "message": "sessionId must be 1-64 letters, digits, '-' or '_'",
            "field": "sessionId",
        }
    }
    for bad in ("s" * 65, "s" * 300, "dots.are.out"):
        turn = call(stack, "POST", f"/v1/sessions/{bad}/messages", body={"message": "hi"})
        history = call(stack, "GET", f"/v1/sessions/{bad}/messages")
        task = call(stack, "POST", "/v1/tasks", body={"message": "hi", "sessionId": bad})
        assert turn.status_code == history.status_code == 400, bad
        assert turn.json() == history.json() == expected
        assert task.status_code == 400


def test_a_chat_turn_with_a_tool_then_history_and_sessions(stack):
    turn = call(stack, "POST", "/v1/sessions/s-e2e/messages", body={"message": "calculate (2+3)*4"})
    assert turn.status_code == 200, turn.text
    body = turn.json()
    assert body["toolCalls"][0]["name"] == "calculator" and body["toolCalls"][0]["output"]["result"] == 20
    assert "20" in body["answer"]
    history = call(stack, "GET", "/v1/sessions/s-e2e/messages?limit=2").json()
    assert [m["role"] for m in history["messages"]] == ["assistant", "tool"] and history["nextCursor"]
    rest = call(stack, "GET", f"/v1/sessions/s-e2e/messages?cursor={history['nextCursor']}").json()
    assert [m["role"] for m in rest["messages"]] == ["assistant", "user"]
    sessions = call(stack, "GET", "/v1/sessions").json()["sessions"]
    assert "s-e2e" in [s["sessionId"] for s in sessions]
    other = stack.issuer.token(user="someone-else")
    assert call(stack, "GET", "/v1/sessions/s-e2e/messages", token=other).status_code == 404


def test_a_two_step_plan(stack):
    body = call(
        stack, "POST", "/v1/sessions/s-plan/messages", body={"message": "calculate 6*7 and remember it as answer"}
    ).json()
    assert [c["name"] for c in body["toolCalls"]] == ["calculator", "memory"]
    recall = call(
        stack, "POST", "/v1/sessions/s-plan/messages", body={"message": "what do you remember about answer"}
    ).json()
    assert recall["toolCalls"][0]["output"]["memories"] == ["the result was 42"]


def test_a_replayed_idempotency_key_is_409(stack):
    headers = {"Idempotency-Key": "turn-e2e-1"}
    first = call(stack, "POST", "/v1/sessions/s-idem/messages", body={"message": "hello"}, headers=headers)
    again = call(stack, "POST", "/v1/sessions/s-idem/messages", body={"message": "hello"}, headers=headers)
    assert first.status_code == 200 and again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_request"


def test_a_streamed_answer_over_websocket(stack):
    with pytest.raises(InvalidStatus, match="401"):  # a bad token never connects
        connect(f"{stack.websocket.url}/?token=bad", open_timeout=5).close()
    with connect(f"{stack.websocket.url}/?token={stack.dev_token}", open_timeout=5) as ws:
        ws.send(json.dumps({"action": "sendMessage", "sessionId": "s-ws", "message": "hello over the socket"}))
        frames = []
        while not frames or frames[-1].get("type") != "final" or not frames[-1].get("done"):
            frames.append(json.loads(ws.recv(timeout=20)))
    ack, *stream = frames
    assert ack == {"type": "accepted", "sessionId": "s-ws", "status": "STARTED"}
    chunks = [f for f in stream if f["type"] == "chunk"]
    final = stream[-1]
    assert "".join(c["text"] for c in sorted(chunks, key=lambda c: c["seq"])) == final["answer"]
    assert "hello over the socket" in final["answer"]
    history = call(stack, "GET", "/v1/sessions/s-ws/messages").json()["messages"]
    assert history[0]["messageId"] == final["messageId"], "the final frame names the stored message"


def test_a_failed_websocket_turn_ends_with_an_error_frame_never_a_final(stack):
    # The attack that found it: a turn whose execution failed still sent "final done:true".
    scripted = stack.model_server.server.decide
    stack.model_server.server.decide = lambda request: None  # the model is down
    try:
        with connect(f"{stack.websocket.url}/?token={stack.dev_token}", open_timeout=5) as ws:
            ws.send(json.dumps({"action": "sendMessage", "sessionId": "s-ws-down", "message": "hello?"}))
            frames = [json.loads(ws.recv(timeout=30))]
            while frames[-1]["type"] not in ("error", "final"):
                frames.append(json.loads(ws.recv(timeout=60)))
    finally:
        stack.model_server.server.decide = scripted
    assert frames[0] == {"type": "accepted", "sessionId": "s-ws-down", "status": "STARTED"}
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "llm_unavailable", frames
    assert not [f for f in frames if f["type"] in ("chunk", "final")]
    # The history holds nothing of a turn that failed before its first step was written.
    history = call(stack, "GET", "/v1/sessions/s-ws-down/messages")
    assert history.status_code == 404 or history.json()["messages"] == []


def test_an_approval_round_trip(stack):
    started = call(
        stack, "POST", "/v1/tasks", body={"message": "open a ticket: printer on fire", "sessionId": "s-task"}
    )
    assert started.status_code == 202
    task_id = started.json()["taskId"]
    pending = wait_for(lambda: call(stack, "GET", f"/v1/tasks/{task_id}").json().get("pendingApproval"))
    assert pending["tool"] == "create_ticket" and pending["input"] == {"title": "printer on fire"}
    decided = call(stack, "POST", f"/v1/approvals/{pending['approvalId']}", body={"decision": "approve"})
    assert decided.status_code == 200 and decided.json() == {"approvalId": pending["approvalId"], "decision": "approve"}
    assert call(stack, "POST", f"/v1/approvals/{pending['approvalId']}", body={"decision": "deny"}).status_code == 409
    done = wait_for(
        lambda: (lambda b: b if b["status"] != "RUNNING" else None)(call(stack, "GET", f"/v1/tasks/{task_id}").json())
    )
    assert done["status"] == "SUCCEEDED" and "ticketId" in done["answer"]


def test_a_compensated_failure(stack):
    started = call(stack, "POST", "/v1/tasks", body={"message": "open a ticket: doomed one, then simulate an outage"})
    task_id = started.json()["taskId"]
    pending = wait_for(lambda: call(stack, "GET", f"/v1/tasks/{task_id}").json().get("pendingApproval"))
    call(stack, "POST", f"/v1/approvals/{pending['approvalId']}", body={"decision": "approve"})
    done = wait_for(
        lambda: (lambda b: b if b["status"] != "RUNNING" else None)(call(stack, "GET", f"/v1/tasks/{task_id}").json()),
        timeout=30,
    )
    assert done["status"] == "FAILED" and done["error"] == {"code": "LlmUnavailableError"}
    records = stack.store.tool_runs.list(task_id)
    assert [(r.tool_name, r.status) for r in records] == [("create_ticket", "COMPENSATED")]
    assert TicketStore(stack.store.table).get(records[0].output["ticketId"]) is None, "the ticket was undone"


def test_every_request_is_logged_as_one_json_line_with_its_correlation_id(stack):
    response = requests.get(f"{stack.rest.url}/v1/health", timeout=10)
    request_id = response.headers["x-amzn-RequestId"]
    # Other lines (a WebSocket closing, say) may interleave: find this request's own line.
    entry = wait_for(lambda: next((e for e in stack.logged if e.get("correlationId") == request_id), None), timeout=5)
    assert entry["message"] == "request" and entry["path"] == "/v1/health" and entry["status"] == 200


def test_the_demo_runs_against_the_stack(stack, capsys, tmp_path):
    from local.demo import Client, run_demo

    trigger = tmp_path / "spot-interruption"
    stack.adapter.ecs.spot_trigger = trigger
    state = {"rest": stack.rest.url, "token": stack.dev_token, "apiKey": stack.api_key}
    assert run_demo(Client({**state, "spotInterruption": str(trigger)}), auto_approve=True) == 0
    printed = capsys.readouterr().out
    for heading in (
        "1. a direct answer",
        "2. a tool call",
        "3. a two-step tool plan",
        "4. a task that needs an approval",
        "5. a failure that is compensated",
        "6. a long task on Fargate Spot, interrupted once",
        "the task, resumed and done",
    ):
        assert heading in printed
    assert '"code": "LlmUnavailableError"' in printed
    # The long task's container: stopped by a Spot interruption, then run again to its end.
    runs = [(task["StopCode"], task["CapacityProviderName"]) for task in stack.adapter.ecs.stopped]
    assert runs[0] == ("SpotInterruption", "FARGATE_SPOT") and runs[-1][0] == "EssentialContainerExited"
    assert not trigger.exists()


def demo_main(stack, tmp_path, monkeypatch, *args):
    import local.demo

    state = tmp_path / "local-stack.json"
    state.write_text(json.dumps({"rest": stack.rest.url, "token": stack.dev_token, "apiKey": stack.api_key}))
    monkeypatch.setattr(local.demo, "STATE_FILE", state)
    return local.demo.main(list(args))


def test_make_demo_finishes_on_its_own_and_says_it_approved(stack, tmp_path, monkeypatch, capsys):
    assert demo_main(stack, tmp_path, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "approving it for you (make demo APPROVE=manual waits for you" in out
    assert "5. a failure that is compensated" in out and '"code": "LlmUnavailableError"' in out


def test_make_demo_manual_waits_for_a_human_and_says_what_to_do_when_none_comes(stack, tmp_path, monkeypatch, capsys):
    assert demo_main(stack, tmp_path, monkeypatch, "--approve", "manual", "--approval-timeout", "1") == 1
    captured = capsys.readouterr()
    approval = next(
        line.split("APPROVAL=")[1].strip() for line in captured.out.splitlines() if "make approve APPROVAL=" in line
    )
    assert f"no decision on approval {approval} after 1 s; the task is still waiting for it" in captured.err
    assert f"make approve APPROVAL={approval}" in captured.err and "Traceback" not in captured.err
    # The approval it named is the one the task waits for: granting it ends the task.
    decided = call(stack, "POST", f"/v1/approvals/{approval}", body={"decision": "approve"})
    assert decided.status_code == 200


def test_validator_errors_read_as_a_deployed_api_gateway_writes_them():
    """jsonschema's errors in the words of API Gateway's validator: the expected strings are a
    deployed API's $context.error.validationErrorString as a recorded check of it reads them
    (local/apigateway/gateway.py cites the message bundle)."""
    import jsonschema

    from local.apigateway.gateway import validation_error_string

    schema = {
        "type": "object",
        "required": ["timestamp", "transactionId", "transactionState"],
        "properties": {
            "transactionId": {"type": "string"},
            "transactionState": {"type": "string", "enum": ["CREATED", "SENT"]},
            "amount": {"type": ["integer", "number"]},
        },
    }

    def reason(instance):
        return validation_error_string(list(jsonschema.Draft4Validator(schema).iter_errors(instance)))

    valid = {"timestamp": 1, "transactionId": "T-1", "transactionState": "SENT"}
    assert reason({}) == '[object has missing required properties (["timestamp","transactionId","transactionState"])]'
    assert reason({**valid, "transactionId": True}) == (
        '[instance type (boolean) does not match any allowed primitive type (allowed: ["string"])]'
    )
    assert reason({**valid, "amount": "100"}) == (
        '[instance type (string) does not match any allowed primitive type (allowed: ["integer","number"])]'
    )
    assert reason({**valid, "transactionState": "INVALID"}) == (
        '[instance value ("INVALID") not found in enum (possible values: ["CREATED","SENT"])]'
    )


def test_the_readmes_curl_answers_what_the_readme_quotes(stack):
    """The banner's curl, sent as printed, answers the README's quoted JSON: the same message id
    (its format included), answer, tool calls and usage; only the session id is the banner's."""
    import re
    import shlex
    from pathlib import Path

    banner = stack.banner()
    command = shlex.split(banner[banner.index("curl ") : banner.index("\n\nmake demo")].replace("\\\n", " "))
    headers = dict(command[i + 1].split(": ", 1) for i, arg in enumerate(command) if arg == "-H")
    url = next(arg for arg in command if arg.startswith("http"))
    answer = requests.post(url, headers=headers, data=command[command.index("-d") + 1], timeout=30)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    quoted = json.loads(re.search(r"and the `curl` line answers:\n\n```json\n(.*?)```", readme, flags=re.S)[1])
    session = url.split("/sessions/")[1].split("/")[0]
    assert answer.status_code == 200
    assert answer.json() == {**quoted, "sessionId": session}
