"""DynamoDB requests and time per access pattern of the state layer, against moto.

    python -m bench.state_roundtrips [--iterations N]

Requests are counted by a botocore ``request-created`` hook on the client (one event per
HTTP request, retries included), not by hand. Each access pattern must make exactly one;
the script exits 1 if one does not. Times are per operation, beside a bare ``get_item`` on
the same moto table measured in the same run, so the ratio shows the layer's own cost
(serialization, models) over one raw round trip.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import boto3
from moto import mock_aws

from handlers.shared.store import DuplicateToolExecutionError, NewMessage, Store
from handlers.shared.table import TABLE_SCHEMA
from handlers.tools.memory import MemoryStore

TABLE = "bench-agent-state"
REGION = "us-east-1"


class RequestCounter:
    def __init__(self, client) -> None:
        self.count = 0
        client.meta.events.register("request-created.dynamodb", self._on_request)

    def _on_request(self, **_) -> None:
        self.count += 1


def measure(operation: Callable[[int], object], counter: RequestCounter, iterations: int) -> tuple[float, set[int]]:
    """Median microseconds per call and the set of request counts seen per call."""
    durations, requests = [], set()
    for i in range(iterations):
        before = counter.count
        start = time.perf_counter()
        operation(i)
        durations.append(time.perf_counter() - start)
        requests.add(counter.count - before)
    return statistics.median(durations) * 1e6, requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="state layer round trips and latency against moto")
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(**TABLE_SCHEMA.create_table_request(TABLE))
        counter = RequestCounter(client)
        store = Store(TABLE, REGION, ttl_days=30, client=client)
        memories = MemoryStore(store.table)

        # Data the reads find: a session with 50 messages, tool records, memories, a connection.
        store.sessions.create("alice", "read-session", title="bench")
        for i in range(50):
            store.conversations.append_message(
                "read-session", NewMessage(role="user", text=f"message {i} " + "x" * 200)
            )
        for i in range(20):
            store.sessions.create("alice", f"other-{i}")
        for seq in range(1, 6):
            store.tool_runs.record("read-run", seq, "calculator", status="SUCCEEDED", input={"e": "1+1"}, output=2)
        for i in range(10):
            memories.remember("alice", "travel", f"memory {i}", step_key=f"read-step-{i}")
        store.connections.put("conn-read", "alice")
        store.sessions.create("alice", "turn-session")
        first_page = store.conversations.load("read-session", limit=20)
        turn = [NewMessage(role="user", text="q"), NewMessage(role="assistant", text="a")]

        def duplicate_tool_record(i: int):
            try:
                store.tool_runs.record("read-run", 1, "calculator", status="SUCCEEDED", input={}, output=0)
            except DuplicateToolExecutionError:
                pass
            else:
                raise AssertionError("a repeated record was written")

        baseline_key = {"PK": {"S": "SESSION#read-session"}, "SK": {"S": f"~META#{REGION}"}}
        patterns: list[tuple[str, Callable[[int], object]]] = [
            ("baseline: bare get_item", lambda i: client.get_item(TableName=TABLE, Key=baseline_key)),
            # The step's position comes from the conversation prepare read: one write.
            (
                "append step (2 messages)",
                lambda i: store.conversations.append_step("turn-session", i + 2, turn, turn_id="t"),
            ),
            (
                "append step + new session + claim (txn)",
                lambda i: store.conversations.append_step(
                    f"first-{i}", 1, turn, turn_id="t", user_id="alice", new_session=True, claim_key=f"key-{i}"
                ),
            ),
            (
                "append step + touch (txn)",
                lambda i: store.conversations.append_step(
                    "turn-session", i + 1002, turn, turn_id="t", user_id="alice", touch=True
                ),
            ),
            ("conversation + metadata, newest 20", lambda i: store.conversations.load("read-session", limit=20)),
            (
                "conversation, next page",
                # The router passes the owner it checked (later pages carry no metadata).
                lambda i: store.conversations.load(
                    "read-session", limit=20, cursor=first_page.next_cursor, owner="alice"
                ),
            ),
            ("touch session", lambda i: store.sessions.touch("read-session", "alice")),
            ("create session", lambda i: store.sessions.create("bob", f"new-{i}")),
            ("recent sessions (GSI1)", lambda i: store.sessions.recent("alice", limit=10)),
            (
                "record tool execution",
                lambda i: store.tool_runs.record(f"run-{i}", 1, "calculator", status="SUCCEEDED", input={}, output=i),
            ),
            ("repeated tool record (rejected)", duplicate_tool_record),
            ("list tool executions of a run", lambda i: store.tool_runs.list("read-run")),
            ("look up tool execution", lambda i: store.tool_runs.get("read-run", 1, "calculator")),
            (
                "tool outputs by reference (batch)",
                lambda i: store.tool_runs.get_many([("read-run", seq, "calculator") for seq in range(1, 6)]),
            ),
            ("claim idempotency key", lambda i: store.idempotency.claim("alice", f"task-key-{i}", "hash")),
            ("remember (memory)", lambda i: memories.remember("alice", "food", f"fact {i}", step_key=f"step-{i}")),
            ("recall topic (memory)", lambda i: memories.recall("alice", "travel", limit=5)),
            ("store connection", lambda i: store.connections.put(f"conn-{i}", "alice")),
            ("look up connection", lambda i: store.connections.get("conn-read")),
        ]

        results = []
        for name, operation in patterns:
            operation(-1)  # warm up: first calls pay for botocore model loading
            results.append((name, *measure(operation, counter, args.iterations)))

    baseline_us = results[0][1]
    print(f"state layer against moto, {args.iterations} iterations each, median per operation")
    print(f"{'access pattern':<40} {'requests':>8} {'us/op':>10} {'x get_item':>10}")
    failed = []
    for name, micros, requests in results:
        shown = ",".join(map(str, sorted(requests)))
        print(f"{name:<40} {shown:>8} {micros:>10.0f} {micros / baseline_us:>10.2f}")
        if requests != {1}:
            failed.append(name)
    if failed:
        print(f"NOT ONE ROUND TRIP: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("every access pattern: exactly 1 DynamoDB request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
