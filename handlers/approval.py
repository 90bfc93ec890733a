"""Approval Lambda: human approval of a waiting tool call.

Two entry points:

- ``request_handler``: the task machine's ``.waitForTaskToken`` step calls it before a tool
  that requires approval. It records the approval (task token, tool, input, and the region
  the execution runs in) and returns at once; the execution waits for a decision.
- ``handler``: ``POST /v1/approvals/{approvalId}`` with ``{"decision": "approve" | "deny",
  "comment"}``. It sends SendTaskSuccess or SendTaskFailure (error ``ApprovalDenied``) to
  the execution's own region, then records who decided. A second decision is 409; an
  approval past its timeout is 410; another user's approval is 404.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from handlers import init_done
from handlers.shared.api import (
    ApiError,
    Request,
    handle_routes,
    not_found,
    parse_body,
    respond,
)
from handlers.shared.log import get_logger, log_context
from handlers.shared.models import APPROVAL_ID_PATTERN, ApprovalRequest
from handlers.shared.settings import load_settings
from handlers.shared.store import Store, parse_approval_id

logger = get_logger("approval")

APPROVAL_DENIED = "ApprovalDenied"
_APPROVAL_ID = re.compile(APPROVAL_ID_PATTERN)
_TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class ApprovalSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TTL_DAYS: int = 90
    MAX_BODY_BYTES: int = 16_384
    LOG_LEVEL: str = "INFO"


class ApprovalRequestEvent(msgspec.Struct, frozen=True):
    """What the task machine sends before a tool that needs approval."""

    taskToken: str
    executionId: str
    seq: int
    name: str
    userId: str
    sessionId: str
    timeoutSeconds: int
    input: dict[str, Any] = {}
    toolUseId: str = ""
    correlationId: str | None = None


class Approvals:
    def __init__(
        self,
        settings: ApprovalSettings,
        store: Store,
        stepfunctions: Callable[[str], Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self._stepfunctions = stepfunctions
        self._clock = clock
        self.routes = {("POST", "/v1/approvals/{approvalId}"): self.decide}

    # -- from the state machine -----------------------------------------------------------

    def request(self, event: dict[str, Any]) -> dict[str, Any]:
        ask = msgspec.convert(event, ApprovalRequestEvent)
        with log_context(correlationId=ask.correlationId, executionId=ask.executionId, seq=ask.seq):
            approval = self.store.approvals.put(
                ask.executionId,
                ask.seq,
                ask.name,
                ask.input,
                ask.userId,
                ask.sessionId,
                ask.taskToken,
                ask.timeoutSeconds,
            )
            logger.info("approval requested", extra={"approvalId": approval.approval_id, "tool": ask.name})
            return {"approvalId": approval.approval_id}

    # -- from the API -----------------------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> dict:
        return handle_routes(event, self.routes, logger)

    def decide(self, request: Request) -> dict:
        raw_id = request.path_params.get("approvalId") or ""
        parsed = parse_approval_id(raw_id) if _APPROVAL_ID.fullmatch(raw_id) else None
        if parsed is None:
            raise ApiError(400, "invalid_request", "approvalId is not an approval id", field="approvalId")
        body = parse_body(request, ApprovalRequest, self.settings.MAX_BODY_BYTES)
        approval = self.store.approvals.get(*parsed)
        if approval is None or approval.user_id != request.caller:
            raise not_found("approval")
        if approval.status != "PENDING":
            raise ApiError(409, "already_decided", f"this approval was already {approval.status.lower()}")
        if approval.expires_at <= self._clock():
            raise ApiError(410, "approval_expired", "this approval timed out; the task went on without it")
        # Record the decision first (PENDING -> decided, conditional): of two racing
        # decisions exactly one gets here, and a decision never reaches the execution
        # without being on record.
        if not self.store.approvals.decide(
            approval.execution_id, approval.seq, body.decision, request.caller, body.comment or None
        ):
            raise ApiError(409, "already_decided", "this approval was already decided")
        sfn = self._stepfunctions(approval.region)
        try:
            if body.decision == "approve":
                sfn.send_task_success(
                    taskToken=approval.task_token,
                    output=msgspec.json.encode(
                        {"decision": "approve", "decidedBy": request.caller, "comment": body.comment or None}
                    ).decode(),
                )
            else:
                sfn.send_task_failure(
                    taskToken=approval.task_token, error=APPROVAL_DENIED, cause=body.comment or "denied"
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _TOKEN_GONE:
                # The execution stopped waiting (it timed out): say so, and keep it on record.
                self.store.approvals.settle(approval.execution_id, approval.seq, "EXPIRED")
                raise ApiError(410, "approval_expired", "this approval is no longer waiting for a decision") from None
            # The callback did not go through: undo our record so the caller can retry.
            self.store.approvals.settle(approval.execution_id, approval.seq, "PENDING")
            if code in ("ThrottlingException", "TooManyRequestsException"):
                raise ApiError(
                    429, "throttled", "too many requests; retry after a pause", headers={"retry-after": "1"}
                ) from None
            raise ApiError(
                503, "unavailable", "could not reach the task; retry shortly", headers={"retry-after": "2"}
            ) from None
        logger.info("approval decided", extra={"approvalId": raw_id, "decision": body.decision})
        return respond(200, {"approvalId": raw_id, "decision": body.decision}, request)


# -- Lambda wiring -------------------------------------------------------------------------


def from_environment() -> Approvals:
    import boto3

    settings = load_settings(ApprovalSettings)
    store = Store.from_settings(settings)
    clients: dict[str, Any] = {}

    def stepfunctions(region: str) -> Any:
        if region not in clients:
            clients[region] = boto3.client("stepfunctions", region_name=region)
        return clients[region]

    return Approvals(settings, store, stepfunctions)


app: Approvals | None = from_environment() if "TABLE_NAME" in os.environ else None
init_done()


def _app() -> Approvals:
    global app
    if app is None:
        app = from_environment()
    return app


def handler(event: dict[str, Any], context: Any = None) -> dict:
    return _app().handle(event)


def request_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _app().request(event)
