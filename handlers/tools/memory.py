"""memory: a stateful tool. Remembers facts about the user by topic and recalls them.

A memory is written once per step: its key is made of the run's start and the step's
idempotency key (``keys.memory_step_key``), the same on every delivery, and the write is
conditional on it, so however often the step is delivered one memory is stored, in one
PutItem. The memories are this tool's own items (``USER#<userId>`` / ``MEM#<topic>#...``):
:class:`MemoryStore` reads and writes them, over the agent's table handle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from handlers.shared import table as keys
from handlers.shared.store import StateError, Table
from handlers.shared.store.base import after, from_item, page_size, text_attribute, to_item
from handlers.shared.tooling import ToolContext, ToolDefinition, ToolInputError

Topic = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="lower-case topic, e.g. travel")]


class Memory(msgspec.Struct, frozen=True):
    user_id: str
    topic: str
    memory_id: str
    text: str
    created_at_ms: int
    region: str
    expires_at: int


def _memory(item: Mapping[str, Any]) -> Memory:
    return Memory(
        user_id=after(keys.USER_PREFIX, item[keys.PARTITION_KEY]),
        topic=item["topic"],
        memory_id=item[keys.SORT_KEY].rsplit("#", 1)[1],
        text=item["text"],
        created_at_ms=int(item["createdAt"]),
        region=item[keys.REGION_ATTRIBUTE],
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


class MemoryStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def remember(self, user_id: str, topic: str, text: str, step_key: str) -> Memory:
        """Store one memory under a topic, once per ``step_key`` (one conditional PutItem).

        ``step_key`` (``keys.memory_step_key``) is the same for every delivery of the step and
        sorts by the run's start time, so the memory's key is known before it is written:
        a second delivery writes nothing and gets the first memory back, read from the failed
        condition in the same round trip.
        """
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.user_pk(user_id),
            keys.SORT_KEY: keys.memory_topic_prefix(topic) + keys.key_part("memory step key", step_key),
            "topic": topic,
            "text": text_attribute("text", text),
            "createdAt": now_ms,
            **self.table.stamp(now_ms),
        }
        existing = self.table.put_new(values)
        if existing is not None:
            if not existing:  # DynamoDB always returns it; be explicit if it ever does not
                raise StateError(f"memory {step_key!r} is stored but could not be read back")
            return _memory(existing)
        return _memory(values)

    def recall(self, user_id: str, topic: str, limit: int = 10) -> list[Memory]:
        """The newest memories of a topic, newest first: one Query."""
        response = self.table.client.query(
            TableName=self.table.name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            ExpressionAttributeValues=to_item(
                {":pk": keys.user_pk(user_id), ":prefix": keys.memory_topic_prefix(topic)}
            ),
            ScanIndexForward=False,
            Limit=page_size(limit),
        )
        return [_memory(from_item(raw)) for raw in response.get("Items", [])]


class MemoryInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    action: Literal["remember", "recall"]
    topic: Topic
    text: Annotated[str, msgspec.Meta(max_length=2_000, description="the fact to remember (remember only)")] | None = (
        None
    )
    limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5


def run(ctx: ToolContext, request: MemoryInput) -> dict:
    memories = MemoryStore(ctx.store.table)
    if request.action == "remember":
        if not request.text:
            raise ToolInputError("remember needs the text to remember")
        if ctx.started_at_ms is None:
            raise ValueError("memory needs the run's start time (startedAt) to key the memory")
        step_key = keys.memory_step_key(ctx.started_at_ms, ctx.seq, ctx.idempotency_key)
        memory = memories.remember(ctx.user_id, request.topic, request.text, step_key)
        return {"remembered": memory.text, "topic": memory.topic, "memoryId": memory.memory_id}
    recalled = memories.recall(ctx.user_id, request.topic, limit=request.limit)
    return {"topic": request.topic, "memories": [m.text for m in recalled]}


TOOL = ToolDefinition(
    name="memory",
    description="Remember a fact about the user under a topic, or recall what was remembered about a topic, newest first.",
    input_type=MemoryInput,
    run=run,
    dynamodb_actions=("dynamodb:PutItem", "dynamodb:Query"),
)
handler = TOOL.lambda_handler
