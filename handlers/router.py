"""Router Lambda: the short routes of the REST API. No route here waits on the LLM.

    GET  /v1/sessions                        the caller's recent sessions (GSI1)
    GET  /v1/sessions/{sessionId}/messages   a session's history, newest first, paginated
    POST /v1/tasks                           start a Standard "task" (202 + task id)
    GET  /v1/tasks/{taskId}                  a task's status, answer, or the approval it waits for

The chat turn (POST /v1/sessions/{sessionId}/messages) is an API Gateway service
integration straight to Step Functions; it never reaches this function.
"""

from __future__ import annotations

import json
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
    parse_query,
    respond,
)
from handlers.shared.callbacks import deliver_decision
from handlers.shared.idempotent import idempotent
from handlers.shared.ids import new_ulid
from handlers.shared.log import get_logger
from handlers.shared.models import ID_PATTERN, ID_RULE, PageQuery, TaskAccepted, TaskRequest
from handlers.shared.settings import load_settings
from handlers.shared.store import InvalidCursorError, Store

_ID = re.compile(ID_PATTERN)
# An AWS error that means a thing the client named is gone.
_NOT_FOUND = {"ExecutionDoesNotExist": "task"}


class RouterSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TASK_STATE_MACHINE_ARN: str
    TTL_DAYS: int = 90
    TABLE_REGIONS: list[str] = []
    EVACUATED_REGIONS: list[str] = []
    MAX_BODY_BYTES: int = 65_536
    LOG_LEVEL: str = "INFO"


logger = get_logger("router")


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN StartExecution gives an execution called ``name`` of ``state_machine_arn``."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def _region_of(arn: str) -> str:
    return arn.split(":")[3]


def _path_id(request: Request, name: str) -> str:
    value = request.path_params.get(name) or ""
    if not _ID.fullmatch(value):
        raise ApiError(400, "invalid_request", f"{name} must be {ID_RULE}", field=name)
    return value


class Router:
    """The routes, over a state store and Step Functions clients (one per region, lazily)."""

    def __init__(
        self,
        settings: RouterSettings,
        store: Store,
        stepfunctions: Callable[[str], Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self._stepfunctions = stepfunctions
        self._clock = clock
        self.routes: dict[tuple[str, str], Callable[[Request], dict]] = {
            ("GET", "/v1/sessions"): self.list_sessions,
            ("GET", "/v1/sessions/{sessionId}/messages"): self.session_history,
            ("POST", "/v1/tasks"): self.start_task,
            ("GET", "/v1/tasks/{taskId}"): self.task_status,
        }

    # -- entry ----------------------------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> dict:
        return handle_routes(event, self.routes, logger, _NOT_FOUND)

    # -- sessions -------------------------------------------------------------------------

    def list_sessions(self, request: Request) -> dict:
        query = parse_query(request, PageQuery)
        try:
            page = self.store.sessions.recent(request.caller, limit=query.limit, cursor=query.cursor)
        except InvalidCursorError as error:
            raise ApiError(400, "invalid_request", str(error), field="cursor") from None
        return respond(
            200,
            {
                "sessions": [
                    {
                        "sessionId": s.session_id,
                        "title": s.title,
                        "updatedAt": s.updated_at_ms,
                        "createdAt": s.created_at_ms,
                    }
                    for s in page.sessions
                ],
                "nextCursor": page.next_cursor,
            },
            request,
        )

    def session_history(self, request: Request) -> dict:
        session_id = _path_id(request, "sessionId")
        query = parse_query(request, PageQuery)
        if query.cursor is None:
            try:
                page = self.store.conversations.load(session_id, limit=query.limit)
            except InvalidCursorError as error:  # pragma: no cover - no cursor given
                raise ApiError(400, "invalid_request", str(error), field="cursor") from None
            # Another user's session answers exactly like a missing one: no content, no hint.
            if page.meta is None or page.meta.user_id != request.caller:
                raise not_found("session")
        else:
            # Later pages carry no metadata; check ownership with the metadata item first.
            meta = self.store.sessions.get(session_id)
            if meta is None or meta.user_id != request.caller:
                raise not_found("session")
            try:
                page = self.store.conversations.load(
                    session_id, limit=query.limit, cursor=query.cursor, owner=meta.user_id
                )
            except InvalidCursorError as error:
                raise ApiError(400, "invalid_request", str(error), field="cursor") from None
        return respond(
            200,
            {
                "sessionId": session_id,
                "messages": [
                    {
                        "messageId": m.message_id,
                        "role": m.role,
                        "text": m.text,
                        "toolCalls": m.tool_calls,
                        "createdAt": m.created_at_ms,
                    }
                    for m in page.messages
                ],
                "nextCursor": page.next_cursor,
            },
            request,
        )

    # -- tasks ----------------------------------------------------------------------------

    def start_task(self, request: Request) -> dict:
        body = parse_body(request, TaskRequest, self.settings.MAX_BODY_BYTES)
        caller = request.caller
        requested_session = body.sessionId or None  # absent (UNSET) or an id
        if requested_session is not None:
            meta = self.store.sessions.get(requested_session)
            if meta is not None and meta.user_id != caller:
                raise not_found("session")
        with idempotent(self.store.idempotency, request, body, self._clock) as slot:
            if slot.replay is not None:
                return slot.replay
            key_hash = slot.key_hash
            task_id = key_hash[:32] if key_hash else new_ulid()
            # Derived from the key too, so a replay after a crash names the same session.
            session_id = requested_session or (f"s{key_hash[:31]}" if key_hash else new_ulid())
            arn = self._start_execution(request, task_id, session_id, body.message, named_by_key=key_hash is not None)
            self.store.tasks.put(task_id, caller, session_id, arn)
            accepted = TaskAccepted(taskId=task_id, status="RUNNING", sessionId=session_id)
            response = slot.complete(202, accepted, {"location": f"/v1/tasks/{task_id}"})
        logger.info("task started", extra={"taskId": task_id, "sessionId": session_id})
        return response

    def _start_execution(
        self, request: Request, task_id: str, session_id: str, message: str, named_by_key: bool
    ) -> str:
        """Start the task's Standard execution, named after the task; its ARN."""
        machine = self.settings.TASK_STATE_MACHINE_ARN
        task_input = {
            "taskId": task_id,
            "sessionId": session_id,
            "userId": request.caller,
            "message": message,
            "correlationId": request.correlation_id,
            "tools": None,
            "idempotencyKey": None,  # the router enforced it already, before starting the task
            "connectionId": None,
        }
        try:
            return self._stepfunctions(_region_of(machine)).start_execution(
                stateMachineArn=machine, name=task_id, input=json.dumps(task_input)
            )["executionArn"]
        except ClientError as error:
            # Same name, different input: a replay after a crash, whose correlation id differs.
            # The execution exists; that is the task.
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists" or not named_by_key:
                raise
            return execution_arn(machine, task_id)

    def task_status(self, request: Request) -> dict:
        task_id = _path_id(request, "taskId")
        task = self.store.tasks.get(task_id)
        if task is None or task.user_id != request.caller:
            raise not_found("task")
        # The execution runs where it was started; ask that region.
        described = self._stepfunctions(_region_of(task.execution_arn)).describe_execution(
            executionArn=task.execution_arn
        )
        status = described["status"]
        body: dict[str, Any] = {"taskId": task_id, "status": status, "sessionId": task.session_id}
        if status == "SUCCEEDED":
            output = json.loads(described.get("output") or "{}")
            body["answer"] = output.get("answer")
        elif status in ("FAILED", "TIMED_OUT", "ABORTED"):
            body["error"] = {"code": described.get("error") or status.lower()}
        elif status == "RUNNING":
            # The task's execution is named after the task, so its approvals are under it. A
            # decision taken while the execution's region could not be reached is delivered
            # now (handlers.shared.callbacks).
            approvals = self.store.approvals.all(task_id)
            for approval in approvals:
                if approval.decision is not None and not approval.delivered:
                    delivery = deliver_decision(self.store, self._stepfunctions, approval, self._clock())
                    logger.info("decision delivered", extra={"approvalId": approval.approval_id, "delivery": delivery})
            pending = [a for a in approvals if a.status == "PENDING"]
            if pending:
                first = min(pending, key=lambda a: a.seq)
                body["pendingApproval"] = {
                    "approvalId": first.approval_id,
                    "tool": first.tool_name,
                    "input": first.input,
                }
        return respond(200, body, request)


# -- Lambda wiring: built at cold start (the init phase), once per execution environment ----


def _stepfunctions_clients() -> Callable[[str], Any]:
    import boto3

    clients: dict[str, Any] = {}

    def client(region: str) -> Any:
        if region not in clients:
            clients[region] = boto3.client("stepfunctions", region_name=region)
        return clients[region]

    return client


def from_environment() -> Router:
    settings = load_settings(RouterSettings)
    logger.setLevel(settings.LOG_LEVEL)
    return Router(settings, Store.from_settings(settings), _stepfunctions_clients())


app: Router | None = from_environment() if "TABLE_NAME" in os.environ else None
init_done()


def handler(event: dict[str, Any], context: Any = None) -> dict:
    global app
    if app is None:
        app = from_environment()
    return app.handle(event)
