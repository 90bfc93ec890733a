"""Turns through the local stack: throughput, latency, memory and DynamoDB requests per turn.

    python -m bench.local_turns [--turns 2000] [--blocks 4]

Starts the local stack as ``make dev`` does (``python -m local.stack``, its own process, its
JSON log lines written to /dev/null) and sends it direct-answer chat turns over HTTP, each in
a new session (a session's first turn is its most expensive), one at a time and 8 at a
time. The two concurrencies take turns, in ``--blocks`` blocks of ``--turns / --blocks``
turns each (1, 8, 1, 8, ...), so that both see the same table sizes and the same machine
load. For each: turns/s and p50/p99 latency over its ``--turns`` turns, and the same for
its first and its last block, so a stack that slows down as its table and its bookkeeping
grow shows it. The stack process's resident memory is printed after the warm-up and after
each pair of blocks.

The DynamoDB requests a turn makes are counted by a botocore ``request-created`` hook on
the client the handlers share (a stack in this process, for that count only), for a direct
answer and for a turn with a tool call (at most 2 and 4: a Query to load and one write per
step). Beside it, in the same run: bare moto ``put_item`` + ``query`` pairs, the floor any
turn on this embedded AWS pays for its state.

The stage's throttling (the dev stack's 5 requests/s) is raised for the run (``--throttle``):
this measures the stack, not the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.startup import ROOT
from local.stack import free_port_triple

CONCURRENCY = (1, 8)
MAX_REQUESTS = {"direct": 2, "tool": 4}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory of a process now (Linux /proc), None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return None


class Stack:
    """``python -m local.stack`` on free ports, throttling raised, until ``stop()``."""

    def __init__(self) -> None:
        self.port = free_port_triple()
        self._folder = tempfile.TemporaryDirectory()
        state = Path(self._folder.name) / "local-stack.json"
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, this repository's module
            [
                sys.executable,
                "-m",
                "local.stack",
                "--port",
                str(self.port),
                "--state-file",
                str(state),
                "--throttle",
                "1000000,1000000",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not state.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not start: {self.process.stderr.read()[-2000:]}")
            time.sleep(0.05)
        self.state = json.loads(state.read_text())
        self.session = requests.Session()
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16))
        self.headers = {
            "Authorization": f"Bearer {self.state['token']}",
            "x-api-key": self.state["apiKey"],
            "content-type": "application/json",
        }

    def turn(self, message: str = "hello") -> float:
        start = time.perf_counter()
        response = self.session.post(
            f"{self.state['rest']}/v1/sessions/b-{uuid.uuid4().hex[:12]}/messages",
            headers=self.headers,
            data=json.dumps({"message": message}),
            timeout=60,
        )
        if response.status_code != 200:
            raise RuntimeError(f"turn failed: HTTP {response.status_code} {response.text[:300]}")
        return time.perf_counter() - start

    def rss_mb(self) -> float | None:
        return rss_mb(self.process.pid)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._folder.cleanup()


class Block:
    def __init__(self, turns: list[tuple[float, float]], wall: float) -> None:
        self.turns = turns  # (finished at, latency)
        self.wall = wall

    @property
    def latencies(self) -> list[float]:
        return [latency for _, latency in self.turns]


def run_block(stack: Stack, concurrency: int, turns: int) -> Block:
    finished: list[tuple[float, float]] = []
    lock = threading.Lock()

    def timed(_: int) -> None:
        latency = stack.turn()
        with lock:
            finished.append((time.perf_counter(), latency))

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(timed, range(turns)))
    return Block(finished, time.perf_counter() - started)


def requests_per_turn() -> tuple[dict[str, float], float]:
    """DynamoDB requests of a direct turn and of a tool turn (a stack in this process, hooked),
    and the median bare moto put_item + query pair on the same stack's table."""
    from local.stack import LocalStack

    logging.disable(logging.CRITICAL)
    stack = LocalStack("dev", moto_port=None, log=lambda line: None, throttle=(1e6, 10**6)).start()
    counted = {"n": 0}
    lock = threading.Lock()

    def count(**_):
        with lock:
            counted["n"] += 1

    stack.store.table.client.meta.events.register("request-created.dynamodb", count)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {stack.dev_token}", "x-api-key": stack.api_key}
    per_turn = {}
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the handlers' own log lines
            for kind, message in (("direct", "hello"), ("tool", "calculate 6*7")):
                for counting in (False, True):  # the first round warms up
                    counted["n"] = 0
                    for _ in range(10):
                        answer = session.post(
                            f"{stack.rest.url}/v1/sessions/c-{uuid.uuid4().hex[:12]}/messages",
                            headers=headers,
                            json={"message": message},
                            timeout=60,
                        )
                        answer.raise_for_status()
                    if counting:
                        per_turn[kind] = counted["n"] / 10
        client, table = stack.dynamodb, stack.table_name
        pair = []
        for i in range(200):
            start = time.perf_counter()
            client.put_item(TableName=table, Item={"PK": {"S": f"BASE#{i}"}, "SK": {"S": "X"}, "v": {"S": "hello"}})
            client.query(
                TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": f"BASE#{i}"}}
            )
            pair.append(time.perf_counter() - start)
    finally:
        stack.stop()
        logging.disable(logging.NOTSET)
    return per_turn, statistics.median(pair)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local stack turns")
    parser.add_argument("--turns", type=int, default=2000, help="turns per concurrency level")
    parser.add_argument("--blocks", type=int, default=4, help="blocks per concurrency level, taking turns")
    args = parser.parse_args(argv)
    size = max(1, args.turns // args.blocks)

    per_turn, baseline = requests_per_turn()
    stack = Stack()
    blocks: dict[int, list[Block]] = {c: [] for c in CONCURRENCY}
    memory: list[tuple[str, float | None]] = []
    try:
        for message in ("hello", "calculate 6*7"):  # warm: first-call imports and caches
            for _ in range(10):
                stack.turn(message)
        memory.append(("after warm-up", stack.rss_mb()))
        for number in range(args.blocks):
            for concurrency in CONCURRENCY:
                blocks[concurrency].append(run_block(stack, concurrency, size))
            memory.append((f"after {(number + 1) * size * len(CONCURRENCY)} turns", stack.rss_mb()))
    finally:
        stack.stop()

    print(
        f"{size * args.blocks} direct-answer chat turns per concurrency, over HTTP through `python -m local.stack`"
        f" (moto, the real handlers and state machine), each in a new session; {args.blocks} blocks of {size}"
        " per concurrency, taking turns"
    )
    print(
        f"{'concurrency':>11} {'turns/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 / baseline':>15}"
        f" {'first block: turns/s':>21} {'p50 ms':>7} {'last block: turns/s':>20} {'p50 ms':>7}"
    )
    for concurrency, runs in blocks.items():
        latencies = [latency for block in runs for latency in block.latencies]
        rate = len(latencies) / sum(block.wall for block in runs)
        first, last = runs[0], runs[-1]
        p50 = statistics.median(latencies)
        print(
            f"{concurrency:>11} {rate:>8.1f} {p50 * 1000:>8.1f} {percentile(latencies, 0.99) * 1000:>8.1f}"
            f" {p50 / baseline:>15.1f} {len(first.turns) / first.wall:>21.1f}"
            f" {statistics.median(first.latencies) * 1000:>7.1f} {len(last.turns) / last.wall:>20.1f}"
            f" {statistics.median(last.latencies) * 1000:>7.1f}"
        )
    print(f"baseline: bare moto put_item + query, median {baseline * 1000:.2f} ms per pair")
    print(
        "memory (the stack's RSS): "
        + ", ".join(f"{label} {'n/a' if mb is None else f'{mb:.0f} MB'}" for label, mb in memory)
    )
    print(
        f"DynamoDB requests per turn (new session): direct answer {per_turn['direct']:.2f},"
        f" with a tool call {per_turn['tool']:.2f}"
    )
    failed = [kind for kind, n in per_turn.items() if n > MAX_REQUESTS[kind]]
    if failed:
        print(f"MORE DYNAMODB REQUESTS PER TURN THAN {MAX_REQUESTS}: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
