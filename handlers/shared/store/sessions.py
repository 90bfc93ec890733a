"""Sessions: a session's metadata and its place in the user's recent sessions (GSI1).

The conversation itself (one item per step, in the same partition) is
:mod:`handlers.shared.store.conversations`; a session's first step creates the metadata
and a later one may refresh it, in the step's own transaction, with the writes handed out
here. A session's reads and writes go to its home replica (``table.home(session_pk)``).

The metadata is one item per replica that wrote the session (``~META#<replica>``): almost
always one, two after the session's home moved to another region. No region writes another
region's item, so two regions that both created or refreshed a session (the old home's
writes arriving after a failover) keep both, and a reader merges them: the owner is the
first creator's, activity the latest of them. The recent list may hold a session once per
replica; :meth:`SessionStore.recent` shows it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    """The replica of the newest metadata item (where the session was last written)."""
    expires_at: int
    replicas: tuple[str, ...] = ()
    """Every replica that holds a metadata item of the session."""


class SessionsPage(msgspec.Struct, frozen=True):
    sessions: list[SessionMeta]  # most recently active first
    next_cursor: str | None


def session_meta(items: Sequence[Mapping[str, Any]]) -> SessionMeta:
    """One session's metadata items (one per replica) as one record: the first creator owns
    it (earliest ``createdAt``, then replica name: the same answer in every region)."""
    if not items:
        raise ValueError("a session's metadata needs at least one item")
    first = min(items, key=lambda i: (int(i["createdAt"]), i[keys.REGION_ATTRIBUTE]))
    newest = max(items, key=lambda i: (int(i["updatedAt"]), i[keys.REGION_ATTRIBUTE]))
    return SessionMeta(
        session_id=after(keys.SESSION_PREFIX, first[keys.PARTITION_KEY]),
        user_id=first["userId"],
        title=first.get("title", ""),
        created_at_ms=int(first["createdAt"]),
        updated_at_ms=int(newest["updatedAt"]),
        region=newest[keys.REGION_ATTRIBUTE],
        expires_at=max(int(i[keys.TTL_ATTRIBUTE]) for i in items),
        replicas=tuple(sorted(i[keys.REGION_ATTRIBUTE] for i in items)),
    )


class SessionStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def home(self, session_id: str, replica: str | None = None) -> Table:
        """The handle of the session's home replica (``replica`` when given and available)."""
        return self.table.home(keys.session_pk(session_id), replica)

    def _values(self, at: Table, user_id: str, session_id: str, now_ms: int, title: str = "") -> dict[str, Any]:
        return {
            keys.PARTITION_KEY: keys.session_pk(session_id),
            keys.SORT_KEY: keys.session_meta_sk(at.region),
            keys.GSI1_PARTITION_KEY: keys.user_pk(user_id),
            keys.GSI1_SORT_KEY: keys.recent_session_sk(now_ms, session_id),
            "userId": user_id,
            "title": text_attribute("title", title),
            "createdAt": now_ms,
            "updatedAt": now_ms,
            **at.stamp(now_ms),
        }

    def create(self, user_id: str, session_id: str | None = None, title: str = "") -> SessionMeta:
        """Create a session's metadata in its home replica (AlreadyExistsError if it has any)."""
        session_id = session_id or self.table.new_id()
        at = self.home(session_id)
        values = self._values(at, user_id, session_id, self.table.now_ms(), title)
        put = {
            "TableName": at.name,
            "Item": to_item(values),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
        }
        exists = AlreadyExistsError(f"session {session_id!r} already exists")
        others = [keys.session_meta_sk(r) for r in at.other_regions]  # a create seen in another replica
        at.put_with(put, exists, at.absent_checks(keys.session_pk(session_id), others, exists))
        return session_meta([values])

    def get(self, session_id: str, replica: str | None = None) -> SessionMeta | None:
        """The session's metadata alone (one Query in its home replica), or None."""
        return self.table.on_home(keys.session_pk(session_id), lambda at: self._get(at, session_id), replica)

    def _get(self, at: Table, session_id: str) -> SessionMeta | None:
        response = at.client.query(
            TableName=at.name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :meta)",
            ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            ExpressionAttributeValues=to_item({":pk": keys.session_pk(session_id), ":meta": keys.SESSION_META_PREFIX}),
        )
        items = [from_item(raw) for raw in response.get("Items", [])]
        return session_meta(items) if items else None

    def _touch(self, at: Table, session_id: str, user_id: str, now_ms: int) -> dict[str, Any]:
        """The UpdateItem that marks a session active now in ``at``'s replica: its place in the
        user's recent sessions (GSI1), its TTL; it creates that replica's item when the
        session's home has moved there (the owner's, never another user's)."""
        return {
            "TableName": at.name,
            "Key": at.key(keys.session_pk(session_id), keys.session_meta_sk(at.region)),
            "UpdateExpression": (
                "SET #updated = :now, #gsk = :gsk, #exp = :exp, #region = :region,"
                " #user = if_not_exists(#user, :user), #created = if_not_exists(#created, :now),"
                " #gpk = if_not_exists(#gpk, :gpk), #title = if_not_exists(#title, :title)"
            ),
            "ConditionExpression": "attribute_not_exists(#user) OR #user = :user",
            "ExpressionAttributeNames": {
                "#updated": "updatedAt",
                "#created": "createdAt",
                "#user": "userId",
                "#title": "title",
                "#gpk": keys.GSI1_PARTITION_KEY,
                "#gsk": keys.GSI1_SORT_KEY,
                "#exp": keys.TTL_ATTRIBUTE,
                "#region": keys.REGION_ATTRIBUTE,
            },
            "ExpressionAttributeValues": to_item(
                {
                    ":now": now_ms,
                    ":user": user_id,
                    ":gpk": keys.user_pk(user_id),
                    ":gsk": keys.recent_session_sk(now_ms, session_id),
                    ":exp": at.stamp(now_ms)[keys.TTL_ATTRIBUTE],
                    ":region": at.region,
                    ":title": "",
                }
            ),
        }

    def touch(self, session_id: str, user_id: str) -> None:
        """Mark a session active now: one UpdateItem of its home replica's metadata, which must
        exist (NotFoundError) and be ``user_id``'s (SessionOwnershipError), told apart by the
        item the failed condition hands back."""
        at = self.home(session_id)
        update = self._touch(at, session_id, user_id, self.table.now_ms())
        update["ConditionExpression"] = "#user = :user"
        try:
            at.client.update_item(**update, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as error:
            if not condition_failed(error):
                raise
            if error.response.get("Item"):
                raise SessionOwnershipError(f"session {session_id!r} belongs to another user") from None
            raise NotFoundError(f"session {session_id!r} does not exist") from None

    def needs_touch(self, meta: SessionMeta | None) -> bool:
        """Whether a step written now should also refresh the session's place in the recent
        sessions list: at most once per ``TOUCH_INTERVAL_MS``, so most steps write one item."""
        return meta is not None and self.table.now_ms() - meta.updated_at_ms >= TOUCH_INTERVAL_MS

    # --- writes for a step's transaction ----------------------------------------------------

    def create_write(self, at: Table, user_id: str, session_id: str, now_ms: int) -> TransactWrite:
        """Create the metadata with a session's first step; another user's session refuses it."""

        def refused(existing: dict[str, Any]) -> StateError | None:
            owner = existing.get("userId")
            if owner is not None and owner != user_id:
                return SessionOwnershipError(f"session {session_id!r} belongs to another user")
            return None  # the same user's session: the step's position decides

        put = {
            "TableName": at.name,
            "Item": to_item(self._values(at, user_id, session_id, now_ms)),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return TransactWrite({"Put": put}, refused)

    def touch_write(self, at: Table, session_id: str, user_id: str, now_ms: int) -> TransactWrite:
        """Refresh the session's place in the recent list with a step (:meth:`needs_touch`)."""
        return TransactWrite(
            {"Update": self._touch(at, session_id, user_id, now_ms)},
            lambda _: SessionOwnershipError(f"session {session_id!r} belongs to another user"),
        )

    # --- the user's sessions ----------------------------------------------------------------

    def recent(self, user_id: str, limit: int = 20, cursor: str | None = None) -> SessionsPage:
        """The user's sessions, most recently active first: one Query on GSI1 of this
        region's replica (a list, eventually consistent across regions like any index)."""
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
            start = decode_cursor(cursor, ["pk", "sk", "gsk"])
            if (
                not start["pk"].startswith(keys.SESSION_PREFIX)
                or not start["sk"].startswith(keys.SESSION_META_PREFIX)
                or not start["gsk"].startswith(keys.SESSION_PREFIX)
            ):
                raise InvalidCursorError(f"cursor {cursor!r} is not a cursor this API returned")
            request["ExclusiveStartKey"] = to_item(
                {
                    keys.PARTITION_KEY: start["pk"],
                    keys.SORT_KEY: start["sk"],
                    keys.GSI1_PARTITION_KEY: gpk,
                    keys.GSI1_SORT_KEY: start["gsk"],
                }
            )
        response = self.table.client.query(**request)
        sessions: list[SessionMeta] = []
        seen: set[str] = set()
        for raw in response.get("Items", []):
            meta = session_meta([from_item(raw)])
            if meta.session_id not in seen:  # a session whose home moved is listed per replica
                seen.add(meta.session_id)
                sessions.append(meta)
        next_cursor = None
        if "LastEvaluatedKey" in response and sessions:
            last = from_item(response["LastEvaluatedKey"])
            next_cursor = encode_cursor(
                {"pk": last[keys.PARTITION_KEY], "sk": last[keys.SORT_KEY], "gsk": last[keys.GSI1_SORT_KEY]}
            )
        return SessionsPage(sessions=sessions, next_cursor=next_cursor)
