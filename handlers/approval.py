"""Approval Lambda: human approval of a waiting tool call.

Two entry points:

- ``request_handler``: the task machine's ``.waitForTaskToken`` step calls it before a tool
  that requires approval. It records the approval (task token, tool, input, and the region
  the execution runs in) and returns at once; the execution waits for a decision.
- ``handler``: ``POST /v1/approvals/{approvalId}`` with ``{"decision": "approve" | "deny",
  "comment"}``. It records the decision (``ApprovalStore.decide``: one decision per
  approval, in any region) and sends SendTaskSuccess or SendTaskFailure (error
  ``ApprovalDenied``) to the execution's own region: 200 when that went through, 202 with
  ``"delivery": "pending"`` when the execution's region cannot be reached now (the decision
  is kept and delivered by the next call that reads it: this route again, or the task's
  status). The same decision sent again delivers a pending one; another decision is 409;
  an approval past its timeout is 410; another user's approval is 404.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

import msgspec

from handlers import init_done
from handlers.shared.api import (
    ApiError,
    Request,
    handle_routes,
    not_found,
    parse_body,
    respond,
)
from handlers.shared.callbacks import APPROVAL_DENIED, deliver_decision
from handlers.shared.log import get_logger, log_context
from handlers.shared.models import APPROVAL_ID_PATTERN, ApprovalRequest
from handlers.shared.settings import load_settings
from handlers.shared.store import Store, parse_approval_id

logger = get_logger("approval")

__all__ = ["APPROVAL_DENIED", "Approvals", "handler", "request_handler"]

_APPROVAL_ID = re.compile(APPROVAL_ID_PATTERN)


class ApprovalSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TTL_DAYS: int = 90
    TABLE_REGIONS: list[str] = []
    EVACUATED_REGIONS: list[str] = []
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
        if approval.status == "PENDING":
            if approval.expires_at <= self._clock():
                raise ApiError(410, "approval_expired", "this approval timed out; the task went on without it")
            decided = self.store.approvals.decide(approval, body.decision, request.caller, body.comment or None)
            if decided is None:
                raise ApiError(409, "already_decided", "this approval was already decided")
            approval = decided
        elif approval.decision != body.decision or approval.delivered:
            raise ApiError(409, "already_decided", f"this approval was already {approval.status.lower()}")
        # Decided (now, or before with this decision and not delivered yet): deliver it.
        delivery = deliver_decision(self.store, self._stepfunctions, approval, self._clock())
        if delivery == "expired":
            raise ApiError(410, "approval_expired", "this approval is no longer waiting for a decision")
        logger.info("approval decided", extra={"approvalId": raw_id, "decision": body.decision, "delivery": delivery})
        if delivery == "pending":
            return respond(202, {"approvalId": raw_id, "decision": body.decision, "delivery": "pending"}, request)
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
