"""The failover drill, short (what `make drill SHORT=1` runs): two local regions, 20 clients
over REST and WebSocket, the first region killed mid-run and brought back, a task's approval
decided while it is down, then one session through both regions at once."""

from __future__ import annotations

import json

from local.drill import GOALS, Plan, run


def test_the_short_drill_meets_every_goal_and_writes_its_report(tmp_path):
    report = run(Plan.short(), tmp_path)
    assert report.goals_missed == [], report.goals_missed
    failover, flip = report.failover, report.flip
    for name, goal in GOALS.items():
        assert failover[name] == goal and flip[name] == goal, name
    assert failover["replicas equal"] and flip["replicas equal"]
    assert failover["one order in every replica"] and flip["one order in every replica"]
    assert failover["merge lost"] == 0
    # The drill did what it says: a region failed with clients on it and they moved.
    assert failover["clients"] >= 20 and failover["websocket clients"] >= 1
    assert failover["seconds until every client is answered again"] is not None
    assert set(failover["answers by region"]) == {"us-east-1", "eu-west-1"}
    assert failover["websocket clients that resumed in another region"] >= 1
    approval = failover["approval"]
    assert approval["started in"] == "us-east-1" and approval["decided in"] == "eu-west-1"
    assert approval["delivery when decided"] == "pending" and approval["task"] == "SUCCEEDED"
    assert flip["answers"] == 2 * Plan.short().flip_messages
    assert set(flip["answers by region"]) == {"us-east-1", "eu-west-1"}, "the session went through both"
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["failover"]["lost"] == 0 and saved["flip"]["duplicated"] == 0
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_drills_clients_run_against_any_global_endpoint_and_read_the_result_back_through_the_api(tmp_path):
    """--endpoint: the same clients against a deployed stack's names; here, a local one's."""
    from local.drill import Credentials, main, run_against
    from local.stack import LocalStack, free_port_triple, region_ports

    regions = ["us-east-1", "eu-west-1"]
    port = free_port_triple(regions=regions)
    stack = LocalStack(
        api_port=port,
        ws_port=port + 1,
        moto_port=None,
        regions=regions,
        region_ports=region_ports(port, regions),
        throttle=(200.0, 400),
        log=lambda entry: None,
    ).start()
    try:
        credentials = Credentials(stack.rest.url, stack.websocket.url, stack.dev_token, stack.api_key)
        figures = run_against(credentials, clients=5, duration=2.0, report_dir=tmp_path)
    finally:
        stack.stop()
    assert figures["answers"] > 5 and figures["lost"] == 0 and figures["duplicated"] == 0 and figures["rekeyed"] == 0
    assert figures["aborted the experiment"] is False
    assert json.loads((tmp_path / "report.json").read_text())["deployed"]["lost"] == 0
    assert main(["--endpoint", "https://api.example.com", "--token", "t"]) == 2, "says what else it needs"
