"""Idempotency keys: a request's claim on its key, and the response a replay returns.

The claim is a conditional PutItem that hands back the record already there in the same
round trip (``ReturnValuesOnConditionCheckFailure``), the same protocol as Powertools'
idempotency persistence layer: IN_PROGRESS while the request runs, COMPLETED with the
response once it is done, deleted when it failed before doing anything. A chat turn
claims its key in the transaction of its first step (:meth:`IdempotencyStore.turn_claim_writes`).

A key is claimed in its home replica (``table.home``): a turn's in its session's home, a
REST request's in the home of the key itself. The record carries that replica in its key
(``IDEMP#<replica>``) and the claim also checks that no other replica's record of the key
has arrived there, and reads each other replica it can reach directly (``Table.found_elsewhere``),
so a key claimed in one region and retried in another is refused whenever the first claim
has replicated or its replica can be reached; two claims made on both sides of a partition
both stay (docs/multi-region.md states the guarantee).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from handlers.shared import table as keys
from handlers.shared.store.base import (
    StateError,
    Table,
    TransactWrite,
    condition_failed,
    json_attribute,
    to_item,
)

# A replayed Idempotency-Key returns the first response for a day.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


class DuplicateRequestError(StateError):
    """An idempotency key that was already used for another turn."""


class IdempotencyRecord(msgspec.Struct, frozen=True):
    request_hash: str
    status: str  # IN_PROGRESS or COMPLETED
    created_at_ms: int
    status_code: int | None
    body: Any


def _record(item: Mapping[str, Any]) -> IdempotencyRecord:
    body = item.get("body")
    code = item.get("statusCode")
    return IdempotencyRecord(
        request_hash=item["requestHash"],
        status=item["status"],
        created_at_ms=int(item["createdAt"]),
        status_code=int(code) if code is not None else None,
        body=json.loads(body) if body is not None else None,
    )


class IdempotencyStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def home(self, user_id: str, key_hash: str) -> Table:
        return self.table.home(keys.idempotency_pk(user_id, key_hash))

    def claim(self, user_id: str, key_hash: str, request_hash: str) -> IdempotencyRecord | None:
        """Claim an idempotency key for a request in its home replica (a conditional PutItem,
        with a check for every other replica's record in a multi-region table). Returns None
        when this call claimed it, else the record already there (read in the same round trip)."""
        pk = keys.idempotency_pk(user_id, key_hash)
        return self.table.on_home(pk, lambda at: self._claim(at, pk, request_hash))

    def _claim(self, at: Table, pk: str, request_hash: str) -> IdempotencyRecord | None:
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: pk,
            keys.SORT_KEY: keys.idempotency_sk(at.region),
            "requestHash": request_hash,
            "status": "IN_PROGRESS",
            "createdAt": now_ms,
            **at.stamp(now_ms, IDEMPOTENCY_TTL_SECONDS),
        }
        existing = at.found_elsewhere(pk, keys.idempotency_sk) or at.insert_once(
            values, [keys.idempotency_sk(r) for r in at.other_regions]
        )
        if existing is None:
            return None
        if not existing:
            raise StateError("the idempotency key is taken but its record could not be read back")
        return _record(existing)

    def release(self, user_id: str, key_hash: str) -> None:
        """Give a claimed key back (DeleteItem, only while IN_PROGRESS): the request failed
        before it did anything, so a retry should run it, not wait for the lock."""
        at = self.home(user_id, key_hash)
        try:
            at.client.delete_item(
                TableName=at.name,
                Key=at.key(keys.idempotency_pk(user_id, key_hash), keys.idempotency_sk(at.region)),
                ConditionExpression="#status = :claimed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item({":claimed": "IN_PROGRESS"}),
            )
        except ClientError as error:
            if not condition_failed(error):
                raise

    def complete(self, user_id: str, key_hash: str, status_code: int, body: Any) -> None:
        """Store the response a replay of this key returns (UpdateItem over the claim)."""
        at = self.home(user_id, key_hash)
        at.client.update_item(
            TableName=at.name,
            Key=at.key(keys.idempotency_pk(user_id, key_hash), keys.idempotency_sk(at.region)),
            UpdateExpression="SET #status = :done, #code = :code, #body = :body, #done = :now",
            ExpressionAttributeNames={
                "#status": "status",
                "#code": "statusCode",
                "#body": "body",
                "#done": "completedAt",
            },
            ExpressionAttributeValues=to_item(
                {
                    ":done": "COMPLETED",
                    ":code": status_code,
                    ":body": json_attribute("body", body),
                    ":now": self.table.now_ms(),
                }
            ),
        )

    def turn_claim_writes(
        self, at: Table, user_id: str, key_hash: str, session_id: str, turn_id: str, now_ms: int
    ) -> list[TransactWrite]:
        """A chat turn's claim, written with its first step in the session's home ``at``: the
        step is the turn's response, so the claim is COMPLETED at once, and a key already
        used (in this replica, by another replica's claim that has arrived here, or by one
        read in the other replicas themselves) refuses the whole step."""
        pk = keys.idempotency_pk(user_id, key_hash)
        used = DuplicateRequestError("this Idempotency-Key was already used for a turn")
        if at.found_elsewhere(pk, keys.idempotency_sk) is not None:
            raise used
        claim = {
            keys.PARTITION_KEY: pk,
            keys.SORT_KEY: keys.idempotency_sk(at.region),
            "requestHash": "turn",
            "status": "COMPLETED",
            "sessionId": session_id,
            "turn": turn_id,
            "createdAt": now_ms,
            **at.stamp(now_ms, IDEMPOTENCY_TTL_SECONDS),
        }
        put = {
            "TableName": at.name,
            "Item": to_item(claim),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
        }
        return [
            TransactWrite({"Put": put}, lambda _: used),
            *at.absent_checks(pk, [keys.idempotency_sk(r) for r in at.other_regions], used),
        ]
