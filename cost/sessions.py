"""The model's tokens, turn by turn, in sessions of a realistic shape.

Tokens are not a formula here: every model call of a session is built by the turn's own
prepare and recorded by its own record (``handlers.agent_step``, on a moto table, so the
history is read back from the store as a deployed turn reads it, cut to
``llm.historyTokens``, with the prompt cache's checkpoints where the stack's model takes
them), and each request's input side is counted by the local stand-in's prompt cache
(``local.bedrock.model.PromptCache``: what a checkpoint written within the TTL lets the next call
read). Only the answers are made up: a final answer of ``answer_tokens`` of English prose,
and, in the session's tool turns, one ``calculator`` call first.

The state machine between prepare and record is skipped: it passes the request and the
answer through unchanged (tests/test_workflows.py runs the real one).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cost.turn import TOOL_CALL_TOKENS
from handlers.shared.llm.caching import CHARS_PER_TOKEN, estimate_tokens

TOOL_OUTPUT = {"result": 42}


@dataclass(frozen=True)
class SessionShape:
    """A session as ``make cost`` prices it (``--session-turns`` and the message and answer
    sizes of ``cost.turn.Assumptions``)."""

    turns: int = 10
    message_chars: int = 400
    answer_tokens: int = 300
    tool_every: int = 3
    """Every third turn calls one tool (two model calls); 0: none does."""
    tool_call_tokens: int = TOOL_CALL_TOKENS
    """Output tokens of a step that only calls a tool."""
    turn_interval_s: float = 90.0

    def is_tool_turn(self, turn: int) -> bool:
        return self.tool_every > 0 and turn % self.tool_every == 0


@dataclass(frozen=True)
class TurnTokens:
    """One turn's model calls, summed: what each token kind is billed on."""

    calls: int
    input: int
    cache_read: int
    cache_write: int
    output: int
    history_from: int | None = None
    """The step the turn's earlier turns started from (``llm.historyTokens``' cut)."""

    @property
    def prompt(self) -> int:
        """Every input token, however billed."""
        return self.input + self.cache_read + self.cache_write


@dataclass
class Session:
    turns: list[TurnTokens] = field(default_factory=list)

    def mean(self, first: int = 1, last: int | None = None) -> TurnTokens:
        chosen = self.turns[first - 1 : last]
        n = len(chosen)
        return TurnTokens(
            calls=round(sum(t.calls for t in chosen) / n),
            input=round(sum(t.input for t in chosen) / n),
            cache_read=round(sum(t.cache_read for t in chosen) / n),
            cache_write=round(sum(t.cache_write for t in chosen) / n),
            output=round(sum(t.output for t in chosen) / n),
        )


@contextlib.contextmanager
def _table() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    from handlers.shared.table import TABLE_SCHEMA
    from local.dynamodb.guard import DynamoDBGuard

    # mock_aws puts fake credentials in the environment while it runs.
    with mock_aws(), DynamoDBGuard():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**TABLE_SCHEMA.create_table_request("agent-infra-cost"))
        yield client


def run_session(
    model_id: str,
    shape: SessionShape,
    *,
    prompt_caching: bool = True,
    history_tokens: int = 8_000,
    max_tokens: int = 2_048,
    tools: Sequence[str] | None = None,
    approval_tools: Sequence[str] = (),
) -> Session:
    """One session of ``shape.turns`` turns, each model call's usage as the stand-in's
    prompt cache counts it; the requests offer ``tools`` (the stack's; None: every module)
    but those needing an approval, which a turn never offers."""
    import logging

    from handlers.agent_step import AgentStep, AgentStepSettings, load_long_tools, load_tool_specs
    from handlers.shared.store import Store
    from local.bedrock.model import PromptCache

    if shape.turns < 1:
        raise ValueError("a session has at least one turn")
    now = {"t": 1_000_000.0}
    cache = PromptCache(clock=lambda: now["t"])
    logging.disable(logging.CRITICAL)
    try:
        with _table() as client, open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            store = Store("agent-infra-cost", "us-east-1", ttl_days=30, client=client)
            specs, _ = load_tool_specs()
            specs = [s for s in specs if tools is None or s.name in tools]
            agent = AgentStep(
                AgentStepSettings(
                    TABLE_NAME="agent-infra-cost",
                    AWS_REGION="us-east-1",
                    LLM_PROVIDER="bedrock",
                    LLM_MODEL=model_id,
                    LLM_ENDPOINTS=["us-east-1"],
                    HISTORY_TOKENS=history_tokens,
                    PROMPT_CACHING=prompt_caching,
                    MAX_TOKENS=max_tokens,
                ),
                store,
                specs,
                set(approval_tools),
                long_tools=load_long_tools(),
            )
            session = Session()
            for turn in range(1, shape.turns + 1):
                now["t"] += shape.turn_interval_s
                session.turns.append(_turn(agent, cache, model_id, shape, turn))
            return session
    finally:
        logging.disable(logging.NOTSET)


def _turn(agent: Any, cache: Any, model_id: str, shape: SessionShape, turn: int) -> TurnTokens:
    from cost.measure import prose
    from handlers.shared.llm import from_sdk_shape, to_sdk_shape
    from local.bedrock.model import converse_response

    tool_turn = shape.is_tool_turn(turn)
    message = prose(shape.message_chars, turn * 131)
    event: dict[str, Any] = {"sessionId": "cost", "userId": "u", "executionId": f"turn-{turn}", "message": message}
    totals = {"calls": 0, "input": 0, "cache_read": 0, "cache_write": 0, "output": 0}
    while True:
        prepared = agent.prepare(event)
        request = from_sdk_shape(prepared["request"])
        if tool_turn and totals["calls"] == 0:
            answer = converse_response("", [(f"tooluse_{turn}", "calculator", {"expression": "6*7"})])
            output = shape.tool_call_tokens
        else:
            answer = converse_response(prose(shape.answer_tokens * CHARS_PER_TOKEN, turn * 977))
            output = estimate_tokens(answer["output"]["message"]["content"][0]["text"])
        usage = cache.usage(model_id, request)
        answer["usage"] = {**usage, "outputTokens": output}
        totals["calls"] += 1
        totals["input"] += usage["inputTokens"]
        totals["cache_read"] += usage["cacheReadInputTokens"]
        totals["cache_write"] += usage["cacheWriteInputTokens"]
        totals["output"] += output
        out = agent.record({**prepared, "model": {"converse": to_sdk_shape(answer)}})
        if out["done"]:
            return TurnTokens(**totals, history_from=prepared["context"]["historyFrom"])
        results = [
            {
                "toolUseId": c["toolUseId"],
                "name": c["name"],
                "seq": c["seq"],
                "status": "SUCCEEDED",
                "output": TOOL_OUTPUT,
            }
            for c in out["toolCalls"]
        ]
        event = {**event, "step": out["step"], "message": None, "toolResults": results}


# -- what the tokens cost -----------------------------------------------------------------------

LONG_SESSION_TURNS = 50
"""The session length at which the report checks that a turn costs no more than at turn 10."""


def turn_usd(turn: TurnTokens, price: Any) -> float:
    """A turn's tokens at ``price`` (a ``cost.prices.ModelPrice``). A model without prompt
    caching never reports cached tokens; were it to, they are billed as input."""
    read = price.cache_read_per_million if price.cache_read_per_million is not None else price.input_per_million
    write = price.cache_write_per_million if price.cache_write_per_million is not None else price.input_per_million
    return (
        turn.input * price.input_per_million
        + turn.cache_read * read
        + turn.cache_write * write
        + turn.output * price.output_per_million
    ) / 1e6


def input_usd(turn: TurnTokens, price: Any) -> float:
    """What a turn's input tokens are billed, however each was counted."""
    return turn_usd(TurnTokens(turn.calls, turn.input, turn.cache_read, turn.cache_write, 0), price)


@dataclass(frozen=True)
class ModelTokens:
    """A stack's model tokens: one long session with prompt caching and one without, the
    first ``shape.turns`` turns of each being the report's session."""

    model_id: str
    price: Any
    shape: SessionShape
    history_tokens: int
    cached: Session
    uncached: Session

    def session_turns(self, cached: bool) -> list[TurnTokens]:
        return (self.cached if cached else self.uncached).turns[: self.shape.turns]

    def per_turn_usd(self, cached: bool) -> float:
        turns = self.session_turns(cached)
        return sum(turn_usd(t, self.price) for t in turns) / len(turns)

    def input_share(self) -> float:
        """Billed input with caching over billed input without, for the report's session."""
        with_cache = sum(input_usd(t, self.price) for t in self.session_turns(True))
        without = sum(input_usd(t, self.price) for t in self.session_turns(False))
        return with_cache / without if without else 1.0

    def turn_usd(self, number: int, cached: bool = True) -> float:
        return turn_usd((self.cached if cached else self.uncached).turns[number - 1], self.price)

    def mean_usd(self, first: int, last: int, cached: bool = True) -> float:
        turns = (self.cached if cached else self.uncached).turns[first - 1 : last]
        return sum(turn_usd(t, self.price) for t in turns) / len(turns)

    def _kind_turns(self, kind: str) -> list[TurnTokens]:
        """The session's turns of a kind of turn in the report: tool turns for ``tool`` and
        ``memory``, the others for ``direct`` and ``websocket``."""
        tools = kind in ("tool", "memory")
        turns = [t for n, t in enumerate(self.session_turns(True), 1) if self.shape.is_tool_turn(n) == tools]
        return turns or self.session_turns(True)

    def kind_usd(self, kind: str) -> float:
        turns = self._kind_turns(kind)
        return sum(turn_usd(t, self.price) for t in turns) / len(turns)

    def tokens_per_call(self) -> float:
        turns = self.session_turns(True)
        return sum(t.prompt + t.output for t in turns) / sum(t.calls for t in turns)

    def recuts(self) -> list[int]:
        """The turns of the long session whose history starts later than the turn before's:
        each writes its whole prompt to the cache again."""
        turns = self.cached.turns
        return [n for n in range(2, len(turns) + 1) if turns[n - 1].history_from != turns[n - 2].history_from]

    def tool_turns(self, first: int, last: int) -> int:
        return sum(1 for n in range(first, last + 1) if self.shape.is_tool_turn(n))

    def mix(self) -> tuple[int, int]:
        """The session's turns without and with a tool call."""
        tools = sum(1 for n in range(1, self.shape.turns + 1) if self.shape.is_tool_turn(n))
        return self.shape.turns - tools, tools


def model_tokens(
    model_id: str,
    price: Any,
    shape: SessionShape,
    *,
    history_tokens: int,
    max_tokens: int,
    prompt_caching: bool,
    tools: Sequence[str] | None = None,
    approval_tools: Sequence[str] = (),
) -> ModelTokens:
    """Both sessions, ``LONG_SESSION_TURNS`` long (at least the report's session)."""
    long = SessionShape(**{**shape.__dict__, "turns": max(shape.turns, LONG_SESSION_TURNS)})
    common = {
        "history_tokens": history_tokens,
        "max_tokens": max_tokens,
        "tools": tools,
        "approval_tools": approval_tools,
    }
    cached = run_session(model_id, long, prompt_caching=prompt_caching, **common)
    uncached = run_session(model_id, long, prompt_caching=False, **common) if prompt_caching else cached
    return ModelTokens(model_id, price, shape, history_tokens, cached, uncached)
