"""Compensation Lambda: a failed run ends as one outcome, undone and said so.

Invoked by the state machines' Compensate step with ``{"executionId", "userId",
"sessionId", "correlationId", "connectionId", "failure"}``. It

1. reads the run's tool executions in one Query, and for every compensable step that
   succeeded, newest first, calls that tool's compensation and marks the step COMPENSATED
   with a conditional write (a second run finds nothing left to undo);
2. when the run had written steps to the session's history, appends a ``failed`` marker
   for the run, so the history shows the turn as failed and the model never sees its
   unanswered tool calls (``handlers.shared.turns.conversation``);
3. tells a WebSocket client with an ``error`` frame, never a ``final`` one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import msgspec

from handlers import init_done
from handlers.shared.log import get_logger, log_context
from handlers.shared.models import turn_error
from handlers.shared.settings import load_settings
from handlers.shared.store import Store
from handlers.shared.tooling import ToolContext
from handlers.tools import load_tool

logger = get_logger("compensate")


class CompensationRequest(msgspec.Struct, frozen=True):
    executionId: str
    userId: str
    sessionId: str
    correlationId: str | None = None
    connectionId: str | None = None
    failure: dict[str, Any] | None = None


def compensate_run(store: Store, request: CompensationRequest) -> dict[str, Any]:
    undone, skipped = [], []
    for record in sorted(store.tool_runs.list(request.executionId), key=lambda r: r.seq, reverse=True):
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
        if store.tool_runs.mark_compensated(request.executionId, record.seq, record.tool_name, detail):
            undone.append({"seq": record.seq, "name": record.tool_name, "detail": detail})
            logger.info("step compensated", extra={"seq": record.seq, "tool": record.tool_name})
    return {"executionId": request.executionId, "compensated": undone, "skipped": skipped}


def mark_failed(store: Store, request: CompensationRequest, error: str) -> int | None:
    """Append the run's ``failed`` marker to the session's history when the run wrote to it;
    the seq of the marker, or None when there was nothing to mark."""
    from handlers.shared.store import ConflictError, NewMessage

    for _ in range(5):
        try:
            page = store.conversations.load(request.sessionId, limit=MARKER_LOOKBACK)
        except ValueError:  # not a session id the API takes: nothing was written under it
            return None
        if not any(m.turn_id == request.executionId for m in page.messages):
            return None
        if any(m.turn_id == request.executionId and m.role == "failed" for m in page.messages):
            return None  # a redelivered Compensate
        seq = page.next_seq()
        try:
            store.conversations.append_step(
                request.sessionId,
                seq,
                [NewMessage(role="failed", text=error)],
                turn_id=request.executionId,
                user_id=request.userId,
                replica=page.replica,
            )
            return seq
        except ConflictError:
            continue
    raise RuntimeError(f"could not mark run {request.executionId} failed in session {request.sessionId}")


# How far back the marker looks for the run's own steps (a run writes at most a step per model call).
MARKER_LOOKBACK = 100


class Compensator:
    def __init__(self, store: Store, post: Callable[[str, bytes], None] | None = None) -> None:
        self.store = store
        self._post = post

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        request = msgspec.convert(event, CompensationRequest)
        with log_context(correlationId=request.correlationId, executionId=request.executionId):
            failure = request.failure or {}
            error = str(failure.get("Error") or "States.Runtime")
            logger.warning("compensating a failed run", extra={"error": error})
            result = compensate_run(self.store, request)
            result["markedFailed"] = mark_failed(self.store, request, error)
            if request.connectionId and self._post is not None:
                self._tell(request.connectionId, error)
            return result

    def _tell(self, connection_id: str, error: str) -> None:
        from handlers.shared.streaming import ConnectionGone, error_message

        answer = turn_error(error)
        code, message = answer.code, answer.message
        try:
            self._post(connection_id, error_message(code, message))
        except ConnectionGone:
            self.store.connections.delete(connection_id)
        except Exception as failure:  # the turn failed either way; the history says so
            logger.warning("could not tell the connection", extra={"error": type(failure).__name__})


class CompensateSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TTL_DAYS: int = 90
    TABLE_REGIONS: list[str] = []
    EVACUATED_REGIONS: list[str] = []
    WEBSOCKET_ENDPOINT: str | None = None
    LOG_LEVEL: str = "INFO"


def from_environment() -> Compensator:
    import boto3

    settings = load_settings(CompensateSettings)
    store = Store.from_settings(settings)
    post = None
    if settings.WEBSOCKET_ENDPOINT:
        from handlers.shared.streaming import management_api_poster

        management = boto3.client(
            "apigatewaymanagementapi", endpoint_url=settings.WEBSOCKET_ENDPOINT, region_name=settings.AWS_REGION
        )
        post = management_api_poster(management)
    return Compensator(store, post)


app: Compensator | None = from_environment() if "TABLE_NAME" in os.environ else None
init_done()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    global app
    if app is None:
        app = from_environment()
    return app.handle(event)
