"""moto's in-memory DynamoDB, made safe for concurrent callers and cheap to transact on.

moto's DynamoDB is not thread-safe: a Query or Scan iterates a table's dicts while another
thread's PutItem adds to them ("dictionary changed size during iteration"), and an
UpdateItem changes an item in place while another request serialises it. The local stack
calls it from many threads (eight turns at once, the moto HTTP server, the demo). And every
TransactWriteItems deep-copies each table it names, to roll back on failure: a cost that
grows with the table.

``DynamoDBGuard.install()`` changes four things at runtime, undone by ``uninstall()`` (nothing
edits moto's files):

1. each DynamoDB action (moto's ``DynamoHandler.call_action``: parameter handling, the backend
   call and the response's serialisation) holds the lock of the table it names, several
   tables' locks in name order for batch and transaction actions, and every table's lock
   (with the catalog's) for the rest (ListTables, CreateTable, PartiQL, ...). Requests to
   different tables never wait for each other; requests to one table run one at a time, as
   moto needs. It covers every client: in-process boto3 clients and moto's HTTP server.
   The client's own work (botocore's serialisation, moto's routing, parsing the answer)
   runs outside any lock.
2. ``TransactWriteItems`` keeps, instead of a deep copy of every table it names, a copy of
   the items it touches, and puts them back if the transaction is cancelled: the same
   all-or-nothing outcome, at a cost that does not grow with the table.
3. A ``Query`` on the table's own key reads the one partition it names. moto sorts every
   item of the table and then keeps those of the partition, at every Query: a turn's cost
   grew with the table. Queries on an index still go through every item (moto keeps no
   index), as do Scans.
4. Memory that only grew: moto records every item it ever constructs (``instances_tracked``,
   for its dashboard), the copies it returns from each Query and the versions a write
   replaced included; those records hold the items weakly here, so an item lives as long
   as the table (or a caller) has it. And a table's stream keeps its last
   ``STREAM_RECORDS_KEPT`` records per shard (DynamoDB keeps them 24 hours; moto, forever).

This changes how moto runs, not what DynamoDB answers: DynamoDB's behaviour is moto's, and
what moto does not emulate (capacity, throttling, indexes kept as AWS keeps them) stays so.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

from local.moto_instances import WeakInstances
from local.moto_patches import Patches, SharedPatches

__all__ = ["STREAM_RECORDS_KEPT", "DynamoDBGuard"]

STREAM_RECORDS_KEPT = 1000


def _table_name(name: Any) -> str | None:
    """A table's name from a name or an ARN (``arn:...:table/<name>``)."""
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("arn:") and ":table/" in name:
        return name.split(":table/", 1)[1].split("/", 1)[0]
    return name


def tables_named(action: str, params: dict[str, Any]) -> list[str] | None:
    """The tables an action's parameters name, or None when it may touch any table."""
    if action in {"ListTables", "CreateTable", "DeleteTable", "RestoreTableFromBackup"}:
        return None
    if action in {"RestoreTableToPointInTime", "ExecuteStatement", "ExecuteTransaction"}:
        return None
    if action in {"BatchExecuteStatement", "ImportTable", "ExportTableToPointInTime"}:
        return None
    names: set[str] = set()
    single = _table_name(params.get("TableName"))
    if single:
        names.add(single)
    for name in params.get("RequestItems") or {}:
        if _table_name(name):
            names.add(_table_name(name))
    for item in params.get("TransactItems") or []:
        for operation in (item or {}).values():
            if isinstance(operation, dict) and _table_name(operation.get("TableName")):
                names.add(_table_name(operation["TableName"]))
    return sorted(names) if names else None


class _Locks:
    """One backend's locks: one per table name, and the catalog's."""

    def __init__(self) -> None:
        self.catalog = threading.RLock()
        self._tables: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def table(self, name: str) -> threading.RLock:
        with self._guard:
            lock = self._tables.get(name)
            if lock is None:
                lock = self._tables[name] = threading.RLock()
            return lock

    @contextlib.contextmanager
    def hold(self, names: list[str] | None, all_tables: list[str]) -> Iterator[None]:
        with contextlib.ExitStack() as held:
            if names is None:  # any table: the catalog first, then every table, by name
                held.enter_context(self.catalog)
                with self._guard:
                    known = set(self._tables)
                names = sorted(known | set(all_tables))
            for name in names:
                held.enter_context(self.table(name))
            yield


_registry_lock = threading.Lock()
_LOCKS_ATTRIBUTE = "_agent_infra_local_locks"


def _locks_of(backend: Any) -> _Locks:
    locks = backend.__dict__.get(_LOCKS_ATTRIBUTE)
    if locks is None:
        with _registry_lock:
            locks = backend.__dict__.get(_LOCKS_ATTRIBUTE)
            if locks is None:
                locks = _Locks()
                setattr(backend, _LOCKS_ATTRIBUTE, locks)
    return locks


class _TransactionCopy:
    """moto's ``copy`` module inside ``moto.dynamodb.models``, except that in a transaction
    (see ``DynamoDBGuard``) the deep copy of a whole table is the table itself: the guard
    keeps the items the transaction touches instead."""

    def __init__(self, table_type: type, active: threading.local) -> None:
        self._table_type = table_type
        self._active = active

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type) and getattr(self._active, "depth", 0):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


class DynamoDBGuard:
    """Install (and uninstall) the per-table locks and cheap transactions described above.

    Installs nest: moto is patched once, by the first ``install()``, and restored by the
    ``uninstall()`` that balances it (two local stacks in one process share the patches,
    ``local.moto_patches.SharedPatches``)."""

    _lock = threading.Lock()
    _in_transaction = threading.local()
    _patches = SharedPatches(lambda patches: _patch_moto(patches, DynamoDBGuard._in_transaction))

    def __init__(self) -> None:
        self._installed = False

    def __enter__(self) -> DynamoDBGuard:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def install(self) -> DynamoDBGuard:
        with DynamoDBGuard._lock:
            if self._installed:
                return self
            DynamoDBGuard._patches.acquire()
            self._installed = True
        return self

    def uninstall(self) -> None:
        with DynamoDBGuard._lock:
            if not self._installed:
                return
            self._installed = False
            DynamoDBGuard._patches.release()

    @classmethod
    def installed(cls) -> bool:
        return cls._patches.active


def _patch_moto(patches: Patches, in_transaction: threading.local) -> None:
    """Every runtime change to moto's DynamoDB, in one place."""
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend, Table
    from moto.dynamodb.responses import DynamoHandler

    patch = patches.set

    # 1. Each action holds its tables' locks.
    original_call_action = DynamoHandler.call_action

    def call_action(handler: DynamoHandler) -> Any:
        backend = handler.dynamodb_backend
        params = getattr(handler, "params", None) or {}
        names = tables_named(handler._get_action(), params)
        with _locks_of(backend).hold(names, list(backend.tables)):
            return original_call_action(handler)

    patch(DynamoHandler, "call_action", call_action)

    # 2. Transactions keep the items they touch, not copies of whole tables.
    patch(dynamodb_models, "copy", _TransactionCopy(Table, in_transaction))
    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved = _touched_items(backend, transact_items)
        streams = _stream_marks(saved)
        in_transaction.depth = getattr(in_transaction, "depth", 0) + 1
        try:
            return original_transact(backend, transact_items)
        except BaseException:
            _restore(saved)
            _rewind_streams(streams)
            raise
        finally:
            in_transaction.depth -= 1

    patch(DynamoDBBackend, "transact_write_items", transact_write_items)

    # 3. A Query on the table's key reads its partition: moto's Table.query keeps, of
    #    ``self.all_items()`` (every item, sorted), those whose hash key is the one asked
    #    for; while it runs, ``all_items`` answers with that partition's items only.
    original_query = Table.query
    original_all_items = Table.all_items
    partition = threading.local()

    def query(table: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None:
            return original_query(table, hash_key, *args, **kwargs)
        partition.key = (table, hash_key)
        try:
            return original_query(table, hash_key, *args, **kwargs)
        finally:
            partition.key = None

    def all_items(table: Table) -> list[Any]:
        key = getattr(partition, "key", None)
        if key is None or key[0] is not table:
            return original_all_items(table)
        partition.key = None  # once: the Query's own call
        hash_key = key[1]
        if not table.range_key_attr:
            item = table.items.get(hash_key)
            return [] if item is None else [item]
        return sorted(table.items.get(hash_key, {}).values(), key=lambda item: item.range_key)

    patch(Table, "query", query)
    patch(Table, "all_items", all_items)

    # 4. Items and stream records tracked weakly; each stream shard keeps its last records.
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import StreamRecord, StreamShard

    for model in (Item, StreamRecord):
        patch(model, "instances_tracked", WeakInstances())
    original_add = StreamShard.add

    def add(shard: StreamShard, old: Any, new: Any) -> None:
        original_add(shard, old, new)
        extra = len(shard.items) - STREAM_RECORDS_KEPT
        if extra > 0:  # the oldest go; sequence numbers stay those of the records kept
            del shard.items[:extra]
            shard.starting_sequence_number += extra

    patch(StreamShard, "add", add)


def _touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> dict[tuple, tuple]:
    """(table, hash, range) → (table, hash, range, partition existed, deep copy of the item or None)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved: dict[tuple, tuple] = {}
    for item in transact_items:
        if not isinstance(item, dict) or len(item) != 1:
            continue  # moto refuses it before writing anything
        op_type, operation = next(iter(item.items()))
        if not isinstance(operation, dict):
            continue
        table = backend.tables.get(_table_name(operation.get("TableName")) or "")
        if table is None:
            continue
        attributes = operation.get("Item") if op_type == "Put" else operation.get("Key")
        if not isinstance(attributes, dict):
            continue
        key_names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
        if not all(isinstance(attributes.get(name), dict) and len(attributes[name]) == 1 for name in key_names):
            continue  # a malformed key: moto refuses it before writing anything
        hash_value = DynamoType(attributes[table.hash_key_attr])
        range_value = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
        key = (id(table), hash_value, range_value)
        if key in saved:
            continue
        if table.range_key_attr:
            partition = table.items.get(hash_value)
            current = None if partition is None else partition.get(range_value)
            existed = partition is not None
        else:
            current = table.items.get(hash_value)
            existed = current is not None
        saved[key] = (table, hash_value, range_value, existed, copy.deepcopy(current))
    return saved


def _stream_marks(saved: dict[tuple, tuple]) -> list[tuple[Any, int, int]]:
    """(stream shard, its record count, its first sequence number) of each table touched."""
    shards = {id(table.stream_shard): table.stream_shard for table, *_ in saved.values() if table.stream_shard}
    return [(shard, len(shard.items), shard.starting_sequence_number) for shard in shards.values()]


def _rewind_streams(marks: list[tuple[Any, int, int]]) -> None:
    """Drop the stream records a cancelled transaction wrote: DynamoDB writes none for it
    (moto's own rollback restores whole tables, stream included). Records the shard dropped
    from its front meanwhile (``STREAM_RECORDS_KEPT``) moved its first sequence number."""
    for shard, length, start in marks:
        kept = length - (shard.starting_sequence_number - start)
        if 0 <= kept < len(shard.items):
            del shard.items[kept:]


def _restore(saved: dict[tuple, tuple]) -> None:
    for table, hash_value, range_value, existed, item in saved.values():
        if table.range_key_attr:
            if item is not None:
                table.items[hash_value][range_value] = item
                continue
            partition = table.items.get(hash_value)
            if partition is not None:
                partition.pop(range_value, None)
                if not partition and not existed:
                    table.items.pop(hash_value, None)
        elif item is not None:
            table.items[hash_value] = item
        else:
            table.items.pop(hash_value, None)
