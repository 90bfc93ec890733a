"""Approvals: a tool call waiting for a human, with the task token its execution waits on.

An approval lives in its run's partition (``RUN#<executionId>`` / ``APPROVAL#<seq>``) and
carries the region of the execution, so a decision taken anywhere reaches the execution
where it runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from handlers.shared import table as keys
from handlers.shared.store.base import Table, after, condition_failed, from_item, json_attribute, to_item


class Approval(msgspec.Struct, frozen=True):
    execution_id: str
    seq: int
    tool_name: str
    input: Any
    user_id: str
    session_id: str
    task_token: str
    status: str  # PENDING, APPROVED or DENIED
    region: str
    created_at_ms: int
    expires_at: int
    decided_by: str | None = None
    comment: str | None = None

    @property
    def approval_id(self) -> str:
        return approval_id(self.execution_id, self.seq)


def approval_id(execution_id: str, seq: int) -> str:
    """The public id of an approval: ``<executionId>.<seq>``."""
    return f"{execution_id}.{seq}"


def parse_approval_id(value: str) -> tuple[str, int] | None:
    execution_id, _, seq = value.rpartition(".")
    if not execution_id or not seq.isdigit() or len(seq) > 5:
        return None
    return execution_id, int(seq)


def _approval(item: Mapping[str, Any]) -> Approval:
    return Approval(
        execution_id=after(keys.RUN_PREFIX, item[keys.PARTITION_KEY]),
        seq=int(item["seq"]),
        tool_name=item["toolName"],
        input=json.loads(item["input"]),
        user_id=item["userId"],
        session_id=item["sessionId"],
        task_token=item["taskToken"],
        status=item["status"],
        region=item[keys.REGION_ATTRIBUTE],
        created_at_ms=int(item["createdAt"]),
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
        decided_by=item.get("decidedBy"),
        comment=item.get("comment") or None,
    )


class ApprovalStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put(
        self,
        execution_id: str,
        seq: int,
        tool_name: str,
        tool_input: Any,
        user_id: str,
        session_id: str,
        task_token: str,
        timeout_seconds: int,
    ) -> Approval:
        """Record a pending approval with its task token and the region of the execution
        (PutItem). A repeated request for the same step replaces the token: the newest
        one is the one Step Functions waits on."""
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.run_pk(execution_id),
            keys.SORT_KEY: keys.approval_sk(seq),
            "seq": seq,
            "toolName": tool_name,
            "input": json_attribute("input", tool_input),
            "userId": keys.key_part("userId", user_id),
            "sessionId": session_id,
            "taskToken": task_token,
            "status": "PENDING",
            "createdAt": now_ms,
            **self.table.stamp(now_ms, timeout_seconds),
        }
        self.table.put(values)
        return _approval(values)

    def get(self, execution_id: str, seq: int) -> Approval | None:
        item = self.table.get(keys.run_pk(execution_id), keys.approval_sk(seq))
        return _approval(item) if item is not None else None

    def pending(self, execution_id: str) -> list[Approval]:
        """The run's approvals still waiting for a decision: one Query."""
        response = self.table.client.query(
            TableName=self.table.name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            FilterExpression="#status = :pending",
            ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY, "#status": "status"},
            ExpressionAttributeValues=to_item(
                {":pk": keys.run_pk(execution_id), ":prefix": keys.APPROVAL_PREFIX, ":pending": "PENDING"}
            ),
        )
        return [_approval(from_item(raw)) for raw in response.get("Items", [])]

    def decide(self, execution_id: str, seq: int, decision: str, decided_by: str, comment: str | None) -> bool:
        """PENDING → APPROVED or DENIED (conditional UpdateItem). False when already decided."""
        status = {"approve": "APPROVED", "deny": "DENIED"}[decision]
        try:
            self.table.client.update_item(
                TableName=self.table.name,
                Key=self.table.key(keys.run_pk(execution_id), keys.approval_sk(seq)),
                UpdateExpression="SET #status = :status, #by = :by, #comment = :comment, #at = :now",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={
                    "#status": "status",
                    "#by": "decidedBy",
                    "#comment": "comment",
                    "#at": "decidedAt",
                },
                ExpressionAttributeValues=to_item(
                    {
                        ":status": status,
                        ":pending": "PENDING",
                        ":by": decided_by,
                        ":comment": comment or "",
                        ":now": self.table.now_ms(),
                    }
                ),
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def settle(self, execution_id: str, seq: int, status: str) -> None:
        """Set an approval's status outright: EXPIRED when its execution stopped waiting, or
        back to PENDING (clearing who decided) when the callback could not be delivered."""
        if status not in ("EXPIRED", "PENDING"):
            raise ValueError(f"status must be EXPIRED or PENDING, got {status!r}")
        remove = " REMOVE #by, #comment, #at" if status == "PENDING" else ""
        self.table.client.update_item(
            TableName=self.table.name,
            Key=self.table.key(keys.run_pk(execution_id), keys.approval_sk(seq)),
            UpdateExpression="SET #status = :status" + remove,
            ExpressionAttributeNames={
                "#status": "status",
                **({"#by": "decidedBy", "#comment": "comment", "#at": "decidedAt"} if remove else {}),
            },
            ExpressionAttributeValues=to_item({":status": status}),
        )
