"""Route 53: the health checks a custom domain adds (each by its endpoint and features, a
month), and the requests those probing the REST API send it, through API Gateway, the
health function, X-Ray and the access log."""

from __future__ import annotations

from cost.facts import StackFacts
from cost.lines import GIB, SECONDS_PER_MONTH, Line
from cost.prices import PriceTable, Regional
from cost.services.apigateway import access_log_bytes
from cost.services.observability import sampling_rate
from cost.turn import Assumptions


def health_check_lines(facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> list[Line]:
    p = prices.usd
    lines = []
    for check in facts.health_checks:
        base = p("route53.health_check_aws" if check.aws_endpoint else "route53.health_check_other")
        feature = p("route53.health_check_feature_aws" if check.aws_endpoint else "route53.health_check_feature_other")
        features = [
            name
            for name, on in (
                ("HTTPS", check.kind.startswith("HTTPS")),
                ("latency measurement", check.measure_latency),
                ("string matching", check.string_matching),
                ("fast interval", check.request_interval < 30),
            )
            if on
        ]
        lines.append(
            Line(
                "Route 53",
                f"health check {check.name}",
                base + feature * len(features),
                ", ".join(features) or "basic",
            )
        )
    return lines + _probe_lines(facts, prices, assumptions)


def _probe_lines(facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> list[Line]:
    """What the checks' requests to ``/v1/health`` cost where they land."""
    probing = [c for c in facts.health_checks if c.probes_rest_api]
    if not probing:
        return []
    at = Regional(prices, facts.regions)
    per_second = sum(prices.fact("route53.health_check_requests_per_second") * 30 / c.request_interval for c in probing)
    requests = per_second * SECONDS_PER_MONTH
    memory = facts.memory_mb("health")
    rate = sampling_rate(facts, assumptions)
    access = access_log_bytes(facts.access_log_format)
    each = (
        at.turn("apigw.rest_request")
        + at.turn("lambda.request")
        + assumptions.dynamodb_ms / 1000 * memory / 1024 * at.turn("lambda.arm_gb_second")
        + rate * at.turn("xray.trace_recorded")
        + access / GIB * at.turn("logs.ingest_gb")
    )
    return [
        Line(
            "Route 53",
            "health checks' requests to /v1/health",
            requests * each,
            f"{requests / 1e6:,.2f} M requests a month: API Gateway, health Lambda, X-Ray {rate:.0%}, access log",
        )
    ]
