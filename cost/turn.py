"""What a turn is, besides the program's resources: what it does, as ``cost.measure``
counts it on the local stack (:class:`TurnProfile`), and every figure that is neither
measured nor read from the program, named and printed with the report (:class:`Assumptions`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from cost.prices import ModelPrice


@dataclass(frozen=True)
class TurnProfile:
    """What one turn does on average, as measured on the local stack (``cost.measure``)."""

    kind: str
    description: str
    turns: int
    session_turns: int
    turn_interval_s: float
    states_entered: float
    task_states: float
    model_calls: float
    invocations: Mapping[str, float]
    """Lambda invocations per turn, by function key (``agent-prepare``, ``tool-calculator``, ...)."""
    handler_ms: Mapping[str, float]
    """Median time in each function's handler, DynamoDB calls taken out, in ms (local CPU)."""
    dynamodb_calls: Mapping[str, float]
    """DynamoDB requests per invocation, by function."""
    dynamodb_requests: Mapping[str, float]
    """DynamoDB requests per turn, by operation."""
    write_units: float
    """Write units in the region that takes the write (transactional writes count twice)."""
    replica_write_units: float
    """Replicated write units each other replica receives (1 per KB of each item written)."""
    gsi_write_units: float
    """GSI1 write units in each region (an item moved in the index counts twice)."""
    read_units: float
    new_items: float
    ttl_delete_units: float
    """Units of the items this turn creates, which TTL deletes later (free where the item
    lives... and a replicated write in every other replica)."""
    gsi_ttl_delete_units: float
    table_byte_months: float
    """Bytes (item + 100 bytes overhead) x months each new item is kept (until its TTL)."""
    gsi_byte_months: float
    written_bytes: float
    item_sizes: tuple[int, ...]
    lambda_log_bytes: float
    sfn_log_bytes: Mapping[tuple[str, bool], float]
    websocket_frames: float = 0.0


# -- assumptions --------------------------------------------------------------------------

TOOL_CALL_TOKENS = 40
"""Output tokens of a model call that only asks for a tool (cost.sessions writes its tool
calls this long)."""


@dataclass(frozen=True)
class Assumptions:
    """Every figure neither measured nor read from the program; printed with the report."""

    model_wait_s: float | None = None
    """Seconds the state machine (or, streaming, the stream function) waits per model call;
    None until :func:`with_model_wait` derives it from the model's speed (or --model-wait)."""
    model_wait_source: str = ""
    tool_call_wait_s: float | None = None
    """Seconds for a call that only asks for tools (``tool_call_tokens`` of output): set with
    ``model_wait_s``; --model-wait sets both."""
    tool_call_tokens: int = TOOL_CALL_TOKENS
    """Output tokens of a call that only asks for tools (a tool use block, its JSON input)."""
    input_tokens: int = 1500
    """Prompt tokens per model call, only where no session was run (no price for the model)."""
    output_tokens: int = 300
    """A final answer's tokens: the sessions' answers are this long, and the model wait
    writes this many."""
    dynamodb_ms: float = 10.0
    """One DynamoDB round trip from a Lambda in the same region (SDK, TLS reused)."""
    task_overhead_ms: float = 25.0
    """What a Task state adds to the Express duration beyond the work it waits for (the
    Lambda invoke or SDK call round trip)."""
    cpu_per_local_core: float = 1.0
    """A Lambda vCPU against one core of the machine that measured the handlers."""
    xray_sampling: float | None = None
    """Override of the sampling rate (None: the program's rule, else config, else 100%)."""
    lambda_segments_per_invocation: int = 2
    """X-Ray segments an actively traced invocation sends (the Lambda service's and the function's)."""
    message_chars: int = 400
    """A direct turn's user message, in characters (measured turns send one this long)."""
    chars_per_token: int = 4
    """Characters of English per output token: every final answer of a measured turn is
    ``output_tokens x chars_per_token`` characters long, so items are sized like real ones."""

    @property
    def reply_chars(self) -> int:
        return self.output_tokens * self.chars_per_token

    @property
    def wait_s(self) -> float:
        if self.model_wait_s is None:
            raise ValueError("the model wait is not set: pass model_wait_s or derive it with with_model_wait()")
        return self.model_wait_s

    @property
    def tool_wait_s(self) -> float:
        return self.wait_s if self.tool_call_wait_s is None else self.tool_call_wait_s

    def lines(self) -> list[str]:
        return [
            f"model wait {self.wait_s:.2f} s per model call: {self.model_wait_source or '--model-wait'}",
            f"  a call that only asks for tools ({self.tool_call_tokens} output tokens): {self.tool_wait_s:.2f} s",
            f"a final answer {self.output_tokens:,} output tokens (--output-tokens); the prompt's tokens are measured (section 3)",
            f"DynamoDB round trip {self.dynamodb_ms:g} ms from Lambda (--dynamodb-ms)",
            f"Task state overhead {self.task_overhead_ms:g} ms in the Express duration (--task-overhead-ms)",
            f"one Lambda vCPU = {self.cpu_per_local_core:g} x one local core; a function gets memory/1,769 MB of a vCPU",
            f"X-Ray: {self.lambda_segments_per_invocation} segments per traced Lambda invocation, 1 for API Gateway, 1 for Step Functions",
            f"stored text: a direct turn's message {self.message_chars:,} characters (--message-chars), every final"
            f" answer {self.reply_chars:,} ({self.output_tokens} output tokens x {self.chars_per_token} characters),"
            " English prose",
        ]


FALLBACK_MODEL_WAIT_S = 3.0


def with_model_wait(assumptions: Assumptions, model: ModelPrice | None, model_id: str) -> Assumptions:
    """The assumptions with the model wait set: --model-wait if given, else the time the model
    takes to write a call's output (time to first token + output tokens / output tokens a
    second, from its entry in prices.json), else a fallback the report names."""
    if assumptions.model_wait_s is not None:
        return dataclasses.replace(
            assumptions,
            model_wait_source=assumptions.model_wait_source or "--model-wait",
            tool_call_wait_s=assumptions.tool_call_wait_s or assumptions.model_wait_s,
        )
    if model is not None and model.output_tokens_per_second and model.first_token_seconds is not None:
        wait = model.first_token_seconds + assumptions.output_tokens / model.output_tokens_per_second
        tool_wait = model.first_token_seconds + assumptions.tool_call_tokens / model.output_tokens_per_second
        source = (
            f"{model.first_token_seconds:g} s to the first token + {assumptions.output_tokens:,} output tokens"
            f" / {model.output_tokens_per_second:g} tokens/s ({model.model_id};"
            f" {'' if model.speed_confirmed else 'third-party benchmark, unconfirmed: '}{model.speed_url});"
            " --model-wait overrides"
        )
        return dataclasses.replace(assumptions, model_wait_s=wait, tool_call_wait_s=tool_wait, model_wait_source=source)
    reason = "no price entry" if model is None else "no output speed"
    return dataclasses.replace(
        assumptions,
        model_wait_s=FALLBACK_MODEL_WAIT_S,
        tool_call_wait_s=FALLBACK_MODEL_WAIT_S,
        model_wait_source=f"assumed: {model_id} has {reason} in cost/prices.json (--model-wait overrides)",
    )
