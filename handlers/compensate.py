"""Compensation Lambda: undo a failed run's completed side effects, newest first.

Invoked by the state machines' Compensate step with ``{"executionId", "userId",
"sessionId", "correlationId", "failure"}``. It reads the run's tool executions in one
Query, and for every compensable step that succeeded, newest first, calls that tool's
compensation and marks the step COMPENSATED with a conditional write. A second run finds
nothing left to undo, so nothing is undone twice.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from handlers import init_done
from handlers.shared.log import get_logger, log_context
from handlers.shared.settings import load_settings
from handlers.shared.state import StateStore
from handlers.shared.tooling import ToolContext, ToolSettings
from handlers.tools import load_tool

logger = get_logger("compensate")


class CompensationRequest(msgspec.Struct, frozen=True):
    executionId: str
    userId: str
    sessionId: str
    correlationId: str | None = None
    failure: dict[str, Any] | None = None


def compensate_run(store: StateStore, request: CompensationRequest) -> dict[str, Any]:
    undone, skipped = [], []
    for record in sorted(store.list_tool_executions(request.executionId), key=lambda r: r.seq, reverse=True):
        if record.status != "SUCCEEDED" or not record.compensable:
            continue
        tool = load_tool(record.tool_name)
        if tool.compensate is None:
            skipped.append({"seq": record.seq, "name": record.tool_name, "reason": "no compensation"})
            continue
        ctx = ToolContext(
            execution_id=request.executionId,
            seq=record.seq,
            user_id=request.userId,
            session_id=request.sessionId,
            correlation_id=request.correlationId,
            store=store,
        )
        detail = tool.compensate(ctx, record)
        if store.mark_compensated(request.executionId, record.seq, record.tool_name, detail):
            undone.append({"seq": record.seq, "name": record.tool_name, "detail": detail})
            logger.info("step compensated", extra={"seq": record.seq, "tool": record.tool_name})
    return {"executionId": request.executionId, "compensated": undone, "skipped": skipped}


class Compensator:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        request = msgspec.convert(event, CompensationRequest)
        with log_context(correlationId=request.correlationId, executionId=request.executionId):
            failure = request.failure or {}
            logger.warning("compensating a failed run", extra={"error": failure.get("Error")})
            return compensate_run(self.store, request)


def from_environment() -> Compensator:
    import boto3

    settings = load_settings(ToolSettings)
    client = boto3.client("dynamodb", region_name=settings.AWS_REGION)
    return Compensator(StateStore(settings.TABLE_NAME, settings.AWS_REGION, settings.TTL_DAYS, client=client))


app: Compensator | None = from_environment() if "TABLE_NAME" in os.environ else None
init_done()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global app
    if app is None:
        app = from_environment()
    return app.handle(event)
