"""The whole Pulumi program under mocks for 2, 4 and 6 regions, beside the SDK's floor.

    python -m bench.program_regions [--repeats N] [--clock cpu|wall]

Runs the real ``__main__.py`` (config validation, components, every resource registration)
with the dev stack's config and the region list swapped, and, in the same rounds, the
SDK's floor for the same size (``bench/sdk_floor.py``): a trivial program that registers
exactly the resources the program registered (same classes, inputs, options, provider and
mocks) flat, with nothing else to do. Rounds alternate program and floor, each after a
``gc.collect()``, so drift in machine load hits both alike; the figures are medians.

Printed per size: resources, the program's ms and ms/resource, the floor's, and the
program's ratio to the floor (target: 1.3 at most); then linearity, ms/resource at 6
regions over 2 regions (target: about 1). ``--clock cpu`` (the default) times the process's
CPU (every thread), which other jobs on a shared machine barely move; ``wall`` is elapsed
time. The empty program's row is the harness alone (``run_program`` with no resources).
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import sdk_floor
from local.pulumi_mocks import run_program, stack_config

REGION_SETS = {
    2: ["us-east-1", "us-west-2"],
    4: ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"],
    6: ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2", "sa-east-1"],
}
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def timed(clock: Callable[[], float], run: Callable[[], object]) -> float:
    gc.collect()
    start = clock()
    run()
    return clock() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="program time by number of regions, beside the SDK's floor")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]
    logging.disable(logging.WARNING)  # the dev stack's config warning, once per run
    base_config = stack_config("dev")
    run_program(base_config, "warmup")  # imports and botocore data load once, outside the timings

    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "__main__.py"
        empty.write_text("")
        harness = statistics.median(timed(clock, lambda: run_program({}, "bench", program=empty)) for _ in range(3))

    print(f"program under Pulumi mocks beside the SDK floor, median of {args.repeats} rounds, {args.clock} time")
    print(
        f"{'regions':>7} {'resources':>9} {'program ms':>10} {'ms/res':>7} {'floor ms':>9} {'ms/res':>7} {'x floor':>7}"
    )
    per_resource: dict[int, tuple[float, float]] = {}
    for size, regions in REGION_SETS.items():
        config = {**base_config, "agent-infra:regions": regions}
        manifest = sdk_floor.record(config)
        count = len(run_program(config, "bench").resources)
        if count != len(manifest):
            raise RuntimeError(f"the floor registers {len(manifest)} resources, the program {count}")
        program, floor = [], []
        for _ in range(args.repeats):
            program.append(timed(clock, lambda config=config: run_program(config, "bench")))
            floor.append(timed(clock, lambda manifest=manifest: sdk_floor.run_floor(manifest)))
        program_ms, floor_ms = statistics.median(program) * 1000, statistics.median(floor) * 1000
        per_resource[size] = (program_ms / count, floor_ms / count)
        print(
            f"{size:>7} {count:>9} {program_ms:>10.0f} {program_ms / count:>7.2f}"
            f" {floor_ms:>9.0f} {floor_ms / count:>7.2f} {program_ms / floor_ms:>7.2f}"
        )
    print(f"{'empty':>7} {0:>9} {harness * 1000:>10.0f}   (the harness alone: run_program of an empty program)")
    low, high = min(per_resource), max(per_resource)
    print(
        f"linearity, ms/resource at {high} regions over {low}:"
        f" program {per_resource[high][0] / per_resource[low][0]:.2f},"
        f" floor {per_resource[high][1] / per_resource[low][1]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
