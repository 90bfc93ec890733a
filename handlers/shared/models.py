"""Request and response bodies of the public API, as msgspec Structs, and the edge's rules.

One source of truth: the handlers validate with these, the API component generates API
Gateway JSON-schema models from them (``msgspec.json.schema``), and the chat route's
mapping templates and the turn's first step check ids and headers with the same patterns.

``null`` is never a value: an optional field is either absent or holds a value of its type.
API Gateway's models are JSON Schema draft 4, which ignores OpenAPI's ``nullable``
(https://docs.aws.amazon.com/apigateway/latest/developerguide/models-mappings-models.html),
so the edge would refuse ``null`` anyway; the handlers refuse it the same way.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

# Every id in a path or a body (sessions, tasks): one rule, everywhere.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ID_RULE = "1-64 letters, digits, '-' or '_'"
# An approval is named by its run (an execution name, at most 80) and the step's sequence.
APPROVAL_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}\.[0-9]{1,5}$"
# The Idempotency-Key header, on /v1/tasks and on chat turns alike.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"
IDEMPOTENCY_KEY_RULE = "Idempotency-Key must be 1-128 visible ASCII characters"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def valid_idempotency_key(key: str) -> bool:
    """The one rule for an Idempotency-Key, wherever a request or a turn brings one."""
    return _IDEMPOTENCY_KEY.fullmatch(key) is not None


def idempotency_key_hash(*scope: str, key: str) -> str:
    """What a key is stored as: its digest within ``scope`` (the caller, or a turn's user),
    so one caller's key never matches another's and the key itself is never stored."""
    return hashlib.sha256("\n".join((*scope, key)).encode()).hexdigest()[:40]


# A caller's own x-correlation-id is used only when it looks like a token; otherwise the
# request id stands in (never echoed back as given).
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"

# The largest message a turn takes, as Step Functions counts a state: UTF-8 of its JSON.
MESSAGE_BYTES = 64 * 1024

# The REST message limit: the OpenAPI model's maxLength, which API Gateway's validator enforces,
# and its description, which a reader of the API's document sees.
MAX_MESSAGE_CHARS = 32_000
Text = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        description=f"the message: 1 to {MAX_MESSAGE_CHARS:,} characters; a longer one is refused with 400",
    ),
]
Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
ToolName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Comment = Annotated[str, msgspec.Meta(max_length=1_000)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
Cursor = Annotated[str, msgspec.Meta(min_length=1, max_length=1_024)]


def id_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not a valid id for ``name``, or None when it is."""
    import re

    if isinstance(value, str) and re.fullmatch(ID_PATTERN, value):
        return None
    return f"{name} must be {ID_RULE}"


@dataclass(frozen=True)
class TurnError:
    """How a failed chat turn answers: its HTTP status and error body."""

    status: int
    code: str
    message: str
    field: str | None = None


# Express turn errors → HTTP status and body (the chat route's response template, and the
# error frame a WebSocket client gets). The turn's first step checks what API Gateway cannot
# (path parameter patterns and header values are not validated by request validators:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html),
# with the router's rules and messages. Anything not listed is a 502 that names nothing
# internal; the request id finds it in the logs.
TURN_ERRORS = {
    "InvalidSessionIdError": TurnError(400, "invalid_request", f"sessionId must be {ID_RULE}", "sessionId"),
    "InvalidIdempotencyKeyError": TurnError(400, "invalid_request", IDEMPOTENCY_KEY_RULE, "Idempotency-Key"),
    "MessageTooLargeError": TurnError(
        413, "payload_too_large", f"the message is over {MESSAGE_BYTES} bytes as UTF-8 JSON", "message"
    ),
    "SessionOwnershipError": TurnError(404, "not_found", "session not found"),
    "LongToolInTurnError": TurnError(
        400,
        "invalid_request",
        "tools names a tool that runs long (continuation or fargate-spot): start a task with POST /v1/tasks to use it",
        "tools",
    ),
    "DuplicateRequestError": TurnError(
        409, "duplicate_request", "this Idempotency-Key was already used for a turn", "Idempotency-Key"
    ),
    "ConflictError": TurnError(409, "conflict", "the session changed during this turn; send it again"),
    "MaxStepsExceeded": TurnError(422, "max_steps_exceeded", "the model gave no final answer within the step limit"),
    "LlmUnavailableError": TurnError(503, "llm_unavailable", "the model is unavailable; retry shortly"),
    "States.Timeout": TurnError(504, "timeout", "the turn took too long"),
}
# StartSyncExecution answers TIMED_OUT with no error and no cause
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html).
TURN_TIMED_OUT = TurnError(504, "timeout", "the turn took too long")
TURN_FAILED = TurnError(502, "turn_failed", "the turn did not complete; quote the x-request-id header")


def turn_error(error: str | None, timed_out: bool = False) -> TurnError:
    """What a turn that ended with ``error`` answers."""
    if timed_out:
        return TURN_TIMED_OUT
    return TURN_ERRORS.get(error or "", TURN_FAILED)


class ChatTurnRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/sessions/{sessionId}/messages. ``tools`` absent: every tool; ``[]``: none."""

    message: Text
    tools: list[ToolName] | msgspec.UnsetType = msgspec.UNSET


class TaskRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/tasks"""

    message: Text
    sessionId: Id | msgspec.UnsetType = msgspec.UNSET


class ApprovalRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/approvals/{approvalId}"""

    decision: Literal["approve", "deny"]
    comment: Comment | msgspec.UnsetType = msgspec.UNSET


class PageQuery(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """?limit=&cursor= on the list routes"""

    limit: Limit = 20
    cursor: Cursor | None = None


class TaskAccepted(msgspec.Struct, frozen=True):
    taskId: str
    status: str
    sessionId: str


REQUEST_MODELS = {
    "ChatTurnRequest": ChatTurnRequest,
    "TaskRequest": TaskRequest,
    "ApprovalRequest": ApprovalRequest,
}
