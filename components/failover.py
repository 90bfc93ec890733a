"""How a region drops out of the global names and comes back: Route 53's rules, as data.

Pure: no Pulumi import. ``GlobalRouting`` deploys one health check per region with these
values and latency records that skip an unhealthy region; the local global endpoint
(``local/route53/global_endpoint.py``) runs the same rules against the local regions, so the failover
drill measures what the deployed records do, on a scaled clock.

- A health check probes ``HEALTH_PATH`` every ``HEALTH_CHECK_INTERVAL_SECONDS`` (10 or 30:
  "every 10 seconds or every 30 seconds",
  https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html),
  and changes status after ``HEALTH_CHECK_FAILURE_THRESHOLD`` consecutive results the other
  way ("The number of consecutive health checks that an endpoint must pass or fail for
  Route 53 to change the current status",
  https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-creating-values.html).
- Latency routing answers with the lowest-latency record; "If the record is unhealthy,
  Route 53 chooses another record using the same criteria and repeats the process until it
  finds a healthy record"
  (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-how-route-53-chooses-records.html).
  With none healthy, every record is answered as if healthy (the same page: Route 53 "considers
  all the records in the group to be healthy").
- Clients hold an answer for the DNS TTL; "A value of 60 seconds is typical for failover use"
  (https://docs.aws.amazon.com/prescriptive-guidance/latest/dynamodb-global-tables/route-53-request-routing.html).
  Alias records to API Gateway take the target's TTL, which AWS does not state.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from components.endpoints import latency_table

HEALTH_PATH = "/v1/health"
HEALTH_CHECK_INTERVAL_SECONDS = 30
HEALTH_CHECK_FAILURE_THRESHOLD = 3
TYPICAL_DNS_TTL_SECONDS = 60


def seconds_to_fail_over(
    interval: float = HEALTH_CHECK_INTERVAL_SECONDS,
    threshold: int = HEALTH_CHECK_FAILURE_THRESHOLD,
    dns_ttl: float = TYPICAL_DNS_TTL_SECONDS,
) -> tuple[float, float]:
    """The range of seconds from a region failing to every client being sent elsewhere:
    ``threshold`` failed probes (the first as soon as it fails, or a whole interval later),
    then the client's cached answer running out (at once, or after the whole TTL)."""
    return (threshold - 1) * interval, threshold * interval + dns_ttl


def nearest_healthy(location: str, regions: Sequence[str], healthy: Collection[str]) -> str:
    """The region latency routing answers a client in ``location`` with: the lowest latency
    among the healthy regions, among all of them when none is healthy."""
    table = latency_table()
    if location not in table:
        raise ValueError(f"no latency figures for {location!r}; locations are AWS regions: {sorted(table)}")
    candidates = [r for r in regions if r in healthy] or list(regions)
    return min(candidates, key=lambda r: (table[location].get(r, float("inf")), r))
