"""make cost: the arithmetic against a hand computation, fixed costs from the program's
resources, the turn profile measured on the local stack against what the code does, and the
CLI's sections."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from cost import model
from cost.model import (
    Assumptions,
    Entry,
    FunctionFacts,
    HealthCheckFacts,
    ModelPrice,
    PriceTable,
    StackFacts,
    TurnProfile,
    facts_from_resources,
    fixed_lines,
    item_size,
    load_prices,
    token_cost,
    total,
    turn_lines,
)
from local.pulumi_mocks import RecordedResource, run_program, stack_config

SESSION_TURNS = 8  # the 8th turn comes 630 s after the first: it refreshes the session's place in GSI1
INTERVAL = 90.0


def _entry(key: str, value: float) -> Entry:
    return Entry(key, value, "unit", "https://example.invalid/", "2026-11-28", True, "test")


# The published us-east-1 figures the hand computation below uses, written out here so the
# test does not move when cost/prices.json is corrected.
PRICES = PriceTable(
    prices={
        k: _entry(k, v)
        for k, v in {
            "apigw.rest_request": 3.5e-06,
            "apigw.ws_message": 1.0e-06,
            "apigw.ws_connection_minute": 2.5e-07,
            "sfn.express_request": 1.0e-06,
            "sfn.express_gb_second": 1.6667e-05,
            "lambda.request": 2.0e-07,
            "lambda.arm_gb_second": 1.33334e-05,
            "lambda.arm_provisioned_gb_second": 3.3334e-06,
            "dynamodb.write_request_unit": 6.25e-07,
            "dynamodb.read_request_unit": 1.25e-07,
            "dynamodb.storage_gb_month": 0.25,
            "dynamodb.pitr_gb_month": 0.20,
            "transfer.inter_region_gb": 0.02,
            "xray.trace_recorded": 5.0e-06,
            "logs.ingest_gb": 0.50,
            "cloudwatch.alarm_standard": 0.10,
            "cloudwatch.alarm_high_resolution": 0.30,
            "cloudwatch.dashboard": 3.0,
            "cloudwatch.custom_metric": 0.30,
            "kms.key_month": 1.0,
            "secretsmanager.secret_month": 0.40,
            "route53.health_check_aws": 0.50,
            "route53.health_check_other": 0.75,
            "route53.health_check_feature_aws": 1.0,
            "route53.health_check_feature_other": 2.0,
            "budgets.budget_month": 0.0,
        }.items()
    },
    quotas={},
    facts={
        "lambda.mb_per_vcpu": _entry("lambda.mb_per_vcpu", 1769),
        "route53.health_check_requests_per_second": _entry("route53.health_check_requests_per_second", 0.5),
    },
    models={},
    region="us-east-1",
    read="2026-11-28",
)


def _facts(**changes) -> StackFacts:
    facts = StackFacts(
        stack="prod",
        resources=0,
        regions=("us-east-1", "eu-west-1", "ap-northeast-1"),
        functions=(
            FunctionFacts("agent-prepare", "us-east-1", 256, None, "WARN"),
            FunctionFacts("agent-record", "us-east-1", 256, None, "WARN"),
            FunctionFacts("authorizer", "us-east-1", 256, None, "WARN"),
            FunctionFacts("health", "us-east-1", 256, None, "WARN"),
        ),
        provisioned=(),
        alarms=(),
        dashboards=0,
        health_checks=(),
        kms_keys=0,
        secrets=0,
        event_connections=0,
        budgets=0,
        table_regions=3,
        pitr_regions=3,
        ttl_days=365,
        turn_log_level="ERROR",
        turn_log_data=False,
        access_log_format="x" * 99,
        execution_log_level="ERROR",
        stage_rate_limit=200,
        stage_burst_limit=400,
        quota_per_day=100_000,
        authorizer_ttl_s=300,
        llm_provider="bedrock",
        llm_model="m",
        xray_sampling=None,
        xray_source="none",
    )
    return dataclasses.replace(facts, **changes)


DIRECT = TurnProfile(
    kind="direct",
    description="direct answer",
    turns=10,
    session_turns=10,
    turn_interval_s=90.0,
    states_entered=7,
    task_states=3,
    model_calls=1,
    invocations={"agent-prepare": 1, "agent-record": 1},
    handler_ms={"agent-prepare": 1.0, "agent-record": 0.5, "authorizer": 0.5},
    dynamodb_calls={"agent-prepare": 1, "agent-record": 1},
    dynamodb_requests={"Query": 1, "PutItem": 0.8, "TransactWriteItems": 0.2},
    write_units=1.6,
    replica_write_units=1.2,
    gsi_write_units=0.3,
    read_units=0.5,
    new_items=1.1,
    ttl_delete_units=1.1,
    gsi_ttl_delete_units=0.1,
    table_byte_months=5120.0,
    gsi_byte_months=0.0,
    written_bytes=365.0,
    item_sizes=(195, 325),
    lambda_log_bytes=344.0,
    sfn_log_bytes={("ERROR", False): 0.0, ("ALL", False): 2000.0, ("ALL", True): 9000.0},
)


def test_the_arithmetic_of_a_direct_turn_against_a_hand_computation():
    lines = {line.part: line.usd for line in turn_lines(DIRECT, _facts(), PRICES, Assumptions())}
    # API Gateway: 1M requests x $3.50 / 1M                                    = 3.50
    assert lines["REST request"] == pytest.approx(3.50)
    # Express: 1M requests x $1.00 / 1M                                        = 1.00
    assert lines["Express request"] == pytest.approx(1.00)
    # A 256 MB function gets 256 / 1769 = 0.144714 of a vCPU.
    # agent-prepare: 1.0 ms / 0.144714 = 6.91 ms + 1 DynamoDB call x 10 ms  = 16.91 -> 17 ms billed
    # agent-record:  0.5 ms / 0.144714 = 3.45 ms + 10 ms                   = 13.45 -> 14 ms billed
    # Express duration: 1 model call x 3000 ms + 17 + 14 + 3 Task states x 25 ms = 3106 -> 3200 ms billed
    #   1M x 3.2 s x 64/1024 GB x $0.00001667                                = 3.33340
    assert lines["Express duration"] == pytest.approx(3.3334)
    # agent-prepare: 1M x ($0.0000002 + 0.017 s x 0.25 GB x $0.0000133334)   = 0.2 + 0.0566670 = 0.256667
    assert lines["agent-prepare (256 MB)"] == pytest.approx(0.256667, rel=1e-5)
    # agent-record:  1M x ($0.0000002 + 0.014 s x 0.25 GB x $0.0000133334)   = 0.2 + 0.0466669 = 0.246667
    assert lines["agent-record (256 MB)"] == pytest.approx(0.246667, rel=1e-5)
    # authorizer: a turn every 90 s, answers cached 300 s: 90/300 = 0.3 invocations a turn;
    #   0.5 ms / 0.144714 = 3.46 -> 4 ms; 0.3 x 1M x ($0.0000002 + 0.004 x 0.25 x $0.0000133334) = 0.3 x 0.2133334
    assert lines["authorizer (256 MB)"] == pytest.approx(0.064, rel=1e-4)
    # DynamoDB, $0.625 per 1M write units (replicated ones priced the same):
    #   where written 1.6 x 0.625 = 1.00; 2 replicas 1.2 x 2 x 0.625 = 1.50;
    #   GSI1 in 3 regions 0.3 x 3 x 0.625 = 0.5625; TTL deletes replicated (1.1 + 0.1) x 2 x 0.625 = 1.50
    assert lines["writes where they happen"] == pytest.approx(1.00)
    assert lines["replicated writes (2 replicas)"] == pytest.approx(1.50)
    assert lines["GSI1 writes (3 regions)"] == pytest.approx(0.5625)
    assert lines["replicated TTL deletes (2 replicas)"] == pytest.approx(1.50)
    # reads: 0.5 x $0.125                                                      = 0.0625
    assert lines["reads"] == pytest.approx(0.0625)
    # storage: 1M x 5120 B-months = 4.76837 GiB-months, in 3 regions: x 3 x $0.25 = 3.57628; PITR x 3 x $0.20 = 2.86102
    assert lines["table + GSI1 storage until TTL (365 d, 3 regions)"] == pytest.approx(3.57628, rel=1e-5)
    assert lines["PITR backup until TTL (3 regions)"] == pytest.approx(2.86102, rel=1e-5)
    # X-Ray: no rule, so every turn: 1M x $5.00 / 1M                           = 5.00
    assert lines["traces recorded"] == pytest.approx(5.00)
    # logs: 344 B functions + 0 B Step Functions at ERROR + 100 B access line = 444 B;
    #   1M x 444 B = 0.413507 GiB x $0.50                                      = 0.206754
    assert lines["ingestion"] == pytest.approx(0.206754, rel=1e-5)
    # transfer: 365 B x 2 replicas x 1M = 0.679865 GiB x $0.02                 = 0.0135973
    assert lines["inter-region replication"] == pytest.approx(0.0135973, rel=1e-4)
    hand_total = (3.50 + 1.00 + 3.3334 + 0.256667 + 0.246667 + 0.064 + 1.00 + 1.50 + 0.5625 + 1.50 + 0.0625) + (
        3.57628 + 2.86102 + 5.00 + 0.206754 + 0.0135973
    )
    assert sum(lines.values()) == pytest.approx(hand_total, rel=1e-5)


def test_sampling_logs_and_tokens_follow_the_program():
    # A sampling rule of 5%: 1M x 0.05 x $5.00 / 1M = 0.25
    sampled = {line.part: line.usd for line in turn_lines(DIRECT, _facts(xray_sampling=0.05), PRICES, Assumptions())}
    assert sampled["traces recorded"] == pytest.approx(0.25)
    # Step Functions at ALL with data: 344 + 9000 + 100 = 9444 B; 1M x 9444 B = 8.79541 GiB x $0.50 = 4.39771
    verbose = {
        line.part: line.usd
        for line in turn_lines(DIRECT, _facts(turn_log_level="ALL", turn_log_data=True), PRICES, Assumptions())
    }
    assert verbose["ingestion"] == pytest.approx(4.39771, rel=1e-5)
    # Tokens: 1 call x (1,500 x $3 + 300 x $15) / 1M = $0.009 a turn = $9,000 per 1M turns
    sonnet = ModelPrice("m", "Sonnet", 3.0, 15.0, "u", "d", True, "e")
    assert token_cost(1, sonnet, Assumptions()) == pytest.approx(9000.0)
    assert token_cost(2, sonnet, Assumptions(input_tokens=1000, output_tokens=100)) == pytest.approx(2 * 4500.0)


def test_fixed_costs_by_hand():
    facts = _facts(
        alarms=(("a", 300), ("b", 300), ("fast", 10)),
        dashboards=2,
        kms_keys=3,
        secrets=1,
        event_connections=1,
        provisioned=(("us-east-1", "agent-prepare", 2),),
        health_checks=(
            HealthCheckFacts("hc", "HTTPS", "x.execute-api.us-east-1.amazonaws.com", 30, True, False, True, True),
        ),
    )
    lines = {line.part: line.usd for line in fixed_lines(facts, PRICES, Assumptions(xray_sampling=0.0))}
    assert lines["alarms (standard)"] == pytest.approx(0.20)  # 2 x $0.10
    assert lines["alarms (high resolution)"] == pytest.approx(0.30)  # 1 x $0.30
    assert lines["dashboards"] == pytest.approx(6.0)  # 2 x $3
    assert lines["customer managed keys"] == pytest.approx(3.0)  # 3 x $1
    assert lines["secrets (incl. EventBridge connections')"] == pytest.approx(0.80)  # 2 x $0.40
    # 2 x 0.25 GB x 730 h x 3600 s = 1,314,000 GB-s x $0.0000033334 = 4.38009
    assert lines["provisioned concurrency agent-prepare us-east-1"] == pytest.approx(4.38009, rel=1e-5)
    # an AWS endpoint: $0.50 + HTTPS $1 + latency measurement $1
    assert lines["health check hc"] == pytest.approx(2.50)
    # 0.5 requests/s x 2,628,000 s = 1,314,000 requests, each: API Gateway $0.0000035 + Lambda request
    #   $0.0000002 + 10 ms x 0.25 GB x $0.0000133334 + no trace + 100 B of access log x $0.50 / 2^30
    each = 3.5e-06 + 2.0e-07 + 0.010 * 0.25 * 1.33334e-05 + 100 / 1024**3 * 0.5
    assert lines["health checks' requests to /v1/health"] == pytest.approx(1_314_000 * each, rel=1e-6)


def test_item_sizes_follow_dynamodbs_rules():
    # names + values: "PK" (2) + "abc" (3); "n" (1) + 12345 (3 digits pairs -> 3 + 1); "b" (1) + true (1)
    assert item_size({"PK": {"S": "abc"}, "n": {"N": "12345"}, "b": {"BOOL": True}}) == 5 + 5 + 2
    # a map: 3 + per entry (1 + name + value): "m" (1) + 3 + (1 + 1 + 2)
    assert item_size({"m": {"M": {"k": {"S": "vv"}}}}) == 1 + 3 + 4
    assert model.ceil_units(1, 1024) == 1 and model.ceil_units(1025, 1024) == 2 and model.ceil_units(0, 4096) == 1


# -- fixed costs come from what the program creates ---------------------------------------


@pytest.fixture(scope="module")
def dev_run():
    config = stack_config("dev")
    return config, run_program(config, "dev")


def test_fixed_costs_come_from_the_programs_resources(dev_run):
    config, run = dev_run
    prices = load_prices()
    facts = facts_from_resources("dev", run.resources, config)
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(facts.alarms) == len(alarms) > 0
    assert facts.regions == ("us-east-1", "us-west-2")
    assert facts.memory_mb("tool-http-fetch") == 256 and facts.memory_mb("agent-record") == 128
    assert facts.xray_sampling == 1.0, "dev traces every request (observability.traceSampleRate)"
    assert facts.ttl_days == 7 and facts.turn_log_level == "ALL" and facts.turn_log_data
    before = total(fixed_lines(facts, prices, Assumptions()))
    extra = RecordedResource(
        typ="aws:cloudwatch/metricAlarm:MetricAlarm",
        name="one-more",
        inputs={**alarms[0].inputs, "period": 300},
        state={},
        provider=None,
        custom=True,
        resource_id="x",
    )
    more = facts_from_resources("dev", [*run.resources, extra], config)
    after = total(fixed_lines(more, prices, Assumptions()))
    assert after - before == pytest.approx(prices.usd("cloudwatch.alarm_standard"))


def test_prod_fixed_costs_include_provisioned_concurrency_and_a_domain_adds_health_checks():
    prices = load_prices()
    config = stack_config("prod")
    facts = facts_from_resources("prod", run_program(config, "prod").resources, config)
    provisioned = {(region, key): n for region, key, n in facts.provisioned}
    assert provisioned == {(r, k): 2 for r in facts.regions for k in ("agent-prepare", "agent-record")}
    assert list(facts.provisioned) == sorted(facts.provisioned, key=lambda e: (e[1], e[0])), "one order, run to run"
    assert facts.pitr_regions == 3 and facts.ttl_days == 365 and facts.stage_rate_limit == 200
    lines = fixed_lines(facts, prices, Assumptions())
    assert not [line for line in lines if line.group == "Route 53"]
    with_domain = {**config, "agent-infra:domain": {"zone": "agents.example.com"}}
    routed = facts_from_resources("prod", run_program(with_domain, "prod").resources, with_domain)
    checks = [line for line in fixed_lines(routed, prices, Assumptions()) if line.group == "Route 53"]
    # api and ws per region, each HTTPS with latency measurement, plus the requests they send
    assert len(checks) == 2 * 3 + 1
    assert total(checks) > 2 * 3 * prices.usd("route53.health_check_aws")


def test_every_price_names_its_source_and_every_configured_model_has_a_price():
    prices = load_prices()
    for entry in [*prices.prices.values(), *prices.quotas.values(), *prices.facts.values()]:
        assert entry.url.startswith("https://") and entry.read == "2026-11-28" and entry.evidence, entry.key
    for stack in ("dev", "prod"):
        model_id = stack_config(stack)["agent-infra:llm"]["model"]
        assert model_id in prices.models, f"{stack}'s model {model_id} has no price"


# -- the profile measured on the local stack ----------------------------------------------


@pytest.fixture(scope="module")
def measured():
    from cost.measure import measure

    return measure("dev", session_turns=SESSION_TURNS, turn_interval_s=INTERVAL)


def test_a_direct_turn_is_one_query_and_one_write_and_seven_states(measured):
    direct = measured.profiles["direct"]
    # Begin, Prepare, Streaming?, Call model, Record, Final answer?, Answer
    assert direct.states_entered == 7 and direct.task_states == 3 and direct.model_calls == 1
    assert direct.invocations == {"agent-prepare": 1, "agent-record": 1}
    # Every turn: one Query, one write. The write is a PutItem except on the session's first
    # turn (new metadata) and the turn 10 minutes after it (GSI1 refresh): 2 of 8.
    assert direct.dynamodb_requests == {"PutItem": 6 / 8, "Query": 1, "TransactWriteItems": 2 / 8}
    assert all(size < 1024 for size in direct.item_sizes), "a step is one item under 1 KB"
    # 8 steps of 1 unit, the transactions count twice, with the new metadata (1 unit) and the
    # refresh (1 unit): (6 x 1 + 2 x (1 + 1) x 2) / 8
    assert direct.write_units == pytest.approx((6 + 2 * 2 * 2) / 8)
    # GSI1: the metadata put (1) and the refresh moving it (delete + put: 2)
    assert direct.gsi_write_units == pytest.approx(3 / 8)
    assert direct.new_items == pytest.approx(9 / 8)  # 8 steps + the metadata
    assert direct.lambda_log_bytes > 0 and direct.sfn_log_bytes[("ERROR", False)] == 0
    assert direct.sfn_log_bytes[("ALL", True)] > direct.sfn_log_bytes[("ALL", False)] > 0


def test_a_tool_turn_runs_the_loop_twice_and_a_pure_tool_only_reads_and_fills_its_cache(measured):
    tool = measured.profiles["tool"]
    # ... Final answer?, Run tools, Route tool, Run calculator, Next step, then the loop again
    assert tool.states_entered == 16 and tool.model_calls == 2
    assert tool.invocations == {"agent-prepare": 2, "agent-record": 2, "tool-calculator": 1}
    # The calculator records nothing; it looks its result up in the cache (one GetItem) and
    # stores it on the session's first turn only: every later turn asks the same and hits.
    assert tool.dynamodb_calls["tool-calculator"] == pytest.approx(1 + 1 / SESSION_TURNS)
    assert tool.dynamodb_requests["GetItem"] == 1
    writes = tool.dynamodb_requests.get("PutItem", 0) + tool.dynamodb_requests.get("TransactWriteItems", 0)
    assert tool.dynamodb_requests["Query"] == 2 and writes == pytest.approx(2 + 1 / SESSION_TURNS)
    memory = measured.profiles["memory"]
    # a stateful tool looks for its record, writes its own item and the record
    assert memory.dynamodb_calls["tool-memory"] == 3
    assert memory.dynamodb_requests["GetItem"] == 1
    loop_puts = tool.dynamodb_requests["PutItem"] - 1 / SESSION_TURNS
    assert memory.dynamodb_requests["PutItem"] == pytest.approx(loop_puts + 2)


def test_the_authorizer_runs_once_per_token_within_its_cache(measured):
    assert measured.authorizer_first_turn == 1 and measured.authorizer_later_turns == 0
    # InputTokens and OutputTokens by model; the calculator's CacheHit, CacheMiss, CacheBypass
    assert measured.emf_metrics == 5


def test_a_websocket_turn_streams_through_the_stream_function(measured):
    ws = measured.profiles["websocket"]
    assert ws.invocations["agent-stream"] == 1 and ws.invocations["connection"] == 1
    assert ws.model_calls == 1 and ws.websocket_frames >= 2  # chunks, then the final frame


def test_the_cli_prints_every_section(measured, monkeypatch, capsys):
    import cost.measure
    from cost.__main__ import main

    monkeypatch.setattr(cost.measure, "measure", lambda *args, **kwargs: measured)
    assert main(["prod", "--rate", "8000"]) == 0
    out = capsys.readouterr().out
    for heading in (
        "1. FIXED, per month",
        "2. PER 1M TURNS",
        "before (issue 11) and now",
        "3. MODEL TOKENS",
        "4. CAPACITY at 8,000 turns/s",
        "MEASURED on the local stack",
        "READ from the program",
        "ASSUMED:",
        "PRICES not confirmed",
    ):
        assert heading in out, heading
    for part in (
        "REST request",
        "Express duration",
        "agent-prepare (128 MB)",
        "replicated TTL deletes",
        "traces recorded",
    ):
        assert part in out
    assert "provisioned concurrency agent-record us-east-1" in out
    assert "X-Ray sampling: the program's X-Ray sampling rule" in out
    assert "1 trace a turn x 5%" in out  # prod's observability.traceSampleRate
    assert "RAISE" in out  # prod's stage throttle of 200/s is far below 8,000 turns/s
    assert main(["nope"]) == 2


def test_the_markdown_summary_carries_the_reports_own_totals(measured, monkeypatch, tmp_path, capsys):
    import cost.measure
    from cost.__main__ import main

    monkeypatch.setattr(cost.measure, "measure", lambda *args, **kwargs: measured)
    summary = tmp_path / "build" / "cost-prod.md"
    assert main(["prod", "--markdown", str(summary)]) == 0
    printed = capsys.readouterr().out
    text = summary.read_text()
    assert text.startswith("#### make cost: prod (3 regions)")
    fixed = re.search(r"Fixed: \*\*\$([\d,.]+) a month", text).group(1)
    assert re.search(r"total fixed\s+" + re.escape(fixed) + r"\n", printed), "the same fixed total as the full report"
    row = next(line for line in text.splitlines() if line.startswith("| **infrastructure**"))
    totals = re.findall(r"\*\*([\d,.]+)\*\*", row)
    printed_totals = re.search(r"^\s+total\s+([\d,.]+)\s+([\d,.]+)", printed, re.MULTILINE).groups()
    assert tuple(totals[:2]) == printed_totals, "direct and tool totals as printed"
    assert "| model tokens" in text


def test_prices_json_is_valid_json_with_every_section():
    raw = json.loads(model.PRICES_PATH.read_text())
    assert set(raw) == {"_about", "prices", "models", "quotas", "facts"}


def test_the_goal_is_read_on_the_turns_work_and_with_its_storage_apart():
    facts = _facts(stack="prod", xray_sampling=0.05)
    report = model.build_report(facts, PRICES, Assumptions(), {"direct": DIRECT, "tool": DIRECT})
    lines = report.per_turn["direct"]
    kept = 3.57628 + 2.86102  # storage and PITR of the hand computation below (365 days, 3 regions)
    assert model.kept_cost(lines) == pytest.approx(kept, rel=1e-5)
    out = model.render(report)
    assert f"the turn's work (every part but storage):  direct ${total(lines) - kept:,.2f}" in out
    assert f"with the turn kept 365 days (storage + PITR, 3 regions):  direct ${total(lines):,.2f}" in out
    assert f"keeping costs ${kept / (365 / 30.4375):,.2f} (direct)" in out


def test_what_if_moves_only_what_it_names():
    report = model.build_report(_facts(), PRICES, Assumptions(), {"direct": DIRECT})
    base = total(report.per_turn["direct"])
    (_, sampled), (_, short), (_, both) = model.what_if(report)
    # X-Ray at 5%: 5.00 -> 0.25
    assert base - sampled["direct"] == pytest.approx(4.75)
    # 30 days instead of 365: storage and PITR (3.57628 + 2.86102 = 6.43730) x (1 - 30/365) = 5.90821
    assert base - short["direct"] == pytest.approx(5.90821, rel=1e-5)
    assert base - both["direct"] == pytest.approx(4.75 + 5.90821, rel=1e-5)
