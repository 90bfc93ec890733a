"""Would DAX pay? DynamoDB reads per turn, their share of a turn's time, and a cluster's price.

    python -m bench.dax [--session-turns 10] [--dynamodb-ms 10] [--model-wait S]

The reads are counted, not guessed: ``cost.measure`` runs sessions of each kind of turn
through the local stack (the real API, state machine and handlers against moto) and counts
every DynamoDB request a turn makes. The time of a turn is put together from the same
measurement and ``cost.turn.Assumptions``: the model calls' wait, each function's
measured handler time, one DynamoDB round trip per request and each Task state's overhead.
Moto's own latency says nothing about DynamoDB's, so a read is costed at ``--dynamodb-ms``
(DynamoDB: "response times can be measured in single-digit milliseconds"; DAX brings
eventually consistent reads "from single-digit milliseconds to microseconds",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DAX.html). The share of
the turn spent in reads is the most DAX could take off it, were every read a cache hit.

DAX's price: nodes by the hour, at least three for production ("For production usage, we
strongly recommend using DAX with at least three nodes, where each node is placed in a
different Availability Zone",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DAX.create-cluster.console.create-cluster.html),
one cluster per region (a cluster "can only interact with DynamoDB tables that are in the
same Region", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DAX.concepts.cluster.html).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cost.prices import load_prices
from cost.turn import Assumptions, with_model_wait

READS = ("GetItem", "Query", "BatchGetItem")
# The smallest node type, in us-east-1: "DAX costs $0.04/hour per node (dax.t3.small)"
# (https://www.usage.ai/blog/aws-reserved-instances-dynamodb-dax-pricing, April 2026, which
# refers to https://aws.amazon.com/dynamodb/pricing/). No stored page gives other regions'
# prices; they are not lower in the regions this project deploys to, so this is a floor.
DAX_NODE_USD_PER_HOUR = 0.04
DAX_MIN_NODES = 3
HOURS_PER_MONTH = 730
PRICES = Path(__file__).resolve().parent.parent / "cost" / "prices.json"


def read_unit_usd() -> float:
    """On-demand price of a read request unit, from the cost report's price table."""
    return float(json.loads(PRICES.read_text())["prices"]["dynamodb.read_request_unit"]["usd"])


def turn_figures(profile, assumptions: Assumptions) -> dict[str, float]:
    """Reads and writes per turn, the turn's time and the part of it spent in reads."""
    reads = sum(profile.dynamodb_requests.get(op, 0.0) for op in READS)
    requests = sum(profile.dynamodb_requests.values())
    handlers_ms = sum(profile.invocations[f] * profile.handler_ms.get(f, 0.0) for f in profile.invocations)
    turn_ms = (
        profile.model_calls * assumptions.wait_s * 1000
        + handlers_ms
        + requests * assumptions.dynamodb_ms
        + profile.task_states * assumptions.task_overhead_ms
    )
    read_ms = reads * assumptions.dynamodb_ms
    return {
        "reads": reads,
        "writes": requests - reads,
        "turn_ms": turn_ms,
        "read_ms": read_ms,
        "share": read_ms / turn_ms,
    }


def main() -> None:
    defaults = Assumptions()
    parser = argparse.ArgumentParser(prog="python -m bench.dax", description=__doc__.splitlines()[0])
    parser.add_argument("--session-turns", type=int, default=10, help="turns per session measured (default 10)")
    parser.add_argument("--dynamodb-ms", type=float, default=defaults.dynamodb_ms, help="DynamoDB round trip, ms")
    parser.add_argument(
        "--model-wait", type=float, help="seconds per model call (default: derived from the dev model's speed)"
    )
    args = parser.parse_args()
    from cost.measure import measure
    from local.pulumi_mocks import stack_config

    model = stack_config("dev")["agent-infra:llm"]["model"]
    assumptions = with_model_wait(
        Assumptions(dynamodb_ms=args.dynamodb_ms, model_wait_s=args.model_wait), load_prices().models.get(model), model
    )
    measured = measure(session_turns=args.session_turns)
    print(f"per turn, {args.session_turns}-turn sessions on the local stack; a DynamoDB round trip costed at")
    print(f"{args.dynamodb_ms:g} ms, a model call at {assumptions.wait_s:.2f} s ({assumptions.model_wait_source})")
    print(f"{'turn':<12}{'reads':>7}{'writes':>8}{'turn ms':>10}{'reads ms':>10}{'reads share':>13}")
    for kind, profile in measured.profiles.items():
        f = turn_figures(profile, assumptions)
        print(
            f"{kind:<12}{f['reads']:>7.2f}{f['writes']:>8.2f}{f['turn_ms']:>10.0f}{f['read_ms']:>10.1f}{f['share']:>12.2%}"
        )
    cluster = DAX_NODE_USD_PER_HOUR * DAX_MIN_NODES * HOURS_PER_MONTH
    # An eventually consistent read of up to 4 KB is half a read request unit.
    per_read = read_unit_usd() / 2
    print(
        f"DAX: {DAX_MIN_NODES} x dax.t3.small x ${DAX_NODE_USD_PER_HOUR}/h = ${cluster:,.2f} a month per region, "
        f"before any request; it pays for itself on reads alone past {cluster / per_read / 1e6:,.0f}M cache hits "
        f"a month per region (an eventually consistent read: ${per_read * 1e6:.4f} per million)"
    )


if __name__ == "__main__":
    main()
