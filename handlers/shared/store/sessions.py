"""Sessions: a session's metadata item and its place in the user's recent sessions (GSI1).

The conversation itself (one item per step, in the same partition) is
:mod:`handlers.shared.store.conversations`; a session's first step creates the metadata
and a later one may refresh it, in the step's own transaction, with the writes handed out
here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from handlers.shared import table as keys
from handlers.shared.store.base import (
    AlreadyExistsError,
    InvalidCursorError,
    NotFoundError,
    StateError,
    Table,
    TransactWrite,
    after,
    condition_failed,
    decode_cursor,
    encode_cursor,
    from_item,
    page_size,
    text_attribute,
    to_item,
)

# A session's place in the recent-sessions list (GSI1) is refreshed at most this often: a
# GSI write on every step would cost more than the step itself.
TOUCH_INTERVAL_MS = 10 * 60 * 1000


class SessionOwnershipError(StateError):
    """The session belongs to another user."""


class SessionMeta(msgspec.Struct, frozen=True):
    session_id: str
    user_id: str
    title: str
    created_at_ms: int
    updated_at_ms: int
    region: str
    expires_at: int


class SessionsPage(msgspec.Struct, frozen=True):
    sessions: list[SessionMeta]  # most recently active first
    next_cursor: str | None


def session_meta(item: Mapping[str, Any]) -> SessionMeta:
    return SessionMeta(
        session_id=after(keys.SESSION_PREFIX, item[keys.PARTITION_KEY]),
        user_id=item["userId"],
        title=item.get("title", ""),
        created_at_ms=int(item["createdAt"]),
        updated_at_ms=int(item["updatedAt"]),
        region=item[keys.REGION_ATTRIBUTE],
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


class SessionStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def _values(self, user_id: str, session_id: str, now_ms: int, title: str = "") -> dict[str, Any]:
        return {
            keys.PARTITION_KEY: keys.session_pk(session_id),
            keys.SORT_KEY: keys.SESSION_META_SK,
            keys.GSI1_PARTITION_KEY: keys.user_pk(user_id),
            keys.GSI1_SORT_KEY: keys.recent_session_sk(now_ms, session_id),
            "userId": user_id,
            "title": text_attribute("title", title),
            "createdAt": now_ms,
            "updatedAt": now_ms,
            **self.table.stamp(now_ms),
        }

    def create(self, user_id: str, session_id: str | None = None, title: str = "") -> SessionMeta:
        """Create a session's metadata (PutItem; fails if it exists)."""
        session_id = session_id or self.table.new_id()
        values = self._values(user_id, session_id, self.table.now_ms(), title)
        if self.table.put_new(values) is not None:
            raise AlreadyExistsError(f"session {session_id!r} already exists")
        return session_meta(values)

    def get(self, session_id: str) -> SessionMeta | None:
        """The session's metadata alone (GetItem), or None."""
        item = self.table.get(keys.session_pk(session_id), keys.SESSION_META_SK)
        return session_meta(item) if item is not None else None

    def _touch(self, session_id: str, now_ms: int) -> dict[str, Any]:
        """The UpdateItem that marks a session active now: its place in the user's recent
        sessions (GSI1), its TTL and writer region."""
        return {
            "TableName": self.table.name,
            "Key": self.table.key(keys.session_pk(session_id), keys.SESSION_META_SK),
            "UpdateExpression": "SET #updated = :now, #gsk = :gsk, #exp = :exp, #region = :region",
            "ConditionExpression": "attribute_exists(#pk)",
            "ExpressionAttributeNames": {
                "#pk": keys.PARTITION_KEY,
                "#updated": "updatedAt",
                "#gsk": keys.GSI1_SORT_KEY,
                "#exp": keys.TTL_ATTRIBUTE,
                "#region": keys.REGION_ATTRIBUTE,
            },
            "ExpressionAttributeValues": to_item(
                {
                    ":now": now_ms,
                    ":gsk": keys.recent_session_sk(now_ms, session_id),
                    ":exp": self.table.stamp(now_ms)[keys.TTL_ATTRIBUTE],
                    ":region": self.table.region,
                }
            ),
        }

    def touch(self, session_id: str) -> None:
        """Mark a session active now (one UpdateItem); NotFoundError for an unknown session."""
        try:
            self.table.client.update_item(**self._touch(session_id, self.table.now_ms()))
        except ClientError as error:
            if condition_failed(error):
                raise NotFoundError(f"session {session_id!r} does not exist") from None
            raise

    def needs_touch(self, meta: SessionMeta | None) -> bool:
        """Whether a step written now should also refresh the session's place in the recent
        sessions list: at most once per ``TOUCH_INTERVAL_MS``, so most steps write one item."""
        return meta is not None and self.table.now_ms() - meta.updated_at_ms >= TOUCH_INTERVAL_MS

    # --- writes for a step's transaction ----------------------------------------------------

    def create_write(self, user_id: str, session_id: str, now_ms: int) -> TransactWrite:
        """Create the metadata with a session's first step; another user's session refuses it."""

        def refused(existing: dict[str, Any]) -> StateError | None:
            owner = existing.get("userId")
            if owner is not None and owner != user_id:
                return SessionOwnershipError(f"session {session_id!r} belongs to another user")
            return None  # the same user's session: the step's position decides

        put = {
            "TableName": self.table.name,
            "Item": to_item(self._values(user_id, session_id, now_ms)),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return TransactWrite({"Put": put}, refused)

    def touch_write(self, session_id: str, now_ms: int) -> TransactWrite:
        """Refresh the session's place in the recent list with a step (:meth:`needs_touch`)."""
        return TransactWrite(
            {"Update": self._touch(session_id, now_ms)},
            lambda _: NotFoundError(f"session {session_id!r} does not exist"),
        )

    # --- the user's sessions ----------------------------------------------------------------

    def recent(self, user_id: str, limit: int = 20, cursor: str | None = None) -> SessionsPage:
        """The user's sessions, most recently active first: one Query on GSI1."""
        limit = page_size(limit)
        gpk = keys.user_pk(user_id)
        request: dict[str, Any] = {
            "TableName": self.table.name,
            "IndexName": keys.GSI1_NAME,
            "KeyConditionExpression": "#gpk = :gpk AND begins_with(#gsk, :prefix)",
            "ExpressionAttributeNames": {"#gpk": keys.GSI1_PARTITION_KEY, "#gsk": keys.GSI1_SORT_KEY},
            "ExpressionAttributeValues": to_item({":gpk": gpk, ":prefix": keys.SESSION_PREFIX}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            start = decode_cursor(cursor, ["pk", "gsk"])
            if not start["pk"].startswith(keys.SESSION_PREFIX) or not start["gsk"].startswith(keys.SESSION_PREFIX):
                raise InvalidCursorError(f"cursor {cursor!r} is not a cursor this API returned")
            request["ExclusiveStartKey"] = to_item(
                {
                    keys.PARTITION_KEY: start["pk"],
                    keys.SORT_KEY: keys.SESSION_META_SK,
                    keys.GSI1_PARTITION_KEY: gpk,
                    keys.GSI1_SORT_KEY: start["gsk"],
                }
            )
        response = self.table.client.query(**request)
        sessions = [session_meta(from_item(raw)) for raw in response.get("Items", [])]
        next_cursor = None
        if "LastEvaluatedKey" in response and sessions:
            last = from_item(response["LastEvaluatedKey"])
            next_cursor = encode_cursor({"pk": last[keys.PARTITION_KEY], "gsk": last[keys.GSI1_SORT_KEY]})
        return SessionsPage(sessions=sessions, next_cursor=next_cursor)
