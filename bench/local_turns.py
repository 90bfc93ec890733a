"""Turns through the local stack: throughput, latency, and DynamoDB requests per turn.

    python -m bench.local_turns [--turns 200]

Runs direct-answer chat turns over HTTP against a local stack on free ports, first one at
a time, then 8 at a time, and prints turns per second and p50/p99 latency. The DynamoDB
requests the turns make for state are counted by a botocore ``request-created`` hook on
the state store's client (each turn must make at most 2: one Query to load, one write to
persist). Beside it, in the same run: bare moto ``put_item`` + ``query`` pairs, the floor
any turn on this embedded AWS pays for its state.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local stack turns")
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args(argv)

    from local.stack import LocalStack

    stack = LocalStack("dev", moto_port=None, log=lambda line: None).start()
    counted = {"n": 0}
    lock = threading.Lock()

    def count(**_):
        with lock:
            counted["n"] += 1

    stack.store.table.client.meta.events.register("request-created.dynamodb", count)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {stack.dev_token}", "content-type": "application/json"}

    def turn(_: int) -> float:
        start = time.perf_counter()
        response = session.post(
            f"{stack.rest.url}/v1/sessions/b-{uuid.uuid4().hex[:10]}/messages",
            headers=headers,
            data='{"message": "hello"}',
            timeout=60,
        )
        response.raise_for_status()
        return time.perf_counter() - start

    try:
        import contextlib
        import io
        import logging

        logging.disable(logging.CRITICAL)
        results = {}
        for concurrency in (1, 8):
            counted["n"] = 0
            with contextlib.redirect_stdout(io.StringIO()):
                started = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    latencies = list(pool.map(turn, range(args.turns)))
                wall = time.perf_counter() - started
            results[concurrency] = (args.turns / wall, latencies, counted["n"] / args.turns)

        client, table = stack.dynamodb, stack.table_name
        pair = []
        for i in range(args.turns):
            start = time.perf_counter()
            client.put_item(TableName=table, Item={"PK": {"S": f"BASE#{i}"}, "SK": {"S": "X"}, "v": {"S": "hello"}})
            client.query(
                TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": f"BASE#{i}"}}
            )
            pair.append(time.perf_counter() - start)
    finally:
        stack.stop()

    baseline = statistics.median(pair)
    print(
        f"{args.turns} direct-answer chat turns over HTTP through the local stack (moto, real handlers and state machine)"
    )
    print(
        f"{'concurrency':>11} {'turns/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15} {'state requests/turn':>20}"
    )
    failed = False
    for concurrency, (rate, latencies, per_turn) in results.items():
        p50 = statistics.median(latencies)
        print(
            f"{concurrency:>11} {rate:>8.1f} {p50 * 1000:>8.1f} {percentile(latencies, 0.99) * 1000:>8.1f} {p50 / baseline:>15.1f} {per_turn:>20.2f}"
        )
        failed |= per_turn > 2
    print(f"baseline: bare moto put_item + query, median {baseline * 1000:.2f} ms per pair")
    if failed:
        print("MORE THAN 2 STATE REQUESTS PER TURN", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
