"""memory: a stateful tool. Remembers facts about the user by topic and recalls them.

A memory is written once per step: its key is made of the run's start and the step's
idempotency key (``keys.memory_step_key``), the same on every delivery, and the write is
conditional on it, so however often the step is delivered one memory is stored, in one
PutItem.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from handlers.shared import table as keys
from handlers.shared.tooling import ToolContext, ToolDefinition, ToolInputError

Topic = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="lower-case topic, e.g. travel")]


class MemoryInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    action: Literal["remember", "recall"]
    topic: Topic
    text: Annotated[str, msgspec.Meta(max_length=2_000, description="the fact to remember (remember only)")] | None = (
        None
    )
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5


def run(ctx: ToolContext, request: MemoryInput) -> dict:
    if request.action == "remember":
        if not request.text:
            raise ToolInputError("remember needs the text to remember")
        if ctx.started_at_ms is None:
            raise ValueError("memory needs the run's start time (startedAt) to key the memory")
        step_key = keys.memory_step_key(ctx.started_at_ms, ctx.seq, ctx.idempotency_key)
        memory = ctx.store.remember(ctx.user_id, request.topic, request.text, step_key)
        return {"remembered": memory.text, "topic": memory.topic, "memoryId": memory.memory_id}
    memories = ctx.store.recall(ctx.user_id, request.topic, limit=request.limit)
    return {"topic": request.topic, "memories": [m.text for m in memories]}


TOOL = ToolDefinition(
    name="memory",
    description="Remember a fact about the user under a topic, or recall what was remembered about a topic, newest first.",
    input_type=MemoryInput,
    run=run,
    dynamodb_actions=("dynamodb:PutItem", "dynamodb:Query"),
)
handler = TOOL.lambda_handler
