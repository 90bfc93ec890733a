"""The agent-step Lambda on moto, with a scripted model (the LLM client is tested on its own)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from handlers import agent_step
from handlers.agent_step import (
    AgentStep,
    AgentStepSettings,
    MaxStepsExceededError,
    SessionOwnershipError,
    load_tool_specs,
)
from handlers.shared.llm import LlmReply, ToolCall
from handlers.shared.state import ConflictError
from tests.conftest import REGION, TABLE_NAME


class ScriptedModel:
    def __init__(self, *replies: LlmReply):
        self.replies = list(replies)
        self.calls = []

    def converse(self, system, messages, tools=(), max_tokens=2048, deadline=None, on_text=None):
        self.calls.append(
            {"system": system, "messages": list(messages), "tools": [t.name for t in tools], "deadline": deadline}
        )
        answer = self.replies.pop(0)
        if on_text is not None and answer.text:
            for start in range(0, len(answer.text), 7):  # arrives in pieces, as a stream does
                on_text(answer.text[start : start + 7])
        return answer


def reply(text="", calls=()):
    return LlmReply(
        text=text,
        tool_calls=tuple(calls),
        stop_reason="tool_use" if calls else "end_turn",
        input_tokens=11,
        output_tokens=5,
        endpoint="bedrock:us-east-1",
    )


@pytest.fixture
def make_step(store):
    def make(*replies, max_steps=4):
        settings = AgentStepSettings(
            TABLE_NAME=TABLE_NAME,
            AWS_REGION=REGION,
            LLM_PROVIDER="bedrock",
            LLM_MODEL="m",
            LLM_ENDPOINTS=[REGION],
            MAX_STEPS=max_steps,
        )
        model = ScriptedModel(*replies)
        specs, approval_tools = load_tool_specs()
        return AgentStep(settings, store, model, specs, approval_tools), model

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


def test_a_direct_answer_creates_the_session_and_persists_both_messages(make_step, store):
    step, model = make_step(reply("Hello! How can I help?"))
    out = step.handle(first_step(message="hi"))
    assert out["done"] is True and out["answer"] == "Hello! How can I help?" and out["toolCalls"] == []
    assert out["step"] == 2 and out["usage"] == {"inputTokens": 11, "outputTokens": 5}
    page = store.load_conversation("s1")
    assert page.meta.user_id == "alice" and page.meta.version == 1
    assert [(m.role, m.text) for m in reversed(page.messages)] == [
        ("user", "hi"),
        ("assistant", "Hello! How can I help?"),
    ]
    assert out["messageId"] == page.messages[0].message_id
    assert model.calls[0]["tools"] == ["calculator", "http_fetch", "memory"], "a turn never offers approval tools"
    assert out["turnToolCalls"] == [] and out["turnUsage"] == {"inputTokens": 11, "outputTokens": 5}


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
    assistant = store.load_conversation("s1").messages[0]
    assert assistant.role == "assistant" and [c["name"] for c in assistant.tool_calls] == ["calculator", "memory"]


def test_the_next_step_sends_results_after_the_call_and_persists_them(make_step, store):
    step, model = make_step(reply("", [ToolCall("tu-1", "calculator", {"expression": "6*7"})]), reply("It is 42."))
    step.handle(first_step())
    out = step.handle(
        {
            "sessionId": "s1",
            "userId": "alice",
            "executionId": "exec-1",
            "step": 2,
            "toolResults": [
                {"toolUseId": "tu-1", "name": "calculator", "seq": 100, "status": "SUCCEEDED", "output": {"result": 42}}
            ],
        }
    )
    assert out["done"] is True and out["answer"] == "It is 42." and out["step"] == 3
    assert out["turnToolCalls"] == [
        {"name": "calculator", "input": {"expression": "6*7"}, "output": {"result": 42}, "status": "SUCCEEDED"}
    ]
    assert out["turnUsage"] == {"inputTokens": 22, "outputTokens": 10}, "both model calls of the turn"
    sent = model.calls[1]["messages"]
    assert [m.role for m in sent] == ["user", "assistant", "user"]
    assert sent[1].tool_calls[0].tool_use_id == "tu-1"
    assert sent[2].tool_results[0].output == {"result": 42}
    history = list(reversed(store.load_conversation("s1").messages))
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert store.load_conversation("s1").meta.version == 2


def test_outputs_passed_by_reference_are_read_back(make_step, store):
    store.record_tool_execution(
        "exec-1", 100, "http_fetch", status="SUCCEEDED", input={}, output={"body": "y" * 50_000}
    )
    step, model = make_step(reply("", [ToolCall("tu-1", "http_fetch", {"url": "https://example.com"})]), reply("done"))
    step.handle(first_step())
    step.handle(
        {
            "sessionId": "s1",
            "userId": "alice",
            "executionId": "exec-1",
            "step": 2,
            "toolResults": [
                {
                    "toolUseId": "tu-1",
                    "name": "http_fetch",
                    "seq": 100,
                    "status": "SUCCEEDED",
                    "outputRef": {"executionId": "exec-1", "seq": 100, "name": "http_fetch"},
                }
            ],
        }
    )
    assert model.calls[1]["messages"][2].tool_results[0].output == {"body": "y" * 50_000}


def test_another_users_session_is_refused_and_untouched(make_step, store):
    store.create_session("bob", "s1")
    step, model = make_step(reply("nope"))
    with pytest.raises(SessionOwnershipError):
        step.handle(first_step())
    assert model.calls == []
    assert store.load_conversation("s1").messages == []


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
    assert model.calls[0]["tools"] == ["calculator"]
    assert [c["name"] for c in out["toolCalls"]] == ["calculator"], "a tool not offered is never run"


def test_a_task_offers_approval_tools_and_caps_calls_per_step(make_step):
    calls = [ToolCall(f"tu-{i}", "calculator", {"expression": str(i)}) for i in range(20)]
    step, model = make_step(reply("", calls))
    out = step.handle(first_step(mode="task"))
    assert "create_ticket" in model.calls[0]["tools"]
    assert len(out["toolCalls"]) == 16
    assert [c["seq"] for c in out["toolCalls"]] == list(range(100, 116))


def test_a_repeated_idempotency_key_writes_nothing(make_step, store):
    from handlers.shared.state import DuplicateRequestError

    # The duplicate is found when the turn is written, after its model call: one wasted
    # call on a rare replay buys keeping a turn at two DynamoDB round trips.
    step, _ = make_step(reply("first"), reply("duplicate"), reply("second"))
    step.handle(first_step(idempotencyKey="turn-1"))
    with pytest.raises(DuplicateRequestError):
        step.handle(first_step(idempotencyKey="turn-1"))
    assert len(store.load_conversation("s1").messages) == 2
    other_session = {**first_step(idempotencyKey="turn-2"), "sessionId": "s2"}
    assert step.handle(other_session)["answer"] == "second"


def test_the_turn_summary_keeps_the_final_state_small(make_step):
    from handlers.agent_step import TURN_SUMMARY_BYTES

    calls = [ToolCall(f"tu-{i}", "http_fetch", {"url": f"https://e.com/{i}"}) for i in range(10)]
    step, _ = make_step(reply("", calls), reply("done"))
    step.handle(first_step())
    results = [
        {
            "toolUseId": f"tu-{i}",
            "name": "http_fetch",
            "seq": 100 + i,
            "status": "SUCCEEDED",
            "output": {"body": "z" * 8_000},
        }
        for i in range(10)
    ]
    out = step.handle(
        {"sessionId": "s1", "userId": "alice", "executionId": "exec-1", "step": 2, "toolResults": results}
    )
    assert len(out["turnToolCalls"]) == 10
    assert len(json.dumps(out)) < TURN_SUMMARY_BYTES + 10_000
    assert out["turnToolCalls"][-1]["output"]["truncated"] is True
    assert out["turnToolCalls"][0]["output"] == {"body": "z" * 8_000}


def test_a_concurrent_turn_on_the_same_session_conflicts(make_step, store):
    step, _ = make_step(reply("first"), reply("second"))
    step.handle(first_step())
    real_load = store.load_conversation
    stale = real_load("s1")
    store.load_conversation = lambda *a, **k: stale
    store.update_session("s1", stale.meta.version)  # another writer got there first
    with pytest.raises(ConflictError):
        step.handle(first_step(message="again"))


def test_the_lambda_entry_point_wires_settings_store_and_bedrock(monkeypatch, dynamodb):
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("LLM_PROVIDER", "bedrock")
    monkeypatch.setenv("LLM_MODEL", "anthropic.test")
    monkeypatch.setenv("LLM_ENDPOINTS", json.dumps([REGION, "us-west-2"]))
    app = agent_step.from_environment()
    assert [t.name for t in app.llm.transports] == ["bedrock:us-east-1", "bedrock:us-west-2"]
    client = boto3.client("bedrock-runtime", region_name=REGION)
    app.llm.transports[0]._client = client
    monkeypatch.setattr(agent_step, "app", app)

    class Context:
        def get_remaining_time_in_millis(self):
            return 30_000

    with Stubber(client) as stub:
        stub.add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "hi there"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
                "metrics": {"latencyMs": 1},
            },
        )
        out = agent_step.handler(first_step(message="hello"), Context())
    assert out["answer"] == "hi there"


def test_a_websocket_turn_streams_each_step_to_the_connection(store):
    from handlers.shared.streaming import AnswerStream

    posted: list[dict] = []
    settings = AgentStepSettings(
        TABLE_NAME=TABLE_NAME, AWS_REGION=REGION, LLM_PROVIDER="bedrock", LLM_MODEL="m", LLM_ENDPOINTS=[REGION]
    )
    model = ScriptedModel(reply("The answer is forty-two, as always."))
    specs, approvals = load_tool_specs()

    def stream_to(connection_id, message_id):
        return AnswerStream(
            connection_id,
            message_id,
            lambda c, data: posted.append(json.loads(data)),
            on_gone=store.delete_connection,
            flush_bytes=8,
        )

    step = AgentStep(settings, store, model, specs, approvals, stream_to=stream_to)
    out = step.handle(first_step(connectionId="conn-1"))
    *chunks, final = posted
    assert "".join(c["text"] for c in sorted(chunks, key=lambda c: c["seq"])) == "The answer is forty-two, as always."
    assert {c["messageId"] for c in chunks} == {out["messageId"]} == {final["messageId"]}
    assert final["type"] == "final" and final["done"] is True and final["chunks"] == len(chunks)
    assert store.load_conversation("s1").messages[0].message_id == out["messageId"], "the log has the streamed message"


def test_bad_settings_name_the_variable(monkeypatch):
    monkeypatch.delenv("TABLE_NAME", raising=False)
    from handlers.shared.settings import SettingsError

    with pytest.raises(SettingsError, match="TABLE_NAME"):
        agent_step.from_environment()
