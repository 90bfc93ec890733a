"""Tasks: a started Standard execution, with its owner and the region it runs in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from handlers.shared import table as keys
from handlers.shared.store.base import Table, after


class Task(msgspec.Struct, frozen=True):
    task_id: str
    user_id: str
    session_id: str
    execution_arn: str
    created_at_ms: int
    region: str
    expires_at: int


def _task(item: Mapping[str, Any]) -> Task:
    return Task(
        task_id=after(keys.TASK_PREFIX, item[keys.PARTITION_KEY]),
        user_id=item["userId"],
        session_id=item["sessionId"],
        execution_arn=item["executionArn"],
        created_at_ms=int(item["createdAt"]),
        region=item[keys.REGION_ATTRIBUTE],
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


class TaskStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put(self, task_id: str, user_id: str, session_id: str, execution_arn: str) -> Task:
        """Record a started Standard task with its owner and the region it runs in (PutItem)."""
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.task_pk(task_id),
            keys.SORT_KEY: keys.TASK_SK,
            "userId": keys.key_part("userId", user_id),
            "sessionId": session_id,
            "executionArn": execution_arn,
            "createdAt": now_ms,
            **self.table.stamp(now_ms),
        }
        self.table.put(values)
        return _task(values)

    def get(self, task_id: str) -> Task | None:
        item = self.table.get(keys.task_pk(task_id), keys.TASK_SK)
        return _task(item) if item is not None else None
