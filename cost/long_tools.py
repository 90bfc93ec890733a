"""What an hour of a long tool's work costs, by runtime and region (``make cost``'s last section).

A ``fargate-spot`` tool is billed per vCPU-hour and GB-hour of its task size (arm64), on Spot
for the runs that finish there and on-demand Fargate for the last attempt, plus its task's
public IPv4 address; a ``continuation`` tool is billed per Lambda GB-second of each slice and
per Standard state transition of the task machine's loop. Figures from cost/prices.json, each
with its source; Spot's price moves, and the report prices it at the discount AWS states as its
most ("up to 70%"), so the Spot column is a floor, the on-demand one a ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cost.prices import PriceTable

SECONDS_PER_HOUR = 3600
# The task machine's continuation loop: invoke the slice, test "done", loop back (part of the
# task definition, components/workflows/tools.py); the transitions one slice costs.
TRANSITIONS_PER_SLICE = 3
REFERENCE_TASK = {"name": "(reference 1 vCPU, 2 GB)", "cpu": 1024, "memoryMb": 2048}
REFERENCE_SLICE = {"name": "(reference 1024 MB, 900 s slices)", "memoryMb": 1024, "timeoutSeconds": 900}


@dataclass(frozen=True)
class LongToolHour:
    tool: str
    region: str
    on_demand: float
    spot: float
    continuation: float | None


def fargate_hour(prices: PriceTable, region: str, cpu: int, memory_mb: int, spot: bool) -> float:
    """One hour of a task of ``cpu`` units and ``memory_mb`` MiB, with its public IPv4 address."""
    compute = cpu / 1024 * prices.usd("fargate.arm_vcpu_hour", region) + memory_mb / 1024 * prices.usd(
        "fargate.arm_gb_hour", region
    )
    if spot:
        compute *= 1 - prices.fact("fargate.spot_discount")
    return compute + prices.usd("vpc.public_ipv4_hour", region)


def continuation_hour(prices: PriceTable, region: str, memory_mb: int, slice_seconds: int) -> float:
    """One hour of work in slices of ``slice_seconds`` on an arm64 Lambda of ``memory_mb``."""
    slices = SECONDS_PER_HOUR / slice_seconds
    lambda_cost = memory_mb / 1024 * SECONDS_PER_HOUR * prices.usd("lambda.arm_gb_second", region)
    requests = slices * prices.usd("lambda.request", region)
    transitions = slices * TRANSITIONS_PER_SLICE * prices.usd("sfn.standard_transition", region)
    return lambda_cost + requests + transitions


def long_tool_hours(
    prices: PriceTable, regions: Sequence[str], tools: Sequence[Mapping[str, Any]]
) -> list[LongToolHour]:
    """Each fargate-spot tool (or a reference size) priced per hour of work on Spot, on-demand,
    and as a continuation Lambda of the stack's continuation tool's size (or a reference)."""
    tasks = [t for t in tools if t.get("runtime") == "fargate-spot"] or [REFERENCE_TASK]
    sliced = next((t for t in tools if t.get("runtime") == "continuation"), REFERENCE_SLICE)
    return [
        LongToolHour(
            tool=task["name"],
            region=region,
            on_demand=fargate_hour(prices, region, task["cpu"], task["memoryMb"], spot=False),
            spot=fargate_hour(prices, region, task["cpu"], task["memoryMb"], spot=True),
            continuation=continuation_hour(
                prices, region, sliced.get("memoryMb", 128), sliced.get("timeoutSeconds", 30)
            ),
        )
        for task in tasks
        for region in regions
    ]


def render_long_tools(prices: PriceTable, regions: Sequence[str], tools: Sequence[Mapping[str, Any]]) -> str:
    sliced = next((t for t in tools if t.get("runtime") == "continuation"), REFERENCE_SLICE)
    lines = [
        "",
        "Long tools: one hour of work, by runtime (arm64)",
        f"  continuation: {sliced['name']} {sliced.get('memoryMb', 128)} MB, slices of"
        f" {sliced.get('timeoutSeconds', 30)} s, {TRANSITIONS_PER_SLICE} Standard transitions a slice",
        "  fargate: vCPU-hour + GB-hour of the task size + its public IPv4; Spot at AWS's stated"
        f" maximum discount ({prices.fact('fargate.spot_discount'):.0%}), so a floor",
        f"  {'tool':<34} {'region':<16} {'Spot':>9} {'on-demand':>10} {'continuation':>13}",
    ]
    for hour in long_tool_hours(prices, regions, tools):
        lines.append(
            f"  {hour.tool:<34} {hour.region:<16} ${hour.spot:>8.4f} ${hour.on_demand:>9.4f}"
            f" ${hour.continuation:>12.4f}"
        )
    unsourced = sorted(
        {r for key in ("fargate.arm_vcpu_hour", "fargate.arm_gb_hour") for r in prices.prices[key].unsourced_in}
        & set(regions)
    )
    if unsourced:
        lines.append(f"  priced at us-east-1's Fargate rates (no figure of their own found): {', '.join(unsourced)}")
    nat = prices.usd("vpc.nat_gateway_hour") * 730
    lines.append(
        f"  no NAT gateway (public subnets): one would add ${nat:.2f} a month per zone and region before any traffic"
    )
    return "\n".join(lines) + "\n"
