"""DynamoDB: an item's size and the units a request of it consumes (DynamoDB's rules), and
what a turn's items cost in the global table: writes where they happen, replicated writes
and TTL deletes in the other replicas, GSI1's writes, reads, storage and PITR until the
TTL deletes them, and the inter-region transfer replication bills; the write and read units
a second a rate of turns needs in each replica."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cost.facts import StackFacts
from cost.lines import GIB, TURNS, Capacity, Line
from cost.prices import PriceTable, Regional
from cost.turn import TurnProfile


def ceil_units(size: float, unit: int) -> int:
    """Units of ``unit`` bytes a request of ``size`` bytes consumes: at least one."""
    return max(1, math.ceil(size / unit))


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Size of one attribute value in DynamoDB's typed JSON, by DynamoDB's rules
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
    strings and binary by their bytes, numbers 1 byte per two significant digits plus 1,
    booleans and nulls 1 byte, lists and maps 3 bytes plus 1 per element plus the elements."""
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "N":
        return _number_size(raw)
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(str(raw).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(_number_size(n) for n in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size: every attribute's name plus its value."""
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


# DynamoDB prices by table class: Standard-IA trades cheaper storage for dearer requests
# (https://aws.amazon.com/dynamodb/pricing/on-demand/; cost/prices.json).
TABLE_CLASS_PRICES = {
    "STANDARD": ("dynamodb.write_request_unit", "dynamodb.read_request_unit", "dynamodb.storage_gb_month"),
    "STANDARD_INFREQUENT_ACCESS": (
        "dynamodb.ia_write_request_unit",
        "dynamodb.ia_read_request_unit",
        "dynamodb.ia_storage_gb_month",
    ),
}


def turn_lines(profile: TurnProfile, facts: StackFacts, prices: PriceTable) -> list[Line]:
    """Writes, reads, storage and PITR of a turn's items, each at the rates of the regions
    that bill it."""
    at = Regional(prices, facts.regions)
    replicas = facts.table_regions - 1
    s = "" if replicas == 1 else "s"
    wru, rru, storage = TABLE_CLASS_PRICES[facts.table_class]
    ttl_units = profile.ttl_delete_units + profile.gsi_ttl_delete_units
    months = profile.table_byte_months / GIB
    return [
        Line(
            "DynamoDB writes",
            "writes where they happen",
            TURNS * profile.write_units * at.turn(wru),
            f"{profile.write_units:g} WRU a turn at ${at.rates(wru, 1e6)} per M (the turn's region)",
        ),
        Line(
            "DynamoDB writes",
            f"replicated writes ({replicas} replica{s})",
            TURNS * profile.replica_write_units * at.others(wru),
            f"{profile.replica_write_units:g} rWRU x {replicas}, each in its replica's region",
        ),
        Line(
            "DynamoDB writes",
            f"GSI1 writes ({facts.table_regions} regions)",
            TURNS * profile.gsi_write_units * at.each(wru),
            f"{profile.gsi_write_units:g} WRU in each region",
        ),
        Line(
            "DynamoDB writes",
            f"replicated TTL deletes ({replicas} replica{s})",
            TURNS * ttl_units * at.others(wru),
            f"{ttl_units:g} units x {replicas}, each in its replica's region",
        ),
        Line(
            "DynamoDB reads",
            "reads",
            TURNS * profile.read_units * at.turn(rru),
            f"{profile.read_units:g} RRU a turn at ${at.rates(rru, 1e6)} per M",
        ),
        Line(
            "DynamoDB storage",
            f"table + GSI1 storage until TTL ({facts.ttl_days} d, {facts.table_regions} regions)",
            TURNS * (months + profile.gsi_byte_months / GIB) * at.each(storage),
            f"{profile.table_byte_months / 1024:,.0f} KB-months a turn at ${at.rates(storage)} per GB-month",
        ),
        Line(
            "DynamoDB storage",
            f"PITR backup until TTL ({len(facts.pitr_regions)} regions)",
            TURNS * months * at.each("dynamodb.pitr_gb_month", facts.pitr_regions),
            f"on the table's size, in {', '.join(facts.pitr_regions) or 'no region'}",
        ),
    ]


def transfer_lines(profile: TurnProfile, facts: StackFacts, prices: PriceTable) -> list[Line]:
    """The bytes replication sends to each other replica, billed as inter-region transfer."""
    at = Regional(prices, facts.regions)
    replicas = facts.table_regions - 1
    return [
        Line(
            "transfer",
            "inter-region replication",
            TURNS * profile.written_bytes * replicas / GIB * at.turn("transfer.inter_region_gb"),
            f"{profile.written_bytes:,.0f} B x {replicas}, billed at the source region's ${at.rates('transfer.inter_region_gb')} per GB",
        )
    ]


def capacity(rate: float, profile: TurnProfile, facts: StackFacts, prices: PriceTable) -> list[Capacity]:
    """Write units a second in each replica (its region's turns, the other regions'
    replicated writes and TTL deletes, GSI1 everywhere) and read units a second, beside the
    table's quotas; ``rate`` is turns a second, all regions together."""
    per_region = rate / len(facts.regions)
    if facts.table_regions == 1:
        writes = per_region * (profile.write_units + profile.gsi_write_units)
    else:
        writes = (
            per_region * profile.write_units
            + (rate - per_region) * profile.replica_write_units
            + rate * profile.gsi_write_units
            + (rate - per_region) * (profile.ttl_delete_units + profile.gsi_ttl_delete_units)
        )
    q = prices.quotas
    return [
        Capacity.of_quota(
            "DynamoDB write units per second, each replica (TTL deletes included)",
            writes,
            q["dynamodb.table_write_units_per_second"],
        ),
        Capacity.of_quota(
            "DynamoDB write units per second, a new table at once",
            writes,
            q["dynamodb.new_table_write_units_per_second"],
        ),
        Capacity.of_quota(
            "DynamoDB read units per second, each replica",
            per_region * profile.read_units,
            q["dynamodb.table_read_units_per_second"],
        ),
    ]
