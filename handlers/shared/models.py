"""Request and response bodies of the public API, as msgspec Structs.

One source of truth: the handlers validate with these, and the API component generates
API Gateway JSON-schema models from them (``msgspec.json.schema``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=32_000)]
Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ToolName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Comment = Annotated[str, msgspec.Meta(max_length=1_000)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
Cursor = Annotated[str, msgspec.Meta(min_length=1, max_length=1_024)]


class ChatTurnRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/sessions/{sessionId}/messages"""

    message: Text
    tools: list[ToolName] | None = None


class TaskRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/tasks"""

    message: Text
    sessionId: Id | None = None


class ApprovalRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """POST /v1/approvals/{approvalId}"""

    decision: Literal["approve", "deny"]
    comment: Comment | None = None


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
