"""Prompt caching and the bounded history, through the real prepare and record on moto.

The model is the local stand-in's rules with its prompt cache (``local.bedrock.model.PromptCache``):
usage comes from what each request's checkpoints would read and write, so these tests see
cache hits happen, or not, from the requests the turn really builds.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.agent_step import AgentStep, AgentStepSettings, load_long_tools, load_tool_specs
from handlers.shared.llm import (
    LlmReply,
    bedrock_request,
    from_sdk_shape,
    parse_bedrock_reply,
    parse_openai_reply,
    to_sdk_shape,
)
from handlers.shared.llm.caching import cache_support, estimate_tokens
from handlers.shared.store import Message
from handlers.shared.turns import bounded_history, message_tokens, to_llm_message
from local.bedrock.model import PromptCache, converse_response, decide
from tests.approvals import approval_tools
from tests.conftest import REGION, TABLE_NAME

SONNET = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def tool_steps(steps: int):
    """A model that calls ``calculator`` ``steps`` times, one step after another, then answers."""

    def answer(request: dict) -> dict:
        messages = request["messages"]
        start = max(n for n, m in enumerate(messages) if m["role"] == "user" and "text" in m["content"][0])
        done = sum(1 for m in messages[start:] if m["role"] == "assistant")
        if done < steps:
            return converse_response("", [(f"tu-{len(messages)}-{done}", "calculator", {"expression": "1+1"})])
        return converse_response("done " + "x" * 400)

    return answer


class CachingModel:
    """The stand-in's rules answering the SDK integration's Converse, usage counted by its
    prompt cache."""

    def __init__(self, model_id: str, clock: Clock, rules=decide) -> None:
        self.model_id = model_id
        self.cache = PromptCache(clock)
        self.rules = rules
        self.requests: list[dict] = []
        self.usages: list[dict] = []

    def converse(self, sdk_request: dict) -> dict:
        request = from_sdk_shape(sdk_request)
        self.requests.append(request)
        answer = self.rules(request)
        answer["usage"] = {**answer["usage"], **self.cache.usage(self.model_id, request)}
        self.usages.append(answer["usage"])
        return to_sdk_shape(answer)


class Turns:
    def __init__(self, store, model_id: str, rules=decide, **extra) -> None:
        self.clock = Clock()
        self.model = CachingModel(model_id, self.clock, rules)
        specs, _ = load_tool_specs()
        self.agent = AgentStep(
            AgentStepSettings(
                TABLE_NAME=TABLE_NAME,
                AWS_REGION=REGION,
                LLM_PROVIDER="bedrock",
                LLM_MODEL=model_id,
                LLM_ENDPOINTS=[REGION],
                **extra,
            ),
            store,
            specs,
            approval_tools(),
            long_tools=load_long_tools(),
        )
        self.turns = 0

    def run(self, message: str) -> dict:
        """One turn, its tool calls answered with the stand-in's reading of them."""
        self.turns += 1
        event = {"sessionId": "s1", "userId": "alice", "executionId": f"turn-{self.turns}", "message": message}
        while True:
            prepared = self.agent.prepare(event)
            out = self.agent.record({**prepared, "model": {"converse": self.model.converse(prepared["request"])}})
            if out["done"]:
                return out
            results = [
                {"toolUseId": c["toolUseId"], "name": c["name"], "seq": c["seq"], "status": "SUCCEEDED"}
                | {"output": {"result": 42}}
                for c in out["toolCalls"]
            ]
            event = {**event, "step": out["step"], "message": None, "toolResults": results}
            self.clock.now += 2


def without_cache_points(request: dict) -> list[dict]:
    return [{**m, "content": [b for b in m["content"] if "cachePoint" not in b]} for m in request.get("messages", [])]


def assert_extends(before: dict, after: dict) -> None:
    """``after``'s prompt starts with ``before``'s, byte for byte (keys in their order)."""
    sent = without_cache_points(before)
    assert json.dumps(without_cache_points(after)[: len(sent)]) == json.dumps(sent)
    assert json.dumps(after["system"][0]) == json.dumps(before["system"][0])
    assert json.dumps(after["toolConfig"]) == json.dumps(before["toolConfig"])


def cache_point_places(request: dict) -> list[str]:
    places = [f"system[{n}]" for n, b in enumerate(request.get("system", [])) if "cachePoint" in b]
    for n, message in enumerate(request.get("messages", [])):
        places += [f"messages[{n}]" for b in message["content"] if "cachePoint" in b]
    return places


LONG = "Tell me about the history of the printing press in some detail, please. " * 40


def test_each_call_reads_the_prefix_the_call_before_it_wrote(store):
    turns = Turns(store, SONNET)
    turns.run(LONG)  # turn 1: ~750 tokens of message; the prefix passes Sonnet's 1,024 tokens
    turns.run("calculate 6*7")  # turn 2: two model calls

    first, second, third = turns.model.requests
    u1, u2, u3 = turns.model.usages
    # Turn 1 wrote its request's prefix; turn 2's first call reads it and writes its own.
    assert u1["cacheReadInputTokens"] == 0 and u1["cacheWriteInputTokens"] > 1_024
    assert u2["cacheReadInputTokens"] == u1["cacheReadInputTokens"] + u1["cacheWriteInputTokens"]
    assert u3["cacheReadInputTokens"] == u2["cacheReadInputTokens"] + u2["cacheWriteInputTokens"]
    # What is left at the full price is only what follows the last checkpoint: nothing.
    assert u2["inputTokens"] == u3["inputTokens"] == 0
    # Byte-stable: each request's messages start with the one before's, read back from the table.
    for before, after in ((first, second), (second, third)):
        assert_extends(before, after)
    # The checkpoints: the previous call's end (read) and this request's end (written).
    assert cache_point_places(third) == ["messages[2]", "messages[4]"]
    assert third["messages"][3]["role"] == "assistant"


def test_a_turn_after_the_cache_expired_writes_again(store):
    turns = Turns(store, SONNET)
    turns.run(LONG)
    turns.clock.now += PromptCache.TTL_SECONDS + 1
    turns.run("hello again")
    later = turns.model.usages[-1]
    assert later["cacheReadInputTokens"] == 0 and later["cacheWriteInputTokens"] > 1_024


@pytest.mark.parametrize(
    ("model_id", "extra"),
    [
        ("meta.llama3-3-70b-instruct-v1:0", {}),  # no prompt caching on Bedrock
        (SONNET, {"PROMPT_CACHING": False}),  # turned off in the config
        (HAIKU, {}),  # caches, but this conversation is under its 4,096-token minimum
    ],
    ids=["model without caching", "llm.promptCaching false", "under the model's minimum"],
)
def test_no_cache_points_where_they_would_cache_nothing(store, model_id, extra):
    turns = Turns(store, model_id, **extra)
    turns.run(LONG)
    turns.run("calculate 6*7")
    assert all(cache_point_places(r) == [] for r in turns.model.requests)
    assert all("cachePoint" not in json.dumps(r) for r in turns.model.requests)
    assert all(u["cacheReadInputTokens"] == u["cacheWriteInputTokens"] == 0 for u in turns.model.usages)


def test_the_system_prompt_is_a_checkpoint_once_tools_and_system_reach_the_minimum():
    from handlers.shared.llm import LlmMessage, ToolSpec

    tools = [ToolSpec(f"tool_{n}", "d" * 400, {"type": "object"}) for n in range(12)]
    request = bedrock_request(SONNET, "You help.", [LlmMessage("user", "hi")], tools, 100, cache_support(SONNET))
    assert estimate_tokens(request["toolConfig"]["tools"]) >= 1_024
    assert request["system"] == [{"text": "You help."}, {"cachePoint": {"type": "default"}}]
    few = bedrock_request(SONNET, "You help.", [LlmMessage("user", "hi")], tools[:1], 100, cache_support(SONNET))
    assert few["system"] == [{"text": "You help."}], "under the minimum: no checkpoint"
    # The SDK integration's PascalCase form.
    assert to_sdk_shape(request)["System"][1] == {"CachePoint": {"Type": "default"}}


def test_tool_documents_are_rendered_with_sorted_keys_whatever_order_they_come_back_in():
    from handlers.shared.llm import LlmMessage, ToolCall, ToolResult

    one = LlmMessage("assistant", tool_calls=(ToolCall("t1", "memory", {"b": 1, "a": {"y": 2, "x": 1}}),))
    two = LlmMessage("assistant", tool_calls=(ToolCall("t1", "memory", {"a": {"x": 1, "y": 2}, "b": 1}),))
    result = LlmMessage("user", tool_results=(ToolResult("t1", "memory", {"z": 1, "a": 2}),))
    first = bedrock_request("m", "", [one, result], [], 10)
    second = bedrock_request("m", "", [two, result], [], 10)
    assert json.dumps(first) == json.dumps(second)


# -- usage as each provider reports it ---------------------------------------------------------


def test_converse_usage_keeps_cache_reads_and_writes_apart_from_input():
    reply = parse_bedrock_reply(
        {
            "output": {"message": {"content": [{"text": "hi"}]}},
            "usage": {"inputTokens": 12, "outputTokens": 5, "cacheReadInputTokens": 3000, "cacheWriteInputTokens": 40},
        },
        "bedrock",
    )
    assert (reply.input_tokens, reply.cache_read_tokens, reply.cache_write_tokens) == (12, 3000, 40)
    plain = parse_bedrock_reply({"output": {"message": {"content": []}}, "usage": {"inputTokens": 9}}, "bedrock")
    assert (plain.cache_read_tokens, plain.cache_write_tokens) == (0, 0)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 1_000, "prompt_tokens_details": {"cached_tokens": -500}}, (1_000, 0)),
        ({"prompt_tokens": float("nan"), "completion_tokens": 3}, (0, 0)),
        ({"prompt_tokens": -7, "prompt_tokens_details": {"cached_tokens": 5}}, (0, 0)),
        ({"prompt_tokens": "12"}, (0, 0)),
    ],
)
def test_a_broken_servers_counts_are_never_negative_or_fatal(usage, expected):
    reply = parse_openai_reply({"choices": [{"message": {"content": "x"}}], "usage": usage}, "openai")
    assert (reply.input_tokens, reply.cache_read_tokens) == expected
    assert min(reply.input_tokens, reply.output_tokens, reply.cache_read_tokens, reply.cache_write_tokens) >= 0
    bedrock = parse_bedrock_reply(
        {"output": {"message": {"content": []}}, "usage": {"inputTokens": -1, "cacheReadInputTokens": float("inf")}},
        "bedrock",
    )
    assert (bedrock.input_tokens, bedrock.cache_read_tokens) == (0, 0)


def test_openai_usage_takes_the_cached_tokens_out_of_prompt_tokens():
    body = {
        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2_000, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 1_536}},
    }
    reply = parse_openai_reply(body, "openai")
    assert (reply.input_tokens, reply.cache_read_tokens, reply.cache_write_tokens, reply.output_tokens) == (
        464,
        1_536,
        0,
        7,
    )
    # A server that does not report caching (many OpenAI-compatible ones): nothing cached.
    del body["usage"]["prompt_tokens_details"]
    assert parse_openai_reply(body, "openai").input_tokens == 2_000
    # A hostile or broken count never makes input negative.
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 9_999, "cache_write_tokens": "x"}
    reply = parse_openai_reply(body, "openai")
    assert (reply.input_tokens, reply.cache_read_tokens, reply.cache_write_tokens) == (0, 2_000, 0)


def test_the_usage_log_line_and_metrics_carry_the_cache_tokens_and_hit_ratio(capsys):
    from handlers.shared.llm import record_usage

    record_usage("m", LlmReply("a", (), "end_turn", 100, 5, "e", cache_read_tokens=800, cache_write_tokens=100))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    log = next(line for line in lines if line.get("message") == "llm usage")
    assert log["cacheReadInputTokens"] == 800 and log["cacheWriteInputTokens"] == 100 and log["cacheHitRatio"] == 0.8
    metrics = next(line for line in lines if "_aws" in line)
    assert metrics["CacheReadInputTokens"] == 800 and metrics["CacheWriteInputTokens"] == 100


# -- the prompt cache stand-in ----------------------------------------------------------------


def test_the_stand_in_cache_expires_after_five_minutes_unless_read():
    clock = Clock()
    cache = PromptCache(clock)
    request = {
        "system": [{"text": "s" * 8_000}, {"cachePoint": {"type": "default"}}],
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
    }
    assert cache.usage(SONNET, request)["cacheWriteInputTokens"] > 0
    clock.now += 299
    assert cache.usage(SONNET, request)["cacheReadInputTokens"] > 0, "read within the TTL"
    clock.now += 299
    assert cache.usage(SONNET, request)["cacheReadInputTokens"] > 0, "the read started the 5 minutes again"
    clock.now += 301
    assert cache.usage(SONNET, request)["cacheReadInputTokens"] == 0
    assert cache.usage("meta.llama3-3-70b-instruct-v1:0", request)["cacheWriteInputTokens"] == 0


# -- the bounded history -------------------------------------------------------------------------


def stored(turn: int, seq: int, role: str, text: str = "", calls=(), history_from=None) -> Message:
    return Message(
        session_id="s1",
        message_id=f"{seq:08d}-r-0",
        role=role,
        text=text,
        tool_calls=list(calls),
        usage=None,
        created_at_ms=0,
        region="r",
        expires_at=0,
        seq=seq,
        turn_id=f"turn-{turn}",
        history_from=history_from,
    )


def session(shapes: list[tuple[int, int]]) -> list[Message]:
    """Stored turns: each ``(size, tool steps)`` a user message of ``size`` characters, that
    many steps of tool calls with their results, and a final answer."""
    messages, seq = [], 1
    for turn, (size, tools) in enumerate(shapes):
        messages.append(stored(turn, seq, "user", "u" * size))
        for step in range(tools):
            calls = [{"toolUseId": f"t{turn}-{step}-{n}", "name": "calculator", "input": {"e": "1+1"}} for n in (0, 1)]
            messages.append(stored(turn, seq, "assistant", calls=calls))
            seq += 1
            results = [{**c, "status": "SUCCEEDED", "output": {"result": 2}} for c in calls]
            messages.append(stored(turn, seq, "tool", calls=results))
        messages.append(stored(turn, seq, "assistant", "a" * size))
        seq += 1
    return messages


def no_orphan_results(request: dict) -> bool:
    messages = request["messages"]
    for n, message in enumerate(messages):
        results = {b["toolResult"]["toolUseId"] for b in message["content"] if "toolResult" in b}
        uses = set()
        if n > 0 and messages[n - 1]["role"] == "assistant":
            uses = {b["toolUse"]["toolUseId"] for b in messages[n - 1]["content"] if "toolUse" in b}
        if not results <= uses:
            return False
    return True


@settings(max_examples=150, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 3_000), st.integers(0, 3)), min_size=1, max_size=30),
    budget=st.integers(500, 6_000),
    hint=st.one_of(st.none(), st.integers(0, 60)),
)
def test_the_cut_keeps_whole_turns_within_the_budget_and_leaves_no_orphan_tool_result(shapes, budget, hint):
    from handlers.shared.llm import ToolSpec

    history = session(shapes)
    current = Message(**_fields(stored(len(shapes), 1_000, "user", "now"), turn_id="current"))
    kept, start = bounded_history(
        [*history, current],
        "current",
        budget=budget,
        hint=hint,
        whole_session=True,
        max_messages=40,
        first_seq=1_000,
    )
    earlier = [m for m in kept if m.turn_id != "current"]
    assert sum(message_tokens(m) for m in earlier) <= budget
    assert kept[-1] is current
    # Whole turns only, the newest ones, each from its user message on.
    kept_turns = list(dict.fromkeys(m.turn_id for m in earlier))
    all_turns = list(dict.fromkeys(m.turn_id for m in history))
    assert kept_turns == all_turns[len(all_turns) - len(kept_turns) :]
    for turn in kept_turns:
        assert [m for m in earlier if m.turn_id == turn] == [m for m in history if m.turn_id == turn]
    assert all(m.seq >= start for m in earlier)
    spec = ToolSpec("calculator", "d", {"type": "object"})
    request = bedrock_request(SONNET, "s", [to_llm_message(m) for m in kept], [spec], 10, cache_support(SONNET))
    assert no_orphan_results(request)


def _fields(message: Message, **changes) -> dict:
    return {f: changes.get(f, getattr(message, f)) for f in message.__struct_fields__}


def test_the_start_stays_put_until_the_turns_outgrow_the_budget_then_halves():
    """A session of equal turns, each call storing its start and the next reading it back:
    the start moves once every few turns, not every turn, and each move keeps half the budget."""
    budget, hint, starts = 4_000, None, []
    shapes = [(1_200, 0)] * 60  # ~600 tokens a turn
    history = session(shapes)
    for n in range(1, len(shapes)):
        earlier = [m for m in history if int(m.turn_id.split("-")[1]) < n]
        current = Message(**_fields(stored(n, 10_000 + n, "user", "now"), turn_id="current"))
        kept, hint = bounded_history(
            [*earlier, current],
            "current",
            budget=budget,
            hint=hint,
            whole_session=True,
            max_messages=10_000,
            first_seq=10_000 + n,
        )
        starts.append(hint)
        tokens = sum(message_tokens(m) for m in kept if m.turn_id != "current")
        assert tokens <= budget
    moves = sum(1 for a, b in itertools.pairwise(starts) if a != b)
    assert moves <= len(starts) * 600 // (budget // 2) + 1, starts
    assert moves >= 5, "the history was cut at all"


def test_a_session_longer_than_the_budget_sends_the_same_history_for_several_turns(store):
    turns = Turns(store, SONNET, HISTORY_TOKENS=2_000)
    for n in range(12):
        turns.run(f"question {n}: " + "tell me more about presses. " * 20)
    firsts = turns.model.requests
    oldest = [r["messages"][0]["content"][0]["text"].split(":")[0] for r in firsts]
    moves = sum(1 for a, b in itertools.pairwise(oldest) if a != b)
    assert moves < len(oldest) // 2, oldest
    assert any(u["cacheReadInputTokens"] > 0 for u in turns.model.usages[-4:])
    assert all(estimate_tokens(without_cache_points(r)) < 2_000 + 1_500 for r in firsts)


def test_the_start_is_stored_with_the_reply(store):
    turns = Turns(store, SONNET)
    turns.run("hello")
    page = store.conversations.load("s1")
    assistant = next(m for m in page.messages if m.role == "assistant")
    assert assistant.history_from == 0, "the whole session fits: the history starts at its start"


@pytest.mark.parametrize("steps", [1, 3, 4, 5])
def test_every_step_of_a_tool_heavy_turn_extends_the_prompt_the_step_before_sent(store, steps):
    """The earlier turns read at each step are the same, whatever the turn's own steps add to
    the session: the history's start never moves in the middle of a turn."""
    turns = Turns(store, SONNET, rules=tool_steps(steps))
    for n in range(12):
        turns.run(f"question {n}: " + "tell me more about presses. " * 25)
        calls = turns.model.requests[-(steps + 1) :]
        for before, after in itertools.pairwise(calls):
            assert_extends(before, after)


def test_a_preview_shortened_again_is_the_same_preview():
    from handlers.shared.turns import TOOL_OUTPUT_IN_REQUEST_BYTES, shortened, state_bytes

    for output in ({"posts": "\N{GRINNING FACE}" * 10_000}, {"q": '"' * 40_000}, {"t": "\x01" * 30_000}):
        once = shortened(output, TOOL_OUTPUT_IN_REQUEST_BYTES)
        assert state_bytes(once) <= TOOL_OUTPUT_IN_REQUEST_BYTES
        assert shortened(once, TOOL_OUTPUT_IN_REQUEST_BYTES) == once
        result = {"toolUseId": "t1", "name": "web", "status": "SUCCEEDED"}
        from handlers.shared.store import NewMessage

        at_run = to_llm_message(NewMessage(role="tool", text="", tool_calls=[{**result, "output": once}]))
        later = to_llm_message(NewMessage(role="tool", text="", tool_calls=[{**result, "output": output}]))
        assert at_run == later


def test_a_damaged_stored_start_is_read_as_absent(store):
    from handlers.shared.store import NewMessage

    for seq, value in enumerate(["3", -1, True, 2.5], start=1):
        message = NewMessage(role="assistant", text="a", history_from=value)
        store.conversations.append_step("s1", seq, [message], turn_id=f"t{seq}", user_id="alice", new_session=seq == 1)
    assert [m.history_from for m in store.conversations.load("s1").messages] == [None] * 4


def test_a_start_no_call_could_have_stored_is_cut_afresh():
    history = session([(800, 0)] * 5)
    current = Message(**_fields(stored(5, 6, "user", "now"), turn_id="current"))
    common = {"budget": 8_000, "whole_session": True, "max_messages": 40, "first_seq": 6}
    assert bounded_history([*history, current], "current", hint=10**12, **common) == (
        [*history, current],
        0,
    ), "a start past this step is no start: the whole session fits"


def test_the_stand_in_reads_only_a_prefix_sent_byte_for_byte():
    cache = PromptCache(Clock())
    long = "p" * 6_000
    first = {"messages": [{"role": "user", "content": [{"json": {"a": long, "b": 1}}, {"cachePoint": {}}]}]}
    reordered = {"messages": [{"role": "user", "content": [{"json": {"b": 1, "a": long}}, {"cachePoint": {}}]}]}
    assert cache.usage(SONNET, first)["cacheWriteInputTokens"] > 0
    assert cache.usage(SONNET, reordered)["cacheReadInputTokens"] == 0
