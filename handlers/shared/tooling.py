"""What every tool Lambda shares: the event contract, exactly-once recording, results by reference.

A tool module defines its input as a msgspec Struct, a ``run(ctx, input)`` function and a
:class:`ToolDefinition`; ``handler = TOOL.lambda_handler`` is its Lambda entry point.

Exactly once, as far as the caller can tell: Step Functions (Express: at least once) may
deliver the same step twice. The first thing a delivery does is look for the step's record
(``RUN#<executionId>`` / ``TOOL#<seq>#<name>``); if it is there, the recorded result is
returned and nothing runs. Otherwise the tool runs and its result is recorded with a
conditional write; if another delivery recorded first, that record wins and is returned.
Tools with side effects key them on ``ctx.idempotency_key`` (the same for every delivery of
the step), so even two deliveries racing do the effect once.

Results over ``INLINE_RESULT_BYTES`` travel by reference (the record's key), so no Step
Functions state nears its 256 KB limit; the agent-step reads them back in one BatchGetItem.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from handlers import init_done
from handlers.shared.log import get_logger, log_context
from handlers.shared.settings import load_settings
from handlers.shared.store import DuplicateToolExecutionError, Store, ToolExecution

# 16 calls a step x 4 KB inline stays far from a state's 256 KB (handlers.shared.turns budgets).
INLINE_RESULT_BYTES = 4_096
PREVIEW_CHARS = 1_000


class ToolInputError(Exception):
    """The model asked for something this tool cannot do; the message goes back to the model."""


class ToolTransientError(Exception):
    """A passing failure (a dependency throttled); Step Functions retries the step."""


class ToolEvent(msgspec.Struct, frozen=True):
    """What the state machine sends a tool Lambda."""

    executionId: str
    seq: int
    name: str
    userId: str
    sessionId: str
    toolUseId: str = ""
    input: dict[str, Any] = {}
    correlationId: str | None = None
    startedAt: str | None = None
    """The run's start ($$.Execution.StartTime): the same on every delivery of its steps."""
    action: Literal["run", "compensate"] = "run"


class ToolSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TTL_DAYS: int = 90
    TABLE_REGIONS: list[str] = []
    EVACUATED_REGIONS: list[str] = []
    LOG_LEVEL: str = "INFO"


class ToolContext(msgspec.Struct, frozen=True):
    execution_id: str
    seq: int
    user_id: str
    session_id: str
    correlation_id: str | None
    store: Store
    started_at_ms: int | None = None
    """When the run started: the same on every delivery of its steps."""

    @property
    def idempotency_key(self) -> str:
        """The same for every delivery of this step, unique across steps and runs."""
        return hashlib.sha256(f"{self.execution_id}:{self.seq}".encode()).hexdigest()[:32]


def started_at_ms(value: str | None) -> int | None:
    """``$$.Execution.StartTime`` (ISO 8601, e.g. 2026-11-28T09:00:00.123Z) in epoch ms."""
    if not value:
        return None
    from datetime import datetime

    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def flat_schema(model: type) -> dict[str, Any]:
    """The JSON schema of a flat msgspec Struct, inlined (no ``$ref``) for the model's tool spec."""
    schema = msgspec.json.schema(model)
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        schema = dict(schema["$defs"][ref.rsplit("/", 1)[1]])
    schema.pop("title", None)
    return schema


class ToolDefinition:
    """A tool: its name (the module name), what the model is told, and what it does.

    ``dynamodb_actions`` are the DynamoDB actions the tool itself needs beyond recording its
    runs (they go into its IAM role). A ``pure`` tool (the same input always gives the same
    output, and nothing else happens) is not recorded: running it again on a redelivery is
    as good as reading a record, and the write is saved. Its result is recorded only when it
    must travel by reference.
    """

    def __init__(
        self,
        name: str,
        description: str,
        input_type: type,
        run: Callable[[ToolContext, Any], Any],
        compensate: Callable[[ToolContext, ToolExecution], dict[str, Any]] | None = None,
        dynamodb_actions: tuple[str, ...] = (),
        pure: bool = False,
    ) -> None:
        if pure and compensate is not None:
            raise ValueError(f"tool {name!r}: a pure tool has no side effect to compensate")
        self.pure = pure
        self.name = name
        self.description = description
        self.input_type = input_type
        self.run = run
        self.compensate = compensate
        self.dynamodb_actions = dynamodb_actions
        self._store: Store | None = None
        self.__post_init__()

    def __post_init__(self) -> None:
        # In Lambda, build the store and its client in the init phase (full CPU, and done
        # before the first request when concurrency is provisioned).
        if "TABLE_NAME" in os.environ:
            self.store()
            init_done()

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "inputSchema": flat_schema(self.input_type)}

    # -- Lambda entry ---------------------------------------------------------------------

    def store(self) -> Store:
        if self._store is None:
            self._store = Store.from_settings(load_settings(ToolSettings))
        return self._store

    def lambda_handler(self, event: dict[str, Any], context: Any = None, store: Store | None = None) -> dict[str, Any]:
        """The Lambda entry (``store``: another store than the function's own, for the local
        stack, where one process runs the tool for several regions)."""
        request = msgspec.convert(event, ToolEvent)
        if request.name != self.name:
            raise ValueError(f"this Lambda runs tool {self.name!r}, not {request.name!r}")
        ctx = ToolContext(
            execution_id=request.executionId,
            seq=request.seq,
            user_id=request.userId,
            session_id=request.sessionId,
            correlation_id=request.correlationId,
            store=store or self.store(),
            started_at_ms=started_at_ms(request.startedAt),
        )
        logger = get_logger(f"tool.{self.name}")
        with log_context(
            correlationId=request.correlationId, executionId=request.executionId, seq=request.seq, tool=self.name
        ):
            if request.action == "compensate":
                return self._compensate(ctx, logger)
            result = self.execute(ctx, request.input, request.toolUseId)
            logger.info("tool step done", extra={"status": result["status"], "replayed": result.get("replayed", False)})
            return result

    # -- the exactly-once step ------------------------------------------------------------

    def execute(self, ctx: ToolContext, raw_input: dict[str, Any], tool_use_id: str = "") -> dict[str, Any]:
        if not self.pure:
            recorded = ctx.store.tool_runs.get(ctx.execution_id, ctx.seq, self.name)
            if recorded is not None:
                return self._result(recorded, tool_use_id, replayed=True)
        try:
            parsed = msgspec.convert(raw_input, self.input_type)
            status, output = "SUCCEEDED", self.run(ctx, parsed)
        except msgspec.ValidationError as error:
            status, output = "FAILED", {"error": f"invalid input: {error}"}
        except ToolInputError as error:
            status, output = "FAILED", {"error": str(error)}
        # ToolTransientError and anything unexpected propagate: Step Functions retries or
        # catches them, and nothing is recorded, so a retry runs the step afresh.
        if self.pure and len(json.dumps(output, separators=(",", ":")).encode()) <= INLINE_RESULT_BYTES:
            return {"toolUseId": tool_use_id, "name": self.name, "seq": ctx.seq, "status": status, "output": output}
        try:
            record = ctx.store.tool_runs.record(
                ctx.execution_id,
                ctx.seq,
                self.name,
                status=status,
                input=raw_input,
                output=output,
                compensable=self.compensate is not None and status == "SUCCEEDED",
            )
        except DuplicateToolExecutionError as duplicate:
            return self._result(duplicate.existing, tool_use_id, replayed=True)
        return self._result(record, tool_use_id)

    def _result(self, record: ToolExecution, tool_use_id: str, replayed: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {
            "toolUseId": tool_use_id,
            "name": self.name,
            "seq": record.seq,
            "status": record.status,
        }
        encoded = json.dumps(record.output, separators=(",", ":"))
        if len(encoded.encode()) > INLINE_RESULT_BYTES:
            result["outputRef"] = {"executionId": record.execution_id, "seq": record.seq, "name": self.name}
            result["preview"] = encoded[:PREVIEW_CHARS]
        else:
            result["output"] = record.output
        if replayed:
            result["replayed"] = True
        return result

    def _compensate(self, ctx: ToolContext, logger) -> dict[str, Any]:
        record = ctx.store.tool_runs.get(ctx.execution_id, ctx.seq, self.name)
        if record is None or record.status != "SUCCEEDED" or self.compensate is None:
            return {"name": self.name, "seq": ctx.seq, "compensated": False, "reason": "nothing to undo"}
        detail = self.compensate(ctx, record)
        logger.info("tool step compensated", extra={"detail": detail})
        return {"name": self.name, "seq": ctx.seq, "compensated": True, "detail": detail}
