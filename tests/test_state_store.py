"""The state access layer on moto: every access pattern, pagination, conflicts, idempotency."""

from __future__ import annotations

import threading
import time

import pytest

from handlers.shared import table as keys
from handlers.shared.state import (
    CONNECTION_TTL_SECONDS,
    MAX_PAYLOAD_BYTES,
    AlreadyExistsError,
    ConflictError,
    DuplicateToolExecutionError,
    InvalidCursorError,
    NewMessage,
    NotFoundError,
    PayloadTooLargeError,
    StateStore,
)
from tests.conftest import REGION, TABLE_NAME

DAY = 86_400


def raw_items(client, pk: str) -> list[dict]:
    response = client.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )
    return response["Items"]


def test_create_session_writes_metadata_at_version_1(store, dynamodb):
    meta = store.create_session("alice", "s1", title="first")
    assert (meta.session_id, meta.user_id, meta.version, meta.title) == ("s1", "alice", 1, "first")
    (item,) = raw_items(dynamodb, "SESSION#s1")
    assert item["SK"] == {"S": keys.SESSION_META_SK}
    assert item["GSI1PK"] == {"S": "USER#alice"}
    with pytest.raises(AlreadyExistsError, match="session 's1' already exists"):
        store.create_session("mallory", "s1")
    assert store.load_conversation("s1").meta.user_id == "alice"


def test_conversation_comes_newest_first_with_metadata_in_one_query(store):
    store.create_session("alice", "s1")
    texts = [f"message {i}" for i in range(7)]
    for text in texts:
        store.append_message("s1", NewMessage(role="user", text=text))
    page = store.load_conversation("s1", limit=3)
    assert page.meta is not None and page.meta.session_id == "s1"
    assert [m.text for m in page.messages] == ["message 6", "message 5", "message 4"]
    assert page.next_cursor


def test_pagination_walks_every_message_once_in_order(store):
    store.create_session("alice", "s1")
    written = [store.append_message("s1", NewMessage(role="user", text=f"m{i}")).message_id for i in range(23)]
    seen, cursor, pages = [], None, 0
    while True:
        page = store.load_conversation("s1", limit=5, cursor=cursor)
        pages += 1
        assert (page.meta is not None) == (cursor is None), "metadata only on the first page"
        seen.extend(m.message_id for m in page.messages)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(written))
    assert pages == 5


def test_a_cursor_cannot_reach_into_another_partition(store):
    store.create_session("alice", "s1")
    for i in range(3):
        store.append_message("s1", NewMessage(role="user", text=f"m{i}"))
    with pytest.raises(InvalidCursorError, match="is not a cursor this API returned"):
        store.load_conversation("s1", limit=1, cursor="not-a-cursor!")
    forged = store.recent_sessions("alice", limit=1)
    assert forged.next_cursor is None
    with pytest.raises(InvalidCursorError):
        # a GSI1 cursor shape is not a conversation cursor
        store.load_conversation("s1", cursor="eyJwayI6IlNFU1NJT04jczEiLCJnc2siOiJTRVNTSU9OIzAifQ")


def test_session_without_metadata_still_pages(store):
    for i in range(4):
        store.append_message("orphan", NewMessage(role="user", text=f"m{i}"))
    page = store.load_conversation("orphan", limit=3)
    assert page.meta is None
    assert [m.text for m in page.messages] == ["m3", "m2", "m1"]
    rest = store.load_conversation("orphan", limit=3, cursor=page.next_cursor)
    assert [m.text for m in rest.messages] == ["m0"] and rest.next_cursor is None


def test_unknown_session_reads_empty(store):
    page = store.load_conversation("nobody")
    assert page.meta is None and page.messages == [] and page.next_cursor is None


def test_message_carries_tool_calls_usage_ttl_and_region(dynamodb):
    now = 1_800_000_000.0  # a fixed clock: the TTL is exact, not a window around the wall clock
    store = StateStore(TABLE_NAME, REGION, ttl_days=30, client=dynamodb, clock=lambda: now)
    message = store.append_message(
        "s1",
        NewMessage(
            role="assistant",
            text="2 + 2 is 4",
            tool_calls=[{"name": "calculator", "input": {"expression": "2+2"}, "output": 4.0, "status": "SUCCEEDED"}],
            usage={"inputTokens": 12, "outputTokens": 5},
        ),
    )
    (read,) = store.load_conversation("s1").messages
    assert read == message
    assert read.tool_calls[0]["output"] == 4.0
    assert read.usage == {"inputTokens": 12, "outputTokens": 5}
    (item,) = raw_items(dynamodb, "SESSION#s1")
    assert item["region"] == {"S": REGION}
    assert int(item["expiresAt"]["N"]) == int(now) + 30 * DAY


def test_message_ids_sort_by_time(store):
    ids = [store.append_message("s1", NewMessage(role="user", text=str(i))).message_id for i in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50


def test_bad_message_input_is_rejected_before_any_write(store, dynamodb):
    with pytest.raises(ValueError, match="role must be one of user, assistant, tool; got 'system'"):
        store.append_message("s1", NewMessage(role="system", text="x"))
    with pytest.raises(PayloadTooLargeError, match=f"text is {MAX_PAYLOAD_BYTES + 1} bytes"):
        store.append_message("s1", NewMessage(role="user", text="x" * (MAX_PAYLOAD_BYTES + 1)))
    with pytest.raises(ValueError, match="sessionId must not contain '#'"):
        store.append_message("a#b", NewMessage(role="user", text="x"))
    assert raw_items(dynamodb, "SESSION#s1") == []


def test_stale_version_raises_conflict_and_changes_nothing(store):
    store.create_session("alice", "s1", title="t0")
    updated = store.update_session("s1", expected_version=1, title="t1")
    assert updated.version == 2 and updated.title == "t1"
    with pytest.raises(ConflictError) as caught:
        store.update_session("s1", expected_version=1, title="lost")
    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    assert store.load_conversation("s1").meta.title == "t1"
    with pytest.raises(NotFoundError, match="session 'ghost' does not exist"):
        store.update_session("ghost", expected_version=1)


def test_persist_turn_writes_messages_and_bumps_version_atomically(store):
    store.create_session("alice", "s1")
    version, written = store.persist_turn(
        "s1", 1, [NewMessage(role="user", text="hi"), NewMessage(role="assistant", text="hello")]
    )
    assert version == 2 and [m.text for m in written] == ["hi", "hello"]
    page = store.load_conversation("s1")
    assert page.meta.version == 2
    assert [m.text for m in page.messages] == ["hello", "hi"]
    with pytest.raises(ConflictError):
        store.persist_turn("s1", 1, [NewMessage(role="user", text="from a stale reader")])
    assert [m.text for m in store.load_conversation("s1").messages] == ["hello", "hi"], "nothing written on conflict"
    with pytest.raises(NotFoundError):
        store.persist_turn("ghost", 1, [NewMessage(role="user", text="x")])


def test_a_reader_that_lost_the_race_gets_a_conflict(store):
    # Two turns read version 1; the first to write wins. (moto applies transactions without
    # isolation between threads, so the race is played in order: the check is the same.)
    store.create_session("alice", "s1")
    seen_by_both = store.load_conversation("s1").meta.version
    store.persist_turn("s1", seen_by_both, [NewMessage(role="user", text="winner")])
    with pytest.raises(ConflictError) as caught:
        store.persist_turn("s1", seen_by_both, [NewMessage(role="user", text="loser")])
    assert caught.value.actual_version == 2
    page = store.load_conversation("s1")
    assert page.meta.version == 2 and [m.text for m in page.messages] == ["winner"]


def test_two_concurrent_writers_lose_no_message(dynamodb):
    per_writer = 120
    writers = [StateStore(TABLE_NAME, region, ttl_days=30, client=dynamodb) for region in ("us-east-1", "eu-west-1")]
    writers[0].create_session("alice", "shared")
    barrier = threading.Barrier(len(writers))
    errors: list[BaseException] = []

    def write(store: StateStore, name: str):
        barrier.wait()
        try:
            for i in range(per_writer):
                store.append_message("shared", NewMessage(role="user", text=f"{name}-{i}"))
        except BaseException as error:  # surfaced below; a thread must not swallow it
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w, f"w{n}")) for n, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    messages, cursor = [], None
    while True:
        page = writers[0].load_conversation("shared", limit=100, cursor=cursor)
        messages.extend(page.messages)
        if not (cursor := page.next_cursor):
            break
    texts = [m.text for m in messages]
    assert len(texts) == 2 * per_writer
    assert set(texts) == {f"w{n}-{i}" for n in range(2) for i in range(per_writer)}
    for name in ("w0", "w1"):
        own = [int(t.split("-")[1]) for t in reversed(texts) if t.startswith(name)]
        assert own == list(range(per_writer)), "each writer's messages keep their order"
    assert {m.region for m in messages} == {"us-east-1", "eu-west-1"}


def test_recent_sessions_through_gsi1_most_recent_first_and_paginated(store):
    clock = iter(range(1_000, 10_000_000, 1_000))
    timed = StateStore(TABLE_NAME, REGION, ttl_days=30, client=store.client, clock=lambda: next(clock) + time.time())
    for i in range(5):
        timed.create_session("alice", f"s{i}")
    timed.create_session("bob", "b0")
    timed.update_session("s1", expected_version=1)  # s1 becomes the most recently active
    first = timed.recent_sessions("alice", limit=2)
    assert [s.session_id for s in first.sessions] == ["s1", "s4"]
    second = timed.recent_sessions("alice", limit=2, cursor=first.next_cursor)
    assert [s.session_id for s in second.sessions] == ["s3", "s2"]
    third = timed.recent_sessions("alice", limit=2, cursor=second.next_cursor)
    assert [s.session_id for s in third.sessions] == ["s0"]
    assert third.next_cursor is None
    assert [s.session_id for s in timed.recent_sessions("bob").sessions] == ["b0"]
    with pytest.raises(InvalidCursorError):
        timed.recent_sessions("alice", cursor="eyJzayI6Ik1TRyMxIn0")


def test_tool_executions_are_recorded_once_and_listed_in_order(store, dynamodb):
    first = store.record_tool_execution(
        "run-1",
        2,
        "create_ticket",
        status="SUCCEEDED",
        input={"title": "t"},
        output={"ticketId": "T-1"},
        compensable=True,
    )
    store.record_tool_execution("run-1", 1, "calculator", status="SUCCEEDED", input={"expression": "1+1"}, output=2)
    with pytest.raises(DuplicateToolExecutionError) as caught:
        store.record_tool_execution(
            "run-1",
            2,
            "create_ticket",
            status="SUCCEEDED",
            input={"title": "t"},
            output={"ticketId": "T-2"},
            compensable=True,
        )
    assert caught.value.existing == first, "the first record comes back, unchanged"
    listed = store.list_tool_executions("run-1")
    assert [(e.seq, e.tool_name, e.output) for e in listed] == [
        (1, "calculator", 2),
        (2, "create_ticket", {"ticketId": "T-1"}),
    ]
    assert len(raw_items(dynamodb, "RUN#run-1")) == 2
    assert store.list_tool_executions("run-2") == []
    with pytest.raises(ValueError, match="status must be one of"):
        store.record_tool_execution("run-1", 3, "calculator", status="DONE", input=None, output=None)


def test_memory_by_topic_newest_first(store):
    store.remember("alice", "travel", "prefers window seats", idempotency_key="step-1")
    store.remember("alice", "travel", "flies from Lisbon", idempotency_key="step-2")
    store.remember("alice", "food", "vegetarian", idempotency_key="step-3")
    store.remember("bob", "travel", "aisle", idempotency_key="step-1")
    assert [m.text for m in store.recall("alice", "travel")] == ["flies from Lisbon", "prefers window seats"]
    assert [m.text for m in store.recall("alice", "travel", limit=1)] == ["flies from Lisbon"]
    assert [m.text for m in store.recall("alice", "food")] == ["vegetarian"]
    assert store.recall("alice", "trav") == [], "a topic is matched whole, not by prefix"


def test_a_memory_is_written_once_per_idempotency_key(store, dynamodb):
    # Two deliveries of one step: the second write stores nothing and returns the first memory,
    # from the failed condition of the same request.
    first = store.remember("alice", "travel", "prefers window seats", idempotency_key="k1")
    again = store.remember("alice", "travel", "prefers window seats", idempotency_key="k1")
    assert again == first
    late = store.remember("alice", "travel", "a retry that says it differently", idempotency_key="k1")
    assert late == first, "the first write wins, whatever a later delivery carries"
    memories = [i for i in raw_items(dynamodb, "USER#alice") if i["SK"]["S"].startswith("MEM#")]
    assert len(memories) == 1
    assert [m.text for m in store.recall("alice", "travel")] == ["prefers window seats"]
    other_step = store.remember("alice", "travel", "prefers window seats", idempotency_key="k2")
    assert other_step.memory_id != first.memory_id, "another step remembers again, on purpose"
    with pytest.raises(ValueError, match="idempotency key must not contain '#'"):
        store.remember("alice", "travel", "x", idempotency_key="a#b")


def test_connections_store_user_region_and_short_ttl(dynamodb):
    now = [1_800_000_000.0]
    store = StateStore(TABLE_NAME, "eu-west-1", ttl_days=30, client=dynamodb, clock=lambda: now[0])
    stored = store.put_connection("abc=", "alice")
    assert stored.region == "eu-west-1" and stored.user_id == "alice"
    assert stored.expires_at == int(now[0]) + CONNECTION_TTL_SECONDS
    assert store.get_connection("abc=") == stored
    now[0] += CONNECTION_TTL_SECONDS + 1
    assert store.get_connection("abc=") is None, "past its TTL even before DynamoDB deletes it"
    store.delete_connection("abc=")
    assert raw_items(dynamodb, "CONN#abc=") == []
    store.delete_connection("abc=")  # idempotent
    assert store.get_connection("never") is None


def test_every_item_kind_carries_ttl_and_region(dynamodb):
    now = 1_800_000_000.0
    store = StateStore(TABLE_NAME, REGION, ttl_days=30, client=dynamodb, clock=lambda: now)
    store.create_session("alice", "s1")
    store.append_message("s1", NewMessage(role="user", text="x"))
    store.record_tool_execution("r1", 1, "calculator", status="SUCCEEDED", input={}, output=1)
    store.remember("alice", "t", "x", idempotency_key="step-1")
    store.put_connection("c1", "alice")
    items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
    assert len(items) == 6, "the memory comes with the claim of the step that wrote it"
    for item in items:
        assert item["region"] == {"S": REGION}
        ttl = CONNECTION_TTL_SECONDS if item["PK"]["S"].startswith("CONN#") else 30 * DAY
        assert int(item["expiresAt"]["N"]) == int(now) + ttl


def test_invalid_limits_are_named(store):
    with pytest.raises(ValueError, match=r"limit must be an integer in 1\.\.100, got 0"):
        store.load_conversation("s1", limit=0)
    with pytest.raises(ValueError, match=r"limit must be an integer in 1\.\.100, got 101"):
        store.recent_sessions("alice", limit=101)
    with pytest.raises(ValueError, match="ttl_days must be a positive integer"):
        StateStore(TABLE_NAME, REGION, ttl_days=0)
