"""Step Functions: the turn's Express execution (one request and its duration in 100 ms
steps of the smallest memory chunk), the bytes its events log at each level, and the
starts a second a rate of turns needs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from components import naming
from cost.facts import StackFacts
from cost.lines import TURNS, Capacity, Line
from cost.prices import PriceTable, Regional
from cost.services.awslambda import lambda_billed_ms
from cost.turn import Assumptions, TurnProfile

EXPRESS_BILLED_MB = 64  # the smallest chunk; a turn's state is far below it (docs/cost.md, prices.json)
_ERROR_EVENTS = ("Failed", "TimedOut", "Aborted")
_FATAL_EVENTS = ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")


def sfn_log_bytes(histories: Sequence[Mapping[str, Any]], level: str, include_data: bool) -> float:
    """Bytes the executions' events would log at ``level`` (ALL, ERROR, FATAL, OFF), with or
    without execution data: each event as one JSON record (its id, type, details, previous
    event id, timestamp and the execution ARN, as Step Functions writes them to CloudWatch
    Logs; https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html), the
    inputs and outputs left out without data."""
    if level == "OFF":
        return 0.0
    total = 0
    for history in histories:
        for event in history["events"]:
            kind = str(getattr(event["type"], "value", event["type"]))
            if level == "ERROR" and not kind.endswith(_ERROR_EVENTS):
                continue
            if level == "FATAL" and kind not in _FATAL_EVENTS:
                continue
            details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
            if not include_data:
                details = {
                    k: {
                        f: x
                        for f, x in v.items()
                        if f not in ("input", "output", "inputDetails", "outputDetails", "parameters")
                    }
                    for k, v in details.items()
                }
            record = {
                "id": str(event.get("id")),
                "type": kind,
                "details": details,
                "previous_event_id": str(event.get("previousEventId", 0)),
                "event_timestamp": "1795859026914",
                "execution_arn": f"arn:aws:states:us-east-1:{naming.STAND_IN_ACCOUNT_ID}:express:"
                "agent-infra-prod-turn:00000000-0000-0000-0000-000000000000:00000000-0000-0000-0000-000000000000",
            }
            total += len(json.dumps(record, default=str, separators=(",", ":")).encode()) + 1
    return float(total)


def express_billed_ms(profile: TurnProfile, facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> int:
    """The turn's Express duration, rounded up to the next 100 ms: the model waits (the
    state machine's own model calls: the last writes the answer, the others ask for tools),
    every function it runs, and each Task state's overhead."""
    streamed = profile.invocations.get("agent-stream", 0.0)
    own_model_calls = profile.model_calls - streamed
    answers = 0.0 if streamed else min(1.0, own_model_calls)
    ms = (answers * assumptions.wait_s + (own_model_calls - answers) * assumptions.tool_wait_s) * 1000
    for key, count in profile.invocations.items():
        if key in ("authorizer", "connection"):
            continue  # API Gateway calls these, outside the execution
        ms += count * lambda_billed_ms(profile, key, facts.memory_mb(key), prices, assumptions)
    ms += profile.task_states * assumptions.task_overhead_ms
    return max(100, math.ceil(ms / 100) * 100)


def turn_lines(profile: TurnProfile, facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> list[Line]:
    """The turn's Express request and its billed duration."""
    at = Regional(prices, facts.regions)
    billed = express_billed_ms(profile, facts, prices, assumptions)
    return [
        Line("Step Functions", "Express request", TURNS * at.turn("sfn.express_request"), "1 a turn"),
        Line(
            "Step Functions",
            "Express duration",
            TURNS * billed / 1000 * EXPRESS_BILLED_MB / 1024 * at.turn("sfn.express_gb_second"),
            f"{billed} ms billed x {EXPRESS_BILLED_MB} MB",
        ),
    ]


def capacity(
    per_region: float, profile: TurnProfile, facts: StackFacts, prices: PriceTable, assumptions: Assumptions
) -> list[Capacity]:
    """Express starts a second beside the quota; executions open at once (Express has no quota)."""
    express_s = express_billed_ms(profile, facts, prices, assumptions) / 1000
    return [
        Capacity.of_quota(
            "Express starts per second (StartSyncExecution)", per_region, prices.quotas["sfn.express_start_rate"]
        ),
        Capacity("Express executions open at once", per_region * express_s, None, "no quota for Express", "", True),
    ]
