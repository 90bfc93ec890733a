"""The arithmetic, one module per AWS service; here the report's three sums, each part in
the order the report prints it:

- :func:`turn_lines`: dollars per 1M turns of a measured turn, each at the rates of the
  regions where it is billed;
- :func:`fixed_lines`: dollars a month that do not depend on turns;
- :func:`capacity_lines`: what a rate of turns needs in each region beside AWS's default
  quotas and the stack's own limits.
"""

from __future__ import annotations

from cost.facts import StackFacts
from cost.lines import Capacity, Line
from cost.prices import PriceTable, Regional
from cost.services import apigateway, awslambda, dynamodb, keys, observability, route53, stepfunctions
from cost.turn import Assumptions, TurnProfile


def turn_lines(profile: TurnProfile, facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> list[Line]:
    """Dollars per 1M turns of ``profile``, per part, each at the rates of the regions where
    it is billed."""
    invocations = dict(profile.invocations)
    if profile.kind != "websocket":
        invocations["authorizer"] = apigateway.authorizer_calls_per_turn(facts, profile)
    return [
        *apigateway.turn_lines(profile, Regional(prices, facts.regions)),
        *stepfunctions.turn_lines(profile, facts, prices, assumptions),
        *awslambda.turn_lines(profile, invocations, facts, prices, assumptions),
        *dynamodb.turn_lines(profile, facts, prices),
        *observability.xray_lines(facts, prices, assumptions),
        *observability.log_lines(profile, facts, prices),
        *dynamodb.transfer_lines(profile, facts, prices),
    ]


def fixed_lines(facts: StackFacts, prices: PriceTable, assumptions: Assumptions, emf_metrics: int = 0) -> list[Line]:
    """Dollars a month that do not depend on turns."""
    return [
        *observability.cloudwatch_lines(facts, prices, emf_metrics),
        *route53.health_check_lines(facts, prices, assumptions),
        *keys.kms_lines(facts, prices),
        *keys.secret_lines(facts, prices),
        *awslambda.provisioned_lines(facts, prices),
        *observability.budget_lines(facts, prices),
    ]


def capacity_lines(
    rate: float,
    profile: TurnProfile,
    facts: StackFacts,
    prices: PriceTable,
    assumptions: Assumptions,
    tokens_per_call: float,
) -> list[Capacity]:
    """What ``rate`` turns a second of ``profile`` need in each region (an even split across
    the regions), beside AWS's default quotas and the stack's own limits; a model call is
    ``tokens_per_call`` tokens, prompt and answer."""
    per_region = rate / len(facts.regions)
    invocations = {**profile.invocations, "authorizer": apigateway.authorizer_calls_per_turn(facts, profile)}
    tokens = per_region * profile.model_calls * tokens_per_call * 60
    return [
        *awslambda.capacity(per_region, profile, invocations, facts, prices, assumptions),
        *stepfunctions.capacity(per_region, profile, facts, prices, assumptions),
        *dynamodb.capacity(rate, profile, facts, prices),
        *apigateway.capacity(per_region, profile, facts, prices),
        Capacity(
            "model tokens per minute (Bedrock)",
            tokens,
            None,
            "the model's quota: Service Quotas (bedrock), not checked here",
            "",
            True,
        ),
        *observability.xray_capacity(per_region, sum(invocations.values()), facts, prices, assumptions),
    ]
