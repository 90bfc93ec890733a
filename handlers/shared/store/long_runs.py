"""Long tool steps: checkpoints, work items and continuation slices, beside the step's record.

A ``fargate-spot`` step saves a checkpoint (``CKPT#<seq>#<tool>``: how far it got) at
intervals and when it is told to stop, and writes each work item's result once
(``ITEM#<seq>#<tool>#<itemKey>``, a conditional PutItem): a restarted step resumes from its
checkpoint, and an item done before an interruption is found, not done again. A
``continuation`` step writes each slice's outcome once (``SLICE#<seq>#<tool>#<n>``), so a
redelivered slice hands back the same token.

Every one of these items is under ``RUN#<executionId>`` and is written through the handle
of the region that runs the step: the task machine's, where its ECS task or Lambda runs too.
Global tables check a condition against the replica the write goes to only, replicate
asynchronously, and settle concurrent writes of one item in two regions by last writer
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html);
a key that only ever one region writes has none of those problems: its condition sees
every earlier write of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from handlers.shared import table as keys
from handlers.shared.store.base import StateError, Table, condition_failed, from_item, json_attribute, to_item

MAX_CHECKPOINT_BYTES = 4_096
"""A checkpoint is rewritten every interval and replicated to every region: it stays a few
write units (1 KB each). What a step has done lives in its work items, not here."""


class Checkpoint(msgspec.Struct, frozen=True):
    cursor: int
    """Items before this position in the plan are done."""
    plan: str
    """Digest of the plan's item keys: a checkpoint of another plan is not resumed from."""
    state: Any = None
    saved_at_ms: int = 0


class SliceOutcome(msgspec.Struct, frozen=True):
    token_in: str | None
    token_out: str
    state: Any
    """What the next slice starts from."""


def _checkpoint(item: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(
        cursor=int(item["cursor"]),
        plan=item["plan"],
        state=json.loads(item["state"]),
        saved_at_ms=int(item["savedAt"]),
    )


class LongRunStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    # --- checkpoints ----------------------------------------------------------------------

    def checkpoint(self, execution_id: str, seq: int, tool_name: str) -> Checkpoint | None:
        item = self.table.get(keys.run_pk(execution_id), keys.checkpoint_sk(seq, tool_name))
        return _checkpoint(item) if item is not None else None

    def save_checkpoint(self, execution_id: str, seq: int, tool_name: str, checkpoint: Checkpoint) -> bool:
        """Save ``checkpoint`` unless one further on is there (conditional PutItem): two runs
        of one step (a retry started while a stopped task still wrote) never move it back.
        Returns whether it was saved."""
        state = json_attribute("checkpoint state", checkpoint.state)
        if len(state.encode()) > MAX_CHECKPOINT_BYTES:
            raise ValueError(
                f"checkpoint state is {len(state.encode())} bytes, at most {MAX_CHECKPOINT_BYTES}: keep results in work items"
            )
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.run_pk(execution_id),
            keys.SORT_KEY: keys.checkpoint_sk(seq, tool_name),
            "cursor": checkpoint.cursor,
            "plan": checkpoint.plan,
            "state": state,
            "savedAt": now_ms,
            **self.table.stamp(now_ms),
        }
        try:
            self.table.client.put_item(
                TableName=self.table.name,
                Item=to_item(values),
                ConditionExpression="attribute_not_exists(#pk) OR #cursor <= :cursor",
                ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#cursor": "cursor"},
                ExpressionAttributeValues=to_item({":cursor": checkpoint.cursor}),
            )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    # --- work items -----------------------------------------------------------------------

    def put_item_once(
        self, execution_id: str, seq: int, tool_name: str, item_key: str, result: Any
    ) -> tuple[bool, Any]:
        """Write one work item's result, once (conditional PutItem). Returns whether this call
        wrote it, and the result stored: this one, or the one written before (read in the
        same round trip from the failed condition)."""
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.run_pk(execution_id),
            keys.SORT_KEY: keys.work_item_sk(seq, tool_name, item_key),
            "itemKey": item_key,
            "result": json_attribute("work item result", result),
            "createdAt": now_ms,
            **self.table.stamp(now_ms),
        }
        existing = self.table.put_new(values)
        if existing is None:
            return True, result
        if "result" not in existing:
            raise StateError(f"work item {item_key!r} of step {seq} is stored but could not be read back")
        return False, json.loads(existing["result"])

    def items(self, execution_id: str, seq: int, tool_name: str) -> dict[str, Any]:
        """Every work item's result of one step, by item key: one Query, read to the end."""
        request: dict[str, Any] = {
            "TableName": self.table.name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            "ExpressionAttributeValues": to_item(
                {":pk": keys.run_pk(execution_id), ":prefix": keys.work_items_prefix(seq, tool_name)}
            ),
            "ConsistentRead": True,
        }
        found: dict[str, Any] = {}
        while True:
            response = self.table.client.query(**request)
            for raw in response.get("Items", []):
                item = from_item(raw)
                found[item["itemKey"]] = json.loads(item["result"])
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- continuation slices --------------------------------------------------------------

    def slice(self, execution_id: str, seq: int, tool_name: str, number: int) -> SliceOutcome | None:
        item = self.table.get(keys.run_pk(execution_id), keys.slice_sk(seq, tool_name, number))
        if item is None:
            return None
        return SliceOutcome(item.get("tokenIn"), item["tokenOut"], json.loads(item["state"]))

    def put_slice_once(
        self, execution_id: str, seq: int, tool_name: str, number: int, outcome: SliceOutcome
    ) -> SliceOutcome:
        """Record a slice's outcome once (conditional PutItem); the outcome recorded first wins
        and is returned, so every delivery of the slice hands back the same token."""
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.run_pk(execution_id),
            keys.SORT_KEY: keys.slice_sk(seq, tool_name, number),
            "tokenIn": outcome.token_in,
            "tokenOut": outcome.token_out,
            "state": json_attribute("slice state", outcome.state),
            "createdAt": now_ms,
            **self.table.stamp(now_ms),
        }
        existing = self.table.put_new(values)
        if existing is None:
            return outcome
        if "tokenOut" not in existing:
            raise StateError(f"slice {number} of step {seq} is stored but could not be read back")
        return SliceOutcome(existing.get("tokenIn"), existing["tokenOut"], json.loads(existing["state"]))
