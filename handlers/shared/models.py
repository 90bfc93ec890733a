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
# A caller's own x-correlation-id is used only when it looks like a token; otherwise the
# request id stands in (never echoed back as given).
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=32_000)]
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
