"""The access layer: every access pattern of the single-table design, one round trip each.

Only this package talks to DynamoDB for the agent and knows how its items are laid out
(keys come from ``handlers.shared.table``). Callers get typed records and typed errors,
never raw items. One module per aggregate, each with its records, its access class and
its item conversion; :class:`Store` puts them together over one table handle:

    store = Store.from_settings(settings)
    store.conversations.append_step(...)    # conversations.py: one item per step
    store.sessions.recent(user_id)          # sessions.py: metadata, recent list (GSI1)
    store.tool_runs.record(...)             # tool_runs.py: the exactly-once log of tool steps
    store.idempotency.claim(...)            # idempotency.py: Idempotency-Key claims and replays
    store.approvals.decide(...)             # approvals.py: tool calls waiting for a human
    store.table.home(key)                   # replicas.py: the replica a key's writes go to
    store.tasks.get(task_id)                # tasks.py: started Standard executions
    store.connections.get(connection_id)    # connections.py: WebSocket connections
    store.tool_cache.get(tool, scope, hash) # tool_cache.py: tool results declared reusable
    store.long_runs.checkpoint(...)         # long_runs.py: long tools' checkpoints, items, slices

Data a tool owns lives beside the tool, over the same handle (``store.table``): memories
in ``handlers/tools/memory.py``, tickets in ``handlers/tools/create_ticket.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from handlers.shared.ids import new_ulid
from handlers.shared.store.approvals import Approval, ApprovalStore, approval_id, parse_approval_id
from handlers.shared.store.base import (
    MAX_PAGE_SIZE,
    MAX_PAYLOAD_BYTES,
    AlreadyExistsError,
    InvalidCursorError,
    NotFoundError,
    PayloadTooLargeError,
    StateError,
    Table,
)
from handlers.shared.store.connections import CONNECTION_TTL_SECONDS, Connection, ConnectionStore
from handlers.shared.store.conversations import (
    MAX_MESSAGES_PER_STEP,
    MESSAGE_ROLES,
    ConflictError,
    ConversationPage,
    ConversationStore,
    Message,
    NewMessage,
)
from handlers.shared.store.idempotency import (
    IDEMPOTENCY_TTL_SECONDS,
    DuplicateRequestError,
    IdempotencyRecord,
    IdempotencyStore,
)
from handlers.shared.store.long_runs import MAX_CHECKPOINT_BYTES, Checkpoint, LongRunStore, SliceOutcome
from handlers.shared.store.replicas import Replicas, ReplicaUnavailableError, rendezvous_order
from handlers.shared.store.sessions import (
    TOUCH_INTERVAL_MS,
    SessionMeta,
    SessionOwnershipError,
    SessionsPage,
    SessionStore,
)
from handlers.shared.store.tasks import Task, TaskStore
from handlers.shared.store.tool_cache import CachedResult, ToolCacheStore
from handlers.shared.store.tool_runs import TOOL_STATUSES, DuplicateToolExecutionError, ToolExecution, ToolRunStore

__all__ = [
    "CONNECTION_TTL_SECONDS",
    "IDEMPOTENCY_TTL_SECONDS",
    "MAX_CHECKPOINT_BYTES",
    "MAX_MESSAGES_PER_STEP",
    "MAX_PAGE_SIZE",
    "MAX_PAYLOAD_BYTES",
    "MESSAGE_ROLES",
    "TOOL_STATUSES",
    "TOUCH_INTERVAL_MS",
    "AlreadyExistsError",
    "Approval",
    "ApprovalStore",
    "CachedResult",
    "Checkpoint",
    "ConflictError",
    "Connection",
    "ConnectionStore",
    "ConversationPage",
    "ConversationStore",
    "DuplicateRequestError",
    "DuplicateToolExecutionError",
    "IdempotencyRecord",
    "IdempotencyStore",
    "InvalidCursorError",
    "LongRunStore",
    "Message",
    "NewMessage",
    "NotFoundError",
    "PayloadTooLargeError",
    "ReplicaUnavailableError",
    "Replicas",
    "SessionMeta",
    "SessionOwnershipError",
    "SessionStore",
    "SessionsPage",
    "SliceOutcome",
    "StateError",
    "Store",
    "StoreSettings",
    "Table",
    "Task",
    "TaskStore",
    "ToolCacheStore",
    "ToolExecution",
    "ToolRunStore",
    "approval_id",
    "parse_approval_id",
    "rendezvous_order",
]


class StoreSettings(Protocol):
    """The settings every handler that reads or writes the table has."""

    TABLE_NAME: str
    AWS_REGION: str
    TTL_DAYS: int
    TABLE_REGIONS: list[str]
    """Every replica's region (the stack's regions); empty: this region only."""
    EVACUATED_REGIONS: list[str]
    """Regions the operator took out of every key's homes (``state.evacuatedRegions``)."""


class Store:
    """The table, as the agent sees it. One instance per region; cheap to keep at module level."""

    def __init__(
        self,
        table_name: str,
        region: str,
        ttl_days: int,
        client: Any | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_ulid,
        replicas: Replicas | None = None,
    ) -> None:
        self.table = Table(table_name, region, ttl_days, client=client, clock=clock, new_id=new_id, replicas=replicas)
        self.sessions = SessionStore(self.table)
        self.idempotency = IdempotencyStore(self.table)
        self.conversations = ConversationStore(self.table, self.sessions, self.idempotency)
        self.tool_runs = ToolRunStore(self.table)
        self.approvals = ApprovalStore(self.table)
        self.tasks = TaskStore(self.table)
        self.connections = ConnectionStore(self.table)
        self.tool_cache = ToolCacheStore(self.table)
        self.long_runs = LongRunStore(self.table)

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> Store:
        """The store of a Lambda function, with its own region's DynamoDB client made now (in
        the init phase) and the other replicas' on first use."""
        import boto3

        client = boto3.client("dynamodb", region_name=settings.AWS_REGION)
        replicas = Replicas(
            settings.AWS_REGION,
            settings.TABLE_REGIONS or [settings.AWS_REGION],
            evacuated=settings.EVACUATED_REGIONS,
        )
        return cls(settings.TABLE_NAME, settings.AWS_REGION, settings.TTL_DAYS, client=client, replicas=replicas)
