"""Lambda: an invocation's billed duration (the handler's measured time at the function's
CPU share, its DynamoDB round trips, the model wait of the stream function), the duration
rate (on-demand or provisioned), provisioned concurrency by the month, and the concurrency
a rate of turns needs."""

from __future__ import annotations

import math
from collections.abc import Mapping

from cost.facts import StackFacts
from cost.lines import HOURS_PER_MONTH, SECONDS_PER_MONTH, TURNS, Capacity, Line
from cost.prices import PriceTable, Regional
from cost.turn import Assumptions, TurnProfile


def lambda_billed_ms(
    profile: TurnProfile, key: str, memory_mb: int, prices: PriceTable, assumptions: Assumptions
) -> int:
    """Billed duration of one invocation: the handler's measured local time scaled to the
    function's CPU share, plus its DynamoDB round trips, plus the model wait for the stream
    function; Lambda bills per 1 ms."""
    share = min(1.0, memory_mb / prices.fact("lambda.mb_per_vcpu")) * assumptions.cpu_per_local_core
    work = profile.handler_ms.get(key, 0.0) / share
    waits = profile.dynamodb_calls.get(key, 0.0) * assumptions.dynamodb_ms
    if key == "agent-stream":
        waits += assumptions.wait_s * 1000
    return max(1, math.ceil(work + waits))


def lambda_duration_rate(facts: StackFacts, prices: PriceTable, key: str, region: str) -> float:
    """Invocations served by provisioned concurrency bill the provisioned duration rate
    instead of the on-demand one (https://aws.amazon.com/lambda/pricing/; cost/prices.json).
    Counted so for every invocation of a function with provisioned concurrency in the region:
    true while its environments are enough; above them (4. CAPACITY), the overflow bills the
    on-demand rate, about $0.01 more per 1M turns at prod's 128 MB and ~20 ms."""
    provisioned = any(r == region and k == key and n > 0 for r, k, n in facts.provisioned)
    return prices.usd("lambda.arm_provisioned_duration_gb_second" if provisioned else "lambda.arm_gb_second", region)


def turn_lines(
    profile: TurnProfile,
    invocations: Mapping[str, float],
    facts: StackFacts,
    prices: PriceTable,
    assumptions: Assumptions,
) -> list[Line]:
    """Each function's requests and billed duration, ``invocations`` of it a turn."""
    at = Regional(prices, facts.regions)
    lines = []
    for key, count in sorted(invocations.items()):
        memory = facts.memory_mb(key)
        ms = lambda_billed_ms(profile, key, memory, prices, assumptions)
        duration = sum(lambda_duration_rate(facts, prices, key, r) for r in facts.regions) / len(facts.regions)
        provisioned = [r for r in facts.regions if any(p[:2] == (r, key) and p[2] > 0 for p in facts.provisioned)]
        group = "Lambda (authorizer)" if key == "authorizer" else "Lambda"
        lines.append(
            Line(
                group,
                f"{key} ({memory} MB)",
                TURNS * count * (at.turn("lambda.request") + ms / 1000 * memory / 1024 * duration),
                f"{count:g} x {ms} ms"
                + (
                    f", at the provisioned-concurrency duration rate in {len(provisioned)} regions"
                    if provisioned
                    else ""
                ),
            )
        )
    return lines


def provisioned_lines(facts: StackFacts, prices: PriceTable) -> list[Line]:
    """Provisioned concurrency, billed by the month whether it serves turns or not."""
    p = prices.usd
    lines = []
    for region, key, count in facts.provisioned:
        memory = next(f.memory_mb for f in facts.functions if f.key == key and f.region == region)
        lines.append(
            Line(
                "Lambda",
                f"provisioned concurrency {key} {region}",
                count * memory / 1024 * SECONDS_PER_MONTH * p("lambda.arm_provisioned_gb_second", region),
                f"{count} x {memory} MB x {HOURS_PER_MONTH} h at ${p('lambda.arm_provisioned_gb_second', region):.5g}"
                " per GB-s",
            )
        )
    return lines


def capacity(
    per_region: float,
    profile: TurnProfile,
    invocations: Mapping[str, float],
    facts: StackFacts,
    prices: PriceTable,
    assumptions: Assumptions,
) -> list[Capacity]:
    """Each function's concurrency beside its reserved concurrency, and all of them beside
    the account's quota."""
    out = []
    concurrency = {}
    for key, count in sorted(invocations.items()):
        ms = lambda_billed_ms(profile, key, facts.memory_mb(key), prices, assumptions)
        concurrency[key] = per_region * count * ms / 1000
        reserved = facts.reserved(key)
        out.append(
            Capacity(
                f"Lambda concurrency {key}",
                concurrency[key],
                float(reserved) if reserved is not None else None,
                "reserved concurrency (stack config)" if reserved is not None else "",
                "",
                True,
            )
        )
    out.append(
        Capacity.of_quota(
            "Lambda concurrency, all functions",
            sum(concurrency.values()),
            prices.quotas["lambda.concurrent_executions"],
        )
    )
    return out
