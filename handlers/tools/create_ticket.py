"""create_ticket: a tool with a side effect. Needs a human's approval; can be undone.

The ticket id is derived from the step's idempotency key, and the ticket is written with a
conditional put, so however often the step is delivered there is one ticket. Its
compensation deletes the ticket; deleting twice is harmless. Tickets are this tool's own
items (``TICKET#<ticketId>``): :class:`TicketStore` reads and writes them, over the agent's
table handle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from handlers.shared import table as keys
from handlers.shared.store import Table, ToolExecution
from handlers.shared.store.base import json_attribute
from handlers.shared.tooling import ToolContext, ToolDefinition


class TicketStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put(self, ticket_id: str, fields: Mapping[str, Any]) -> bool:
        """Create a ticket once (conditional PutItem). Returns False when it already existed."""
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.ticket_pk(ticket_id),
            keys.SORT_KEY: keys.TICKET_SK,
            "fields": json_attribute("fields", dict(fields)),
            "createdAt": now_ms,
            **self.table.stamp(now_ms),
        }
        return self.table.put_new(values) is None

    def get(self, ticket_id: str) -> dict[str, Any] | None:
        item = self.table.get(keys.ticket_pk(ticket_id), keys.TICKET_SK)
        return json.loads(item["fields"]) if item is not None else None

    def delete(self, ticket_id: str) -> bool:
        """Remove a ticket (DeleteItem). Returns whether it was there, so compensation can
        report what it undid; deleting twice is harmless."""
        response = self.table.client.delete_item(
            TableName=self.table.name,
            Key=self.table.key(keys.ticket_pk(ticket_id), keys.TICKET_SK),
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response


class TicketInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    title: Annotated[str, msgspec.Meta(min_length=3, max_length=200)]
    description: Annotated[str, msgspec.Meta(max_length=5_000)] = ""
    priority: Literal["low", "normal", "high"] = "normal"


def ticket_id_for(ctx: ToolContext) -> str:
    return "T-" + ctx.idempotency_key[:16].upper()


def run(ctx: ToolContext, request: TicketInput) -> dict:
    ticket_id = ticket_id_for(ctx)
    created = TicketStore(ctx.store.table).put(
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
    return {"ticketId": ticket_id, "deleted": TicketStore(ctx.store.table).delete(ticket_id)}


TOOL = ToolDefinition(
    name="create_ticket",
    description="Open a support ticket with a title, an optional description and a priority.",
    input_type=TicketInput,
    run=run,
    compensate=compensate,
    dynamodb_actions=("dynamodb:PutItem", "dynamodb:DeleteItem"),
)
handler = TOOL.lambda_handler
