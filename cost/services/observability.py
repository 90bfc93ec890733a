"""Watching the stack: X-Ray's traces and segments, CloudWatch Logs' ingestion (function
logs, the turn machine's events at its level, access logs), CloudWatch's alarms,
dashboards and metrics by the month, and the budgets."""

from __future__ import annotations

from cost.facts import StackFacts
from cost.lines import GIB, TURNS, Capacity, Line
from cost.prices import PriceTable, Regional
from cost.services.apigateway import access_log_bytes, websocket_access_lines
from cost.turn import Assumptions, TurnProfile

# The metrics a REST method with detailed metrics emits (CacheHitCount and CacheMissCount
# too when the stage has a cache; ours has none):
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html
API_METHOD_METRICS = ("Count", "4XXError", "5XXError", "Latency", "IntegrationLatency")


def sampling_rate(facts: StackFacts, assumptions: Assumptions) -> float:
    if assumptions.xray_sampling is not None:
        return assumptions.xray_sampling
    return 1.0 if facts.xray_sampling is None else facts.xray_sampling


def log_bytes_per_turn(profile: TurnProfile, facts: StackFacts) -> tuple[float, float, float]:
    """(Lambda application logs, Step Functions logs at the machine's level, access logs)."""
    sfn = profile.sfn_log_bytes.get((facts.turn_log_level, facts.turn_log_data and facts.turn_log_level == "ALL"))
    if sfn is None:
        sfn = profile.sfn_log_bytes.get((facts.turn_log_level, False), 0.0)
    if profile.kind == "websocket":
        access = websocket_access_lines(profile) * access_log_bytes(facts.websocket_access_log_format)
    else:
        access = access_log_bytes(facts.access_log_format)
    return profile.lambda_log_bytes, sfn, float(access)


def xray_lines(facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> list[Line]:
    """One trace a turn, at the sampling rate."""
    at = Regional(prices, facts.regions)
    rate = sampling_rate(facts, assumptions)
    return [
        Line("X-Ray", "traces recorded", TURNS * rate * at.turn("xray.trace_recorded"), f"1 trace a turn x {rate:.0%}")
    ]


def log_lines(profile: TurnProfile, facts: StackFacts, prices: PriceTable) -> list[Line]:
    """The bytes a turn logs, all ingested in the turn's region."""
    at = Regional(prices, facts.regions)
    function_logs, sfn_logs, access = log_bytes_per_turn(profile, facts)
    total_logs = function_logs + sfn_logs + access
    return [
        Line(
            "CloudWatch Logs",
            "ingestion",
            TURNS * total_logs / GIB * at.turn("logs.ingest_gb"),
            f"{function_logs:,.0f} B functions + {sfn_logs:,.0f} B Step Functions ({facts.turn_log_level})"
            f" + {access:,.0f} B access log, at ${at.rates('logs.ingest_gb')} per GB",
        )
    ]


def cloudwatch_lines(facts: StackFacts, prices: PriceTable, emf_metrics: int) -> list[Line]:
    """Alarms (standard and high resolution), dashboards, the handlers' EMF metrics and the
    REST methods' detailed metrics, a month."""
    p = prices.usd
    lines: list[Line] = []
    standard = sum(1 for _, period in facts.alarms if period >= 60)
    high = len(facts.alarms) - standard
    if standard:
        lines.append(
            Line("CloudWatch", "alarms (standard)", standard * p("cloudwatch.alarm_standard"), f"{standard} alarms")
        )
    if high:
        lines.append(
            Line(
                "CloudWatch",
                "alarms (high resolution)",
                high * p("cloudwatch.alarm_high_resolution"),
                f"{high} alarms",
            )
        )
    if facts.dashboards:
        lines.append(
            Line(
                "CloudWatch",
                "dashboards",
                facts.dashboards * p("cloudwatch.dashboard"),
                f"{facts.dashboards} (the account's first 3 are free)",
            )
        )
    if emf_metrics:
        count = emf_metrics * len(facts.regions)
        lines.append(
            Line(
                "CloudWatch",
                "custom metrics (EMF, one model)",
                count * p("cloudwatch.custom_metric"),
                f"{emf_metrics} metrics x {len(facts.regions)} regions",
            )
        )
    if facts.detailed_metric_methods:
        count = facts.detailed_metric_methods * len(API_METHOD_METRICS)
        lines.append(
            Line(
                "CloudWatch",
                "API Gateway method-level metrics",
                count * p("cloudwatch.custom_metric"),
                f"{facts.detailed_metric_methods} methods (all regions) x {len(API_METHOD_METRICS)} metrics",
            )
        )
    return lines


def budget_lines(facts: StackFacts, prices: PriceTable) -> list[Line]:
    if not facts.budgets:
        return []
    return [Line("Budgets", "budgets (no actions)", facts.budgets * prices.usd("budgets.budget_month"), "free")]


def xray_capacity(
    per_region: float, lambda_invocations: float, facts: StackFacts, prices: PriceTable, assumptions: Assumptions
) -> list[Capacity]:
    """Segments a second: API Gateway's and Step Functions' one each, and each traced
    Lambda invocation's."""
    segments = 2 + assumptions.lambda_segments_per_invocation * lambda_invocations
    needed = per_region * sampling_rate(facts, assumptions) * segments
    return [Capacity.of_quota("X-Ray segments per second", needed, prices.quotas["xray.segments_per_second"])]
