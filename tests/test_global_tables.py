"""The local global table (local/dynamodb/global_tables.py): replication as AWS documents it.

Last writer wins per item, deletes included; writes held while a region is down and sent when
it returns; the lag; TTL deletes replicated; a cancelled transaction never replicated.
"""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tests.regions import TABLE, A, B, global_table


def put(region: str, sk: str, value: str, **extra) -> None:
    boto3.client("dynamodb", region_name=region).put_item(
        TableName=TABLE, Item={"PK": {"S": "P"}, "SK": {"S": sk}, "v": {"S": value}, **extra}
    )


def value(regions, region: str, sk: str) -> str | None:
    item = regions.table.items(region).get(("P", sk))
    return None if item is None else item["v"]["S"]


def test_the_later_write_wins_in_both_replicas_whichever_arrives_last():
    with global_table() as regions:
        put(A, "x", "first, in a")
        put(B, "x", "second, in b")
        regions.replicate(B, A)  # the later write arrives first...
        regions.replicate(A, B)  # ...and the earlier one after it, where it loses
        assert value(regions, A, "x") == value(regions, B, "x") == "second, in b"
        assert regions.table.superseded == 1


def test_a_delete_is_not_undone_by_an_older_write_arriving_late():
    with global_table() as regions:
        put(A, "x", "v1")
        regions.settle()
        put(A, "x", "v2, not yet replicated")
        boto3.client("dynamodb", region_name=B).delete_item(TableName=TABLE, Key={"PK": {"S": "P"}, "SK": {"S": "x"}})
        regions.replicate(B, A)  # the delete, later, arrives first
        regions.replicate(A, B)  # v2 arrives after it and is older
        assert value(regions, A, "x") is None and value(regions, B, "x") is None


def test_a_write_waits_for_the_lag():
    with global_table() as regions:
        regions.table.lag_seconds = 1.0
        put(A, "x", "v")
        written = time.time()  # the replicator is asked as of a given moment: no waiting here
        assert regions.table.step(now=written) == 0
        assert value(regions, B, "x") is None
        assert regions.table.step(now=written + 1.5) == 1
        assert value(regions, B, "x") == "v"


def test_a_region_that_is_down_neither_sends_nor_receives_until_it_is_back():
    with global_table() as regions:
        put(A, "held", "written in a before it failed")
        regions.regions.kill(A)
        with pytest.raises(EndpointConnectionError):
            regions.regions.guard(boto3.client("dynamodb", region_name=A)).get_item(
                TableName=TABLE, Key={"PK": {"S": "P"}, "SK": {"S": "held"}}
            )
        put(B, "waiting", "written in b while a is down")
        assert regions.replicate() == 0
        assert value(regions, B, "held") is None and regions.table.pending(A) == 1
        assert [w.key for w in regions.table.pending_writes(A)] == [("P", "held")]
        regions.regions.revive(A)
        regions.settle()
        assert regions.table.differences() == []
        assert value(regions, A, "waiting") and value(regions, B, "held")


def test_ttl_deletes_in_one_replica_reach_the_others():
    with global_table() as regions:
        put(A, "old", "v", expiresAt={"N": "100"})
        put(A, "new", "v", expiresAt={"N": str(int(time.time()) + 3600)})
        regions.settle()
        today = time.time()
        assert regions.table.expire(now_s=today) == 2  # "old" in each replica
        regions.settle()
        assert value(regions, A, "old") is None and value(regions, B, "old") is None
        assert value(regions, B, "new") == "v"


def test_a_cancelled_transaction_replicates_nothing():
    with global_table() as regions:
        put(A, "exists", "v")
        with pytest.raises(ClientError):
            boto3.client("dynamodb", region_name=A).transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "P"}, "SK": {"S": "new"}, "v": {"S": "x"}}}},
                    {
                        "Put": {
                            "TableName": TABLE,
                            "Item": {"PK": {"S": "P"}, "SK": {"S": "exists"}, "v": {"S": "y"}},
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                ]
            )
        regions.settle()
        assert value(regions, B, "new") is None and value(regions, B, "exists") == "v"
        assert regions.table.differences() == []
