"""Wall time of the whole Pulumi program under mocks for 2, 4 and 6 regions.

    python -m bench.program_regions [--repeats N]

Runs the real ``__main__.py`` (config validation, components, every resource registration)
with the dev stack's config and the region list swapped, ``--repeats`` times per size, and
prints the median wall time, the resources created and the ratio to the 2-region run, so
growth with regions is visible. The no-op baseline is the mock runtime with an empty
program, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from local import pulumi_mocks
from local.pulumi_mocks import run_program, stack_config

REGION_SETS = {
    2: ["us-east-1", "us-west-2"],
    4: ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"],
    6: ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2", "sa-east-1"],
}


def timed_runs(config: dict, repeats: int) -> tuple[float, int]:
    durations, count = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        run = run_program(config, "bench")
        durations.append(time.perf_counter() - start)
        count = len(run.resources)
    return statistics.median(durations), count


def empty_program_baseline(repeats: int) -> float:
    """The mock runtime's own cost: a program that creates nothing."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "__main__.py").write_text("")
        original = pulumi_mocks.ROOT
        pulumi_mocks.ROOT = Path(folder)
        try:
            durations = []
            for _ in range(repeats):
                start = time.perf_counter()
                run_program({}, "bench")
                durations.append(time.perf_counter() - start)
        finally:
            pulumi_mocks.ROOT = original
    return statistics.median(durations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="program wall time by number of regions")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    base_config = stack_config("dev")
    run_program(base_config, "warmup")  # imports and botocore data load once, outside the timings

    baseline = empty_program_baseline(args.repeats)
    print(f"program under Pulumi mocks, median of {args.repeats} runs")
    print(f"{'regions':>7} {'resources':>9} {'wall ms':>9} {'x 2 regions':>11} {'ms/region':>9}")
    print(f"{'empty':>7} {0:>9} {baseline * 1000:>9.1f} {'':>11} {'':>9}")
    first = None
    for size, regions in REGION_SETS.items():
        config = dict(base_config)
        config["agent-infra:regions"] = regions
        wall, count = timed_runs(config, args.repeats)
        first = first or wall
        print(f"{size:>7} {count:>9} {wall * 1000:>9.1f} {wall / first:>11.2f} {(wall - baseline) * 1000 / size:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
