"""Two (or three) moto regions joined as one global table, for the store's multi-region tests.

``TwoRegions`` is moto with the table in each region (``local.dynamodb.global_tables.GlobalTable``,
replicating only when a test says so: every interleaving of writes and replication is the
test's to choose) and a store per region whose calls to a replica can be cut, one store at a
time: a network partition between one region's functions and another region's replica.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from handlers.shared.store import Replicas, Store
from handlers.shared.table import TABLE_SCHEMA
from local.dynamodb.global_tables import GlobalTable
from local.dynamodb.guard import DynamoDBGuard
from local.regions import Regions

TABLE = "agent-infra-regions-test"
ACCOUNT = "123456789012"
A, B, C = "us-east-1", "eu-west-1", "ap-northeast-1"


class TwoRegions:
    def __init__(self, regions: Regions, table: GlobalTable) -> None:
        self.regions = regions
        self.table = table
        self.cut: dict[str, set[str]] = {}
        """Per store's region: the replicas its calls cannot reach."""

    def store(self, region: str, ttl_days: int = 30, **kwargs: Any) -> Store:
        """A store of ``region``'s functions, reaching every replica (until ``cut``)."""
        cut = self.cut.setdefault(region, set())

        def client_for(replica: str) -> Any:
            client = self.regions.guard(boto3.client("dynamodb", region_name=replica))

            def refuse(**_: Any) -> None:
                if replica in cut:
                    raise EndpointConnectionError(endpoint_url=client.meta.endpoint_url)

            client.meta.events.register_first("before-send", refuse)
            return client

        replicas = Replicas(region, self.regions.names, client_for=client_for, **kwargs)
        return Store(TABLE, region, ttl_days, replicas=replicas)

    def partition(self, region: str, replica: str) -> None:
        """``region``'s functions can no longer reach ``replica``."""
        self.cut.setdefault(region, set()).add(replica)

    def heal(self) -> None:
        for cut in self.cut.values():
            cut.clear()

    def replicate(self, origin: str | None = None, target: str | None = None) -> int:
        """Deliver every write made so far (from ``origin`` to ``target`` only, when given)."""
        only = (origin, target) if origin and target else None
        return self.table.step(now=time.time() + 3600, only=only)

    def settle(self) -> None:
        """Replicate until nothing is on its way."""
        while self.replicate():
            pass


@contextmanager
def global_table(*names: str) -> Iterator[TwoRegions]:
    regions = Regions(names or (A, B))
    with mock_aws(), DynamoDBGuard():
        table = GlobalTable(regions, TABLE_SCHEMA.create_table_request(TABLE), ACCOUNT, lag_seconds=0)
        table.start(replicate=False)
        try:
            yield TwoRegions(regions, table)
        finally:
            table.stop()
