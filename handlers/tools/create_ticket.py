"""create_ticket: a tool with a side effect. Needs a human's approval; can be undone.

The ticket id is derived from the step's idempotency key, and the ticket is written with a
conditional put, so however often the step is delivered there is one ticket. Its
compensation deletes the ticket; deleting twice is harmless.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from handlers.shared.state import ToolExecution
from handlers.shared.tooling import ToolContext, ToolDefinition


class TicketInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    title: Annotated[str, msgspec.Meta(min_length=3, max_length=200)]
    description: Annotated[str, msgspec.Meta(max_length=5_000)] = ""
    priority: Literal["low", "normal", "high"] = "normal"


def ticket_id_for(ctx: ToolContext) -> str:
    return "T-" + ctx.idempotency_key[:16].upper()


def run(ctx: ToolContext, request: TicketInput) -> dict:
    ticket_id = ticket_id_for(ctx)
    created = ctx.store.put_ticket(
        ticket_id,
        {
            "title": request.title,
            "description": request.description,
            "priority": request.priority,
            "userId": ctx.user_id,
            "sessionId": ctx.session_id,
            "executionId": ctx.execution_id,
        },
    )
    return {"ticketId": ticket_id, "created": created}


def compensate(ctx: ToolContext, record: ToolExecution) -> dict:
    ticket_id = record.output["ticketId"]
    return {"ticketId": ticket_id, "deleted": ctx.store.delete_ticket(ticket_id)}


TOOL = ToolDefinition(
    name="create_ticket",
    description="Open a support ticket with a title, an optional description and a priority.",
    input_type=TicketInput,
    run=run,
    compensate=compensate,
    dynamodb_actions=("dynamodb:PutItem", "dynamodb:DeleteItem"),
)
handler = TOOL.lambda_handler
