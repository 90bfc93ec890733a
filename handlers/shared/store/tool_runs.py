"""Tool runs: one record per tool step of an execution, the run's exactly-once log.

A record is written once (conditional PutItem) and never replaced: a redelivered step finds
it and returns its result; compensation reads the run's records and marks what it undid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from handlers.shared import table as keys
from handlers.shared.store.base import (
    StateError,
    Table,
    after,
    condition_failed,
    from_item,
    json_attribute,
    to_item,
)

TOOL_STATUSES = ("SUCCEEDED", "FAILED", "COMPENSATED")


class ToolExecution(msgspec.Struct, frozen=True):
    execution_id: str
    seq: int
    tool_name: str
    status: str
    input: Any
    output: Any
    compensable: bool
    created_at_ms: int
    region: str
    expires_at: int


class DuplicateToolExecutionError(StateError):
    """This tool step was recorded before; ``existing`` is the first record, never replaced."""

    def __init__(self, existing: ToolExecution):
        self.existing = existing
        super().__init__(
            f"tool execution {existing.seq} ({existing.tool_name}) of run {existing.execution_id!r} is already recorded"
        )


def _tool_execution(item: Mapping[str, Any]) -> ToolExecution:
    return ToolExecution(
        execution_id=after(keys.RUN_PREFIX, item[keys.PARTITION_KEY]),
        seq=int(item["seq"]),
        tool_name=item["toolName"],
        status=item["status"],
        input=json.loads(item["input"]),
        output=json.loads(item["output"]),
        compensable=bool(item.get("compensable", False)),
        created_at_ms=int(item["createdAt"]),
        region=item[keys.REGION_ATTRIBUTE],
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


class ToolRunStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(
        self,
        execution_id: str,
        seq: int,
        tool_name: str,
        *,
        status: str,
        input: Any,
        output: Any,
        compensable: bool = False,
    ) -> ToolExecution:
        """Record one tool step of a run (conditional PutItem). A repeated record of the same
        step raises :class:`DuplicateToolExecutionError` carrying the first record, read in the
        same round trip, so a redelivered step can return the recorded result."""
        if status not in TOOL_STATUSES:
            raise ValueError(f"status must be one of {', '.join(TOOL_STATUSES)}; got {status!r}")
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.run_pk(execution_id),
            keys.SORT_KEY: keys.tool_execution_sk(seq, tool_name),
            "seq": seq,
            "toolName": tool_name,
            "status": status,
            "input": json_attribute("input", input),
            "output": json_attribute("output", output),
            "compensable": bool(compensable),
            "createdAt": now_ms,
            **self.table.stamp(now_ms),
        }
        existing = self.table.put_new(values)
        if existing is not None:
            if not existing:  # DynamoDB always returns it; be explicit if it ever does not
                raise StateError(f"tool step {seq} of run {execution_id!r} is recorded but could not be read back")
            raise DuplicateToolExecutionError(_tool_execution(existing))
        return _tool_execution(values)

    def get(self, execution_id: str, seq: int, tool_name: str) -> ToolExecution | None:
        """One recorded tool step (GetItem), or None: how a redelivered step finds its result."""
        item = self.table.get(keys.run_pk(execution_id), keys.tool_execution_sk(seq, tool_name))
        return _tool_execution(item) if item is not None else None

    def get_many(self, refs: Sequence[tuple[str, int, str]]) -> list[ToolExecution]:
        """Several recorded steps by (executionId, seq, tool) in one BatchGetItem (at most 100);
        used to resolve tool outputs passed by reference."""
        if not refs:
            return []
        if len(refs) > 100:
            raise ValueError(f"at most 100 references per read, got {len(refs)}")
        name = self.table.name
        request = {
            name: {
                "Keys": [
                    self.table.key(keys.run_pk(e), keys.tool_execution_sk(q, t)) for e, q, t in dict.fromkeys(refs)
                ]
            }
        }
        found: list[ToolExecution] = []
        while request:
            response = self.table.client.batch_get_item(RequestItems=request)
            found.extend(_tool_execution(from_item(raw)) for raw in response.get("Responses", {}).get(name, []))
            request = response.get("UnprocessedKeys") or {}
        return found

    def list(self, execution_id: str) -> list[ToolExecution]:
        """The run's tool steps in order: one Query (a run's records are far below 1 MB; a
        longer result would still be read to the end)."""
        request: dict[str, Any] = {
            "TableName": self.table.name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            "ExpressionAttributeValues": to_item({":pk": keys.run_pk(execution_id), ":prefix": keys.TOOL_PREFIX}),
        }
        executions: list[ToolExecution] = []
        while True:
            response = self.table.client.query(**request)
            executions.extend(_tool_execution(from_item(raw)) for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return executions
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def mark_compensated(self, execution_id: str, seq: int, tool_name: str, detail: Any) -> bool:
        """Record that a step was undone (conditional UpdateItem: SUCCEEDED → COMPENSATED).
        Returns False when it was not a succeeded step any more, so nothing is undone twice."""
        try:
            self.table.client.update_item(
                TableName=self.table.name,
                Key=self.table.key(keys.run_pk(execution_id), keys.tool_execution_sk(seq, tool_name)),
                UpdateExpression="SET #status = :compensated, #detail = :detail, #at = :now",
                ConditionExpression="#status = :succeeded",
                ExpressionAttributeNames={"#status": "status", "#detail": "compensation", "#at": "compensatedAt"},
                ExpressionAttributeValues=to_item(
                    {
                        ":compensated": "COMPENSATED",
                        ":succeeded": "SUCCEEDED",
                        ":detail": json_attribute("compensation", detail),
                        ":now": self.table.now_ms(),
                    }
                ),
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True
