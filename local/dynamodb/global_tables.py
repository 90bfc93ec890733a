"""moto's DynamoDB as a global table: one replica per local region, replicating from streams.

moto has regional tables only. ``GlobalTable`` makes one table of the same name in each local
region and replicates every write of each replica to the others, as DynamoDB global tables
(version 2019.11.21, multi-region eventual consistency) are documented to
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html):

- asynchronously, from each replica's stream, after ``lag_seconds`` ("typically within a
  second or less"; ``REPLICATION_LAG_MS`` sets it for ``make dev`` and the drill);
- conflicts resolved per item by the latest write's timestamp: "DynamoDB will resolve the
  conflict by using the modification with the latest internal timestamp on a per-item
  basis, referred to as a 'last writer wins' conflict resolution method", implemented, as
  AWS describes, as a conditional write requiring "the incoming item's timestamp to be
  greater than the existing item's timestamp"
  (https://docs.aws.amazon.com/prescriptive-guidance/latest/dynamodb-global-tables/overview.html).
  Deletes count too (a tombstone per deleted key), so an older write arriving late does not
  bring an item back. Ties go to the region name, so every replica decides alike;
- conditions and transactions are checked by the replica they are sent to, nowhere else
  (that is moto's regional table doing its job);
- TTL deletes happen in a replica and are replicated like any delete ("When TTL deletes an
  item from a replica in a Region, the delete is replicated to all other replicas"):
  :meth:`GlobalTable.expire` deletes, in each replica that is up, the items whose TTL attribute
  is past;
- a region that is down (``local.regions``) neither sends nor receives: its unsent writes are
  "held and propagated after Region A comes back online", and writes meant for it wait
  ("The local table continues to attempt replicating items to the remote table until each
  item succeeds").

How: the stream. Each write a replica takes adds a record to its moto stream shard
(NEW_AND_OLD_IMAGES); the record is stamped, as it is added, with the write's timestamp and
the region it was made in. The replicator thread reads each shard (under the table's lock
from ``local.dynamodb.guard``, so it never sees half a transaction, and records of a cancelled
one are gone), queues each local write for every other replica, and after the lag applies it
there through moto's own backend. Applied writes are stamped with their origin and time and
are not replicated again. What this does not emulate: replication metrics, the
``aws:rep:*`` bookkeeping, throughput, and the order of writes of one transaction, which AWS
does not keep either ("Items that are updated within a single transaction might not be
replicated together").
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from local.dynamodb.guard import _locks_of
from local.regions import Regions

__all__ = ["DEFAULT_LAG_SECONDS", "GlobalTable", "Replicated"]

DEFAULT_LAG_SECONDS = 1.0
"""AWS: replication "typically within a second or less"."""
POLL_SECONDS = 0.01


@dataclass(frozen=True)
class Replicated:
    """One write on its way from ``origin`` to the other replicas."""

    timestamp_ns: int
    origin: str
    key: tuple[str, str]
    image: dict[str, Any] | None
    """The item after the write (DynamoDB JSON), None for a delete."""


_applying = threading.local()
_stamp_lock = threading.Lock()
_last_stamp = [0]


def _now_ns() -> int:
    """Strictly increasing nanoseconds: two writes never share a timestamp."""
    with _stamp_lock:
        stamp = max(time.time_ns(), _last_stamp[0] + 1)
        _last_stamp[0] = stamp
        return stamp


def _install_stamps() -> Callable[[], None]:
    """Stamp every stream record with (timestamp, origin) as moto adds it. Returns the undo."""
    from moto.dynamodb.models.table import StreamShard

    original = StreamShard.add

    def add(shard: StreamShard, old: Any, new: Any) -> None:
        original(shard, old, new)
        if shard.items:
            applying = getattr(_applying, "stamp", None)
            record = shard.items[-1]
            record.agent_infra_stamp = applying or (_now_ns(), shard.table.region_name)
            record.agent_infra_replicated = applying is not None

    StreamShard.add = add

    def undo() -> None:
        StreamShard.add = original

    return undo


class GlobalTable:
    """A table in each of ``regions`` that replicate to each other. ``start()`` creates the
    replicas (from ``create_table_request``, the deployed schema) and starts replicating."""

    def __init__(
        self,
        regions: Regions,
        create_table_request: dict[str, Any],
        account_id: str,
        lag_seconds: float = DEFAULT_LAG_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lag_seconds < 0:
            raise ValueError(f"lag_seconds must be 0 or more, got {lag_seconds}")
        self.regions = regions
        self.name = create_table_request["TableName"]
        self._request = create_table_request
        self.account_id = account_id
        self.lag_seconds = lag_seconds
        self.clock = clock
        # Per replica: the last stream sequence number read, and each key's last write.
        self._read_upto: dict[str, int] = {}
        self._clocks: dict[str, dict[tuple[str, str], tuple[int, str]]] = {r: {} for r in regions.names}
        self._queues: dict[tuple[str, str], collections.deque[Replicated]] = {
            (o, t): collections.deque() for o in regions.names for t in regions.names if o != t
        }
        self._queue_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._undo: Callable[[], None] | None = None
        self.applied = 0
        self.superseded = 0
        """Replicated writes dropped because the replica had a later write of the item."""

    # -- set-up ------------------------------------------------------------------------------

    def backend(self, region: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self.account_id][region]

    def start(self, replicate: bool = True) -> GlobalTable:
        """Create the replicas and, with ``replicate``, start the replicator thread (without
        it, :meth:`step` replicates when called: the tests choose every interleaving)."""
        import boto3

        self._undo = _install_stamps()
        for region in self.regions.names:
            boto3.client("dynamodb", region_name=region).create_table(**self._request)
            self._read_upto[region] = self._shard(region).starting_sequence_number - 1
        if replicate:
            self._thread = threading.Thread(target=self._run, name="global-table-replicator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._undo is not None:
            self._undo()
            self._undo = None

    def _table(self, region: str) -> Any:
        return self.backend(region).get_table(self.name)

    def _shard(self, region: str) -> Any:
        return self._table(region).stream_shard

    @contextlib.contextmanager
    def _locked(self, region: str) -> Iterator[Any]:
        """The replica's table, with moto's lock of it held (local/dynamodb/guard.py)."""
        backend = self.backend(region)
        with _locks_of(backend).table(self.name):
            yield backend

    # -- reading the streams -----------------------------------------------------------------

    def _read_stream(self, region: str) -> None:
        """Take the replica's new stream records: a local write is queued for every other
        replica; a replicated one is already in the replica's clock. Hold the lock."""
        shard = self._shard(region)
        start = self._read_upto[region] + 1 - shard.starting_sequence_number
        if start < 0:
            raise RuntimeError(f"{region}: stream records were dropped before replication read them")
        records = shard.items[start:]
        if not records:
            return
        self._read_upto[region] += len(records)
        table = self._table(region)
        for record in records:
            stamp = getattr(record, "agent_infra_stamp", None)
            if stamp is None or getattr(record, "agent_infra_replicated", False):
                continue
            data = record.record["dynamodb"]
            key = _key_of(data["Keys"], table)
            image = data.get("NewImage") if record.record["eventName"] != "REMOVE" else None
            self._clocks[region][key] = stamp
            write = Replicated(stamp[0], stamp[1], key, image)
            with self._queue_lock:
                for target in self.regions.names:
                    if target != region:
                        self._queues[(region, target)].append(write)

    # -- shipping ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.step()
            except Exception as error:  # keep replicating; say what went wrong
                print(json.dumps({"service": "local-global-table", "level": "ERROR", "error": repr(error)}), flush=True)

    def step(self, now: float | None = None, only: tuple[str, str] | None = None) -> int:
        """Read every stream and apply what is due (by ``now``, the clock's time by default),
        from every replica to every other or ``only`` (origin, target). Returns how many
        writes were applied."""
        for region in self.regions.names:
            with self._locked(region):
                self._read_stream(region)
        due_before = int(((self.clock() if now is None else now) - self.lag_seconds) * 1e9)
        applied = 0
        for (origin, target), queue in self._queues.items():
            if only is not None and (origin, target) != only:
                continue
            if not (self.regions.is_up(origin) and self.regions.is_up(target)):
                continue  # held in the origin until both are up
            while True:
                with self._queue_lock:
                    if not queue or queue[0].timestamp_ns > due_before:
                        break
                    write = queue.popleft()
                self._apply(target, write)
                applied += 1
        return applied

    def _apply(self, target: str, write: Replicated) -> None:
        """Apply one replicated write to ``target`` unless it has a later write of the item."""
        with self._locked(target) as backend:
            self._read_stream(target)  # its own latest writes count
            current = self._clocks[target].get(write.key)
            if current is not None and current >= (write.timestamp_ns, write.origin):
                self.superseded += 1
                return
            _applying.stamp = (write.timestamp_ns, write.origin)
            try:
                if write.image is None:
                    table = self._table(target)
                    key = {table.hash_key_attr: {"S": write.key[0]}}
                    if table.range_key_attr:
                        key[table.range_key_attr] = {"S": write.key[1]}
                    if _has(table, write.key):
                        backend.delete_item(self.name, key)
                else:
                    backend.put_item(self.name, write.image)
            finally:
                _applying.stamp = None
            self._clocks[target][write.key] = (write.timestamp_ns, write.origin)
            self.applied += 1

    # -- what the drill and the tests ask ------------------------------------------------------

    def pending(self, origin: str | None = None) -> int:
        """Writes not yet applied everywhere (from ``origin`` only, when given)."""
        with self._queue_lock:
            return sum(len(q) for (o, _), q in self._queues.items() if origin is None or o == origin)

    def pending_writes(self, origin: str) -> list[Replicated]:
        """The writes of ``origin`` some replica has not received yet (each once), up to its
        stream's newest record."""
        with self._locked(origin):
            self._read_stream(origin)
        with self._queue_lock:
            seen: dict[tuple[int, str, tuple[str, str]], Replicated] = {}
            for (o, _), queue in self._queues.items():
                if o == origin:
                    for write in queue:
                        seen.setdefault((write.timestamp_ns, write.origin, write.key), write)
            return sorted(seen.values(), key=lambda w: w.timestamp_ns)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every write has reached every replica that is up (True), or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for region in self.regions.names:
                with self._locked(region):
                    self._read_stream(region)
            with self._queue_lock:
                waiting = sum(
                    len(q) for (o, t), q in self._queues.items() if self.regions.is_up(o) and self.regions.is_up(t)
                )
            if not waiting:
                return True
            time.sleep(POLL_SECONDS)
        return False

    def expire(self, now_s: float | None = None, attribute: str = "expiresAt") -> int:
        """TTL: delete, in every replica that is up, the items whose ``attribute`` (epoch
        seconds) is past; the deletes replicate. Returns how many were deleted."""
        now_s = self.clock() if now_s is None else now_s
        deleted = 0
        for region in self.regions.names:
            if not self.regions.is_up(region):
                continue
            with self._locked(region) as backend:
                table = self._table(region)
                for item in list(table.all_items()):
                    value = item.attrs.get(attribute)
                    if value is None or value.type != "N" or float(value.value) > now_s:
                        continue
                    key = {table.hash_key_attr: item.hash_key.to_json()}
                    if table.range_key_attr:
                        key[table.range_key_attr] = item.range_key.to_json()
                    backend.delete_item(self.name, key)
                    deleted += 1
        return deleted

    def items(self, region: str) -> dict[tuple[str, str], dict[str, Any]]:
        """Every item of ``region``'s replica (DynamoDB JSON), by key."""
        with self._locked(region):
            table = self._table(region)
            return {_key_of(i.to_json()["Attributes"], table): i.to_json()["Attributes"] for i in table.all_items()}

    def differences(self, regions: Sequence[str] | None = None) -> list[str]:
        """Keys whose item differs between replicas (or exists in some only): empty when
        every replica holds the same items."""
        regions = list(regions or self.regions.names)
        contents = {r: self.items(r) for r in regions}
        keys = set().union(*contents.values())
        return sorted(
            f"{k[0]} {k[1]}" for k in keys if len({json.dumps(contents[r].get(k), sort_keys=True) for r in regions}) > 1
        )


def _key_of(attributes: dict[str, Any], table: Any) -> tuple[str, str]:
    hash_value = next(iter(attributes[table.hash_key_attr].values()))
    range_value = next(iter(attributes[table.range_key_attr].values())) if table.range_key_attr else ""
    return str(hash_value), str(range_value)


def _has(table: Any, key: tuple[str, str]) -> bool:
    from moto.dynamodb.models.dynamo_type import DynamoType

    partition = table.items.get(DynamoType({"S": key[0]}))
    if partition is None:
        return False
    if not table.range_key_attr:
        return True
    return DynamoType({"S": key[1]}) in partition
