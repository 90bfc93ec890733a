"""WebSocket connections: who is connected where, for as long as API Gateway keeps them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from handlers.shared import table as keys
from handlers.shared.store.base import Table, after

# API Gateway closes a WebSocket connection after two hours at most.
CONNECTION_TTL_SECONDS = 3 * 3600


class Connection(msgspec.Struct, frozen=True):
    connection_id: str
    user_id: str
    region: str
    connected_at_ms: int
    expires_at: int


def _connection(item: Mapping[str, Any]) -> Connection:
    return Connection(
        connection_id=after(keys.CONNECTION_PREFIX, item[keys.PARTITION_KEY]),
        user_id=item["userId"],
        region=item[keys.REGION_ATTRIBUTE],
        connected_at_ms=int(item["connectedAt"]),
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


class ConnectionStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put(self, connection_id: str, user_id: str) -> Connection:
        """Store a WebSocket connection with its user and region (PutItem, short TTL)."""
        now_ms = self.table.now_ms()
        values = {
            keys.PARTITION_KEY: keys.connection_pk(connection_id),
            keys.SORT_KEY: keys.CONNECTION_SK,
            "userId": keys.key_part("userId", user_id),
            "connectedAt": now_ms,
            **self.table.stamp(now_ms, CONNECTION_TTL_SECONDS),
        }
        self.table.put(values)
        return _connection(values)

    def get(self, connection_id: str) -> Connection | None:
        """The connection, or None when unknown or past its TTL (TTL deletion lags): one GetItem."""
        item = self.table.get(keys.connection_pk(connection_id), keys.CONNECTION_SK)
        if item is None:
            return None
        connection = _connection(item)
        if connection.expires_at <= self.table.now_ms() // 1000:
            return None
        return connection

    def delete(self, connection_id: str) -> None:
        """Forget a connection (DeleteItem); deleting an unknown one is not an error."""
        self.table.client.delete_item(
            TableName=self.table.name, Key=self.table.key(keys.connection_pk(connection_id), keys.CONNECTION_SK)
        )
