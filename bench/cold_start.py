"""Cold start of each handler: import plus init, in a fresh interpreter laid out like Lambda.

    python -m bench.cold_start [--rounds 15]

Each measurement is a new ``python -I -S`` process whose ``sys.path`` is what a Lambda
function sees: the function's archive (extracted), the dependency layer (``python/``) and
a runtime directory holding only boto3 and its dependencies, as the managed runtime does.
Nothing from this virtualenv leaks in. The timed part is the handler module's import,
which builds its settings, store and clients at module level (the init phase).

The layer built for Lambda is arm64/CPython 3.13 and cannot load here, so the simulation
uses the same requirements installed for this machine. Two variants are measured:
``shipped`` is the archive as built from this interpreter (no .pyc unless it is 3.13, so
our modules compile at every cold start, as on Lambda's read-only /var/task), and
``with pyc`` is the archive with bytecode, as a 3.13 build machine ships it.

Baseline, measured in the same rounds: ``import boto3; boto3.client("dynamodb")``.
Rounds interleave all targets so drift in machine load hits them alike. Targets: router
<= 1.2x the baseline, tools and agent-step <= 1.4x; each archive with its layers < 5 MB.
Each row also shows the process's peak resident memory after init and the memory that
sizes the function: 1.5x that peak in 64 MB steps, at least 128 MB (the config's defaults
follow it; docs/architecture.md's compute section has the figures).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from components import packaging
from handlers.tools import available_tools, load_tool

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = packaging.BUILD_DIR / "lambda-runtime"

TIMER = """
import resource, sys, time
sys.path[:0] = {paths!r}
start = time.perf_counter()
{statement}
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
# Lambda bills memory in MB; a function needs its peak resident memory plus headroom for a
# request's own data (the conversation, a tool's output): sized at 1.5x the peak after init.
HEADROOM = 1.5

BASE_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "TABLE_NAME": "bench-table",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",  # set by the Lambda runtime; the handlers tune their init on it
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
}
HANDLER_ENV = {
    "router": {"TASK_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:agent-infra-bench-task"},
    "agent-step": {
        "LLM_PROVIDER": "bedrock",
        "LLM_MODEL": "anthropic.bench",
        "LLM_ENDPOINTS": '["us-east-1", "us-west-2"]',
    },
}


def lambda_runtime() -> Path:
    """boto3 and its dependencies alone, at the pinned versions (like the managed runtime)."""
    if not RUNTIME_DIR.exists():
        boto3_pin = next(
            line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("boto3==")
        )
        scratch = RUNTIME_DIR.with_suffix(".partial")
        packaging.pip_install_target(scratch, "-c", str(ROOT / "constraints.txt"), boto3_pin)
        scratch.rename(RUNTIME_DIR)
    return RUNTIME_DIR


def extract(archive: Path, into: Path) -> Path:
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(into)
    return into


def measure(paths: list[str], statement: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds of import + init, and the process's peak resident memory in MB after it."""
    code = TIMER.format(paths=paths, statement=statement)
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{statement!r} failed:\n{result.stderr}")
    seconds, max_rss_kb = result.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(max_rss_kb) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="handler cold start against a bare boto3 client")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    tools = available_tools()
    codes = [
        packaging.router_code(),
        packaging.agent_step_code(load_tool(n).spec() for n in tools),
        *(packaging.tool_code(n) for n in tools),
        packaging.approval_code(),
        packaging.compensate_code(["create_ticket"]),
    ]
    modules = {c.key: c.handler.rsplit(".", 1)[0] for c in codes}
    runtime = str(lambda_runtime())
    layer_site = str(packaging.host_layer_site())
    lambda_layer = packaging.build_dependency_layer()
    here = sys.version_info[:2]

    with tempfile.TemporaryDirectory() as scratch:
        targets: dict[str, tuple[list[str], str, dict[str, str]]] = {}
        empty = Path(scratch) / "empty"
        empty.mkdir()
        targets["baseline: boto3 + dynamodb client"] = (
            [str(empty), runtime],
            "import boto3; boto3.client('dynamodb')",
            dict(BASE_ENV),
        )
        # The same baseline with the garbage collector paused, as our handlers do during init:
        # so the comparison shows what that choice buys, not only our modules' cost.
        targets["baseline, GC paused during init"] = (
            [str(empty), runtime],
            "import gc; gc.disable(); import boto3; boto3.client('dynamodb'); gc.freeze(); gc.enable()",
            dict(BASE_ENV),
        )
        sizes = {}
        for code in codes:
            shipped = packaging.build_function_archive(code, Path(scratch) / "zips" / "shipped")
            with_pyc = packaging.build_function_archive(code, Path(scratch) / "zips" / "pyc", runtime_version=here)
            sizes[code.key] = (packaging.build_function_archive(code).stat().st_size, lambda_layer.stat().st_size)
            env = {**BASE_ENV, **HANDLER_ENV.get(code.key, {})}
            for variant, archive in (("shipped", shipped), ("with pyc", with_pyc)):
                task = extract(archive, Path(scratch) / variant.replace(" ", "-") / code.key)
                targets[f"{code.key} ({variant})"] = (
                    [str(task), layer_site, runtime],
                    f"import {modules[code.key]}",
                    env,
                )

        timings: dict[str, list[float]] = {name: [] for name in targets}
        peaks: dict[str, list[float]] = {name: [] for name in targets}
        for paths, statement, env in targets.values():  # warm the OS file cache once
            measure(paths, statement, env)
        for _ in range(args.rounds):
            for name, (paths, statement, env) in targets.items():
                seconds, peak = measure(paths, statement, env)
                timings[name].append(seconds)
                peaks[name].append(peak)

    baseline = statistics.median(timings["baseline: boto3 + dynamodb client"])
    print(
        f"cold start (import + init) in a fresh interpreter, median of {args.rounds} interleaved rounds; Python {here[0]}.{here[1]}"
    )
    print(f"{'handler':<34} {'ms':>8} {'x baseline':>10} {'target':>7} {'peak MB':>8} {'sized MB':>9}")
    failed = []
    for name, values in timings.items():
        median = statistics.median(values)
        ratio = median / baseline
        target = "" if name.startswith("baseline") else ("1.2" if name.startswith("router") else "1.4")
        peak = max(peaks[name])
        sized = max(128, -(-int(peak * HEADROOM) // 64) * 64)  # 1.5x the peak, in 64 MB steps, at least 128
        print(f"{name:<34} {median * 1000:>8.1f} {ratio:>10.2f} {target:>7} {peak:>8.1f} {sized:>9}")
        if "with pyc" in name and target and ratio > float(target):
            failed.append(name)
    print()
    print(f"{'archive':<24} {'code KB':>8} {'+ layer KB':>10} {'total KB':>9}")
    for key, (code_size, layer_size) in sizes.items():
        total = code_size + layer_size
        print(f"{key:<24} {code_size / 1024:>8.1f} {layer_size / 1024:>10.1f} {total / 1024:>9.1f}")
        if total >= 5 * 1024 * 1024:
            failed.append(f"{key} archive")
    if failed:
        print(f"OVER TARGET: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
