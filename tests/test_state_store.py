"""The state access layer on moto: every access pattern, pagination, conflicts, idempotency."""

from __future__ import annotations

import json
import threading
import time
import zlib

import pytest

from handlers.shared import table as keys
from handlers.shared.store import (
    CONNECTION_TTL_SECONDS,
    MAX_PAYLOAD_BYTES,
    AlreadyExistsError,
    ConflictError,
    DuplicateRequestError,
    DuplicateToolExecutionError,
    InvalidCursorError,
    NewMessage,
    NotFoundError,
    PayloadTooLargeError,
    SessionOwnershipError,
    StateError,
    Store,
)
from handlers.tools.memory import MemoryStore
from tests.conftest import REGION, TABLE_NAME

DAY = 86_400


def raw_items(client, pk: str) -> list[dict]:
    response = client.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )
    return response["Items"]


def test_create_session_writes_metadata(store, dynamodb):
    meta = store.sessions.create("alice", "s1", title="first")
    assert (meta.session_id, meta.user_id, meta.title) == ("s1", "alice", "first")
    (item,) = raw_items(dynamodb, "SESSION#s1")
    assert item["SK"] == {"S": keys.session_meta_sk(REGION)}
    assert item["GSI1PK"] == {"S": "USER#alice"}
    with pytest.raises(AlreadyExistsError, match="session 's1' already exists"):
        store.sessions.create("mallory", "s1")
    assert store.conversations.load("s1").meta.user_id == "alice"


def step(store, seq, *texts, turn="t", **options):
    return store.conversations.append_step(
        "s1", seq, [NewMessage(role="user", text=t) for t in texts], turn_id=turn, **options
    )


def test_conversation_comes_newest_first_with_metadata_in_one_query(store):
    store.sessions.create("alice", "s1")
    for seq in range(1, 8):
        step(store, seq, f"message {seq}")
    page = store.conversations.load("s1", limit=3)
    assert page.meta is not None and page.meta.session_id == "s1" and page.last_seq == 7
    assert [m.text for m in page.messages] == ["message 7", "message 6", "message 5"]
    assert page.next_cursor


def test_pagination_walks_every_message_once_in_order_even_inside_a_step(store):
    store.sessions.create("alice", "s1")
    written = []
    for seq in range(1, 12):  # steps of 1, 2 and 3 messages, so pages end inside steps
        texts = [f"m{seq}.{i}" for i in range(seq % 3 + 1)]
        written.extend(m.message_id for m in step(store, seq, *texts))
    seen, cursor, pages = [], None, 0
    while True:
        page = store.conversations.load("s1", limit=5, cursor=cursor)
        pages += 1
        assert (page.meta is not None) == (cursor is None), "metadata only on the first page"
        seen.extend(m.message_id for m in page.messages)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(written))
    assert pages == -(-len(written) // 5)


def test_a_cursor_cannot_reach_into_another_partition(store):
    store.sessions.create("alice", "s1")
    for seq in range(1, 4):
        step(store, seq, f"m{seq}")
    with pytest.raises(InvalidCursorError, match="is not a cursor this API returned"):
        store.conversations.load("s1", limit=1, cursor="not-a-cursor!")
    forged = store.sessions.recent("alice", limit=1)
    assert forged.next_cursor is None
    with pytest.raises(InvalidCursorError):
        # a GSI1 cursor shape is not a conversation cursor
        store.conversations.load("s1", cursor="eyJwayI6IlNFU1NJT04jczEiLCJnc2siOiJTRVNTSU9OIzAifQ")


def test_session_without_metadata_still_pages(store):
    for seq in range(1, 5):
        store.conversations.append_step("orphan", seq, [NewMessage(role="user", text=f"m{seq}")], turn_id="t")
    page = store.conversations.load("orphan", limit=3)
    assert page.meta is None
    assert [m.text for m in page.messages] == ["m4", "m3", "m2"]
    rest = store.conversations.load("orphan", limit=3, cursor=page.next_cursor)
    assert [m.text for m in rest.messages] == ["m1"] and rest.next_cursor is None


def test_unknown_session_reads_empty(store):
    page = store.conversations.load("nobody")
    assert page.meta is None and page.messages == [] and page.next_cursor is None and page.last_seq == 0


def test_a_step_carries_its_messages_tool_calls_usage_ttl_and_region(dynamodb):
    now = 1_800_000_000.0  # a fixed clock: the TTL is exact, not a window around the wall clock
    store = Store(TABLE_NAME, REGION, ttl_days=30, client=dynamodb, clock=lambda: now)
    written = store.conversations.append_step(
        "s1",
        1,
        [
            NewMessage(role="user", text="2 + 2?"),
            NewMessage(
                role="assistant",
                text="2 + 2 is 4",
                tool_calls=[{"name": "calculator", "input": {"expression": "2+2"}, "output": 4.0}],
                usage={"inputTokens": 12, "outputTokens": 5},
            ),
        ],
        turn_id="exec-1",
    )
    read = list(reversed(store.conversations.load("s1").messages))
    assert read == written
    assert [m.message_id for m in read] == ["00000001-us-east-1-0", "00000001-us-east-1-1"]
    assert read[1].tool_calls[0]["output"] == 4.0 and read[1].usage == {"inputTokens": 12, "outputTokens": 5}
    assert {m.turn_id for m in read} == {"exec-1"}
    (item,) = raw_items(dynamodb, "SESSION#s1")
    assert item["region"] == {"S": REGION}
    assert int(item["expiresAt"]["N"]) == int(now) + 30 * DAY


ANSWER = (
    "DynamoDB charges a write unit for each kilobyte an item holds, in every replica, and keeps "
    "each item until its time to live. An answer of a few hundred tokens is one or two kilobytes "
    "of English, which compresses to well under half of that. "
) * 5


def test_a_long_step_is_stored_compressed_and_reads_back_whole(store, dynamodb):
    written = step(store, 1, "what does a turn cost?", ANSWER + '¡sí! 漢字 \u2028 "quoted" \\')
    (item,) = raw_items(dynamodb, "SESSION#s1")
    assert "messages" not in item and set(item["messagesZ"]) == {"B"}
    text_bytes = len(json.dumps([{"role": "user", "text": m.text} for m in written], ensure_ascii=False).encode())
    assert len(item["messagesZ"]["B"]) < text_bytes / 2, "English prose compresses to under half"
    assert list(reversed(store.conversations.load("s1").messages)) == written


def test_a_short_step_stays_text_and_older_text_items_still_read(store, dynamodb):
    step(store, 1, "hi")
    (item,) = raw_items(dynamodb, "SESSION#s1")
    assert set(item["messages"]) == {"S"} and "messagesZ" not in item
    # A step written before compression existed: long JSON text in "messages".
    old = dict(
        item, SK={"S": keys.step_sk(2, REGION)}, messages={"S": json.dumps([{"role": "assistant", "text": ANSWER}])}
    )
    dynamodb.put_item(TableName=TABLE_NAME, Item=old)
    assert [m.text for m in store.conversations.load("s1").messages] == [ANSWER, "hi"]


def test_a_compressed_step_that_would_inflate_past_an_items_worth_is_refused(store, dynamodb):
    step(store, 1, "hi")
    (item,) = raw_items(dynamodb, "SESSION#s1")
    bomb = zlib.compress(b"[" + b" " * (MAX_PAYLOAD_BYTES + 10) + b"]", 9)  # a few hundred bytes
    hostile = {k: v for k, v in item.items() if k != "messages"} | {
        "SK": {"S": keys.step_sk(2, REGION)},
        "messagesZ": {"B": bomb},
    }
    dynamodb.put_item(TableName=TABLE_NAME, Item=hostile)
    with pytest.raises(StateError, match=f"more than {MAX_PAYLOAD_BYTES} bytes"):
        store.conversations.load("s1")


def test_bad_step_input_is_rejected_before_any_write(store, dynamodb):
    step_of = [NewMessage(role="system", text="x")]
    with pytest.raises(ValueError, match="role must be one of user, assistant, tool, failed; got 'system'"):
        store.conversations.append_step("s1", 1, step_of, turn_id="t")
    with pytest.raises(PayloadTooLargeError, match=f"text is {MAX_PAYLOAD_BYTES + 1} bytes"):
        store.conversations.append_step(
            "s1", 1, [NewMessage(role="user", text="x" * (MAX_PAYLOAD_BYTES + 1))], turn_id="t"
        )
    with pytest.raises(ValueError, match="sessionId must not contain '#'"):
        store.conversations.append_step("a#b", 1, [NewMessage(role="user", text="x")], turn_id="t")
    with pytest.raises(ValueError, match=r"seq must be an integer in 1\.\.99999999"):
        store.conversations.append_step("s1", 0, [NewMessage(role="user", text="x")], turn_id="t")
    with pytest.raises(ValueError, match=r"a step holds 1\.\.4 messages"):
        store.conversations.append_step("s1", 1, [], turn_id="t")
    assert raw_items(dynamodb, "SESSION#s1") == []


def test_a_writer_that_lost_the_race_for_a_position_gets_a_conflict_and_writes_nothing(store):
    # Two turns read the conversation at step 1; the first to write step 2 wins. (moto applies
    # writes without isolation between threads, so the race is played in order.)
    store.sessions.create("alice", "s1")
    step(store, 1, "first")
    next_seq = store.conversations.load("s1").last_seq + 1
    step(store, next_seq, "winner", turn="a")
    with pytest.raises(ConflictError) as caught:
        step(store, next_seq, "loser", turn="b")
    assert caught.value.seq == 2
    assert [m.text for m in store.conversations.load("s1").messages] == ["winner", "first"]


def test_a_sessions_first_step_creates_its_metadata_in_the_same_write(store, dynamodb):
    written = step(store, 1, "hello", user_id="alice", new_session=True)
    page = store.conversations.load("s1")
    assert page.meta.user_id == "alice" and [m.text for m in page.messages] == ["hello"] and written
    # Another user creating the same session at once: refused, and nothing of theirs is written.
    with pytest.raises(SessionOwnershipError):
        store.conversations.append_step(
            "s1", 2, [NewMessage(role="user", text="mine")], turn_id="t2", user_id="bob", new_session=True
        )
    assert [m.text for m in store.conversations.load("s1").messages] == ["hello"]
    with pytest.raises(ConflictError):  # the same user, who lost the race: read again
        store.conversations.append_step(
            "s1", 2, [NewMessage(role="user", text="again")], turn_id="t3", user_id="alice", new_session=True
        )


def test_touching_a_session_moves_it_up_the_recent_list_at_most_every_ten_minutes(dynamodb):
    now = [1_800_000_000.0]
    store = Store(TABLE_NAME, REGION, ttl_days=30, client=dynamodb, clock=lambda: now[0])
    step(store, 1, "hi", user_id="alice", new_session=True)
    meta = store.sessions.get("s1")
    now[0] += 60
    assert store.sessions.needs_touch(meta) is False, "a step a minute later writes one item"
    now[0] += 600
    assert store.sessions.needs_touch(meta) is True
    step(store, 2, "later", user_id="alice", touch=True)
    assert store.sessions.get("s1").updated_at_ms == int(now[0] * 1000)
    with pytest.raises(NotFoundError, match="session 'ghost' does not exist"):
        store.sessions.touch("ghost", "alice")
    with pytest.raises(SessionOwnershipError):
        store.sessions.touch("s1", "mallory")


def test_a_turns_idempotency_key_is_claimed_with_its_first_step(store):
    step(store, 1, "hi", user_id="alice", new_session=True, claim_key="k" * 40)
    with pytest.raises(DuplicateRequestError):
        step(store, 2, "replayed", user_id="alice", claim_key="k" * 40)
    assert [m.text for m in store.conversations.load("s1").messages] == ["hi"], "nothing of the replay written"


def test_two_concurrent_writers_lose_no_step(dynamodb):
    per_writer = 60
    writers = [Store(TABLE_NAME, REGION, ttl_days=30, client=dynamodb) for _ in range(2)]
    writers[0].sessions.create("alice", "shared")
    barrier = threading.Barrier(len(writers))
    errors: list[BaseException] = []

    def write(store: Store, name: str):
        barrier.wait()
        try:
            for i in range(per_writer):
                store.conversations.append_message("shared", NewMessage(role="user", text=f"{name}-{i}"), turn_id=name)
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
        page = writers[0].conversations.load("shared", limit=100, cursor=cursor)
        messages.extend(page.messages)
        if not (cursor := page.next_cursor):
            break
    texts = [m.text for m in messages]
    assert len(texts) == 2 * per_writer
    assert set(texts) == {f"w{n}-{i}" for n in range(2) for i in range(per_writer)}
    assert sorted(m.seq for m in messages) == list(range(1, 2 * per_writer + 1)), "every position once"
    for name in ("w0", "w1"):
        own = [int(t.split("-")[1]) for t in reversed(texts) if t.startswith(name)]
        assert own == list(range(per_writer)), "each writer's messages keep their order"


def test_recent_sessions_through_gsi1_most_recent_first_and_paginated(store):
    clock = iter(range(1_000, 10_000_000, 1_000))
    timed = Store(TABLE_NAME, REGION, ttl_days=30, client=store.table.client, clock=lambda: next(clock) + time.time())
    for i in range(5):
        timed.sessions.create("alice", f"s{i}")
    timed.sessions.create("bob", "b0")
    timed.sessions.touch("s1", "alice")  # s1 becomes the most recently active
    first = timed.sessions.recent("alice", limit=2)
    assert [s.session_id for s in first.sessions] == ["s1", "s4"]
    second = timed.sessions.recent("alice", limit=2, cursor=first.next_cursor)
    assert [s.session_id for s in second.sessions] == ["s3", "s2"]
    third = timed.sessions.recent("alice", limit=2, cursor=second.next_cursor)
    assert [s.session_id for s in third.sessions] == ["s0"]
    assert third.next_cursor is None
    assert [s.session_id for s in timed.sessions.recent("bob").sessions] == ["b0"]
    with pytest.raises(InvalidCursorError):
        timed.sessions.recent("alice", cursor="eyJzayI6Ik1TRyMxIn0")


def test_tool_executions_are_recorded_once_and_listed_in_order(store, dynamodb):
    first = store.tool_runs.record(
        "run-1",
        2,
        "create_ticket",
        status="SUCCEEDED",
        input={"title": "t"},
        output={"ticketId": "T-1"},
        compensable=True,
    )
    store.tool_runs.record("run-1", 1, "calculator", status="SUCCEEDED", input={"expression": "1+1"}, output=2)
    with pytest.raises(DuplicateToolExecutionError) as caught:
        store.tool_runs.record(
            "run-1",
            2,
            "create_ticket",
            status="SUCCEEDED",
            input={"title": "t"},
            output={"ticketId": "T-2"},
            compensable=True,
        )
    assert caught.value.existing == first, "the first record comes back, unchanged"
    listed = store.tool_runs.list("run-1")
    assert [(e.seq, e.tool_name, e.output) for e in listed] == [
        (1, "calculator", 2),
        (2, "create_ticket", {"ticketId": "T-1"}),
    ]
    assert len(raw_items(dynamodb, "RUN#run-1")) == 2
    assert store.tool_runs.list("run-2") == []
    with pytest.raises(ValueError, match="status must be one of"):
        store.tool_runs.record("run-1", 3, "calculator", status="DONE", input=None, output=None)


def test_memory_by_topic_newest_first(store):
    memory = MemoryStore(store.table)
    memory.remember("alice", "travel", "prefers window seats", step_key=keys.memory_step_key(1_000, 1, "step-1"))
    memory.remember("alice", "travel", "flies from Lisbon", step_key=keys.memory_step_key(2_000, 1, "step-2"))
    memory.remember("alice", "food", "vegetarian", step_key=keys.memory_step_key(3_000, 1, "step-3"))
    memory.remember("bob", "travel", "aisle", step_key=keys.memory_step_key(1_000, 1, "step-1"))
    assert [m.text for m in memory.recall("alice", "travel")] == ["flies from Lisbon", "prefers window seats"]
    assert [m.text for m in memory.recall("alice", "travel", limit=1)] == ["flies from Lisbon"]
    assert [m.text for m in memory.recall("alice", "food")] == ["vegetarian"]
    assert memory.recall("alice", "trav") == [], "a topic is matched whole, not by prefix"


def test_a_memory_is_written_once_per_step_in_one_put(store, dynamodb):
    memory = MemoryStore(store.table)
    # Two deliveries of one step name the same memory: the second write stores nothing and
    # returns the first memory, from the failed condition of the same request.
    key = keys.memory_step_key(1_800_000_000_000, 101, "k1")
    first = memory.remember("alice", "travel", "prefers window seats", step_key=key)
    again = memory.remember("alice", "travel", "prefers window seats", step_key=key)
    assert again == first
    late = memory.remember("alice", "travel", "a retry that says it differently", step_key=key)
    assert late == first, "the first write wins, whatever a later delivery carries"
    memories = [i for i in raw_items(dynamodb, "USER#alice") if i["SK"]["S"].startswith("MEM#")]
    assert len(memories) == 1
    assert [m.text for m in memory.recall("alice", "travel")] == ["prefers window seats"]
    other_step = memory.remember("alice", "travel", "prefers window seats", step_key=keys.memory_step_key(1, 101, "k2"))
    assert other_step.memory_id != first.memory_id, "another step remembers again, on purpose"
    with pytest.raises(ValueError, match="memory step key must not contain '#'"):
        memory.remember("alice", "travel", "x", step_key="a#b")


def test_connections_store_user_region_and_short_ttl(dynamodb):
    now = [1_800_000_000.0]
    store = Store(TABLE_NAME, "eu-west-1", ttl_days=30, client=dynamodb, clock=lambda: now[0])
    stored = store.connections.put("abc=", "alice")
    assert stored.region == "eu-west-1" and stored.user_id == "alice"
    assert stored.expires_at == int(now[0]) + CONNECTION_TTL_SECONDS
    assert store.connections.get("abc=") == stored
    now[0] += CONNECTION_TTL_SECONDS + 1
    assert store.connections.get("abc=") is None, "past its TTL even before DynamoDB deletes it"
    store.connections.delete("abc=")
    assert raw_items(dynamodb, "CONN#abc=") == []
    store.connections.delete("abc=")  # idempotent
    assert store.connections.get("never") is None


def test_every_item_kind_carries_ttl_and_region(dynamodb):
    now = 1_800_000_000.0
    store = Store(TABLE_NAME, REGION, ttl_days=30, client=dynamodb, clock=lambda: now)
    store.sessions.create("alice", "s1")
    store.conversations.append_message("s1", NewMessage(role="user", text="x"))
    store.tool_runs.record("r1", 1, "calculator", status="SUCCEEDED", input={}, output=1)
    MemoryStore(store.table).remember("alice", "t", "x", step_key=keys.memory_step_key(1, 1, "step-1"))
    store.connections.put("c1", "alice")
    items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
    assert len(items) == 5
    for item in items:
        assert item["region"] == {"S": REGION}
        ttl = CONNECTION_TTL_SECONDS if item["PK"]["S"].startswith("CONN#") else 30 * DAY
        assert int(item["expiresAt"]["N"]) == int(now) + ttl


def test_invalid_limits_are_named(store):
    with pytest.raises(ValueError, match=r"limit must be an integer in 1\.\.100, got 0"):
        store.conversations.load("s1", limit=0)
    with pytest.raises(ValueError, match=r"limit must be an integer in 1\.\.100, got 101"):
        store.sessions.recent("alice", limit=101)
    with pytest.raises(ValueError, match="ttl_days must be a positive integer"):
        Store(TABLE_NAME, REGION, ttl_days=0)
