"""The agent loop's prepare, record and stream functions on moto.

``Machine.handle`` plays the state machine's part for one step: prepare, the model call
(the Converse SDK task's PascalCase arguments and result, through a scripted model), record.
The definitions themselves run in tests/test_workflows.py.
"""

from __future__ import annotations

import json

import pytest

from handlers import agent_step
from handlers.agent_step import (
    AgentStep,
    AgentStepSettings,
    LongToolInTurnError,
    MaxStepsExceededError,
    MessageTooLargeError,
    load_long_tools,
    load_tool_specs,
)
from handlers.shared.llm import LlmReply, ToolCall, from_sdk_shape, to_sdk_shape
from handlers.shared.models import MESSAGE_BYTES
from handlers.shared.store import ConflictError, DuplicateRequestError, NewMessage, SessionOwnershipError
from handlers.shared.tooling import INLINE_RESULT_BYTES
from handlers.shared.turns import (
    REPLY_BYTES,
    REQUEST_BYTES,
    STATE_LIMIT_BYTES,
    TURN_SUMMARY_BYTES,
    state_bytes,
    turn_summary,
)
from local.bedrock.model import converse_response
from tests.approvals import approval_tools
from tests.conftest import REGION, TABLE_NAME


class ScriptedModel:
    """Answers Converse as the SDK integration passes it: PascalCase in, PascalCase out."""

    def __init__(self, *replies: LlmReply):
        self.replies = list(replies)
        self.calls: list[dict] = []  # the requests, in botocore's camelCase

    def converse(self, sdk_request: dict) -> dict:
        request = from_sdk_shape(sdk_request)
        self.calls.append(request)
        answer = self.replies.pop(0)
        calls = [(c.tool_use_id, c.name, c.input) for c in answer.tool_calls]
        return to_sdk_shape(converse_response(answer.text, calls, (answer.input_tokens, answer.output_tokens)))


class Machine:
    """One step as the state machine runs it."""

    def __init__(self, agent: AgentStep, model: ScriptedModel):
        self.agent, self.model = agent, model

    def handle(self, event: dict) -> dict:
        prepared = self.agent.prepare(event)
        return self.agent.record({**prepared, "model": {"converse": self.model.converse(prepared["request"])}})


def reply(text="", calls=()):
    return LlmReply(
        text=text,
        tool_calls=tuple(calls),
        stop_reason="tool_use" if calls else "end_turn",
        input_tokens=11,
        output_tokens=5,
        endpoint="bedrock:us-east-1",
    )


def settings(**extra) -> AgentStepSettings:
    return AgentStepSettings(
        TABLE_NAME=TABLE_NAME,
        AWS_REGION=REGION,
        LLM_PROVIDER="bedrock",
        LLM_MODEL="m",
        LLM_ENDPOINTS=[REGION],
        **extra,
    )


@pytest.fixture
def make_step(store):
    def make(*replies, max_steps=4, long_tools=None):
        model = ScriptedModel(*replies)
        specs, _ = load_tool_specs()
        long_tools = load_long_tools() if long_tools is None else set(long_tools)
        agent = AgentStep(settings(MAX_STEPS=max_steps), store, specs, approval_tools(), long_tools=long_tools)
        return Machine(agent, model), model

    return make


def first_step(**extra):
    return {
        "sessionId": "s1",
        "userId": "alice",
        "executionId": "exec-1",
        "step": 1,
        "message": "what is 6*7?",
        "correlationId": "corr-1",
        **extra,
    }


def tools_offered(request: dict) -> list[str]:
    return [t["toolSpec"]["name"] for t in request.get("toolConfig", {}).get("tools", [])]


def test_a_direct_answer_creates_the_session_and_persists_the_step_in_one_item(make_step, store, dynamodb):
    step, model = make_step(reply("Hello! How can I help?"))
    out = step.handle(first_step(message="hi"))
    assert out["done"] is True and out["answer"] == "Hello! How can I help?" and out["toolCalls"] == []
    usage = {"inputTokens": 11, "outputTokens": 5, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0}
    assert out["step"] == 2 and out["usage"] == usage
    page = store.conversations.load("s1")
    assert page.meta.user_id == "alice" and page.last_seq == 1
    assert [(m.role, m.text) for m in reversed(page.messages)] == [
        ("user", "hi"),
        ("assistant", "Hello! How can I help?"),
    ]
    assert out["messageId"] == page.messages[0].message_id == "00000001-us-east-1-1"
    assert tools_offered(model.calls[0]) == ["calculator", "http_fetch", "memory"], "a turn never offers approval tools"
    assert model.calls[0]["modelId"] == "m" and model.calls[0]["inferenceConfig"] == {"maxTokens": 2048}
    assert out["turnToolCalls"] == [] and out["turnUsage"] == usage
    steps = dynamodb.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :step)",
        ExpressionAttributeValues={":pk": {"S": "SESSION#s1"}, ":step": {"S": "MSG#"}},
    )["Items"]
    assert len(steps) == 1, "the user's message and the reply are one item"


def test_tool_calls_come_back_numbered_and_are_stored_with_the_reply(make_step, store):
    calls = [
        ToolCall("tu-1", "calculator", {"expression": "6*7"}),
        ToolCall("tu-2", "memory", {"action": "recall", "topic": "math"}),
    ]
    step, _ = make_step(reply("Let me check.", calls))
    out = step.handle(first_step())
    assert out["done"] is False and out["answer"] == ""
    assert out["toolCalls"] == [
        {"toolUseId": "tu-1", "name": "calculator", "input": {"expression": "6*7"}, "seq": 100},
        {"toolUseId": "tu-2", "name": "memory", "input": {"action": "recall", "topic": "math"}, "seq": 101},
    ]
    assistant = store.conversations.load("s1").messages[0]
    assert assistant.role == "assistant" and [c["name"] for c in assistant.tool_calls] == ["calculator", "memory"]


def second_step(results, execution="exec-1"):
    return {"sessionId": "s1", "userId": "alice", "executionId": execution, "step": 2, "toolResults": results}


def test_the_next_step_sends_results_after_the_call_and_persists_them(make_step, store):
    step, model = make_step(reply("", [ToolCall("tu-1", "calculator", {"expression": "6*7"})]), reply("It is 42."))
    step.handle(first_step())
    out = step.handle(
        second_step(
            [{"toolUseId": "tu-1", "name": "calculator", "seq": 100, "status": "SUCCEEDED", "output": {"result": 42}}]
        )
    )
    assert out["done"] is True and out["answer"] == "It is 42." and out["step"] == 3
    assert out["turnToolCalls"] == [
        {"name": "calculator", "input": {"expression": "6*7"}, "output": {"result": 42}, "status": "SUCCEEDED"}
    ]
    assert out["turnUsage"] == {
        "inputTokens": 22,
        "outputTokens": 10,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": 0,
    }, "both model calls of the turn"
    sent = model.calls[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][0]["toolUse"]["toolUseId"] == "tu-1"
    assert sent[2]["content"][0]["toolResult"]["content"] == [{"json": {"result": 42}}]
    history = list(reversed(store.conversations.load("s1").messages))
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert store.conversations.load("s1").last_seq == 2


def test_outputs_passed_by_reference_are_read_back_and_shortened_for_the_model(make_step, store):
    from handlers.shared.turns import TOOL_OUTPUT_IN_REQUEST_BYTES

    body = "y" * 50_000
    store.tool_runs.record("exec-1", 100, "http_fetch", status="SUCCEEDED", input={}, output={"body": body})
    step, model = make_step(reply("", [ToolCall("tu-1", "http_fetch", {"url": "https://example.com"})]), reply("done"))
    step.handle(first_step())
    ref = {"executionId": "exec-1", "seq": 100, "name": "http_fetch"}
    step.handle(
        second_step([{"toolUseId": "tu-1", "name": "http_fetch", "seq": 100, "status": "SUCCEEDED", "outputRef": ref}])
    )
    shown = model.calls[1]["messages"][2]["content"][0]["toolResult"]["content"][0]["json"]
    assert shown["truncated"] is True and shown["bytes"] > TOOL_OUTPUT_IN_REQUEST_BYTES
    stored = next(m for m in store.conversations.load("s1").messages if m.role == "tool")
    assert stored.tool_calls[0]["output"] == {"body": body}, "the history keeps the whole output"


def test_another_users_session_is_refused_and_untouched(make_step, store):
    store.sessions.create("bob", "s1")
    step, model = make_step(reply("nope"))
    with pytest.raises(SessionOwnershipError):
        step.handle(first_step())
    assert model.calls == []
    assert store.conversations.load("s1").messages == []


def test_two_users_racing_to_create_one_session_one_owns_it(make_step, store):
    step, _ = make_step(reply("mine"), reply("theirs"))
    prepared = step.agent.prepare(first_step(userId="bob"))
    step.handle(first_step())  # alice writes first
    model = {"converse": step.model.converse(prepared["request"])}
    with pytest.raises(SessionOwnershipError):
        step.agent.record({**prepared, "model": model})


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"sessionId": "s" * 257}, "InvalidSessionIdError"),
        ({"sessionId": "s" * 65}, "InvalidSessionIdError"),
        ({"sessionId": "has#hash"}, "InvalidSessionIdError"),
        ({"sessionId": "dots.are.out"}, "InvalidSessionIdError"),
        ({"idempotencyKey": "has space"}, "InvalidIdempotencyKeyError"),
        ({"idempotencyKey": "k" * 129}, "InvalidIdempotencyKeyError"),
        ({"idempotencyKey": ""}, "InvalidIdempotencyKeyError"),
    ],
)
def test_the_turn_enforces_the_edge_rules_before_touching_anything(make_step, store, extra, error):
    # API Gateway passes path parameters and headers through unchecked: the turn's first step
    # refuses what the router refuses, with an error the response template maps to 400.
    step, model = make_step(reply("never"))
    with pytest.raises(ValueError, match=r"must be") as caught:
        step.handle(first_step(**extra))
    assert type(caught.value).__name__ == error
    assert model.calls == []


def test_a_message_too_large_for_the_state_machine_is_refused_before_any_write(make_step, store):
    # The attack that found it: 60 KB of non-ASCII text (3 bytes each in UTF-8) was saved,
    # then the turn failed with States.DataLimitExceeded.
    step, model = make_step(reply("never"))
    text = "é日" * 11_000  # 22,000 characters, 55,000 bytes: under 64 KB
    assert state_bytes(text) < MESSAGE_BYTES
    big = "日本" * 11_000  # 22,000 characters, 66,000 bytes
    with pytest.raises(MessageTooLargeError, match=f"at most {MESSAGE_BYTES}"):
        step.handle(first_step(message=big))
    assert model.calls == [] and store.conversations.load("s1").messages == []


def test_the_worst_case_state_stays_under_the_step_functions_limit():
    """Every budget at once, as the state holds them (step 1 and a tool step)."""
    context = 2 * 1024 + TURN_SUMMARY_BYTES
    step_one = MESSAGE_BYTES + REQUEST_BYTES + REPLY_BYTES + context
    tool_step = 16 * INLINE_RESULT_BYTES + REQUEST_BYTES + REPLY_BYTES + context
    assert max(step_one, tool_step) < STATE_LIMIT_BYTES * 0.95


def test_the_model_request_is_cut_oldest_turn_first_to_its_budget(make_step, store):
    for seq in range(1, 41):
        store.conversations.append_step(
            "s1",
            seq,
            [NewMessage(role="user", text="q" * 3_000), NewMessage(role="assistant", text="a" * 3_000)],
            turn_id=f"old-{seq}",
            user_id="alice",
            new_session=seq == 1,
        )
    step, model = make_step(reply("ok"))
    step.handle(first_step())
    request = model.calls[0]
    assert state_bytes(to_sdk_shape(request)) <= REQUEST_BYTES
    messages = request["messages"]
    assert messages[-1]["content"] == [{"text": "what is 6*7?"}], "the new message is always in"
    assert messages[0]["role"] == "user" and len(messages) % 2 == 1, "whole turns only"


def test_too_many_steps_is_a_typed_error(make_step):
    step, _ = make_step(max_steps=2)
    with pytest.raises(MaxStepsExceededError, match="no final answer after 2 steps"):
        step.handle({"sessionId": "s1", "userId": "alice", "executionId": "e", "step": 3, "toolResults": []})


def test_only_offered_tools_reach_the_model_and_come_back(make_step):
    calls = [
        ToolCall("tu-1", "calculator", {"expression": "1"}),
        ToolCall("tu-2", "create_ticket", {"title": "sneaky"}),
    ]
    step, model = make_step(reply("", calls))
    out = step.handle(first_step(tools=["calculator"]))
    assert tools_offered(model.calls[0]) == ["calculator"]
    assert [c["name"] for c in out["toolCalls"]] == ["calculator"], "a tool not offered is never run"


def test_no_tools_offered_means_no_tool_blocks_sent(make_step):
    step, model = make_step(reply("", [ToolCall("tu-1", "calculator", {"expression": "1"})]), reply("one"), reply("x"))
    step.handle(first_step())
    step.handle(
        second_step([{"toolUseId": "tu-1", "name": "calculator", "seq": 100, "status": "SUCCEEDED", "output": 1}])
    )
    step.handle({**first_step(message="no tools now", tools=[]), "executionId": "exec-2"})
    request = model.calls[-1]
    assert "toolConfig" not in request
    assert not [b for m in request["messages"] for b in m["content"] if "toolUse" in b or "toolResult" in b]


def test_a_turn_does_not_offer_long_tools_and_a_task_does(make_step):
    step, model = make_step(reply("hi"), reply("hi again"), long_tools={"http_fetch"})
    step.handle(first_step())
    assert "http_fetch" not in tools_offered(model.calls[0]), "a long tool runs in a task only"
    step.handle({**first_step(mode="task"), "executionId": "exec-2"})
    assert "http_fetch" in tools_offered(model.calls[1])


def test_a_turn_naming_a_long_tool_is_refused_saying_to_start_a_task(make_step, store):
    step, model = make_step(reply("never"), long_tools={"http_fetch"})
    with pytest.raises(LongToolInTurnError, match=r"http_fetch runs long .* POST /v1/tasks"):
        step.handle(first_step(tools=["calculator", "http_fetch"]))
    assert model.calls == [] and store.conversations.load("s1").meta is None, "refused before anything"
    from handlers.shared.models import TURN_ERRORS

    refusal = TURN_ERRORS["LongToolInTurnError"]
    assert (refusal.status, refusal.field) == (400, "tools") and "POST /v1/tasks" in refusal.message


@pytest.mark.parametrize("recorded", ["SUCCEEDED", "FAILED"])
def test_a_long_tools_result_takes_its_status_and_output_from_the_record(make_step, store, recorded):
    from components.workflows import RECORDED

    store.tool_runs.record("exec-1", 100, "http_fetch", status=recorded, input={}, output={"summary": "s"})
    step, model = make_step(reply("", [ToolCall("tu-1", "http_fetch", {"url": "https://a.example"})]), reply("ok"))
    step.handle(first_step(mode="task"))
    ref = {"executionId": "exec-1", "seq": 100, "name": "http_fetch"}
    out = step.handle(
        {
            **second_step(
                [{"toolUseId": "tu-1", "name": "http_fetch", "seq": 100, "status": RECORDED, "outputRef": ref}]
            ),
            "mode": "task",
        }
    )
    assert out["turnToolCalls"][0]["status"] == recorded and out["turnToolCalls"][0]["output"] == {"summary": "s"}
    sent = model.calls[1]["messages"][2]["content"][0]["toolResult"]
    assert sent["status"] == ("success" if recorded == "SUCCEEDED" else "error")


def test_a_reference_to_no_record_is_a_failed_call(make_step, store):
    step, _ = make_step(reply("", [ToolCall("tu-1", "http_fetch", {"url": "https://a.example"})]), reply("ok"))
    step.handle(first_step(mode="task"))
    ref = {"executionId": "exec-1", "seq": 100, "name": "http_fetch"}
    out = step.handle(
        {
            **second_step(
                [{"toolUseId": "tu-1", "name": "http_fetch", "seq": 100, "status": "RECORDED", "outputRef": ref}]
            ),
            "mode": "task",
        }
    )
    assert out["turnToolCalls"][0]["status"] == "FAILED"
    assert out["turnToolCalls"][0]["output"] == {"error": "the tool's recorded output is missing"}


def test_a_task_offers_approval_tools_and_caps_calls_per_step(make_step):
    calls = [ToolCall(f"tu-{i}", "calculator", {"expression": str(i)}) for i in range(20)]
    step, model = make_step(reply("", calls))
    out = step.handle(first_step(mode="task"))
    assert "create_ticket" in tools_offered(model.calls[0])
    assert len(out["toolCalls"]) == 16
    assert [c["seq"] for c in out["toolCalls"]] == list(range(100, 116))


def test_a_repeated_idempotency_key_writes_nothing(make_step, store):
    # The duplicate is found when the turn is written, after its model call: one wasted
    # call on a rare replay buys keeping a turn at two DynamoDB round trips.
    step, _ = make_step(reply("first"), reply("duplicate"), reply("second"))
    step.handle(first_step(idempotencyKey="turn-1"))
    with pytest.raises(DuplicateRequestError):
        step.handle({**first_step(idempotencyKey="turn-1"), "executionId": "exec-2"})
    assert len(store.conversations.load("s1").messages) == 2
    other_session = {**first_step(idempotencyKey="turn-2"), "sessionId": "s2", "executionId": "exec-3"}
    assert step.handle(other_session)["answer"] == "second"


def test_the_turn_summary_keeps_the_final_state_small(make_step):
    calls = [ToolCall(f"tu-{i}", "http_fetch", {"url": f"https://e.com/{i}"}) for i in range(16)]
    step, _ = make_step(reply("", calls), reply("done"))
    step.handle(first_step())
    results = [
        {
            "toolUseId": f"tu-{i}",
            "name": "http_fetch",
            "seq": 100 + i,
            "status": "SUCCEEDED",
            "output": {"body": "z" * 3_900},
        }
        for i in range(16)
    ]
    out = step.handle(second_step(results))
    assert len(out["turnToolCalls"]) == 16
    assert state_bytes(out["turnToolCalls"]) < TURN_SUMMARY_BYTES + 16 * 700
    assert out["turnToolCalls"][-1]["output"]["truncated"] is True
    assert out["turnToolCalls"][0]["output"] == {"body": "z" * 3_900}


def test_a_concurrent_turn_on_the_same_session_conflicts_and_writes_nothing(make_step, store):
    step, _ = make_step(reply("first"), reply("second"))
    step.handle(first_step())
    prepared = step.agent.prepare({**first_step(message="again"), "executionId": "exec-2"})
    # Another turn takes the next position first.
    store.conversations.append_step(
        "s1", 2, [NewMessage(role="user", text="x"), NewMessage(role="assistant", text="y")], turn_id="t3"
    )
    with pytest.raises(ConflictError):
        step.agent.record({**prepared, "model": {"converse": step.model.converse(prepared["request"])}})
    assert [m.turn_id for m in store.conversations.load("s1").messages] == ["t3", "t3", "exec-1", "exec-1"]


def test_the_model_sees_whole_turns_only(make_step, store):
    """A failed turn (its marker) and a turn still running elsewhere (an unanswered call) are
    left out; the current turn's own steps come last."""
    user, assistant = NewMessage(role="user", text="old"), NewMessage(role="assistant", text="fine")
    call = NewMessage(role="assistant", text="", tool_calls=[{"toolUseId": "c", "name": "calculator", "input": {}}])
    store.conversations.append_step("s1", 1, [user, assistant], turn_id="done-1", user_id="alice", new_session=True)
    store.conversations.append_step("s1", 2, [NewMessage(role="user", text="doomed"), call], turn_id="failed-2")
    store.conversations.append_step(
        "s1", 3, [NewMessage(role="failed", text="LlmUnavailableError")], turn_id="failed-2"
    )
    store.conversations.append_step("s1", 4, [NewMessage(role="user", text="mine"), call], turn_id="exec-1")
    store.conversations.append_step("s1", 5, [NewMessage(role="user", text="elsewhere"), call], turn_id="running-5")
    step, model = make_step(reply("result seen"))
    step.handle(second_step([{"toolUseId": "c", "name": "calculator", "seq": 100, "status": "SUCCEEDED", "output": 3}]))
    texts = [b.get("text") or next(iter(b)) for m in model.calls[0]["messages"] for b in m["content"]]
    assert texts == ["old", "fine", "mine", "toolUse", "toolResult"]


def test_the_lambda_entry_points_wire_settings_and_store(monkeypatch, dynamodb):
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("LLM_PROVIDER", "bedrock")
    monkeypatch.setenv("LLM_MODEL", "anthropic.test")
    monkeypatch.setenv("LLM_ENDPOINTS", json.dumps([REGION]))
    monkeypatch.setattr(agent_step, "app", None)
    prepared = agent_step.prepare_handler(first_step(message="hello"))
    assert prepared["request"]["ModelId"] == "anthropic.test", "the SDK integration's PascalCase Parameters"
    assert prepared["request"]["Messages"] == [{"Role": "user", "Content": [{"Text": "hello"}]}]
    converse = to_sdk_shape(converse_response("hi there"))
    out = agent_step.record_handler({**prepared, "model": {"converse": converse}})
    assert out["answer"] == "hi there" and out["messageId"] == "00000001-us-east-1-1"


def test_a_websocket_turn_streams_then_sends_one_final_frame(store):
    from handlers.shared.streaming import AnswerStream

    posted: list[dict] = []

    def post(connection_id, data):
        posted.append(json.loads(data))

    def stream_to(connection_id, message_id):
        return AnswerStream(connection_id, message_id, post, on_gone=store.connections.delete, flush_bytes=8)

    class Llm:  # a streaming client: text arrives in pieces
        def send(self, request, deadline=None, on_text=None):
            text = "The answer is forty-two, as always." if request["messages"][-1]["role"] == "user" else ""
            for start in range(0, len(text), 7):
                on_text(text[start : start + 7])
            calls = (
                ()
                if "tool" in json.dumps(request["messages"][-1])
                else (ToolCall("tu-1", "calculator", {"expression": "6*7"}),)
            )
            return LlmReply("" if calls else text, calls, "end_turn", 3, 2)

    specs, _ = load_tool_specs()
    agent = AgentStep(settings(), store, specs, approval_tools(), llm=Llm(), stream_to=stream_to, post=post)
    first = agent.prepare(first_step(connectionId="conn-1"))
    assert "ModelId" not in first["request"] and first["request"]["modelId"] == "m", "the stream function's shape"
    out = agent.record({**first, "model": agent.stream(first)})
    assert out["done"] is False
    assert posted[-1] == {
        "type": "progress",
        "messageId": out["messageId"],
        "step": 1,
        "toolCalls": [{"name": "calculator", "input": {"expression": "6*7"}}],
    }
    posted.clear()
    second = agent.prepare(
        {
            **second_step(
                [{"toolUseId": "tu-1", "name": "calculator", "seq": 100, "status": "SUCCEEDED", "output": 42}]
            ),
            "connectionId": "conn-1",
        }
    )
    out = agent.record({**second, "model": agent.stream(second)})
    *chunks, final = posted
    assert [f["type"] for f in posted].count("final") == 1 and final["type"] == "final" and final["done"] is True
    assert {c["messageId"] for c in chunks} == {out["messageId"]} == {final["messageId"]}
    assert final["chunks"] == len(chunks) and final["toolCalls"][0]["output"] == 42
    assert store.conversations.load("s1").messages[0].message_id == out["messageId"], "the log has the streamed message"


def test_the_turn_summary_stays_within_its_budget_however_many_steps_and_calls():
    """The configured maxima: 50 steps of 16 calls, each with a large input and output. The
    summary keeps what fits, then names and statuses, then counts the rest."""
    history: list[NewMessage] = [NewMessage(role="user", text="go")]
    for step_no in range(50):
        ids = [f"tu-{step_no}-{i}" for i in range(16)]
        history.append(
            NewMessage(
                role="assistant",
                text="",
                tool_calls=[{"toolUseId": t, "name": "http_fetch", "input": {"url": "u" * 2_000}} for t in ids],
            )
        )
        history.append(
            NewMessage(
                role="tool",
                text="",
                tool_calls=[
                    {"toolUseId": t, "name": "http_fetch", "status": "SUCCEEDED", "output": {"body": "z" * 4_000}}
                    for t in ids
                ],
            )
        )
    calls, _ = turn_summary(history, "exec-1")
    assert state_bytes(calls) <= TURN_SUMMARY_BYTES
    listed = [c for c in calls if "name" in c]
    assert len(listed) > 300 and all(c["truncated"] for c in listed), "as many as fit, by name and status"
    assert calls[-1] == {"omitted": 50 * 16 - len(listed)}
    # Three steps: every call listed, the first ones with previews, the others by name.
    some, _ = turn_summary(history[:7], "exec-1")
    assert state_bytes(some) <= TURN_SUMMARY_BYTES and len(some) == 48
    assert some[0]["output"]["truncated"] is True and some[0]["input"]["truncated"] is True
    assert some[-1] == {"name": "http_fetch", "status": "SUCCEEDED", "truncated": True}


def test_a_rotated_llm_key_is_read_again_once_the_held_one_is_older_than_its_max_age():
    import boto3
    from moto import mock_aws

    now = [0.0]
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name=REGION)
        arn = secrets.create_secret(Name="llm-key", SecretString="key-1")["ARN"]
        read = agent_step._secret_reader(arn, REGION, max_age=300, clock=lambda: now[0])
        assert read() == "key-1"
        secrets.put_secret_value(SecretId=arn, SecretString="key-2")  # rotated
        now[0] = 299.0
        assert read() == "key-1", "within its max age the held key serves, no call to Secrets Manager"
        now[0] = 300.0
        assert read() == "key-2", "past its max age the key is read again: the rotated one"
    assert agent_step._secret_reader(None, REGION)() is None


def test_without_built_specs_no_tool_needs_approval_the_config_says_which(tmp_path):
    """The source tree has no config: the approval tools come from the caller's config
    (the local stack's, the deployed specs'), never from a name in the handler."""
    specs, approvals = load_tool_specs(tmp_path / "absent.json")
    assert "create_ticket" in {s.name for s in specs}
    assert approvals == set()
    built = tmp_path / "tool_specs.json"
    built.write_text(
        json.dumps([{"name": "calculator", "description": "d", "inputSchema": {}, "requiresApproval": True}])
    )
    assert load_tool_specs(built)[1] == {"calculator"}
