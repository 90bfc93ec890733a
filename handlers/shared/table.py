"""The single-table design: key attributes, the index, and how every item's keys are built.

This module is the one source of truth for the table's keys. The Pulumi state component,
the access layer, the local stack and the test fixtures all import it; it imports nothing
from Pulumi or boto3.

| item                 | PK                  | SK                          | GSI1PK       | GSI1SK            |
|----------------------|---------------------|-----------------------------|--------------|-------------------|
| session metadata     | SESSION#<sessionId> | ~META#<replica>             | USER#<user>  | SESSION#<ts>#<id> |
| conversation step    | SESSION#<sessionId> | MSG#<seq:08d>#<replica>     |              |                   |
| tool execution       | RUN#<executionId>   | TOOL#<seq:05d>#<tool>       |              |                   |
| memory               | USER#<userId>       | MEM#<topic>#<memory step key> |            |                   |
| WebSocket connection | CONN#<connectionId> | CONN                        |              |                   |
| task (Standard run)  | TASK#<taskId>       | TASK                        |              |                   |
| idempotency record   | IDEMP#<user>#<hash> | IDEMP#<replica>             |              |                   |
| ticket (a tool's)    | TICKET#<ticketId>   | TICKET                      |              |                   |
| approval             | RUN#<executionId>   | APPROVAL#<seq:05d>          |              |                   |
| approval decision    | RUN#<executionId>   | APPROVAL#<seq:05d>#<replica>|              |                   |
| tool result cache    | CACHE#<tool>#<scope>#<inputHash> | CACHE          |              |                   |
| long tool checkpoint | RUN#<executionId>   | CKPT#<seq:05d>#<tool>       |              |                   |
| long tool work item  | RUN#<executionId>   | ITEM#<seq:05d>#<tool>#<itemKey> |          |                   |
| continuation slice   | RUN#<executionId>   | SLICE#<seq:05d>#<tool>#<n:05d> |           |                   |

A conversation step holds the messages one model call adds (the user's message and the
reply, or the tool results and the reply) at its position ``seq``; the write is
conditional on the position being free, which is the session's concurrency control.

``<replica>`` is the region of the replica the item is written to. The table is a global
table: replicas copy each other's writes asynchronously and keep, per item, the last
writer's (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html).
An item whose key names its replica is written in that replica only, so a condition on it is
always checked against every write it ever had, and no other region's write can replace it:
the same step position, session or idempotency key written in two regions stays two items.
Which replica a session's items go to is ``handlers.shared.store.replicas``.

A memory's key (``memory_step_key``) starts with the run's start time, so a topic reads
newest first, and ends with the step's idempotency key, so every delivery of the step names
the same memory: one conditional PutItem writes it once.

A tool result cache entry's ``<scope>`` is ``public`` (any user may reuse it) or
``user:<userId>`` (only that user): the scope is part of the key, so no read for one user
can ever name another user's entry. Entries are written unconditionally: each is a whole
value any region may replace with its own (``handlers.shared.store.tool_cache``).

A long tool's checkpoint, work items and continuation slices live beside its step's record,
under the run (``handlers.shared.store.long_runs``): written in the region that runs the step
only, so their conditions see every earlier write of them.

Session metadata sorts after every step (``~`` is above ``M``), so one newest-first Query
returns the metadata (one item per replica that wrote the session, usually one) followed by
the newest steps: the conversation and its metadata in one round trip.
"""

from __future__ import annotations

import msgspec

PARTITION_KEY = "PK"
SORT_KEY = "SK"
GSI1_NAME = "GSI1"
GSI1_PARTITION_KEY = "GSI1PK"
GSI1_SORT_KEY = "GSI1SK"
TTL_ATTRIBUTE = "expiresAt"
REGION_ATTRIBUTE = "region"
STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"

SESSION_PREFIX = "SESSION#"
STEP_PREFIX = "MSG#"
SESSION_META_PREFIX = "~META#"
SESSION_META_UPPER = "~META#~"
"""Above every ``~META#<replica>`` (``~`` sorts after every character of a region name)."""
RUN_PREFIX = "RUN#"
TOOL_PREFIX = "TOOL#"
USER_PREFIX = "USER#"
MEMORY_PREFIX = "MEM#"
CONNECTION_PREFIX = "CONN#"
CONNECTION_SK = "CONN"
TASK_PREFIX = "TASK#"
TASK_SK = "TASK"
IDEMPOTENCY_PREFIX = "IDEMP#"
IDEMPOTENCY_SK_PREFIX = "IDEMP#"
APPROVAL_PREFIX = "APPROVAL#"
TICKET_PREFIX = "TICKET#"
TICKET_SK = "TICKET"
CACHE_PREFIX = "CACHE#"
CACHE_SK = "CACHE"
CHECKPOINT_PREFIX = "CKPT#"
WORK_ITEM_PREFIX = "ITEM#"
SLICE_PREFIX = "SLICE#"
MAX_SLICE = 99_999
PUBLIC_SCOPE = "public"
USER_SCOPE_PREFIX = "user:"

MAX_STEP = 99_999_999
# Key values become part of a key string, so the separator may not appear inside them.
_MAX_KEY_PART = 256
_REGION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class KeyAttribute(msgspec.Struct, frozen=True):
    name: str
    type: str  # DynamoDB scalar type: S, N or B


class IndexSchema(msgspec.Struct, frozen=True):
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute
    projection: str = "ALL"


class TableSchema(msgspec.Struct, frozen=True):
    """The table's key schema, shared by the Pulumi component and the moto fixtures."""

    partition_key: KeyAttribute
    sort_key: KeyAttribute
    indexes: tuple[IndexSchema, ...]
    ttl_attribute: str
    stream_view_type: str

    @property
    def attributes(self) -> tuple[KeyAttribute, ...]:
        """Every attribute that takes part in a key of the table or an index, once each."""
        seen: dict[str, KeyAttribute] = {}
        for attr in (self.partition_key, self.sort_key):
            seen[attr.name] = attr
        for index in self.indexes:
            seen.setdefault(index.partition_key.name, index.partition_key)
            seen.setdefault(index.sort_key.name, index.sort_key)
        return tuple(seen.values())

    def create_table_request(self, table_name: str) -> dict:
        """boto3 ``create_table`` arguments for this schema (on-demand, streams on).

        Used by the test fixtures, the benchmarks and the local stack so that what runs
        against moto is the table the Pulumi component deploys.
        """
        return {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": a.name, "AttributeType": a.type} for a in self.attributes],
            "KeySchema": [
                {"AttributeName": self.partition_key.name, "KeyType": "HASH"},
                {"AttributeName": self.sort_key.name, "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key.name, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key.name, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": index.projection},
                }
                for index in self.indexes
            ],
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": self.stream_view_type},
        }


TABLE_SCHEMA = TableSchema(
    partition_key=KeyAttribute(PARTITION_KEY, "S"),
    sort_key=KeyAttribute(SORT_KEY, "S"),
    indexes=(
        IndexSchema(
            name=GSI1_NAME,
            partition_key=KeyAttribute(GSI1_PARTITION_KEY, "S"),
            sort_key=KeyAttribute(GSI1_SORT_KEY, "S"),
        ),
    ),
    ttl_attribute=TTL_ATTRIBUTE,
    stream_view_type=STREAM_VIEW_TYPE,
)


def key_part(kind: str, value: str) -> str:
    """Check one caller-supplied value before it becomes part of a key."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} must be a non-empty string, got {value!r}")
    if "#" in value:
        raise ValueError(f"{kind} must not contain '#', got {value!r}")
    if len(value) > _MAX_KEY_PART:
        raise ValueError(f"{kind} must be at most {_MAX_KEY_PART} characters, got {len(value)}")
    return value


def session_pk(session_id: str) -> str:
    return SESSION_PREFIX + key_part("sessionId", session_id)


def replica_part(region: str) -> str:
    """A replica's region as the last part of a key (``us-east-1``)."""
    if not isinstance(region, str) or not region or not set(region) <= _REGION_CHARS or len(region) > 32:
        raise ValueError(f"replica must be a region name (lower-case letters, digits, '-'), got {region!r}")
    return region


def step_sk(seq: int, replica: str) -> str:
    """A conversation step's sort key: its position, zero-padded so positions sort as numbers,
    then the replica written to (two regions that take the same position keep two items)."""
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_STEP:
        raise ValueError(f"seq must be an integer in 1..{MAX_STEP}, got {seq!r}")
    return f"{STEP_PREFIX}{seq:08d}#{replica_part(replica)}"


def step_seq(sort_key: str) -> int:
    return int(sort_key[len(STEP_PREFIX) :].split("#", 1)[0])


def step_replica(sort_key: str) -> str:
    return sort_key[len(STEP_PREFIX) :].split("#", 1)[1]


def session_meta_sk(replica: str) -> str:
    return SESSION_META_PREFIX + replica_part(replica)


def idempotency_sk(replica: str) -> str:
    return IDEMPOTENCY_SK_PREFIX + replica_part(replica)


def user_pk(user_id: str) -> str:
    return USER_PREFIX + key_part("userId", user_id)


def recent_session_sk(timestamp_ms: int, session_id: str) -> str:
    # Zero-padded milliseconds sort as numbers; the id keeps two sessions of the same
    # millisecond apart.
    return f"{SESSION_PREFIX}{timestamp_ms:015d}#{session_id}"


def run_pk(execution_id: str) -> str:
    return RUN_PREFIX + key_part("executionId", execution_id)


def tool_execution_sk(seq: int, tool_name: str) -> str:
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 100_000:
        raise ValueError(f"seq must be an integer in 0..99999, got {seq!r}")
    return f"{TOOL_PREFIX}{seq:05d}#{key_part('tool name', tool_name)}"


def memory_topic_prefix(topic: str) -> str:
    return f"{MEMORY_PREFIX}{key_part('topic', topic)}#"


def memory_step_key(started_at_ms: int, seq: int, step_key: str) -> str:
    """A memory's id: the run's start and the step's place in it (so a topic's memories sort
    by time) and the step's idempotency key (so every delivery of the step names the same
    memory, and two runs that started in the same millisecond never share one)."""
    return f"{started_at_ms:013d}-{seq:05d}-{step_key[:16]}"


def connection_pk(connection_id: str) -> str:
    return CONNECTION_PREFIX + key_part("connectionId", connection_id)


def task_pk(task_id: str) -> str:
    return TASK_PREFIX + key_part("taskId", task_id)


def idempotency_pk(user_id: str, key_hash: str) -> str:
    return f"{IDEMPOTENCY_PREFIX}{key_part('userId', user_id)}#{key_part('idempotency key hash', key_hash)}"


def ticket_pk(ticket_id: str) -> str:
    return TICKET_PREFIX + key_part("ticketId", ticket_id)


def approval_sk(seq: int) -> str:
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 100_000:
        raise ValueError(f"seq must be an integer in 0..99999, got {seq!r}")
    return f"{APPROVAL_PREFIX}{seq:05d}"


def approval_decision_sk(seq: int, replica: str) -> str:
    """A decision on an approval, in the replica that took it (one per replica at most)."""
    return f"{approval_sk(seq)}#{replica_part(replica)}"


def user_scope(user_id: str) -> str:
    """The cache scope of one user's entries (``user:<userId>``), never equal to ``public``."""
    return USER_SCOPE_PREFIX + key_part("userId", user_id)


def cache_pk(tool_name: str, scope: str, input_hash: str) -> str:
    """A tool result cache entry: the tool, who may reuse it, and the hash of its input."""
    if scope != PUBLIC_SCOPE and not scope.startswith(USER_SCOPE_PREFIX):
        raise ValueError(f"cache scope must be {PUBLIC_SCOPE!r} or {USER_SCOPE_PREFIX}<userId>, got {scope!r}")
    return f"{CACHE_PREFIX}{key_part('tool name', tool_name)}#{key_part('cache scope', scope)}#{key_part('input hash', input_hash)}"


def checkpoint_sk(seq: int, tool_name: str) -> str:
    """A long tool step's checkpoint: one item per step, replaced as the step progresses."""
    return CHECKPOINT_PREFIX + tool_execution_sk(seq, tool_name)[len(TOOL_PREFIX) :]


def work_items_prefix(seq: int, tool_name: str) -> str:
    """The sort key prefix of every work item of one long tool step."""
    return WORK_ITEM_PREFIX + tool_execution_sk(seq, tool_name)[len(TOOL_PREFIX) :] + "#"


def work_item_sk(seq: int, tool_name: str, item_key: str) -> str:
    """One work item of a long tool step, written once (its key is the tool's ``WorkItem.key``)."""
    return work_items_prefix(seq, tool_name) + key_part("work item key", item_key)


def slice_sk(seq: int, tool_name: str, number: int) -> str:
    """The outcome of one slice of a continuation tool step, written once."""
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= MAX_SLICE:
        raise ValueError(f"slice number must be an integer in 0..{MAX_SLICE}, got {number!r}")
    return f"{SLICE_PREFIX}{tool_execution_sk(seq, tool_name)[len(TOOL_PREFIX) :]}#{number:05d}"
