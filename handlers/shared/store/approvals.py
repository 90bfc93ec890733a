"""Approvals: a tool call waiting for a human, with the task token its execution waits on.

An approval lives in its run's partition (``RUN#<executionId>`` / ``APPROVAL#<seq>``), written
by the region its execution runs in, and carries that region: the decision's callback has to
reach the execution there. The decision is an item of its own, in the replica that took it
(``APPROVAL#<seq>#<replica>``): the execution's region when it can be reached, else the
run's next region (``Replicas.home``). Taking it checks, in that replica, that the approval
is still pending and that no other replica's decision has arrived, so of two decisions only
one is taken wherever both can be seen, and none ever replaces another. A decision is kept
once taken; until its callback has reached the execution (the execution's region may be
down) it is marked undelivered, and whoever reads the approval next delivers it.
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

DECISION_STATUS = {"approve": "APPROVED", "deny": "DENIED"}


class Approval(msgspec.Struct, frozen=True):
    execution_id: str
    seq: int
    tool_name: str
    input: Any
    user_id: str
    session_id: str
    task_token: str
    status: str  # PENDING, APPROVED, DENIED or EXPIRED
    region: str
    """The region the execution runs in."""
    created_at_ms: int
    expires_at: int
    decided_by: str | None = None
    comment: str | None = None
    decided_in: str | None = None
    """The replica that took the decision."""
    delivered: bool = False
    """Whether the decision's callback reached the execution."""

    @property
    def approval_id(self) -> str:
        return approval_id(self.execution_id, self.seq)

    @property
    def decision(self) -> str | None:
        """``approve`` or ``deny``, once decided."""
        return {v: k for k, v in DECISION_STATUS.items()}.get(self.status)


def approval_id(execution_id: str, seq: int) -> str:
    """The public id of an approval: ``<executionId>.<seq>``."""
    return f"{execution_id}.{seq}"


def parse_approval_id(value: str) -> tuple[str, int] | None:
    execution_id, _, seq = value.rpartition(".")
    if not execution_id or not seq.isdigit() or len(seq) > 5:
        return None
    return execution_id, int(seq)


def _approval(item: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]] = ()) -> Approval:
    """An approval item and the decision items found with it: the first decision taken
    counts (earliest, then replica name: the same answer in every replica)."""
    fields: dict[str, Any] = {"status": item["status"]}
    if decisions:
        first = min(decisions, key=lambda d: (int(d["decidedAt"]), d[keys.REGION_ATTRIBUTE]))
        fields = {
            "status": first.get("outcome") or DECISION_STATUS[first["decision"]],
            "decided_by": first["decidedBy"],
            "comment": first.get("comment") or None,
            "decided_in": first[keys.REGION_ATTRIBUTE],
            "delivered": bool(first.get("delivered", False)),
        }
    return Approval(
        execution_id=after(keys.RUN_PREFIX, item[keys.PARTITION_KEY]),
        seq=int(item["seq"]),
        tool_name=item["toolName"],
        input=json.loads(item["input"]),
        user_id=item["userId"],
        session_id=item["sessionId"],
        task_token=item["taskToken"],
        region=item[keys.REGION_ATTRIBUTE],
        created_at_ms=int(item["createdAt"]),
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
        **fields,
    )


def _approvals(items: Sequence[Mapping[str, Any]]) -> list[Approval]:
    """Approval and decision items of one run, as approvals in seq order."""
    requests: dict[str, Mapping[str, Any]] = {}
    decisions: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        base, _, replica = _split(item[keys.SORT_KEY])
        if replica:
            decisions.setdefault(base, []).append(item)
        else:
            requests[base] = item
    return [_approval(requests[sk], decisions.get(sk, ())) for sk in sorted(requests)]


def _split(sort_key: str) -> tuple[str, str, str]:
    """``APPROVAL#00001`` → (it, "", ""); ``APPROVAL#00001#us-east-1`` → (``APPROVAL#00001``, "#", region)."""
    base = sort_key[: len(keys.APPROVAL_PREFIX) + 5]
    return base, sort_key[len(base) : len(base) + 1], sort_key[len(base) + 1 :]


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
        (PutItem, in this region's replica: the execution's). A repeated request for the same
        step replaces the token: the newest one is the one Step Functions waits on."""
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

    def _items(self, at: Table, execution_id: str, prefix: str) -> list[dict[str, Any]]:
        response = at.client.query(
            TableName=at.name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            ExpressionAttributeValues=to_item({":pk": keys.run_pk(execution_id), ":prefix": prefix}),
        )
        return [from_item(raw) for raw in response.get("Items", [])]

    def get(self, execution_id: str, seq: int) -> Approval | None:
        """The approval and its decision, as this region's replica has them (one Query)."""
        found = _approvals(self._items(self.table, execution_id, keys.approval_sk(seq)))
        return found[0] if found else None

    def pending(self, execution_id: str) -> list[Approval]:
        """The run's approvals still waiting for a decision: one Query."""
        return [a for a in self.all(execution_id) if a.status == "PENDING"]

    def all(self, execution_id: str) -> list[Approval]:
        """The run's approvals, decided or not: one Query."""
        return _approvals(self._items(self.table, execution_id, keys.APPROVAL_PREFIX))

    def decide(self, approval: Approval, decision: str, decided_by: str, comment: str | None) -> Approval | None:
        """Take a decision (one TransactWriteItems) in the execution's region, or in the run's
        next region while that one cannot be reached: the approval is still pending there and
        no other replica's decision has arrived. The approval as decided, or None when it was
        already decided (or has not reached that replica)."""
        return self.table.on_home(
            keys.run_pk(approval.execution_id),
            lambda at: self._decide(at, approval, decision, decided_by, comment),
            approval.region,
        )

    def _decide(
        self, at: Table, approval: Approval, decision: str, decided_by: str, comment: str | None
    ) -> Approval | None:
        status = DECISION_STATUS[decision]
        pk = keys.run_pk(approval.execution_id)
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: pk,
            keys.SORT_KEY: keys.approval_decision_sk(approval.seq, at.region),
            "decision": decision,
            "decidedBy": decided_by,
            "comment": comment or "",
            "decidedAt": now_ms,
            "delivered": False,
            **at.stamp(now_ms, max(1, approval.expires_at - now_ms // 1000) + 86_400),
        }
        put = {
            "TableName": at.name,
            "Item": to_item(values),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
        }
        still_pending = {
            "ConditionCheck": {
                "TableName": at.name,
                "Key": at.key(pk, keys.approval_sk(approval.seq)),
                "ConditionExpression": "#status = :pending",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_item({":pending": "PENDING"}),
            }
        }
        others = [keys.approval_decision_sk(approval.seq, r) for r in at.other_regions]
        checks = [c.request for c in at.absent_checks(pk, others, StateError("decided"))]
        try:
            at.client.transact_write_items(TransactItems=[{"Put": put}, still_pending, *checks])
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            reasons = error.response.get("CancellationReasons") or []
            if code == "TransactionCanceledException" and any(
                r.get("Code") == "ConditionalCheckFailed" for r in reasons
            ):
                return None
            raise
        return msgspec.structs.replace(
            approval,
            status=status,
            decided_by=decided_by,
            comment=comment or None,
            decided_in=at.region,
            delivered=False,
        )

    def _update_decision(self, approval: Approval, expression: str, values: dict[str, Any]) -> None:
        if approval.decided_in is None:
            raise ValueError(f"approval {approval.approval_id} has no decision")
        at = self.table.at(approval.decided_in)
        try:
            at.client.update_item(
                TableName=at.name,
                Key=at.key(keys.run_pk(approval.execution_id), keys.approval_decision_sk(approval.seq, at.region)),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, **{f"#{k}": k for k in values}},
                ExpressionAttributeValues=to_item({f":{k}": v for k, v in values.items()}),
            )
        except ClientError as error:
            if not condition_failed(error):
                raise

    def mark_delivered(self, approval: Approval) -> None:
        """The decision's callback reached the execution (UpdateItem of the decision, in the
        replica that took it: its only writer)."""
        self._update_decision(approval, "SET #delivered = :delivered", {"delivered": True})

    def mark_expired(self, approval: Approval) -> None:
        """The execution stopped waiting before the decision reached it: the approval expired."""
        self._update_decision(
            approval, "SET #outcome = :outcome, #delivered = :delivered", {"outcome": "EXPIRED", "delivered": True}
        )
