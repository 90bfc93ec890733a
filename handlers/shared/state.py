"""State access layer: every access pattern of the single-table design, one round trip each.

Only this module talks to DynamoDB and knows how items are laid out (keys come from
``handlers.shared.table``). Callers get typed records and typed errors, never raw items.

Every item written here carries ``expiresAt`` (epoch seconds, the table's TTL attribute)
and ``region`` (the region of the writer), so a global-table replica can always tell where
an item came from.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from handlers.shared import table as keys
from handlers.shared.ids import new_ulid

MESSAGE_ROLES = ("user", "assistant", "tool", "failed")
MAX_MESSAGES_PER_STEP = 4
# A session's place in the recent-sessions list (GSI1) is refreshed at most this often: a
# GSI write on every step would cost more than the step itself.
TOUCH_INTERVAL_MS = 10 * 60 * 1000
TOOL_STATUSES = ("SUCCEEDED", "FAILED", "COMPENSATED")
MAX_PAGE_SIZE = 100
# DynamoDB rejects items over 400 KB; leave room for keys and attribute names so callers
# get our error, which names the field, instead of a ValidationException.
MAX_PAYLOAD_BYTES = 350_000
# API Gateway closes a WebSocket connection after two hours at most.
CONNECTION_TTL_SECONDS = 3 * 3600
# A replayed Idempotency-Key returns the first response for a day.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
_DAY = 86_400

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StateError(Exception):
    """Base of every error the access layer raises on purpose."""


class ConflictError(StateError):
    """Optimistic concurrency lost: another writer took the conversation's next position
    (or created the session) since the caller read it."""

    def __init__(self, session_id: str, seq: int):
        self.session_id = session_id
        self.seq = seq
        super().__init__(f"step {seq} of session {session_id!r} was written by another turn: reload and retry")


class SessionOwnershipError(StateError):
    """The session belongs to another user."""


class NotFoundError(StateError):
    """The item the caller named does not exist."""


class AlreadyExistsError(StateError):
    """A create met an item with the same key."""


class DuplicateRequestError(StateError):
    """An idempotency key that was already used for another turn."""


class DuplicateToolExecutionError(StateError):
    """This tool step was recorded before; ``existing`` is the first record, never replaced."""

    def __init__(self, existing: ToolExecution):
        self.existing = existing
        super().__init__(
            f"tool execution {existing.seq} ({existing.tool_name}) of run {existing.execution_id!r} is already recorded"
        )


class InvalidCursorError(StateError, ValueError):
    """A pagination cursor that this layer did not hand out (or for another partition)."""


class PayloadTooLargeError(StateError, ValueError):
    """A value too large to store inline in one item."""


class SessionMeta(msgspec.Struct, frozen=True):
    session_id: str
    user_id: str
    title: str
    created_at_ms: int
    updated_at_ms: int
    region: str
    expires_at: int


class Message(msgspec.Struct, frozen=True):
    session_id: str
    message_id: str  # "<seq:08d>-<index>": the step that wrote it and its place in the step
    role: str  # user, assistant, tool, or failed (the marker of a turn that did not complete)
    text: str
    tool_calls: list[dict[str, Any]]
    usage: dict[str, int] | None
    created_at_ms: int
    region: str
    expires_at: int
    seq: int = 0
    turn_id: str = ""
    """The execution (turn or task) that wrote it."""


class NewMessage(msgspec.Struct, frozen=True):
    """A message to be written; its id comes from the step it is written in."""

    role: str
    text: str
    tool_calls: list[dict[str, Any]] = msgspec.field(default_factory=list)
    usage: dict[str, int] | None = None


class ConversationPage(msgspec.Struct, frozen=True):
    meta: SessionMeta | None  # only on the first page
    messages: list[Message]  # newest first
    next_cursor: str | None
    last_seq: int = 0
    """The newest step of the session (0: none), on the first page: the next step is last_seq + 1."""


class SessionsPage(msgspec.Struct, frozen=True):
    sessions: list[SessionMeta]  # most recently active first
    next_cursor: str | None


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


class Memory(msgspec.Struct, frozen=True):
    user_id: str
    topic: str
    memory_id: str
    text: str
    created_at_ms: int
    region: str
    expires_at: int


class Task(msgspec.Struct, frozen=True):
    task_id: str
    user_id: str
    session_id: str
    execution_arn: str
    created_at_ms: int
    region: str
    expires_at: int


class IdempotencyRecord(msgspec.Struct, frozen=True):
    request_hash: str
    status: str  # IN_PROGRESS or COMPLETED
    created_at_ms: int
    status_code: int | None
    body: Any


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


class Connection(msgspec.Struct, frozen=True):
    connection_id: str
    user_id: str
    region: str
    connected_at_ms: int
    expires_at: int


def _to_item(values: Mapping[str, Any]) -> dict[str, dict]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def _from_item(item: Mapping[str, dict]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _json(field_name: str, value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"{field_name} is {size} bytes; at most {MAX_PAYLOAD_BYTES} bytes are stored "
            "inline, store larger values by reference"
        )
    return text


def _text(field_name: str, value: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field_name} must be a string, got {type(value).__name__}")
    value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be stored
    size = len(value.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"{field_name} is {size} bytes; at most {MAX_PAYLOAD_BYTES} bytes are stored inline")
    return value


def _page_size(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be an integer in 1..{MAX_PAGE_SIZE}, got {limit!r}")
    return limit


def _encode_cursor(key: Mapping[str, str]) -> str:
    raw = json.dumps(dict(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, required: Sequence[str]) -> dict[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, AttributeError, TypeError):
        raise InvalidCursorError(f"cursor {cursor!r} is not a cursor this API returned") from None
    if (
        not isinstance(key, dict)
        or sorted(key) != sorted(required)
        or not all(isinstance(v, str) for v in key.values())
    ):
        raise InvalidCursorError(f"cursor {cursor!r} is not a cursor this API returned")
    return key


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class StateStore:
    """The table, as the agent sees it. One instance per region; cheap to keep at module level."""

    def __init__(
        self,
        table_name: str,
        region: str,
        ttl_days: int,
        client: Any | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_ulid,
    ) -> None:
        if not table_name:
            raise ValueError("table_name must not be empty")
        if isinstance(ttl_days, bool) or not isinstance(ttl_days, int) or ttl_days < 1:
            raise ValueError(f"ttl_days must be a positive integer, got {ttl_days!r}")
        self.table_name = table_name
        self.region = region
        self.ttl_days = ttl_days
        self._client = client
        self._clock = clock
        self._new_id = new_id

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # deferred: module import stays cheap for handlers that never write

            self._client = boto3.client("dynamodb", region_name=self.region)
        return self._client

    # --- writes that must not overwrite -----------------------------------------------------

    def _put_new(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """PutItem only if no item has this key. Returns None when written, else the item
        already there (read in the same round trip, from the failed condition)."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_to_item(values),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": keys.PARTITION_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return _from_item(error.response.get("Item") or {})
            raise
        return None

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The item with this key (GetItem), or None."""
        response = self.client.get_item(
            TableName=self.table_name, Key=_to_item({keys.PARTITION_KEY: pk, keys.SORT_KEY: sk})
        )
        return _from_item(response["Item"]) if "Item" in response else None

    # --- time and common attributes -------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _stamp(self, now_ms: int, ttl_seconds: int | None = None) -> dict[str, Any]:
        ttl = ttl_seconds if ttl_seconds is not None else self.ttl_days * _DAY
        return {keys.TTL_ATTRIBUTE: now_ms // 1000 + ttl, keys.REGION_ATTRIBUTE: self.region}

    # --- sessions ---------------------------------------------------------------------------

    def _session_values(self, user_id: str, session_id: str, now_ms: int, title: str = "") -> dict[str, Any]:
        return {
            keys.PARTITION_KEY: keys.session_pk(session_id),
            keys.SORT_KEY: keys.SESSION_META_SK,
            keys.GSI1_PARTITION_KEY: keys.user_pk(user_id),
            keys.GSI1_SORT_KEY: keys.recent_session_sk(now_ms, session_id),
            "userId": user_id,
            "title": _text("title", title),
            "createdAt": now_ms,
            "updatedAt": now_ms,
            **self._stamp(now_ms),
        }

    def create_session(self, user_id: str, session_id: str | None = None, title: str = "") -> SessionMeta:
        """Create a session's metadata (PutItem; fails if it exists)."""
        session_id = session_id or self._new_id()
        values = self._session_values(user_id, session_id, self._now_ms(), title)
        if self._put_new(values) is not None:
            raise AlreadyExistsError(f"session {session_id!r} already exists")
        return _session_meta(values)

    def get_session(self, session_id: str) -> SessionMeta | None:
        """The session's metadata alone (GetItem), or None."""
        item = self._get(keys.session_pk(session_id), keys.SESSION_META_SK)
        return _session_meta(item) if item is not None else None

    def _touch(self, session_id: str, now_ms: int) -> dict[str, Any]:
        """The UpdateItem that marks a session active now: its place in the user's recent
        sessions (GSI1), its TTL and writer region."""
        return {
            "TableName": self.table_name,
            "Key": _to_item({keys.PARTITION_KEY: keys.session_pk(session_id), keys.SORT_KEY: keys.SESSION_META_SK}),
            "UpdateExpression": "SET #updated = :now, #gsk = :gsk, #exp = :exp, #region = :region",
            "ConditionExpression": "attribute_exists(#pk)",
            "ExpressionAttributeNames": {
                "#pk": keys.PARTITION_KEY,
                "#updated": "updatedAt",
                "#gsk": keys.GSI1_SORT_KEY,
                "#exp": keys.TTL_ATTRIBUTE,
                "#region": keys.REGION_ATTRIBUTE,
            },
            "ExpressionAttributeValues": _to_item(
                {
                    ":now": now_ms,
                    ":gsk": keys.recent_session_sk(now_ms, session_id),
                    ":exp": self._stamp(now_ms)[keys.TTL_ATTRIBUTE],
                    ":region": self.region,
                }
            ),
        }

    def touch_session(self, session_id: str) -> None:
        """Mark a session active now (one UpdateItem); NotFoundError for an unknown session."""
        try:
            self.client.update_item(**self._touch(session_id, self._now_ms()))
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                raise NotFoundError(f"session {session_id!r} does not exist") from None
            raise

    def needs_touch(self, meta: SessionMeta | None) -> bool:
        """Whether a step written now should also refresh the session's place in the recent
        sessions list: at most once per ``TOUCH_INTERVAL_MS``, so most steps write one item."""
        return meta is not None and self._now_ms() - meta.updated_at_ms >= TOUCH_INTERVAL_MS

    # --- the conversation: one item per step ------------------------------------------------

    def _step_values(
        self, session_id: str, seq: int, turn_id: str, messages: Sequence[NewMessage], now_ms: int
    ) -> dict[str, Any]:
        if not 1 <= len(messages) <= MAX_MESSAGES_PER_STEP:
            raise ValueError(f"a step holds 1..{MAX_MESSAGES_PER_STEP} messages, got {len(messages)}")
        stored = []
        for message in messages:
            if message.role not in MESSAGE_ROLES:
                raise ValueError(f"role must be one of {', '.join(MESSAGE_ROLES)}; got {message.role!r}")
            entry: dict[str, Any] = {"role": message.role, "text": _text("text", message.text)}
            if message.tool_calls:
                entry["toolCalls"] = message.tool_calls
            if message.usage is not None:
                entry["usage"] = message.usage
            stored.append(entry)
        return {
            keys.PARTITION_KEY: keys.session_pk(session_id),
            keys.SORT_KEY: keys.step_sk(seq),
            "turn": keys.key_part("turn id", turn_id),
            "messages": _json("messages", stored),
            "createdAt": now_ms,
            **self._stamp(now_ms),
        }

    def append_step(
        self,
        session_id: str,
        seq: int,
        messages: Sequence[NewMessage],
        *,
        turn_id: str,
        user_id: str | None = None,
        new_session: bool = False,
        touch: bool = False,
        claim_key: str | None = None,
    ) -> list[Message]:
        """Write one step of the conversation, its messages in one item at position ``seq``.

        The position is the concurrency control: the write is conditional on the position
        being free, so of two turns that read the same conversation one writes and the other
        gets :class:`ConflictError`, and nothing is ever overwritten. Most steps are this one
        PutItem. A session's first step also creates its metadata (owned by ``user_id``), a
        step with ``touch`` refreshes the session's place in the recent list, and a
        ``claim_key`` (the hash of a turn's Idempotency-Key) is claimed: those go in one
        TransactWriteItems with the step, all or nothing (a repeated key raises
        DuplicateRequestError, another user's session SessionOwnershipError).
        """
        now_ms = self._now_ms()
        values = self._step_values(session_id, seq, turn_id, messages, now_ms)
        step = {
            "TableName": self.table_name,
            "Item": _to_item(values),
            "ConditionExpression": "attribute_not_exists(#sk)",
            "ExpressionAttributeNames": {"#sk": keys.SORT_KEY},
        }
        others: list[tuple[str, dict[str, Any]]] = []
        if new_session:
            if not user_id:
                raise ValueError("a new session needs the user_id that owns it")
            others.append(
                (
                    "session",
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": _to_item(self._session_values(user_id, session_id, now_ms)),
                            "ConditionExpression": "attribute_not_exists(#pk)",
                            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                )
            )
        elif touch:
            others.append(("touch", {"Update": self._touch(session_id, now_ms)}))
        if claim_key is not None:
            if not user_id:
                raise ValueError("an idempotency claim needs the user_id it belongs to")
            claim = {
                keys.PARTITION_KEY: keys.idempotency_pk(user_id, claim_key),
                keys.SORT_KEY: keys.IDEMPOTENCY_SK,
                "requestHash": "turn",
                "status": "COMPLETED",
                "sessionId": session_id,
                "createdAt": now_ms,
                **self._stamp(now_ms, IDEMPOTENCY_TTL_SECONDS),
            }
            others.append(
                (
                    "claim",
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": _to_item(claim),
                            "ConditionExpression": "attribute_not_exists(#pk)",
                            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
                        }
                    },
                )
            )
        try:
            if not others:
                self.client.put_item(**step)
            else:
                self.client.transact_write_items(TransactItems=[{"Put": step}, *(item for _, item in others)])
        except ClientError as error:
            code = _error_code(error)
            if code == "ConditionalCheckFailedException":
                raise ConflictError(session_id, seq) from None
            if code != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            failed = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
            kinds = ["step", *(kind for kind, _ in others)]
            for index in failed:
                kind = kinds[index] if index < len(kinds) else "?"
                if kind == "claim":
                    raise DuplicateRequestError("this Idempotency-Key was already used for a turn") from None
                if kind == "session":
                    owner = _from_item(reasons[index].get("Item") or {}).get("userId")
                    if owner is not None and owner != user_id:
                        raise SessionOwnershipError(f"session {session_id!r} belongs to another user") from None
                if kind == "touch":
                    raise NotFoundError(f"session {session_id!r} does not exist") from None
            if failed:
                raise ConflictError(session_id, seq) from None
            raise
        return _messages(values)

    def append_message(self, session_id: str, message: NewMessage, *, turn_id: str = "direct") -> Message:
        """Append one message as a step of its own at the next free position: read the newest
        step, write after it (two round trips; retried on a lost race)."""
        for _ in range(5):
            seq = self.load_conversation(session_id, limit=1).last_seq + 1
            try:
                return self.append_step(session_id, seq, [message], turn_id=turn_id)[0]
            except ConflictError:
                continue
        raise ConflictError(session_id, seq)

    def load_conversation(self, session_id: str, limit: int = 20, cursor: str | None = None) -> ConversationPage:
        """The session's newest ``limit`` messages, newest first, with its metadata and newest
        step number on the first page: one Query. Pass ``next_cursor`` back for older ones."""
        limit = _page_size(limit)
        pk = keys.session_pk(session_id)
        upper, skip = keys.SESSION_META_SK, 0
        if cursor is not None:
            start = _decode_cursor(cursor, ["sk", "skip"])
            upper, skip_text = start["sk"], start["skip"]
            if not upper.startswith(keys.STEP_PREFIX) or not skip_text.isdigit():
                raise InvalidCursorError(f"cursor {cursor!r} is not a cursor this API returned")
            skip = int(skip_text)
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#pk = :pk AND #sk BETWEEN :first AND :upper",
            ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            ExpressionAttributeValues=_to_item({":pk": pk, ":first": keys.STEP_PREFIX, ":upper": upper}),
            ScanIndexForward=False,
            # Every step holds at least one message; one more for the metadata, one more to
            # know whether older steps follow.
            Limit=limit + 2,
        )
        meta: SessionMeta | None = None
        messages: list[Message] = []
        last_seq = 0
        next_cursor = None
        items = [_from_item(raw) for raw in response.get("Items", [])]
        for position, item in enumerate(items):
            if item[keys.SORT_KEY] == keys.SESSION_META_SK:
                meta = _session_meta(item)
                continue
            step_messages = list(reversed(_messages(item)))  # newest first within the step
            last_seq = max(last_seq, step_messages[0].seq) if cursor is None else last_seq
            if item[keys.SORT_KEY] == upper and skip:
                step_messages = step_messages[skip:]
                consumed_before = skip
            else:
                consumed_before = 0
            room = limit - len(messages)
            if room <= 0:
                next_cursor = _encode_cursor({"sk": item[keys.SORT_KEY], "skip": str(consumed_before)})
                break
            messages.extend(step_messages[:room])
            if len(step_messages) > room:
                next_cursor = _encode_cursor({"sk": item[keys.SORT_KEY], "skip": str(consumed_before + room)})
                break
            if position == len(items) - 1 and "LastEvaluatedKey" in response:
                # The page ended on a step boundary and DynamoDB has more: start after it.
                next_cursor = _encode_cursor(
                    {"sk": item[keys.SORT_KEY], "skip": str(consumed_before + len(step_messages))}
                )
        return ConversationPage(meta=meta, messages=messages, next_cursor=next_cursor, last_seq=last_seq)

    def recent_sessions(self, user_id: str, limit: int = 20, cursor: str | None = None) -> SessionsPage:
        """The user's sessions, most recently active first: one Query on GSI1."""
        limit = _page_size(limit)
        gpk = keys.user_pk(user_id)
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": keys.GSI1_NAME,
            "KeyConditionExpression": "#gpk = :gpk AND begins_with(#gsk, :prefix)",
            "ExpressionAttributeNames": {"#gpk": keys.GSI1_PARTITION_KEY, "#gsk": keys.GSI1_SORT_KEY},
            "ExpressionAttributeValues": _to_item({":gpk": gpk, ":prefix": keys.SESSION_PREFIX}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            start = _decode_cursor(cursor, ["pk", "gsk"])
            if not start["pk"].startswith(keys.SESSION_PREFIX) or not start["gsk"].startswith(keys.SESSION_PREFIX):
                raise InvalidCursorError(f"cursor {cursor!r} is not a cursor this API returned")
            request["ExclusiveStartKey"] = _to_item(
                {
                    keys.PARTITION_KEY: start["pk"],
                    keys.SORT_KEY: keys.SESSION_META_SK,
                    keys.GSI1_PARTITION_KEY: gpk,
                    keys.GSI1_SORT_KEY: start["gsk"],
                }
            )
        response = self.client.query(**request)
        sessions = [_session_meta(_from_item(raw)) for raw in response.get("Items", [])]
        next_cursor = None
        if "LastEvaluatedKey" in response and sessions:
            last = _from_item(response["LastEvaluatedKey"])
            next_cursor = _encode_cursor({"pk": last[keys.PARTITION_KEY], "gsk": last[keys.GSI1_SORT_KEY]})
        return SessionsPage(sessions=sessions, next_cursor=next_cursor)

    # --- tool executions --------------------------------------------------------------------

    def record_tool_execution(
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
        now_ms = self._now_ms()
        values = {
            keys.PARTITION_KEY: keys.run_pk(execution_id),
            keys.SORT_KEY: keys.tool_execution_sk(seq, tool_name),
            "seq": seq,
            "toolName": tool_name,
            "status": status,
            "input": _json("input", input),
            "output": _json("output", output),
            "compensable": bool(compensable),
            "createdAt": now_ms,
            **self._stamp(now_ms),
        }
        existing = self._put_new(values)
        if existing is not None:
            if not existing:  # DynamoDB always returns it; be explicit if it ever does not
                raise StateError(f"tool step {seq} of run {execution_id!r} is recorded but could not be read back")
            raise DuplicateToolExecutionError(_tool_execution(existing))
        return _tool_execution(values)

    def list_tool_executions(self, execution_id: str) -> list[ToolExecution]:
        """The run's tool steps in order: one Query (a run's records are far below 1 MB; a
        longer result would still be read to the end)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            "ExpressionAttributeValues": _to_item({":pk": keys.run_pk(execution_id), ":prefix": keys.TOOL_PREFIX}),
        }
        executions: list[ToolExecution] = []
        while True:
            response = self.client.query(**request)
            executions.extend(_tool_execution(_from_item(raw)) for raw in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return executions
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- memory -----------------------------------------------------------------------------

    def remember(self, user_id: str, topic: str, text: str, step_key: str) -> Memory:
        """Store one memory under a topic, once per ``step_key`` (one conditional PutItem).

        ``step_key`` (``keys.memory_step_key``) is the same for every delivery of the step and
        sorts by the run's start time, so the memory's key is known before it is written:
        a second delivery writes nothing and gets the first memory back, read from the failed
        condition in the same round trip.
        """
        now_ms = self._now_ms()
        values = {
            keys.PARTITION_KEY: keys.user_pk(user_id),
            keys.SORT_KEY: keys.memory_topic_prefix(topic) + keys.key_part("memory step key", step_key),
            "topic": topic,
            "text": _text("text", text),
            "createdAt": now_ms,
            **self._stamp(now_ms),
        }
        existing = self._put_new(values)
        if existing is not None:
            if not existing:  # DynamoDB always returns it; be explicit if it ever does not
                raise StateError(f"memory {step_key!r} is stored but could not be read back")
            return _memory(existing)
        return _memory(values)

    def recall(self, user_id: str, topic: str, limit: int = 10) -> list[Memory]:
        """The newest memories of a topic, newest first: one Query."""
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
            ExpressionAttributeValues=_to_item(
                {":pk": keys.user_pk(user_id), ":prefix": keys.memory_topic_prefix(topic)}
            ),
            ScanIndexForward=False,
            Limit=_page_size(limit),
        )
        return [_memory(_from_item(raw)) for raw in response.get("Items", [])]

    # --- WebSocket connections --------------------------------------------------------------

    def put_connection(self, connection_id: str, user_id: str) -> Connection:
        """Store a WebSocket connection with its user and region (PutItem, short TTL)."""
        now_ms = self._now_ms()
        values = {
            keys.PARTITION_KEY: keys.connection_pk(connection_id),
            keys.SORT_KEY: keys.CONNECTION_SK,
            "userId": keys.key_part("userId", user_id),
            "connectedAt": now_ms,
            **self._stamp(now_ms, CONNECTION_TTL_SECONDS),
        }
        self.client.put_item(TableName=self.table_name, Item=_to_item(values))
        return _connection(values)

    def get_connection(self, connection_id: str) -> Connection | None:
        """The connection, or None when unknown or past its TTL (TTL deletion lags): one GetItem."""
        item = self._get(keys.connection_pk(connection_id), keys.CONNECTION_SK)
        if item is None:
            return None
        connection = _connection(item)
        if connection.expires_at <= self._now_ms() // 1000:
            return None
        return connection

    def delete_connection(self, connection_id: str) -> None:
        """Forget a connection (DeleteItem); deleting an unknown one is not an error."""
        self.client.delete_item(
            TableName=self.table_name,
            Key=_to_item({keys.PARTITION_KEY: keys.connection_pk(connection_id), keys.SORT_KEY: keys.CONNECTION_SK}),
        )

    # --- tool execution lookups ---------------------------------------------------------------

    def get_tool_execution(self, execution_id: str, seq: int, tool_name: str) -> ToolExecution | None:
        """One recorded tool step (GetItem), or None: how a redelivered step finds its result."""
        item = self._get(keys.run_pk(execution_id), keys.tool_execution_sk(seq, tool_name))
        return _tool_execution(item) if item is not None else None

    def get_tool_executions(self, refs: Sequence[tuple[str, int, str]]) -> list[ToolExecution]:
        """Several recorded steps by (executionId, seq, tool) in one BatchGetItem (at most 100);
        used to resolve tool outputs passed by reference."""
        if not refs:
            return []
        if len(refs) > 100:
            raise ValueError(f"at most 100 references per read, got {len(refs)}")
        request = {
            self.table_name: {
                "Keys": [
                    _to_item({keys.PARTITION_KEY: keys.run_pk(e), keys.SORT_KEY: keys.tool_execution_sk(q, t)})
                    for e, q, t in dict.fromkeys(refs)
                ]
            }
        }
        found: list[ToolExecution] = []
        while request:
            response = self.client.batch_get_item(RequestItems=request)
            found.extend(
                _tool_execution(_from_item(raw)) for raw in response.get("Responses", {}).get(self.table_name, [])
            )
            request = response.get("UnprocessedKeys") or {}
        return found

    # --- tasks ------------------------------------------------------------------------------

    def put_task(self, task_id: str, user_id: str, session_id: str, execution_arn: str) -> Task:
        """Record a started Standard task with its owner and the region it runs in (PutItem)."""
        now_ms = self._now_ms()
        values = {
            keys.PARTITION_KEY: keys.task_pk(task_id),
            keys.SORT_KEY: keys.TASK_SK,
            "userId": keys.key_part("userId", user_id),
            "sessionId": session_id,
            "executionArn": execution_arn,
            "createdAt": now_ms,
            **self._stamp(now_ms),
        }
        self.client.put_item(TableName=self.table_name, Item=_to_item(values))
        return _task(values)

    def get_task(self, task_id: str) -> Task | None:
        item = self._get(keys.task_pk(task_id), keys.TASK_SK)
        return _task(item) if item is not None else None

    # --- idempotency ------------------------------------------------------------------------

    def claim_idempotency(self, user_id: str, key_hash: str, request_hash: str) -> IdempotencyRecord | None:
        """Claim an idempotency key for a request (conditional PutItem). Returns None when this
        call claimed it, else the record already there (read in the same round trip)."""
        now_ms = self._now_ms()
        values = {
            keys.PARTITION_KEY: keys.idempotency_pk(user_id, key_hash),
            keys.SORT_KEY: keys.IDEMPOTENCY_SK,
            "requestHash": request_hash,
            "status": "IN_PROGRESS",
            "createdAt": now_ms,
            **self._stamp(now_ms, IDEMPOTENCY_TTL_SECONDS),
        }
        existing = self._put_new(values)
        if existing is None:
            return None
        if not existing:
            raise StateError("the idempotency key is taken but its record could not be read back")
        return _idempotency(existing)

    def release_idempotency(self, user_id: str, key_hash: str) -> None:
        """Give a claimed key back (DeleteItem, only while IN_PROGRESS): the request failed
        before it did anything, so a retry should run it, not wait for the lock."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=_to_item(
                    {keys.PARTITION_KEY: keys.idempotency_pk(user_id, key_hash), keys.SORT_KEY: keys.IDEMPOTENCY_SK}
                ),
                ConditionExpression="#status = :claimed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_item({":claimed": "IN_PROGRESS"}),
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise

    def complete_idempotency(self, user_id: str, key_hash: str, status_code: int, body: Any) -> None:
        """Store the response a replay of this key returns (PutItem over the claim)."""
        now_ms = self._now_ms()
        existing = {
            keys.PARTITION_KEY: keys.idempotency_pk(user_id, key_hash),
            keys.SORT_KEY: keys.IDEMPOTENCY_SK,
        }
        self.client.update_item(
            TableName=self.table_name,
            Key=_to_item(existing),
            UpdateExpression="SET #status = :done, #code = :code, #body = :body, #done = :now",
            ExpressionAttributeNames={
                "#status": "status",
                "#code": "statusCode",
                "#body": "body",
                "#done": "completedAt",
            },
            ExpressionAttributeValues=_to_item(
                {":done": "COMPLETED", ":code": status_code, ":body": _json("body", body), ":now": now_ms}
            ),
        )

    # --- compensation ---------------------------------------------------------------------

    def mark_compensated(self, execution_id: str, seq: int, tool_name: str, detail: Any) -> bool:
        """Record that a step was undone (conditional UpdateItem: SUCCEEDED → COMPENSATED).
        Returns False when it was not a succeeded step any more, so nothing is undone twice."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_to_item(
                    {
                        keys.PARTITION_KEY: keys.run_pk(execution_id),
                        keys.SORT_KEY: keys.tool_execution_sk(seq, tool_name),
                    }
                ),
                UpdateExpression="SET #status = :compensated, #detail = :detail, #at = :now",
                ConditionExpression="#status = :succeeded",
                ExpressionAttributeNames={"#status": "status", "#detail": "compensation", "#at": "compensatedAt"},
                ExpressionAttributeValues=_to_item(
                    {
                        ":compensated": "COMPENSATED",
                        ":succeeded": "SUCCEEDED",
                        ":detail": _json("compensation", detail),
                        ":now": self._now_ms(),
                    }
                ),
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- approvals --------------------------------------------------------------------------

    def put_approval(
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
        now_ms = self._now_ms()
        values = {
            keys.PARTITION_KEY: keys.run_pk(execution_id),
            keys.SORT_KEY: keys.approval_sk(seq),
            "seq": seq,
            "toolName": tool_name,
            "input": _json("input", tool_input),
            "userId": keys.key_part("userId", user_id),
            "sessionId": session_id,
            "taskToken": task_token,
            "status": "PENDING",
            "createdAt": now_ms,
            **self._stamp(now_ms, timeout_seconds),
        }
        self.client.put_item(TableName=self.table_name, Item=_to_item(values))
        return _approval(values)

    def get_approval(self, execution_id: str, seq: int) -> Approval | None:
        item = self._get(keys.run_pk(execution_id), keys.approval_sk(seq))
        return _approval(item) if item is not None else None

    def pending_approvals(self, execution_id: str) -> list[Approval]:
        """The run's approvals still waiting for a decision: one Query."""
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            FilterExpression="#status = :pending",
            ExpressionAttributeNames={"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY, "#status": "status"},
            ExpressionAttributeValues=_to_item(
                {":pk": keys.run_pk(execution_id), ":prefix": keys.APPROVAL_PREFIX, ":pending": "PENDING"}
            ),
        )
        return [_approval(_from_item(raw)) for raw in response.get("Items", [])]

    def decide_approval(self, execution_id: str, seq: int, decision: str, decided_by: str, comment: str | None) -> bool:
        """PENDING → APPROVED or DENIED (conditional UpdateItem). False when already decided."""
        status = {"approve": "APPROVED", "deny": "DENIED"}[decision]
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_to_item({keys.PARTITION_KEY: keys.run_pk(execution_id), keys.SORT_KEY: keys.approval_sk(seq)}),
                UpdateExpression="SET #status = :status, #by = :by, #comment = :comment, #at = :now",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={
                    "#status": "status",
                    "#by": "decidedBy",
                    "#comment": "comment",
                    "#at": "decidedAt",
                },
                ExpressionAttributeValues=_to_item(
                    {
                        ":status": status,
                        ":pending": "PENDING",
                        ":by": decided_by,
                        ":comment": comment or "",
                        ":now": self._now_ms(),
                    }
                ),
            )
        except ClientError as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def settle_approval(self, execution_id: str, seq: int, status: str) -> None:
        """Set an approval's status outright: EXPIRED when its execution stopped waiting, or
        back to PENDING (clearing who decided) when the callback could not be delivered."""
        if status not in ("EXPIRED", "PENDING"):
            raise ValueError(f"status must be EXPIRED or PENDING, got {status!r}")
        remove = " REMOVE #by, #comment, #at" if status == "PENDING" else ""
        self.client.update_item(
            TableName=self.table_name,
            Key=_to_item({keys.PARTITION_KEY: keys.run_pk(execution_id), keys.SORT_KEY: keys.approval_sk(seq)}),
            UpdateExpression="SET #status = :status" + remove,
            ExpressionAttributeNames={
                "#status": "status",
                **({"#by": "decidedBy", "#comment": "comment", "#at": "decidedAt"} if remove else {}),
            },
            ExpressionAttributeValues=_to_item({":status": status}),
        )

    # --- tickets (the create_ticket tool's side effect) ---------------------------------------

    def put_ticket(self, ticket_id: str, fields: Mapping[str, Any]) -> bool:
        """Create a ticket once (conditional PutItem). Returns False when it already existed."""
        now_ms = self._now_ms()
        values = {
            keys.PARTITION_KEY: keys.ticket_pk(ticket_id),
            keys.SORT_KEY: keys.TICKET_SK,
            "fields": _json("fields", dict(fields)),
            "createdAt": now_ms,
            **self._stamp(now_ms),
        }
        return self._put_new(values) is None

    def get_ticket(self, ticket_id: str) -> dict[str, Any] | None:
        item = self._get(keys.ticket_pk(ticket_id), keys.TICKET_SK)
        return json.loads(item["fields"]) if item is not None else None

    def delete_ticket(self, ticket_id: str) -> bool:
        """Remove a ticket (DeleteItem). Returns whether it was there, so compensation can
        report what it undid; deleting twice is harmless."""
        response = self.client.delete_item(
            TableName=self.table_name,
            Key=_to_item({keys.PARTITION_KEY: keys.ticket_pk(ticket_id), keys.SORT_KEY: keys.TICKET_SK}),
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response


# --- item → record ------------------------------------------------------------------------


def _after(prefix: str, value: str) -> str:
    return value[len(prefix) :]


def _session_meta(item: Mapping[str, Any]) -> SessionMeta:
    return SessionMeta(
        session_id=_after(keys.SESSION_PREFIX, item[keys.PARTITION_KEY]),
        user_id=item["userId"],
        title=item.get("title", ""),
        created_at_ms=int(item["createdAt"]),
        updated_at_ms=int(item["updatedAt"]),
        region=item[keys.REGION_ATTRIBUTE],
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


def _messages(item: Mapping[str, Any]) -> list[Message]:
    """A step item's messages, oldest first."""
    seq = keys.step_seq(item[keys.SORT_KEY])
    session_id = _after(keys.SESSION_PREFIX, item[keys.PARTITION_KEY])
    stored = json.loads(item["messages"])
    return [
        Message(
            session_id=session_id,
            message_id=f"{seq:08d}-{index}",
            role=entry["role"],
            text=entry.get("text", ""),
            tool_calls=entry.get("toolCalls") or [],
            usage=entry.get("usage"),
            created_at_ms=int(item["createdAt"]),
            region=item[keys.REGION_ATTRIBUTE],
            expires_at=int(item[keys.TTL_ATTRIBUTE]),
            seq=seq,
            turn_id=item.get("turn", ""),
        )
        for index, entry in enumerate(stored)
    ]


def _tool_execution(item: Mapping[str, Any]) -> ToolExecution:
    return ToolExecution(
        execution_id=_after(keys.RUN_PREFIX, item[keys.PARTITION_KEY]),
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


def _memory(item: Mapping[str, Any]) -> Memory:
    return Memory(
        user_id=_after(keys.USER_PREFIX, item[keys.PARTITION_KEY]),
        topic=item["topic"],
        memory_id=item[keys.SORT_KEY].rsplit("#", 1)[1],
        text=item["text"],
        created_at_ms=int(item["createdAt"]),
        region=item[keys.REGION_ATTRIBUTE],
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


def _connection(item: Mapping[str, Any]) -> Connection:
    return Connection(
        connection_id=_after(keys.CONNECTION_PREFIX, item[keys.PARTITION_KEY]),
        user_id=item["userId"],
        region=item[keys.REGION_ATTRIBUTE],
        connected_at_ms=int(item["connectedAt"]),
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


def _task(item: Mapping[str, Any]) -> Task:
    return Task(
        task_id=_after(keys.TASK_PREFIX, item[keys.PARTITION_KEY]),
        user_id=item["userId"],
        session_id=item["sessionId"],
        execution_arn=item["executionArn"],
        created_at_ms=int(item["createdAt"]),
        region=item[keys.REGION_ATTRIBUTE],
        expires_at=int(item[keys.TTL_ATTRIBUTE]),
    )


def _idempotency(item: Mapping[str, Any]) -> IdempotencyRecord:
    body = item.get("body")
    code = item.get("statusCode")
    return IdempotencyRecord(
        request_hash=item["requestHash"],
        status=item["status"],
        created_at_ms=int(item["createdAt"]),
        status_code=int(code) if code is not None else None,
        body=json.loads(body) if body is not None else None,
    )


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
        execution_id=_after(keys.RUN_PREFIX, item[keys.PARTITION_KEY]),
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
