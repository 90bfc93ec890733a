"""The local global endpoint: Route 53's latency routing and health checks, run for real.

Unit tests of the rules (components/failover.py, local/route53/global_endpoint.py's HealthChecks),
then a two-region local stack: a client is sent to its nearest region, a region killed drops
every connection and is left out after the health check's threshold, and a session served in
one region is written in its home replica in the other."""

from __future__ import annotations

import time

import pytest
import requests

from components.failover import (
    HEALTH_CHECK_FAILURE_THRESHOLD,
    HEALTH_CHECK_INTERVAL_SECONDS,
    nearest_healthy,
    seconds_to_fail_over,
)
from handlers.shared import table as keys
from handlers.shared.store import rendezvous_order
from local.route53.global_endpoint import LOCATION_HEADER, SERVED_BY_HEADER, HealthChecks
from local.stack import LocalStack, free_port_triple, region_ports

A, B = "us-east-1", "eu-west-1"


def test_latency_routing_sends_a_client_to_the_nearest_healthy_region():
    assert nearest_healthy("eu-west-2", [A, B], {A, B}) == B
    assert nearest_healthy("us-west-2", [A, B], {A, B}) == A
    assert nearest_healthy("eu-west-2", [A, B], {A}) == A, "the next-best healthy record"
    assert nearest_healthy("eu-west-2", [A, B], set()) == B, "none healthy: all are answered as healthy"
    with pytest.raises(ValueError, match="no latency figures for 'mars-1'"):
        nearest_healthy("mars-1", [A, B], {A})


def test_a_health_check_changes_status_after_the_threshold_both_ways():
    checks = HealthChecks({A: "http://a", B: "http://b"}, scale=10)
    assert checks.interval == HEALTH_CHECK_INTERVAL_SECONDS / 10
    for _ in range(HEALTH_CHECK_FAILURE_THRESHOLD - 1):
        checks.record(A, False)
    assert checks.healthy_regions() == {A, B}, "not before the threshold"
    checks.record(A, True)  # a success in between starts the count again
    for _ in range(HEALTH_CHECK_FAILURE_THRESHOLD):
        checks.record(A, False)
    assert checks.healthy_regions() == {B}
    for _ in range(HEALTH_CHECK_FAILURE_THRESHOLD):
        checks.record(A, True)
    assert checks.healthy_regions() == {A, B}
    assert [(t.region, t.healthy) for t in checks.transitions] == [(A, False), (A, True)]


def test_the_deployed_failover_takes_threshold_intervals_plus_the_dns_ttl():
    assert seconds_to_fail_over(30, 3, 60) == (60, 150)
    assert seconds_to_fail_over(10, 1, 0) == (0, 10)


@pytest.fixture(scope="module")
def stack():
    port = free_port_triple(regions=[A, B])
    running = LocalStack(
        api_port=port,
        ws_port=port + 1,
        moto_port=None,
        regions=[A, B],
        region_ports=region_ports(port, [A, B]),
        replication_lag_seconds=0.05,
        health_check_scale=60,  # probes every 0.5 s
        throttle=(100.0, 200),
        log=lambda entry: None,
    ).start()
    yield running
    running.stop()


def post(stack, session_id: str, message: str, location: str, key: str | None = None) -> requests.Response:
    headers = {
        "Authorization": f"Bearer {stack.dev_token}",
        "x-api-key": stack.api_key,
        "content-type": "application/json",
        LOCATION_HEADER: location,
    }
    if key:
        headers["Idempotency-Key"] = key
    return requests.post(
        f"{stack.rest.url}/v1/sessions/{session_id}/messages", json={"message": message}, headers=headers, timeout=30
    )


def session_homed_in(region: str) -> str:
    for n in range(1000):
        if rendezvous_order(keys.session_pk(f"g{n}"), [A, B])[0] == region:
            return f"g{n}"
    raise AssertionError


def test_a_client_is_answered_by_its_nearest_region_and_the_session_is_written_in_its_home(stack):
    session_id = session_homed_in(A)
    answer = post(stack, session_id, "hello from Ireland", "eu-west-2")
    assert answer.status_code == 200 and answer.headers[SERVED_BY_HEADER] == B
    assert answer.json()["messageId"].startswith(f"00000001-{A}-"), "written in the session's home, in A"
    stack.global_table.drain()
    assert stack.global_table.differences() == []
    route = requests.get(f"{stack.rest.url}/_route53", params={"location": "us-west-2"}, timeout=5).json()
    assert route["region"] == A and route["healthy"] == {A: True, B: True}


def test_a_killed_region_drops_its_connections_and_its_clients_move_after_the_threshold(stack):
    session_id = session_homed_in(B)
    assert post(stack, session_id, "first", "eu-west-2").headers[SERVED_BY_HEADER] == B
    assert stack.global_table.drain()
    stack.fabric.kill(B)
    try:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{stack.region_stacks[B].rest.url}/v1/health", timeout=5)
        deadline = time.time() + 10
        while B in stack.endpoint.checks.healthy_regions() and time.time() < deadline:
            time.sleep(0.1)
        assert stack.endpoint.checks.healthy_regions() == {A}
        moved = post(stack, session_id, "second", "eu-west-2", key="k-second")
        assert moved.status_code == 200 and moved.headers[SERVED_BY_HEADER] == A
        assert moved.json()["messageId"].startswith("00001001-us-east-1-"), "the session's next home, 1,000 on"
    finally:
        stack.fabric.revive(B)
    deadline = time.time() + 10
    while B not in stack.endpoint.checks.healthy_regions() and time.time() < deadline:
        time.sleep(0.1)
    assert stack.global_table.drain()
    assert stack.global_table.differences() == []
    again = post(stack, session_id, "second", "eu-west-2", key="k-second")
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_request", "the key, across regions"
