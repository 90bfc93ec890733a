"""make cost: the arithmetic against a hand computation, fixed costs from the program's
resources, the turn profile measured on the local stack against what the code does, and the
CLI's sections."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from cost.facts import FunctionFacts, HealthCheckFacts, StackFacts, detailed_metric_methods, facts_from_resources
from cost.lines import total
from cost.prices import PRICES_PATH, Entry, ModelPrice, PriceTable, load_prices
from cost.render import render, render_markdown
from cost.report import build_report, kept_cost, wait_that_meets, what_if
from cost.services import fixed_lines, turn_lines
from cost.services.dynamodb import ceil_units, item_size
from cost.services.observability import log_bytes_per_turn
from cost.services.stepfunctions import express_billed_ms
from cost.turn import FALLBACK_MODEL_WAIT_S, Assumptions, TurnProfile, with_model_wait
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
            "lambda.arm_provisioned_duration_gb_second": 7.7778e-06,
            "dynamodb.write_request_unit": 6.25e-07,
            "dynamodb.read_request_unit": 1.25e-07,
            "dynamodb.storage_gb_month": 0.25,
            "dynamodb.pitr_gb_month": 0.20,
            "dynamodb.ia_write_request_unit": 7.8e-07,
            "dynamodb.ia_read_request_unit": 1.55e-07,
            "dynamodb.ia_storage_gb_month": 0.10,
            "transfer.inter_region_gb": 0.02,
            "xray.trace_recorded": 5.0e-06,
            "logs.ingest_gb": 0.50,
            "cloudwatch.alarm_standard": 0.10,
            "cloudwatch.alarm_high_resolution": 0.30,
            "cloudwatch.dashboard": 3.0,
            "cloudwatch.custom_metric": 0.30,
            "kms.key_month": 1.0,
            "kms.rotation_month": 1.0,
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


WAIT_3S = Assumptions(model_wait_s=3.0)


def _model(inp: float, out: float, **changes) -> ModelPrice:
    fields = dict(
        model_id="m",
        name="Sonnet",
        route="global",
        input_per_million=inp,
        output_per_million=out,
        cache_read_per_million=inp / 10,
        cache_write_per_million=inp * 1.25,
        url="u",
        read="d",
        confirmed=True,
        evidence="e",
        output_tokens_per_second=63.0,
        first_token_seconds=1.8,
        speed_url="s",
        speed_confirmed=False,
        speed_evidence="benchmark",
    )
    return ModelPrice(**{**fields, **changes})


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
        kms_rotating_keys=0,
        kms_rotation_days=365,
        secrets=0,
        event_connections=0,
        budgets=0,
        table_regions=3,
        pitr_regions=("us-east-1", "eu-west-1", "ap-northeast-1"),
        table_class="STANDARD",
        ttl_days=365,
        turn_log_level="ERROR",
        turn_log_data=False,
        access_log_format="x" * 99,
        websocket_access_log_format="w" * 49,
        detailed_metric_methods=0,
        execution_log_level="ERROR",
        stage_rate_limit=200,
        stage_burst_limit=400,
        quota_per_day=100_000,
        authorizer_ttl_s=300,
        llm_provider="bedrock",
        llm_model="m",
        history_tokens=8_000,
        prompt_caching=True,
        max_tokens=2_048,
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
    lines = {line.part: line.usd for line in turn_lines(DIRECT, _facts(), PRICES, WAIT_3S)}
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


def test_sampling_and_logs_follow_the_program():
    # A sampling rule of 5%: 1M x 0.05 x $5.00 / 1M = 0.25
    sampled = {line.part: line.usd for line in turn_lines(DIRECT, _facts(xray_sampling=0.05), PRICES, WAIT_3S)}
    assert sampled["traces recorded"] == pytest.approx(0.25)
    # Step Functions at ALL with data: 344 + 9000 + 100 = 9444 B; 1M x 9444 B = 8.79541 GiB x $0.50 = 4.39771
    verbose = {
        line.part: line.usd
        for line in turn_lines(DIRECT, _facts(turn_log_level="ALL", turn_log_data=True), PRICES, WAIT_3S)
    }
    assert verbose["ingestion"] == pytest.approx(4.39771, rel=1e-5)


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
    assert ceil_units(1, 1024) == 1 and ceil_units(1025, 1024) == 2 and ceil_units(0, 4096) == 1


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
    # The model call's settings, as the deployed functions get them.
    assert (facts.history_tokens, facts.prompt_caching, facts.max_tokens) == (8_000, True, 2_048)
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


def test_a_function_is_known_by_the_log_group_the_program_names_for_it(dev_run):
    config, run = dev_run
    # Read as the dev stack's: every function's key is its own log group's last part.
    keys = {f.key for f in facts_from_resources("dev", run.resources, config).functions}
    assert {"agent-record", "authorizer", "health", "tool-http-fetch"} <= keys
    # Read as another stack's, no log group is the stack's: the function is named, not guessed.
    with pytest.raises(ValueError, match=r"function .* logs to /agent-infra/dev/.*, not a log group of stack prod"):
        facts_from_resources("prod", run.resources, config)


def test_prod_fixed_costs_include_provisioned_concurrency_and_a_domain_adds_health_checks():
    prices = load_prices()
    config = stack_config("prod")
    facts = facts_from_resources("prod", run_program(config, "prod").resources, config)
    provisioned = {(region, key): n for region, key, n in facts.provisioned}
    assert provisioned == {(r, k): 2 for r in facts.regions for k in ("agent-prepare", "agent-record")}
    assert list(facts.provisioned) == sorted(facts.provisioned, key=lambda e: (e[1], e[0])), "one order, run to run"
    assert facts.pitr_regions == facts.regions and facts.ttl_days == 365 and facts.stage_rate_limit == 200
    assert facts.kms_rotating_keys == facts.kms_keys == 3 and facts.kms_rotation_days == 365
    assert facts.detailed_metric_methods == 0, "no method-level metrics: nothing reads them, each costs $0.30 a month"
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
        for figure in (entry, *entry.regions.values()):
            assert figure.url.startswith("https://") and re.fullmatch(r"2026-1[12]-\d\d", figure.read), entry.key
            assert figure.evidence, entry.key
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


def test_a_tool_turn_runs_the_loop_twice_and_a_pure_tool_writes_nothing(measured):
    tool = measured.profiles["tool"]
    # ... Final answer?, Run tools, Route tool, Run calculator, Next step, then the loop again
    assert tool.states_entered == 16 and tool.model_calls == 2
    assert tool.invocations == {"agent-prepare": 2, "agent-record": 2, "tool-calculator": 1}
    # The calculator records nothing and looks up no cache (its answer is cheaper than a read).
    assert tool.dynamodb_calls["tool-calculator"] == 0
    writes = tool.dynamodb_requests.get("PutItem", 0) + tool.dynamodb_requests.get("TransactWriteItems", 0)
    assert tool.dynamodb_requests["Query"] == 2 and writes == 2
    memory = measured.profiles["memory"]
    # a stateful tool looks for its record, writes its own item and the record
    assert memory.dynamodb_calls["tool-memory"] == 3
    assert memory.dynamodb_requests["GetItem"] == 1
    assert memory.dynamodb_requests["PutItem"] == pytest.approx(tool.dynamodb_requests["PutItem"] + 2)


def test_the_authorizer_runs_once_per_token_within_its_cache(measured):
    assert measured.authorizer_first_turn == 1 and measured.authorizer_later_turns == 0
    # InputTokens, OutputTokens, CacheReadInputTokens, CacheWriteInputTokens by model (the
    # measured tools look up no cache)
    assert measured.emf_metrics == 4


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
        "billed input with prompt caching",
        "infrastructure and model side by side",
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
    raw = json.loads(PRICES_PATH.read_text())
    assert set(raw) == {"_about", "prices", "models", "quotas", "facts"}


def test_the_goal_is_read_on_the_turns_work_and_with_its_storage_apart():
    facts = _facts(stack="prod", xray_sampling=0.05)
    report = build_report(facts, PRICES, WAIT_3S, {"direct": DIRECT, "tool": DIRECT})
    lines = report.per_turn["direct"]
    kept = 3.57628 + 2.86102  # storage and PITR of the hand computation below (365 days, 3 regions)
    assert kept_cost(lines) == pytest.approx(kept, rel=1e-5)
    out = render(report)
    assert f"the turn's work (every part but storage):  direct ${total(lines) - kept:,.2f}" in out
    assert f"with the turn kept 365 days (storage + PITR, 3 regions):  direct ${total(lines):,.2f}" in out
    assert f"keeping costs ${kept / (365 / 30.4375):,.2f} (direct)" in out


def test_what_if_moves_only_what_it_names():
    report = build_report(_facts(), PRICES, WAIT_3S, {"direct": DIRECT})
    base = total(report.per_turn["direct"])
    rows, same = what_if(report)
    totals = {row.label: row.totals["direct"] for row in rows}
    assert same == []
    # X-Ray at 5%: 5.00 -> 0.25
    assert base - totals["X-Ray sampling rule at 5%"] == pytest.approx(4.75)
    # 30 days instead of 365: storage and PITR (3.57628 + 2.86102 = 6.43730) x (1 - 30/365) = 5.90821
    assert base - totals["state.ttlDays 30"] == pytest.approx(5.90821, rel=1e-5)
    # PITR on us-east-1 only: 2 of the 3 regions' PITR (2.86102) go
    assert base - totals["PITR on us-east-1 only"] == pytest.approx(2.86102 * 2 / 3, rel=1e-5)
    # both storage levers: 30 days of storage + one region's PITR
    kept = 3.57628 + 2.86102 / 3
    assert base - totals["ttlDays 30 + PITR on us-east-1 only"] == pytest.approx(6.43730 - kept * 30 / 365, rel=1e-5)
    # Standard-IA: storage 3.57628 x 0.10/0.25 = 1.43051; every write unit x 0.78/0.625, reads x 0.155/0.125
    writes = 1.00 + 1.50 + 0.5625 + 1.50
    ia = base - 3.57628 + 1.43051 + writes * (0.78 / 0.625 - 1) + 0.0625 * (0.155 / 0.125 - 1)
    assert totals["Standard-IA table class"] == pytest.approx(ia, rel=1e-5)


def test_a_what_if_equal_to_the_stack_is_not_printed():
    facts = _facts(stack="prod", xray_sampling=0.05)
    report = build_report(facts, PRICES, WAIT_3S, {"direct": DIRECT})
    rows, same = what_if(report)
    assert same == ["X-Ray sampling rule at 5%"] and "X-Ray sampling rule at 5%" not in [r.label for r in rows]
    out = render(report)
    assert "    X-Ray sampling rule at 5%" not in out
    assert "(the same as now, so not shown: X-Ray sampling rule at 5%)" in out


# -- each region's rates ------------------------------------------------------------------


def _regional(key: str, base: PriceTable = PRICES, **rates: float) -> PriceTable:
    """``base`` with ``key`` given its own rate in the named regions (underscores for dashes)."""
    entry = base.prices[key]
    regions = {r.replace("_", "-"): dataclasses.replace(entry, value=v) for r, v in rates.items()}
    return dataclasses.replace(
        base, prices={**base.prices, key: dataclasses.replace(entry, regions={**entry.regions, **regions})}
    )


def test_a_tokyo_write_is_priced_at_tokyos_rate():
    prices = _regional("dynamodb.write_request_unit", ap_northeast_1=7.15e-07)
    tokyo = _facts(regions=("ap-northeast-1",), table_regions=1, pitr_regions=("ap-northeast-1",))
    lines = {line.part: line.usd for line in turn_lines(DIRECT, tokyo, prices, WAIT_3S)}
    # 1.6 WRU x $0.715 per M x 1M turns = 1.144 (it was 1.00 at us-east-1's $0.625)
    assert lines["writes where they happen"] == pytest.approx(1.144)
    assert lines["GSI1 writes (1 regions)"] == pytest.approx(0.3 * 0.715)


def test_replicated_writes_storage_logs_and_transfer_land_in_their_regions():
    prices = _regional("dynamodb.write_request_unit", eu_west_1=7.05e-07, ap_northeast_1=7.15e-07)
    prices = _regional("dynamodb.storage_gb_month", prices, eu_west_1=0.283, ap_northeast_1=0.285)
    prices = _regional("transfer.inter_region_gb", prices, ap_northeast_1=0.09)
    prices = _regional("logs.ingest_gb", prices, eu_west_1=0.57, ap_northeast_1=0.76)
    lines = {line.part: line.usd for line in turn_lines(DIRECT, _facts(), prices, WAIT_3S)}
    wru = (0.625 + 0.705 + 0.715) / 3
    # where written: the turn's region, a third of turns in each
    assert lines["writes where they happen"] == pytest.approx(1.6 * wru)
    # replicated: each region receives the other two regions' turns (2/3 of all) at its own rate
    assert lines["replicated writes (2 replicas)"] == pytest.approx(1.2 * 2 / 3 * (0.625 + 0.705 + 0.715))
    assert lines["GSI1 writes (3 regions)"] == pytest.approx(0.3 * (0.625 + 0.705 + 0.715))
    # storage in every region at its own rate: 4.76837 GiB-months x (0.25 + 0.283 + 0.285)
    assert lines["table + GSI1 storage until TTL (365 d, 3 regions)"] == pytest.approx(
        4.76837 * (0.25 + 0.283 + 0.285), rel=1e-5
    )
    # transfer at the source (the turn's) region: 0.679865 GiB x mean(0.02, 0.02, 0.09)
    assert lines["inter-region replication"] == pytest.approx(0.679865 * (0.02 + 0.02 + 0.09) / 3, rel=1e-4)
    # logs in the turn's region: 0.413507 GiB x mean(0.50, 0.57, 0.76)
    assert lines["ingestion"] == pytest.approx(0.413507 * (0.50 + 0.57 + 0.76) / 3, rel=1e-5)


def test_prod_prices_take_tokyos_and_irelands_own_figures():
    prices = load_prices()
    assert prices.usd("dynamodb.write_request_unit", "ap-northeast-1") == pytest.approx(7.15e-07)
    assert prices.usd("dynamodb.storage_gb_month", "ap-northeast-1") == pytest.approx(0.285)
    assert prices.usd("transfer.inter_region_gb", "ap-northeast-1") == pytest.approx(0.09)
    assert prices.usd("logs.ingest_gb", "ap-northeast-1") == pytest.approx(0.76)
    assert prices.usd("logs.ingest_gb", "eu-west-1") == pytest.approx(0.57)
    # a region without a figure of its own pays us-east-1's, and the table says it has none
    assert prices.usd("dynamodb.pitr_gb_month", "ap-northeast-1") == prices.usd("dynamodb.pitr_gb_month")
    assert "ap-northeast-1" in prices.prices["dynamodb.pitr_gb_month"].unsourced_in


def test_a_region_figure_without_its_source_is_an_error(tmp_path):
    raw = json.loads(PRICES_PATH.read_text())
    del raw["prices"]["logs.ingest_gb"]["regions"]["ap-northeast-1"]["evidence"]
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"logs\.ingest_gb in ap-northeast-1 lacks evidence"):
        load_prices(path)


# -- fixed costs the first model left out -------------------------------------------------


def test_provisioned_functions_bill_the_provisioned_duration_rate():
    facts = _facts(
        regions=("us-east-1",), table_regions=1, pitr_regions=(), provisioned=(("us-east-1", "agent-prepare", 2),)
    )
    lines = {line.part: line.usd for line in turn_lines(DIRECT, facts, PRICES, WAIT_3S)}
    # agent-prepare 17 ms x 0.25 GB at the provisioned duration rate $0.0000077778 (not $0.0000133334)
    assert lines["agent-prepare (256 MB)"] == pytest.approx(1e6 * (2e-07 + 0.017 * 0.25 * 7.7778e-06), rel=1e-6)
    # agent-record has none: on-demand
    assert lines["agent-record (256 MB)"] == pytest.approx(0.246667, rel=1e-5)


def test_key_rotation_and_method_metrics_are_fixed_costs():
    facts = _facts(kms_keys=3, kms_rotating_keys=3, detailed_metric_methods=21)
    lines = {line.part: line.usd for line in fixed_lines(facts, PRICES, WAIT_3S)}
    assert lines["customer managed keys"] == pytest.approx(3.0)
    # each rotating key: +$1 for its first rotation and +$1 for its second, then no more
    assert lines["key rotation (the first two rotations of each key)"] == pytest.approx(6.0)
    # 21 methods x 5 metrics (Count, 4XXError, 5XXError, Latency, IntegrationLatency) x $0.30
    assert lines["API Gateway method-level metrics"] == pytest.approx(31.50)


def _rest(region: str, paths: dict) -> RecordedResource:
    return RecordedResource(
        typ="aws:apigateway/restApi:RestApi",
        name=f"api-{region}",
        inputs={"region": region, "body": json.dumps({"paths": paths})},
        state={},
        provider=None,
        custom=True,
        resource_id=region,
    )


def _settings(region: str, path: str, metrics: bool) -> RecordedResource:
    return RecordedResource(
        typ="aws:apigateway/methodSettings:MethodSettings",
        name=f"s-{region}-{path}",
        inputs={"region": region, "methodPath": path, "settings": {"metricsEnabled": metrics}},
        state={},
        provider=None,
        custom=True,
        resource_id=path,
    )


def test_detailed_metrics_are_counted_per_method_with_its_own_setting_first():
    paths = {"/v1/health": {"get": {}}, "/v1/sessions": {"get": {}, "post": {}}}
    resources = [
        _rest("us-east-1", paths),
        _settings("us-east-1", "*/*", True),
        _settings("us-east-1", "~1v1~1health/GET", False),
        _rest("eu-west-1", paths),
        _settings("eu-west-1", "*/*", False),
        _settings("eu-west-1", "~1v1~1health/GET", True),
    ]
    # us-east-1: the two /v1/sessions methods (health turned off); eu-west-1: health only
    assert detailed_metric_methods(resources) == 3


def test_a_websocket_turn_logs_its_message_and_a_share_of_its_connection():
    ws = dataclasses.replace(DIRECT, kind="websocket", session_turns=10)
    _, _, access = log_bytes_per_turn(ws, _facts())
    # 1 line for the message + ($connect + $disconnect) / 10 turns, 50 B each ("w" x 49 + newline)
    assert access == pytest.approx((1 + 2 / 10) * 50)


# -- the model's wait and prices ----------------------------------------------------------


def test_the_model_wait_is_the_time_to_first_token_plus_the_output_at_the_models_speed():
    sonnet = _model(3.0, 15.0, first_token_seconds=1.8, output_tokens_per_second=63.0)
    derived = with_model_wait(Assumptions(output_tokens=300), sonnet, "m")
    assert derived.wait_s == pytest.approx(1.8 + 300 / 63)
    assert "1.8 s to the first token + 300 output tokens / 63 tokens/s" in derived.model_wait_source
    # --model-wait overrides; a model without a speed falls back, saying so
    assert with_model_wait(Assumptions(model_wait_s=2.0), sonnet, "m").wait_s == 2.0
    unknown = with_model_wait(Assumptions(), _model(1, 1, output_tokens_per_second=None), "m")
    assert unknown.wait_s == FALLBACK_MODEL_WAIT_S and "no output speed" in unknown.model_wait_source
    with pytest.raises(ValueError, match="model wait is not set"):
        turn_lines(DIRECT, _facts(), PRICES, Assumptions())
    # A call that only asks for a tool writes a few tokens: 1.8 + 40 / 63 s.
    assert derived.tool_wait_s == pytest.approx(1.8 + 40 / 63)
    assert with_model_wait(Assumptions(model_wait_s=2.0), sonnet, "m").tool_wait_s == 2.0


def test_a_tool_turn_waits_for_one_answer_and_for_a_short_tool_call():
    tool_turn = dataclasses.replace(DIRECT, kind="tool", model_calls=2, task_states=7)
    waits = Assumptions(model_wait_s=6.0, tool_call_wait_s=2.0)
    base = express_billed_ms(tool_turn, _facts(), PRICES, Assumptions(model_wait_s=0.0, tool_call_wait_s=0.0))
    # one answer (6 s) and one call that asked for the tool (2 s), not two answers
    assert express_billed_ms(tool_turn, _facts(), PRICES, waits) == pytest.approx(base + 8_000, abs=100)


def test_a_goal_above_says_what_keeps_it_there_and_the_wait_that_closes_it():
    facts = _facts(stack="prod", xray_sampling=0.05)
    report = build_report(facts, PRICES, Assumptions(model_wait_s=12.0), {"direct": DIRECT})
    wait = wait_that_meets(report, "direct", 15.0)
    assert wait is not None and 0 < wait < 12.0

    def work(seconds: float) -> float:
        lines = turn_lines(DIRECT, facts, PRICES, Assumptions(model_wait_s=seconds))
        return total(lines) - kept_cost(lines)

    assert work(wait) <= 15.0 < work(wait + 0.1)
    out = render(report)
    assert "direct is $" in out and "Step Functions / Express duration" in out
    assert f"a model wait of at most {wait:.1f} s a call" in out


def test_every_model_entry_has_every_field_and_a_missing_one_is_named(tmp_path):
    prices = load_prices()
    sonnet = prices.models["global.anthropic.claude-sonnet-4-5-20250929-v1:0"]
    assert (sonnet.cache_read_per_million, sonnet.cache_write_per_million) == (0.3, 3.75)
    assert prices.models["us.anthropic.claude-haiku-4-5-20251001-v1:0"].input_per_million == 1.1
    raw = json.loads(PRICES_PATH.read_text())
    del raw["models"]["us.amazon.nova-pro-v1:0"]["cache_read_per_million"]
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"model us\.amazon\.nova-pro-v1:0 lacks cache_read_per_million"):
        load_prices(path)
    raw = json.loads(PRICES_PATH.read_text())
    raw["models"]["gpt-4o-mini"]["input_per_million"] = None
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="model gpt-4o-mini has no value for input_per_million"):
        load_prices(path)


# -- the report's text ----------------------------------------------------------------------

REPORT_TEXT = Path(__file__).with_name("fixtures") / "cost_report.txt"
BEFORE = {
    "rows": [
        {"part": "Lambda", "before": "41.5", "groups": ["Lambda"]},
        {"part": "writes", "before": "17.5", "groups": ["DynamoDB writes"]},
    ],
    "total": "~73",
}


def _report_text() -> str:
    """The terminal report and the Markdown summary of the hand-computed turn, prod (its
    goals) and dev (none), at a wait that meets the goal and one that does not."""
    out = []
    for stack in ("prod", "dev"):
        for wait in (WAIT_3S, Assumptions(model_wait_s=12.0)):
            report = build_report(
                _facts(stack=stack, xray_sampling=0.05), PRICES, wait, {"direct": DIRECT, "tool": DIRECT}, before=BEFORE
            )
            out += [render(report), render_markdown(report)]
    return "\n".join(out)


def test_the_report_reads_as_it_did_when_the_arithmetic_was_split_by_service():
    """Written by the one-module ``cost/model.py`` before it was split (issue 21): a change to
    the text or the arithmetic shows here line by line; one meant rewrites the file
    (``REPORT_TEXT.write_text(_report_text())``)."""
    assert _report_text().splitlines() == REPORT_TEXT.read_text().splitlines()
