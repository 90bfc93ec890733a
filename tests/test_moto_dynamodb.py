"""local/dynamodb/guard.py: moto's DynamoDB with per-table locks, transactions that keep only
the items they touch, and Queries that read one partition."""

from __future__ import annotations

import sys
import threading

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from handlers.shared.table import TABLE_SCHEMA
from local.dynamodb.guard import DynamoDBGuard, _locks_of
from tests.conftest import REGION

ACCOUNT = "123456789012"
TABLE = "guarded"


@pytest.fixture
def client(aws_credentials):
    with mock_aws(), DynamoDBGuard():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**TABLE_SCHEMA.create_table_request(TABLE))
        yield dynamodb


def item(pk: str, sk: str, **values: str) -> dict:
    return {"PK": {"S": pk}, "SK": {"S": sk}, **{k: {"S": v} for k, v in values.items()}}


def everything(client) -> list[dict]:
    return sorted(client.scan(TableName=TABLE)["Items"], key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def test_a_cancelled_transaction_leaves_every_item_as_it_was(client):
    client.put_item(TableName=TABLE, Item=item("A", "1", v="old"))
    client.put_item(TableName=TABLE, Item=item("B", "1", v="doomed"))
    client.put_item(TableName=TABLE, Item=item("D", "1", v="guard"))
    backend = dynamodb_backends[ACCOUNT][REGION]
    table = backend.tables[TABLE]
    before = everything(client)
    records = list(table.stream_shard.items)
    with pytest.raises(ClientError) as cancelled:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": item("C", "1", v="new")}},
                {"Put": {"TableName": TABLE, "Item": item("E", "9", v="new partition")}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "A"}, "SK": {"S": "1"}},
                        "UpdateExpression": "SET v = :v, w = :v",
                        "ExpressionAttributeValues": {":v": {"S": "changed"}},
                    }
                },
                {"Delete": {"TableName": TABLE, "Key": {"PK": {"S": "B"}, "SK": {"S": "1"}}}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "D"}, "SK": {"S": "1"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert everything(client) == before
    assert table.stream_shard.items == records, "DynamoDB's stream records no write of a cancelled transaction"
    # Put back item by item: the table is the same object, not a copy swapped in.
    assert backend.tables[TABLE] is table
    assert (
        client.query(TableName=TABLE, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "E"}})[
            "Items"
        ]
        == []
    )


def test_a_transaction_that_succeeds_writes_everything(client):
    client.put_item(TableName=TABLE, Item=item("A", "1", v="old"))
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": item("C", "1", v="new")}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"PK": {"S": "A"}, "SK": {"S": "1"}},
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "changed"}},
                }
            },
        ]
    )
    assert [(i["PK"]["S"], i["v"]["S"]) for i in everything(client)] == [("A", "changed"), ("C", "new")]


def test_queries_answer_as_moto_does(aws_credentials):
    """The same Queries with and without the guard: the partition read changes nothing."""

    def answers() -> list:
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**TABLE_SCHEMA.create_table_request(TABLE))
        for pk in ("SESSION#a", "SESSION#b", "SESSION#c"):
            for n in range(12):
                dynamodb.put_item(
                    TableName=TABLE,
                    Item={
                        **item(pk, f"STEP#{n:04d}", body=f"{pk}-{n}"),
                        "GSI1PK": {"S": "USER#u"},
                        "GSI1SK": {"S": f"{pk}-{n:04d}"},
                    },
                )
        asked = []
        for extra in (
            {},
            {"ScanIndexForward": False},
            {"Limit": 5},
            {"Limit": 5, "ScanIndexForward": False},
        ):
            pages, start = [], None
            while True:
                page = dynamodb.query(
                    TableName=TABLE,
                    KeyConditionExpression="PK = :p AND begins_with(SK, :s)",
                    ExpressionAttributeValues={":p": {"S": "SESSION#b"}, ":s": {"S": "STEP#"}},
                    **extra,
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                pages.append([i["body"]["S"] for i in page["Items"]])
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
            asked.append(pages)
        asked.append(  # an index: moto goes through every item, as before
            dynamodb.query(
                TableName=TABLE,
                IndexName="GSI1",
                KeyConditionExpression="GSI1PK = :u",
                ExpressionAttributeValues={":u": {"S": "USER#u"}},
            )["Count"]
        )
        asked.append(
            dynamodb.query(
                TableName=TABLE, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "none"}}
            )["Items"]
        )
        return asked

    with mock_aws():
        plain = answers()
    with mock_aws(), DynamoDBGuard():
        guarded = answers()
    assert guarded == plain
    assert plain[0] == [[f"SESSION#b-{n}" for n in range(12)]]


def test_a_request_waits_for_its_tables_lock_only(client):
    client.create_table(**TABLE_SCHEMA.create_table_request("other"))
    locks = _locks_of(dynamodb_backends[ACCOUNT][REGION])
    done = {name: threading.Event() for name in (TABLE, "other")}

    def put(name: str) -> None:
        client.put_item(TableName=name, Item=item("P", "1"))
        done[name].set()

    with locks.table(TABLE):
        threads = [threading.Thread(target=put, args=(name,)) for name in done]
        for thread in threads:
            thread.start()
        assert done["other"].wait(10), "a request to another table waited"
        assert not done[TABLE].wait(0.3), "a request to a locked table went ahead"
    assert done[TABLE].wait(10)
    for thread in threads:
        thread.join()


def test_concurrent_writes_reads_and_updates(client):
    """Scans and Queries iterate moto's dicts while PutItems add to them and UpdateItems change
    items in place; without the locks this fails with "dictionary changed size during
    iteration" (the switch interval is shortened so that threads interleave often)."""
    errors: list[BaseException] = []
    stop = threading.Event()
    counter = iter(range(10**9))

    def write() -> None:  # a new partition each time, and a new item in the hot one
        n = next(counter)
        client.put_item(TableName=TABLE, Item=item(f"P#{n:08d}", "1", v="x" * 20))
        client.put_item(TableName=TABLE, Item=item("HOT", f"STEP#{n:08d}", v="x" * 20))

    def update() -> None:
        client.update_item(
            TableName=TABLE,
            Key={"PK": {"S": "HOT"}, "SK": {"S": "META"}},
            UpdateExpression=f"SET a{next(counter) % 200} = :v",
            ExpressionAttributeValues={":v": {"S": "y"}},
        )

    def read() -> None:
        client.query(TableName=TABLE, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "HOT"}})
        client.scan(TableName=TABLE, Limit=50)
        client.describe_table(TableName=TABLE)

    def loop(work) -> None:
        try:
            while not stop.is_set():
                work()
        except BaseException as error:
            errors.append(error)
            stop.set()

    for n in range(2000):
        client.put_item(TableName=TABLE, Item=item(f"SEED#{n:05d}", "1"))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=loop, args=(work,)) for work in (write, write, update, read, read)]
        for thread in threads:
            thread.start()
        stop.wait(4)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


def test_installs_nest_and_the_last_uninstall_restores_moto(aws_credentials):
    from moto.dynamodb.models import DynamoDBBackend, Table
    from moto.dynamodb.responses import DynamoHandler

    originals = (DynamoHandler.call_action, DynamoDBBackend.transact_write_items, Table.query, Table.all_items)
    first, second = DynamoDBGuard().install(), DynamoDBGuard().install()
    patched = (DynamoHandler.call_action, DynamoDBBackend.transact_write_items, Table.query, Table.all_items)
    assert all(p is not o for p, o in zip(patched, originals, strict=True))
    first.uninstall()
    assert (DynamoHandler.call_action, DynamoDBBackend.transact_write_items, Table.query, Table.all_items) == patched
    second.uninstall()
    assert (DynamoHandler.call_action, DynamoDBBackend.transact_write_items, Table.query, Table.all_items) == originals


def test_replaced_items_and_query_copies_are_not_kept(client):
    import gc
    import weakref

    from moto.dynamodb.models.dynamo_type import DynamoType

    table = dynamodb_backends[ACCOUNT][REGION].tables[TABLE]
    client.put_item(TableName=TABLE, Item=item("S", "1", v="first"))
    first = weakref.ref(table.items[DynamoType({"S": "S"})][DynamoType({"S": "1"})])
    client.put_item(TableName=TABLE, Item=item("S", "1", v="second"))  # replaces it
    for _ in range(3):  # each Query answers with copies of the items
        client.query(TableName=TABLE, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "S"}})
    gc.collect()
    assert first() is None, "moto still holds the replaced item"
    from moto.dynamodb.models.dynamo_type import Item

    assert len(Item.instances_tracked) == 1  # the one item the table holds


def test_a_tables_stream_keeps_its_last_records(client):
    from local.dynamodb.guard import STREAM_RECORDS_KEPT

    for n in range(STREAM_RECORDS_KEPT + 50):
        client.put_item(TableName=TABLE, Item=item("W", f"{n:05d}"))
    shard = dynamodb_backends[ACCOUNT][REGION].tables[TABLE].stream_shard
    records = shard.get(shard.starting_sequence_number, 10 * STREAM_RECORDS_KEPT)  # from the oldest kept
    assert len(records) == STREAM_RECORDS_KEPT
    assert records[0]["dynamodb"]["Keys"]["SK"] == {"S": "00050"}  # the 50 oldest went
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == list(range(shard.starting_sequence_number, shard.starting_sequence_number + STREAM_RECORDS_KEPT))


def test_a_cancelled_transaction_on_a_full_stream_leaves_the_records_kept(client):
    from local.dynamodb.guard import STREAM_RECORDS_KEPT

    for n in range(STREAM_RECORDS_KEPT):
        client.put_item(TableName=TABLE, Item=item("W", f"{n:05d}"))
    shard = dynamodb_backends[ACCOUNT][REGION].tables[TABLE].stream_shard
    records, first = list(shard.items), shard.starting_sequence_number
    with pytest.raises(ClientError):
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": item("X", "1")}},
                {"Put": {"TableName": TABLE, "Item": item("X", "2")}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"PK": {"S": "W"}, "SK": {"S": "00000"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )
    # No record of it: what is left is the records there were, but for the oldest its writes
    # pushed out of the shard (moto writes before it finds the condition false), numbered on.
    assert shard.items and shard.items == records[len(records) - len(shard.items) :]
    dropped = len(records) - len(shard.items)
    assert shard.starting_sequence_number == first + dropped
    assert [int(r.record["dynamodb"]["SequenceNumber"]) for r in shard.items] == list(
        range(first + dropped, first + len(records))
    )
    client.put_item(TableName=TABLE, Item=item("Y", "1"))
    newest = shard.get(shard.starting_sequence_number + len(shard.items) - 1, 1)
    assert newest[0]["dynamodb"]["Keys"]["PK"] == {"S": "Y"}
