"""The container entrypoint as ECS runs it: a subprocess against a moto server, and the
interruption bench's invariants (no timings asserted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from bench import interruptions
from handlers.shared.table import TABLE_SCHEMA

ROOT = Path(__file__).resolve().parent.parent
TABLE = "longrun-test"


@pytest.fixture(scope="module")
def server():
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto._server.server_port}"
    client = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="t", aws_secret_access_key="t"
    )
    client.create_table(**TABLE_SCHEMA.create_table_request(TABLE))
    yield endpoint, client
    moto.stop()


def environment(endpoint: str, execution: str, urls: list[str], work_log: Path | None = None, **extra: str) -> dict:
    bench = interruptions.Bench.__new__(interruptions.Bench)
    bench.endpoint, bench.items, bench.item_seconds, bench.checkpoint_seconds = endpoint, len(urls), 0.3, 0.1
    env = bench.environment(TABLE, execution, True, work_log or Path(os.devnull))
    event = json.loads(env["TOOL_EVENT"])
    event["input"]["urls"] = urls
    env["TOOL_EVENT"] = json.dumps(event)
    return {**env, **extra}


def run_entrypoint(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handlers.longrun"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def get(client, pk: str, sk: str) -> dict | None:
    return client.get_item(TableName=TABLE, Key={"PK": {"S": pk}, "SK": {"S": sk}}).get("Item")


def test_the_entrypoint_records_the_step_and_exits_0_then_replays_it(server):
    endpoint, client = server
    # Refused by http_fetch's rules before any connection: no network needed.
    env = environment(endpoint, "exec-rec", ["http://example.com/a", "https://127.0.0.1/b"])
    done = run_entrypoint(env)
    assert done.returncode == 0, done.stdout + done.stderr
    item = get(client, "RUN#exec-rec", "TOOL#00001#summarize_documents")
    output = json.loads(item["output"]["S"])
    assert item["status"]["S"] == "SUCCEEDED" and output["failed"] == 2
    again = run_entrypoint(env)
    assert again.returncode == 0 and '"replayed": true' in again.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TOOL_NAME": "memory"}, "TOOL_EVENT is for tool 'summarize_documents', but TOOL_NAME is 'memory'"),
        ({"TOOL_EVENT": "{not json"}, "TOOL_EVENT is not JSON"),
        ({"TOOL_EVENT": None}, "TOOL_EVENT is not set"),
        ({"TOOL_NAME": "calculator", "TOOL_EVENT": '{"name": "calculator"}'}, "Object missing required field"),
        ({"LONGRUN_CHECKPOINTS": "sometimes"}, "LONGRUN_CHECKPOINTS must be 'on' or 'off'"),
        ({"TABLE_NAME": None}, "TABLE_NAME"),
    ],
)
def test_a_misconfigured_task_exits_2_and_says_why(server, change, message):
    env = environment(server[0], "exec-bad", ["http://example.com/a"])
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    result = run_entrypoint(env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout


def test_a_lambda_tool_is_not_run_by_the_entrypoint(server):
    env = environment(server[0], "exec-calc", [])
    event = {**json.loads(env["TOOL_EVENT"]), "name": "calculator", "input": {"expression": "1+1"}}
    result = run_entrypoint({**env, "TOOL_NAME": "calculator", "TOOL_EVENT": json.dumps(event)})
    assert result.returncode == 2 and "this entrypoint runs fargate-spot tools" in result.stdout


def test_a_crash_exits_1_and_records_nothing(server):
    env = environment(server[0], "exec-crash", ["http://example.com/a"], TABLE_NAME="no-such-table")
    result = run_entrypoint(env)
    assert result.returncode == 1 and "crashed" in result.stdout


def test_sigterm_saves_a_checkpoint_exits_143_and_the_restart_resumes(server, tmp_path):
    endpoint, client = server
    log = tmp_path / "fetches.log"
    urls = [f"https://{interruptions.DOCUMENT_HOST}/exec-term/doc-{i}.html" for i in range(6)]
    env = environment(endpoint, "exec-term", urls, log)
    worker = [sys.executable, "-m", "bench.interruptions", "--worker"]
    process = subprocess.Popen(worker, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
    while process.poll() is None and not (log.exists() and log.read_text()):
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, out + err
    checkpoint = get(client, "RUN#exec-term", "CKPT#00001#summarize_documents")
    cursor = int(checkpoint["cursor"]["N"])
    assert 1 <= cursor < 6, "the item in hand finished, and the step did not"
    assert get(client, "RUN#exec-term", "TOOL#00001#summarize_documents") is None

    restarted = subprocess.run(worker, env=env, cwd=ROOT, capture_output=True, timeout=60)  # noqa: S603
    assert restarted.returncode == 0
    fetched = log.read_text().splitlines()
    assert len(fetched) == 6 and len(set(fetched)) == 6, "resumed at the checkpoint: nothing fetched twice"
    assert json.loads(get(client, "RUN#exec-term", "TOOL#00001#summarize_documents")["output"]["S"])["summarized"] == 6


def test_the_interruption_bench_completes_every_run_with_checkpoints_and_does_no_item_twice():
    reports = interruptions.run(
        runs=2, items=6, attempts=6, seed=5, kill_share=0.3, item_seconds=0.05, checkpoint_seconds=0.1
    )
    on, off = reports["on"], reports["off"]
    assert on.completed == on.runs == 2
    assert on.items_written == on.items == 12
    assert on.items_done_twice == 0 and off.items_done_twice == 0
    assert on.term_exits_not_prompt == 0 and off.term_exits_not_prompt == 0
    assert sum(on.interruptions.values()) >= 1 and sum(off.interruptions.values()) >= 1
    assert on.attempts == sum(on.exit_codes.values())
