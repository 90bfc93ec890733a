"""Pure builders: the key schema, key construction and time-sortable ids."""

from __future__ import annotations

import pytest

from handlers.shared import table as keys
from handlers.shared.ids import ULID_LENGTH, MonotonicUlid, ulid_timestamp_ms
from handlers.shared.table import TABLE_SCHEMA


def test_create_table_request_matches_the_schema():
    request = TABLE_SCHEMA.create_table_request("t")
    assert request["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert [a["AttributeName"] for a in request["AttributeDefinitions"]] == ["PK", "SK", "GSI1PK", "GSI1SK"]
    (gsi,) = request["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "GSI1" and gsi["Projection"] == {"ProjectionType": "ALL"}
    assert request["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert request["BillingMode"] == "PAY_PER_REQUEST"


def test_metadata_sorts_after_every_step_key_and_steps_sort_by_position_then_replica():
    # The newest-first Query relies on this to return metadata and newest steps together.
    regions = ["af-south-1", "ap-northeast-1", "eu-west-1", "us-east-1", "us-gov-west-1"]
    metas = [keys.session_meta_sk(r) for r in regions]
    assert all(keys.step_sk(keys.MAX_STEP, r) < min(metas) for r in regions)
    assert all(keys.SESSION_META_PREFIX < m < keys.SESSION_META_UPPER for m in metas)
    assert keys.step_sk(1, "us-east-1") >= keys.STEP_PREFIX
    positions = [1, 2, 9, 10, 99, 100, 12_345_678]
    ordered = [keys.step_sk(n, r) for n in positions for r in regions]
    assert sorted(ordered) == ordered, "position first, then replica"
    assert [keys.step_seq(keys.step_sk(n, "eu-west-1")) for n in positions] == positions
    assert keys.step_replica(keys.step_sk(5, "ap-northeast-1")) == "ap-northeast-1"
    for bad in ("", "US-EAST-1", "us#east", "x" * 40):
        with pytest.raises(ValueError, match="replica must be a region name"):
            keys.step_sk(1, bad)


def test_key_parts_reject_separators_and_empties():
    with pytest.raises(ValueError, match="userId must not contain '#'"):
        keys.user_pk("a#b")
    with pytest.raises(ValueError, match="sessionId must be a non-empty string"):
        keys.session_pk("")
    with pytest.raises(ValueError, match="at most 256 characters"):
        keys.run_pk("x" * 257)
    with pytest.raises(ValueError, match=r"seq must be an integer in 0\.\.99999"):
        keys.tool_execution_sk(100_000, "calc")
    assert keys.tool_execution_sk(7, "calc") == "TOOL#00007#calc"
    assert keys.recent_session_sk(12, "s") < keys.recent_session_sk(100, "s")


def test_ulids_are_strictly_increasing_within_a_millisecond():
    source = MonotonicUlid(clock=lambda: 1_700_000_000.0)
    ids = [source.new() for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert all(len(i) == ULID_LENGTH for i in ids)
    assert {ulid_timestamp_ms(i) for i in ids} == {1_700_000_000_000}


def test_ulids_survive_a_clock_stepping_back():
    times = iter([2.0, 1.0, 3.0])
    source = MonotonicUlid(clock=lambda: next(times))
    a, b, c = source.new(), source.new(), source.new()
    assert a < b < c


def test_ulid_timestamp_rejects_garbage():
    with pytest.raises(ValueError, match="not a ULID"):
        ulid_timestamp_ms("hello")
