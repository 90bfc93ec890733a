"""Start-up of the local stack: `make dev` to its banner and to its first healthy answer.

    python -m bench.startup [--rounds 5]

Runs ``python -m local.stack`` (what ``make dev`` runs) as a subprocess on free ports, and
times, from the moment the process is started: the banner line on its output, and the
first ``GET /v1/health`` that answers 200 (polled every 20 ms). Then stops it with Ctrl-C
(SIGINT), as a developer would. One round first, not counted, so that the runs measured
are warm (bytecode and the OS's file cache); then ``--rounds`` rounds, median, min and
max. Beside it, in the same run: the interpreter alone, and the interpreter importing
boto3 and moto, the floor of any stack built on them.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from local.stack import free_port_triple

ROOT = Path(__file__).resolve().parent.parent
BANNER = "agent-infra local stack is up"


def timed_command(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - this interpreter
    return time.perf_counter() - started


def one_start(timeout: float = 120.0) -> tuple[float, float]:
    """(seconds to the banner, seconds to the first health 200) of one ``python -m local.stack``."""
    port = free_port_triple()
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable,
            "-m",
            "local.stack",
            "--port",
            str(port),
            "--state-file",
            str(Path(folder) / "local-stack.json"),
        ]
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 - this interpreter, this repository's module
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        banner: dict[str, float] = {}
        output: list[str] = []

        def read() -> None:
            for line in process.stdout:
                output.append(line)
                if BANNER in line and "at" not in banner:
                    banner["at"] = time.perf_counter() - started

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        healthy = None
        try:
            deadline = started + timeout
            while time.perf_counter() < deadline and (healthy is None or "at" not in banner):
                if process.poll() is not None:
                    raise RuntimeError(f"the stack exited ({process.returncode}):\n{''.join(output)[-3000:]}")
                if healthy is None:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=5) as answer:
                            if answer.status == 200:
                                healthy = time.perf_counter() - started
                    except (OSError, urllib.error.URLError):
                        pass
                time.sleep(0.02)
            if healthy is None or "at" not in banner:
                raise RuntimeError(f"no banner and healthy answer in {timeout:g}s:\n{''.join(output)[-3000:]}")
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            reader.join(5)
        return banner["at"], healthy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local stack start-up")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    one_start()  # warm: bytecode, the OS's file cache
    rows: dict[str, list[float]] = {
        "python -c pass": [],
        "python -c 'import boto3, moto'": [],
        "banner": [],
        "health": [],
    }
    for _ in range(args.rounds):
        rows["python -c pass"].append(timed_command([sys.executable, "-c", "pass"]))
        rows["python -c 'import boto3, moto'"].append(timed_command([sys.executable, "-c", "import boto3, moto"]))
        banner, health = one_start()
        rows["banner"].append(banner)
        rows["health"].append(health)

    print(f"start-up of `python -m local.stack` (make dev), {args.rounds} warm rounds")
    print(f"{'':<44} {'median s':>8} {'min s':>7} {'max s':>7}")
    labels = {"banner": "to the banner", "health": "to the first GET /v1/health 200"}
    for key, values in rows.items():
        label = labels.get(key, f"baseline: {key}")
        print(f"{label:<44} {statistics.median(values):>8.2f} {min(values):>7.2f} {max(values):>7.2f}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: the project's own modules are compiled at every start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
