"""Tool result cache: results a tool declared reusable, by tool, scope and input hash.

An entry (``CACHE#<tool>#<scope>#<inputHash>`` / ``CACHE``) holds one output and the instant
it stops being fresh. It is written with an unconditional PutItem, in the function's own
replica. That is safe in a global table, where replication is asynchronous, a conflict keeps
the last writer's item whole and a condition would be checked in one replica only
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html):
every writer of a key computes a value that is valid for that key (the same value, for a pure
tool; a response the origin allowed to be reused, for a fetch), so whichever write survives,
each replica holds one whole, valid entry. A replica that has not received an entry yet, or
lost it to another region's write, only costs a miss.

The item's TTL attribute is its freshness end, so DynamoDB removes it after that; but TTL
deletes lazily ("DynamoDB typically deletes expired items within two days of expiration",
and "Items that have expired and not been deleted will still show up in reads":
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html), so
a read checks the freshness itself and treats an expired entry as a miss.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

from handlers.shared import table as keys
from handlers.shared.store.base import Table, after, json_attribute


class CachedResult(msgspec.Struct, frozen=True):
    tool_name: str
    scope: str
    input_hash: str
    output: Any
    stored_at_ms: int
    fresh_until_ms: int
    region: str


def _cached(item: Mapping[str, Any]) -> CachedResult:
    tool_name, scope, input_hash = after(keys.CACHE_PREFIX, item[keys.PARTITION_KEY]).split("#")
    return CachedResult(
        tool_name=tool_name,
        scope=scope,
        input_hash=input_hash,
        output=json.loads(item["output"]),
        stored_at_ms=int(item["storedAt"]),
        fresh_until_ms=int(item["freshUntil"]),
        region=item[keys.REGION_ATTRIBUTE],
    )


class ToolCacheStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, tool_name: str, scope: str, input_hash: str) -> CachedResult | None:
        """The fresh entry (one eventually consistent GetItem: a cache tolerates a late
        entry), or None when there is none or it has expired but is not deleted yet."""
        item = self.table.get(keys.cache_pk(tool_name, scope, input_hash), keys.CACHE_SK)
        if item is None:
            return None
        entry = _cached(item)
        return entry if entry.fresh_until_ms > self.table.now_ms() else None

    def put(self, tool_name: str, scope: str, input_hash: str, output: Any, fresh_for_ms: int) -> CachedResult:
        """Store an output reusable for ``fresh_for_ms`` from now (one unconditional PutItem:
        see the module's note on why no condition is needed, or could help, across regions)."""
        if fresh_for_ms <= 0:
            raise ValueError(f"fresh_for_ms must be positive, got {fresh_for_ms!r}")
        now_ms = self.table.now_ms()
        fresh_until_ms = now_ms + fresh_for_ms
        values = {
            keys.PARTITION_KEY: keys.cache_pk(tool_name, scope, input_hash),
            keys.SORT_KEY: keys.CACHE_SK,
            "output": json_attribute("output", output),
            "storedAt": now_ms,
            "freshUntil": fresh_until_ms,
            # TTL is in whole epoch seconds: the first second after the entry stops being fresh.
            keys.TTL_ATTRIBUTE: -(-fresh_until_ms // 1000),
            keys.REGION_ATTRIBUTE: self.table.region,
        }
        self.table.put(values)
        return _cached(values)
