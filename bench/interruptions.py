"""Interrupt long tool runs again and again, with checkpoints and without, side by side.

    python -m bench.interruptions [--runs 10] [--items 30] [--attempts 8] [--seed 20]

Each run is one step of ``summarize_documents`` (a ``fargate-spot`` tool): the real entrypoint
(``handlers.longrun.main``) in a subprocess, against a moto server with the table made from
``TABLE_SCHEMA``, as ECS would run it: started, interrupted at a random point of its work,
started again with the same event, until it records a result or runs out of attempts (the
task machine's retries). An interruption is Fargate Spot's: SIGTERM, or, for ``--kill-share``
of them, SIGKILL (a task whose stop timeout ran out, or a lost host). The random points are
seeded and the same for both modes: with checkpoints (the default) and with
``LONGRUN_CHECKPOINTS=off``.

Reported per mode: runs completed within the attempts, interruptions, documents fetched and
how many of those were fetched again (work redone), and items done twice, counted from the
effects: every write of a work item (``ITEM#...``) that took effect appears in the table's
stream (moto keeps a stream as DynamoDB does: INSERT, then MODIFY for any later write of the
item), so an item written by two attempts shows two records.

The documents are local: the worker (``--worker``, what each subprocess runs) gives the
tool's fetcher (``summarize_documents.FETCHER``) a resolver that answers for
``docs.bench.example`` with a public address and an opener that serves generated pages and
logs each fetch; every rule of ``http_fetch`` (https only, public addresses, text types,
sizes) still applies. Nothing in ``handlers/`` can reach this: the swap is made by this
module, which no function or image ships.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
TOOL = "summarize_documents"
DOCUMENT_HOST = "docs.bench.example"
PUBLIC_ADDRESS = "93.184.215.14"
ENV_WORK_LOG = "BENCH_WORK_LOG"
ENV_ITEM_SECONDS = "BENCH_ITEM_SECONDS"
_WORDS = [
    "spot",
    "capacity",
    "task",
    "checkpoint",
    "region",
    "table",
    "item",
    "resume",
    "signal",
    "container",
    "minute",
    "warning",
    "work",
    "batch",
    "agent",
    "document",
    "summary",
    "fetch",
    "state",
    "machine",
    "retry",
    "budget",
    "interval",
    "stream",
    "replica",
    "write",
    "condition",
]


# -- the worker: one attempt, in a subprocess ---------------------------------------------------


def page(path: str) -> bytes:
    """The generated HTML page at ``path``: a title and a few paragraphs, the same every time."""
    rng = random.Random(path)
    paragraphs = []
    for _ in range(4):
        sentences = [
            " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "." for _ in range(4)
        ]
        paragraphs.append(f"<p>{' '.join(sentences)}</p>")
    return f"<html><head><title>{path}</title></head><body>{''.join(paragraphs)}</body></html>".encode()


class LocalOpener:
    """Serves :func:`page` for ``docs.bench.example``, logs each fetch, takes ``seconds``."""

    def __init__(self, log: Path, seconds: float) -> None:
        self.log = log
        self.seconds = seconds

    def __call__(self, ip: str, hostname: str, path: str, headers: dict[str, str], timeout: float):
        if hostname != DOCUMENT_HOST or ip != PUBLIC_ADDRESS:
            raise OSError(f"the bench serves {DOCUMENT_HOST} only, not {hostname} at {ip}")
        with self.log.open("a") as log:  # one short line per write: appends do not interleave
            log.write(path + "\n")
        time.sleep(self.seconds)
        return 200, {"content-type": "text/html; charset=utf-8"}, page(path)


def local_resolver(host: str, port: int) -> list[str]:
    import socket

    if host != DOCUMENT_HOST:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [PUBLIC_ADDRESS]


def worker() -> int:
    """One attempt: the real entrypoint, with the tool's fetcher serving local pages."""
    from handlers import longrun
    from handlers.tools import http_fetch, summarize_documents

    opener = LocalOpener(Path(os.environ[ENV_WORK_LOG]), float(os.environ.get(ENV_ITEM_SECONDS, "0.05")))
    summarize_documents.FETCHER = http_fetch.Fetcher(resolve=local_resolver, open=opener)
    return longrun.main()


# -- the driver ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interruption:
    at_fraction: float
    """When, as a share of a whole run's items (over 1: an attempt that may finish first)."""
    kill: bool
    """SIGKILL rather than SIGTERM."""


@dataclass(frozen=True)
class Attempt:
    signal: str  # "TERM", "KILL" or "" (left to finish)
    exit_code: int


@dataclass
class ModeReport:
    checkpoints: bool
    runs: int = 0
    completed: int = 0
    attempts: int = 0
    interruptions: Counter = field(default_factory=Counter)
    exit_codes: Counter = field(default_factory=Counter)
    fetched: int = 0
    refetched: int = 0
    items: int = 0
    items_written: int = 0
    items_done_twice: int = 0
    term_exits_not_prompt: int = 0
    """SIGTERMed attempts that did not exit 143 (or 0, had they finished first)."""

    def line(self) -> dict[str, Any]:
        return {
            "checkpoints": "on" if self.checkpoints else "off",
            "runs completed": f"{self.completed}/{self.runs} ({100 * self.completed / max(self.runs, 1):.0f}%)",
            "attempts": self.attempts,
            "SIGTERM / SIGKILL": f"{self.interruptions['TERM']} / {self.interruptions['KILL']}",
            "documents fetched": self.fetched,
            "fetched again (work redone)": f"{self.refetched} ({100 * self.refetched / max(self.fetched, 1):.0f}%)",
            "items written / planned": f"{self.items_written} / {self.items}",
            "items done twice": self.items_done_twice,
            "exit codes": dict(sorted(self.exit_codes.items())),
        }


def schedule(
    runs: int, attempts: int, seed: int, low: float, high: float, kill_share: float
) -> list[list[Interruption]]:
    """Per run, the interruption of each attempt but the last-chance one: seeded, shared by both modes."""
    rng = random.Random(seed)
    return [
        [Interruption(rng.uniform(low, high), rng.random() < kill_share) for _ in range(attempts)] for _ in range(runs)
    ]


class Bench:
    def __init__(self, endpoint: str, workdir: Path, items: int, item_seconds: float, checkpoint_seconds: float):
        import boto3

        self.endpoint = endpoint
        self.workdir = workdir
        self.items = items
        self.item_seconds = item_seconds
        self.checkpoint_seconds = checkpoint_seconds
        fake = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}  # moto's; never a real account's
        self.dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint, **fake)
        self.streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=endpoint, **fake)

    def create_table(self, name: str) -> str:
        from handlers.shared.table import TABLE_SCHEMA

        self.dynamodb.create_table(**TABLE_SCHEMA.create_table_request(name))
        return self.dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"]

    def event(self, execution_id: str) -> dict[str, Any]:
        urls = [f"https://{DOCUMENT_HOST}/{execution_id}/doc-{i}.html" for i in range(self.items)]
        return {
            "executionId": execution_id,
            "startedAt": "2026-12-01T09:00:00.000Z",
            "seq": 1,
            "name": TOOL,
            "toolUseId": f"tu-{execution_id}",
            "input": {"urls": urls, "sentences": 2},
            "userId": "bench",
            "sessionId": "bench",
            "correlationId": execution_id,
        }

    def environment(self, table: str, execution_id: str, checkpoints: bool, work_log: Path) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")},
            "PYTHONPATH": str(ROOT),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "TABLE_NAME": table,
            "TTL_DAYS": "1",
            "TABLE_REGIONS": json.dumps([REGION]),
            "LOG_LEVEL": "WARNING",
            "TOOL_NAME": TOOL,
            "TOOL_EVENT": json.dumps(self.event(execution_id)),
            "LONGRUN_CHECKPOINTS": "on" if checkpoints else "off",
            "LONGRUN_CHECKPOINT_SECONDS": str(self.checkpoint_seconds),
            ENV_WORK_LOG: str(work_log),
            ENV_ITEM_SECONDS: str(self.item_seconds),
        }

    def attempt(self, env: dict[str, str], work_log: Path, interruption: Interruption | None) -> Attempt:
        """Start one attempt and interrupt it once it has fetched its share of the run's
        items (counted in the work log, so the point does not depend on the machine's speed),
        part way into the next item; None: let it finish."""
        before = _lines(work_log)
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.interruptions", "--worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        sent = ""
        if interruption is not None:
            whole, part = divmod(interruption.at_fraction * self.items, 1)
            while process.poll() is None and _lines(work_log) - before < max(1, int(whole)):
                time.sleep(0.005)
            time.sleep(part * self.item_seconds)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL if interruption.kill else signal.SIGTERM)
                sent = "KILL" if interruption.kill else "TERM"
        _, stderr = process.communicate(timeout=120)
        if process.returncode not in (0, 143, -signal.SIGKILL) and stderr:
            sys.stderr.write(stderr.decode(errors="replace")[-2000:])
        return Attempt(sent, process.returncode)

    def mode(self, checkpoints: bool, plan: list[list[Interruption]]) -> ModeReport:
        table = f"bench-{'on' if checkpoints else 'off'}"
        stream = self.create_table(table)
        report = ModeReport(checkpoints=checkpoints, runs=len(plan), items=len(plan) * self.items)
        work_log = self.workdir / f"{table}.log"
        for index, interruptions in enumerate(plan):
            execution_id = f"run-{index:03d}"
            env = self.environment(table, execution_id, checkpoints, work_log)
            for interruption in interruptions:
                attempt = self.attempt(env, work_log, interruption)
                report.attempts += 1
                report.exit_codes[attempt.exit_code] += 1
                if attempt.signal:
                    report.interruptions[attempt.signal] += 1
                if attempt.signal == "TERM" and attempt.exit_code not in (0, 143):
                    report.term_exits_not_prompt += 1
                if attempt.exit_code == 0:
                    report.completed += 1
                    break
        fetches = _read_lines(work_log)
        report.fetched = len(fetches)
        report.refetched = len(fetches) - len(set(fetches))
        writes = item_writes(self.streams, stream)
        report.items_written = len(writes)
        report.items_done_twice = sum(1 for count in writes.values() if count > 1)
        return report


def item_writes(streams: Any, stream_arn: str) -> Counter:
    """How many writes of each work item took effect, from the table's stream."""
    counts: Counter = Counter()
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in response["Records"]:
                keys = record["dynamodb"]["Keys"]
                sort_key = keys["SK"]["S"]
                if sort_key.startswith("ITEM#") and record["eventName"] in ("INSERT", "MODIFY"):
                    counts[(keys["PK"]["S"], sort_key)] += 1
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return counts


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as log:
            return sum(1 for _ in log)
    except FileNotFoundError:
        return 0


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def run(
    runs: int = 10,
    items: int = 30,
    attempts: int = 8,
    seed: int = 20,
    low: float = 0.3,
    high: float = 1.3,
    kill_share: float = 0.2,
    item_seconds: float = 0.05,
    checkpoint_seconds: float = 0.25,
) -> dict[str, ModeReport]:
    """Both modes over the same seeded interruptions; a moto server for the duration."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            endpoint = f"http://127.0.0.1:{server._server.server_port}"
            bench = Bench(endpoint, Path(scratch), items, item_seconds, checkpoint_seconds)
            bench.create_table("bench-calibration")
            plan = schedule(runs, attempts, seed, low, high, kill_share)
            return {mode: bench.mode(mode == "on", plan) for mode in ("on", "off")}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--items", type=int, default=30, help="documents per run")
    parser.add_argument("--attempts", type=int, default=8, help="attempts a run may take (the task's retries)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--kill-share", type=float, default=0.2, help="share of interruptions that are SIGKILL")
    parser.add_argument("--item-seconds", type=float, default=0.05, help="how long one fetch takes")
    parser.add_argument("--checkpoint-seconds", type=float, default=0.25)
    args = parser.parse_args(argv)
    if args.worker:
        from handlers.longrun import exit_now

        exit_now(worker())
    reports = run(
        runs=args.runs,
        items=args.items,
        attempts=args.attempts,
        seed=args.seed,
        kill_share=args.kill_share,
        item_seconds=args.item_seconds,
        checkpoint_seconds=args.checkpoint_seconds,
    )
    lines = {mode: report.line() for mode, report in reports.items()}
    width = max(len(k) for k in lines["on"])
    print(f"{'':{width}}  {'with checkpoints':>24}  {'without':>24}")
    for key in lines["on"]:
        print(f"{key:{width}}  {lines['on'][key]!s:>24}  {lines['off'][key]!s:>24}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
