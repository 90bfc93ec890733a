"""Turns through the local stack: throughput, latency, memory and DynamoDB requests per turn.

    python -m bench.local_turns [--turns 2000]

Starts a local stack on free ports and runs direct-answer chat turns over HTTP (each in a
new session, as a first turn is the most expensive one), first one at a time, then 8 at
a time, and prints for each: turns per second, p50/p99 latency, and the same for the
first and the last tenth of the run, so a stack that slows down as its table and its
bookkeeping grow shows it. The process's resident memory is printed at the start and after
each run.

The DynamoDB requests a turn makes are counted by a botocore ``request-created`` hook on
the client the handlers share, for a direct answer and for a turn with a tool call (each
must stay at 2 and 4: a Query to load and one write per step). Beside it, in the same run:
bare moto ``put_item`` + ``query`` pairs, the floor any turn on this embedded AWS pays for
its state.

The stage's throttling (the dev stack's 5 requests/s) is raised for the run: this measures
the stack, not the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

CONCURRENCY = (1, 8)
MAX_REQUESTS = {"direct": 2, "tool": 4}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_mb() -> float:
    """Resident memory now (Linux /proc), else the peak (getrusage)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class Run:
    def __init__(self, concurrency: int, turns: list[tuple[float, float]], wall: float) -> None:
        self.concurrency = concurrency
        self.turns = turns  # (finished at, latency), in finishing order
        self.wall = wall

    def rate(self, part: list[tuple[float, float]] | None = None) -> float:
        if part is None:
            return len(self.turns) / self.wall
        span = part[-1][0] - part[0][0]
        return (len(part) - 1) / span if span > 0 else float("nan")

    def tenth(self, which: str) -> list[tuple[float, float]]:
        size = max(2, len(self.turns) // 10)
        return self.turns[:size] if which == "first" else self.turns[-size:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local stack turns")
    parser.add_argument("--turns", type=int, default=2000, help="turns per concurrency level")
    args = parser.parse_args(argv)

    logging.disable(logging.CRITICAL)
    from local.stack import LocalStack

    stack = LocalStack("dev", moto_port=None, log=lambda line: None, throttle=(1e6, 10**6)).start()
    import gc

    gc.freeze()
    counted = {"n": 0}
    lock = threading.Lock()

    def count(**_):
        with lock:
            counted["n"] += 1

    stack.store.client.meta.events.register("request-created.dynamodb", count)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16))
    headers = {
        "Authorization": f"Bearer {stack.dev_token}",
        "x-api-key": stack.api_key,
        "content-type": "application/json",
    }

    def turn(message: str = "hello") -> float:
        start = time.perf_counter()
        response = session.post(
            f"{stack.rest.url}/v1/sessions/b-{uuid.uuid4().hex[:12]}/messages",
            headers=headers,
            data=json.dumps({"message": message}),
            timeout=60,
        )
        if response.status_code != 200:
            raise RuntimeError(f"turn failed: HTTP {response.status_code} {response.text[:300]}")
        return time.perf_counter() - start

    runs: list[Run] = []
    requests_per_turn: dict[str, float] = {}
    memory: list[tuple[str, float]] = []
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the handlers' own log lines
            for message in ("hello", "calculate 6*7"):  # warm: first-call imports and caches
                for _ in range(5):
                    turn(message)
            for kind, message in (("direct", "hello"), ("tool", "calculate 6*7")):
                counted["n"] = 0
                for _ in range(20):
                    turn(message)
                requests_per_turn[kind] = counted["n"] / 20
            memory.append(("start", rss_mb()))
            for concurrency in CONCURRENCY:
                finished: list[tuple[float, float]] = []

                def timed(_: int, finished: list[tuple[float, float]] = finished) -> None:
                    latency = turn()
                    with lock:
                        finished.append((time.perf_counter(), latency))

                started = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    list(pool.map(timed, range(args.turns)))
                runs.append(Run(concurrency, finished, time.perf_counter() - started))
                memory.append((f"after c={concurrency}", rss_mb()))

        client, table = stack.dynamodb, stack.table_name
        pair = []
        for i in range(200):
            start = time.perf_counter()
            client.put_item(TableName=table, Item={"PK": {"S": f"BASE#{i}"}, "SK": {"S": "X"}, "v": {"S": "hello"}})
            client.query(
                TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": f"BASE#{i}"}}
            )
            pair.append(time.perf_counter() - start)
        from moto.stepfunctions.parser.utils import TMP_THREADS

        kept_threads, live_threads = len(TMP_THREADS), threading.active_count()
    finally:
        stack.stop()

    baseline = statistics.median(pair)
    print(
        f"{args.turns} direct-answer chat turns per row, over HTTP through the local stack "
        "(moto, the real handlers and state machine), each in a new session"
    )
    print(
        f"{'concurrency':>11} {'turns/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}"
        f" {'first 10%: turns/s':>19} {'p50 ms':>7} {'last 10%: turns/s':>18} {'p50 ms':>7}"
    )
    for run in runs:
        latencies = [latency for _, latency in run.turns]
        first, last = run.tenth("first"), run.tenth("last")
        p50 = statistics.median(latencies)
        print(
            f"{run.concurrency:>11} {run.rate():>8.1f} {p50 * 1000:>8.1f} {percentile(latencies, 0.99) * 1000:>8.1f}"
            f" {p50 / baseline:>15.1f} {run.rate(first):>19.1f} {statistics.median(t for _, t in first) * 1000:>7.1f}"
            f" {run.rate(last):>18.1f} {statistics.median(t for _, t in last) * 1000:>7.1f}"
        )
    print(f"baseline: bare moto put_item + query, median {baseline * 1000:.2f} ms per pair")
    print("memory (RSS): " + ", ".join(f"{label} {mb:.0f} MB" for label, mb in memory))
    print(
        f"DynamoDB requests per turn (new session): direct answer {requests_per_turn['direct']:.2f},"
        f" with a tool call {requests_per_turn['tool']:.2f}"
    )
    print(f"threads: {live_threads} running, {kept_threads} kept in moto's TMP_THREADS")
    failed = [kind for kind, n in requests_per_turn.items() if n > MAX_REQUESTS[kind]]
    if failed:
        print(f"MORE DYNAMODB REQUESTS PER TURN THAN {MAX_REQUESTS}: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
