"""What every aggregate's access class shares: the table handle, item conversion, errors.

:class:`Table` is a handle on one replica of the table: its client (created on first use),
the table name, the replica's region, the default TTL and the clock. The access classes of
the aggregates (sessions, conversations, tool runs, ...) each hold the handle of the
function's own region; ``table.at(region)`` is the handle of another replica, and
``table.home(key)`` the handle of the replica a key's writes go to
(``handlers.shared.store.replicas``).

Every item written through a handle carries ``expiresAt`` (epoch seconds, the table's TTL
attribute) and ``region`` (the replica it was written to), so any replica can tell where an
item came from.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from handlers.shared import table as keys
from handlers.shared.ids import new_ulid
from handlers.shared.store.replicas import Replicas, ReplicaUnavailableError

T = TypeVar("T")

MAX_PAGE_SIZE = 100
# DynamoDB rejects items over 400 KB; leave room for keys and attribute names so callers
# get our error, which names the field, instead of a ValidationException.
MAX_PAYLOAD_BYTES = 350_000
DAY_SECONDS = 86_400

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StateError(Exception):
    """Base of every error the access layer raises on purpose."""


class NotFoundError(StateError):
    """The item the caller named does not exist."""


class AlreadyExistsError(StateError):
    """A create met an item with the same key."""


class InvalidCursorError(StateError, ValueError):
    """A pagination cursor that this layer did not hand out (or for another partition)."""


class PayloadTooLargeError(StateError, ValueError):
    """A value too large to store inline in one item."""


# --- items ---------------------------------------------------------------------------------


def to_item(values: Mapping[str, Any]) -> dict[str, dict]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, dict]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def after(prefix: str, value: str) -> str:
    """A key without its prefix: ``after("RUN#", "RUN#exec-1") == "exec-1"``."""
    return value[len(prefix) :]


def json_attribute(field_name: str, value: Any) -> str:
    """A value stored as compact JSON text, refused when it would not fit in one item."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"{field_name} is {size} bytes; at most {MAX_PAYLOAD_BYTES} bytes are stored "
            "inline, store larger values by reference"
        )
    return text


def text_attribute(field_name: str, value: str) -> str:
    """A string as it can be stored: valid UTF-8, refused when it would not fit in one item."""
    if not isinstance(value, str):
        raise ValueError(f"{field_name} must be a string, got {type(value).__name__}")
    value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be stored
    size = len(value.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"{field_name} is {size} bytes; at most {MAX_PAYLOAD_BYTES} bytes are stored inline")
    return value


# --- pages ---------------------------------------------------------------------------------


def page_size(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be an integer in 1..{MAX_PAGE_SIZE}, got {limit!r}")
    return limit


def encode_cursor(key: Mapping[str, str]) -> str:
    raw = json.dumps(dict(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, required: Sequence[str]) -> dict[str, str]:
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


# --- errors --------------------------------------------------------------------------------


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def condition_failed(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


class TransactWrite(NamedTuple):
    """One write of a TransactWriteItems, handed out by the aggregate that owns its item."""

    request: dict[str, Any]
    """``{"Put": {...}}`` or ``{"Update": {...}}``."""
    refused: Callable[[dict[str, Any]], StateError | None]
    """What its failed condition means, given the item there (when the write asked for it):
    the error to raise, or None to leave the verdict to the transaction's first write."""


# --- the table -----------------------------------------------------------------------------


class Table:
    """A handle on one replica of the table. Cheap to keep at module level."""

    def __init__(
        self,
        name: str,
        region: str,
        ttl_days: int,
        client: Any | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_ulid,
        replicas: Replicas | None = None,
    ) -> None:
        if not name:
            raise ValueError("table_name must not be empty")
        if isinstance(ttl_days, bool) or not isinstance(ttl_days, int) or ttl_days < 1:
            raise ValueError(f"ttl_days must be a positive integer, got {ttl_days!r}")
        self.name = name
        self.region = region
        self.ttl_days = ttl_days
        self.clock = clock
        self.new_id = new_id
        self.replicas = replicas if replicas is not None else Replicas(region)
        if client is not None:
            self.replicas.set_client(region, client)
        self._handles: dict[str, Table] = {region: self}

    @property
    def client(self) -> Any:
        return self.replicas.client(self.region)

    def at(self, region: str) -> Table:
        """The handle of ``region``'s replica (the same table, clock and replicas)."""
        handle = self._handles.get(region)
        if handle is None:
            handle = Table(
                self.name, region, self.ttl_days, clock=self.clock, new_id=self.new_id, replicas=self.replicas
            )
            handle._handles = self._handles
            self._handles[region] = handle
        return handle

    def home(self, key: str, preferred: str | None = None) -> Table:
        """The handle of the replica ``key``'s reads and writes go to now."""
        return self.at(self.replicas.home(key, preferred))

    def on_home(self, key: str, call: Callable[[Table], T], preferred: str | None = None) -> T:
        """``call`` with the handle of ``key``'s home; once more with the next home when the
        first could not be reached (its breaker is open then). For reads, and for writes
        whose every part is decided in the replica they go to."""
        home = self.home(key, preferred)
        try:
            return call(home)
        except ReplicaUnavailableError:
            retry = self.home(key, preferred)
            if retry.region == home.region:
                raise
            return call(retry)

    @property
    def other_regions(self) -> list[str]:
        """Every other replica's region."""
        return [r for r in self.replicas.regions if r != self.region]

    # --- time and common attributes -------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def stamp(self, now_ms: int, ttl_seconds: int | None = None) -> dict[str, Any]:
        """The attributes every item carries: when it expires and the region that wrote it."""
        ttl = ttl_seconds if ttl_seconds is not None else self.ttl_days * DAY_SECONDS
        return {keys.TTL_ATTRIBUTE: now_ms // 1000 + ttl, keys.REGION_ATTRIBUTE: self.region}

    @staticmethod
    def key(pk: str, sk: str) -> dict[str, dict]:
        return to_item({keys.PARTITION_KEY: pk, keys.SORT_KEY: sk})

    # --- reads and writes every aggregate makes -------------------------------------------

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The item with this key (GetItem), or None."""
        response = self.client.get_item(TableName=self.name, Key=self.key(pk, sk))
        return from_item(response["Item"]) if "Item" in response else None

    def put(self, values: Mapping[str, Any]) -> None:
        """PutItem, replacing any item with the same key."""
        self.client.put_item(TableName=self.name, Item=to_item(values))

    def put_new(self, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """PutItem only if no item has this key. Returns None when written, else the item
        already there (read in the same round trip, from the failed condition)."""
        try:
            self.client.put_item(
                TableName=self.name,
                Item=to_item(values),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": keys.PARTITION_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if condition_failed(error):
                return from_item(error.response.get("Item") or {})
            raise
        return None

    def put_with(self, put: dict[str, Any], refused: StateError, others: Sequence[TransactWrite] = ()) -> None:
        """A conditional PutItem, or with ``others`` one TransactWriteItems of it and them,
        all or nothing. A failed condition raises the error of the first write that names
        one, else ``refused``: the put's own."""
        try:
            if not others:
                self.client.put_item(**put)
            else:
                self.client.transact_write_items(TransactItems=[{"Put": put}, *(o.request for o in others)])
        except ClientError as error:
            code = error_code(error)
            if code == "ConditionalCheckFailedException":
                raise refused from None
            if code != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            failed = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
            for index in failed:
                if 1 <= index <= len(others):
                    verdict = others[index - 1].refused(from_item(reasons[index].get("Item") or {}))
                    if verdict is not None:
                        raise verdict from None
            if failed:
                raise refused from None
            raise

    def absent_checks(self, pk: str, sort_keys: Sequence[str], refused: StateError) -> list[TransactWrite]:
        """ConditionChecks, in this replica, that none of ``sort_keys`` (other replicas' items
        of the same thing) has arrived here; each hands back the item it found."""
        return [
            TransactWrite(
                {
                    "ConditionCheck": {
                        "TableName": self.name,
                        "Key": self.key(pk, sk),
                        "ConditionExpression": "attribute_not_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                lambda _: refused,
            )
            for sk in sort_keys
        ]

    def found_elsewhere(self, pk: str, sort_key_of: Callable[[str], str]) -> dict[str, Any] | None:
        """The item ``sort_key_of(r)`` of ``pk`` that another replica ``r`` wrote there, read
        from ``r`` itself (a strongly consistent GetItem in each other replica this process
        can reach), or None.

        :meth:`absent_checks` sees another replica's item only once it has replicated here.
        Two replicas can act as one key's home at once: a region that comes back takes its
        keys again at once, while another region's processes still hold it out for their
        breaker's cooldown. A claim made in the other during that time has often not arrived
        yet, and AWS's advice is to wait for replication before writing to a returning region
        ("a period of time ... about ten times the recent maximum ReplicationLatency",
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-global-table-design.prescriptive-guidance.evacuation.html).
        Reading the other replicas directly closes that window whenever they can be reached;
        a replica that cannot be reached is skipped (what it holds is the stranded-write case
        docs/multi-region.md states)."""
        for region in self.other_regions:
            if not self.replicas.available(region):
                continue
            other = self.at(region)
            try:
                response = other.client.get_item(
                    TableName=self.name, Key=self.key(pk, sort_key_of(region)), ConsistentRead=True
                )
            except ReplicaUnavailableError:
                continue
            if "Item" in response:
                return from_item(response["Item"])
        return None

    def insert_once(self, values: Mapping[str, Any], others: Sequence[str]) -> dict[str, Any] | None:
        """Put ``values`` only if neither its key nor any of ``others`` (the sort keys other
        replicas give the same thing, in the same partition) exists in this replica: one
        PutItem, or one TransactWriteItems when there are others. Returns None when written,
        else the item found (read in the same round trip)."""
        if not others:
            return self.put_new(values)
        put = {
            "TableName": self.name,
            "Item": to_item(values),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        checks = self.absent_checks(values[keys.PARTITION_KEY], others, StateError("exists"))
        try:
            self.client.transact_write_items(TransactItems=[{"Put": put}, *(c.request for c in checks)])
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            found = [r.get("Item") for r in reasons if r.get("Code") == "ConditionalCheckFailed"]
            if not found:
                raise
            return from_item(found[0] or {})
        return None
