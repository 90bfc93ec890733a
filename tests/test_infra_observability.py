"""Alarms, dashboards and the budget under Pulumi mocks."""

from __future__ import annotations

import json

import pytest

from components.workflows import lambda_arns
from local.pulumi_mocks import run_program, stack_config


@pytest.fixture(scope="module")
def runs():
    return {stack: run_program(stack_config(stack), stack) for stack in ("dev", "prod")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_region_has_alarms_on_its_own_topic_and_a_dashboard(runs, stack):
    run = runs[stack]
    regions = stack_config(stack)["agent-infra:regions"]
    topics = {t.inputs["region"]: t.state["arn"] for t in run.of_type("aws:sns/topic:Topic")}
    assert sorted(topics) == sorted(regions)
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topics[alarm.inputs["region"]]], "alarms publish in their own region"
    names = {a.inputs["name"] for a in alarms}
    for key in ("router-errors", "turns-failed", "tasks-failed", "api-5xx", "dlq-not-empty"):
        assert f"agent-infra-{stack}-{key}" in names
    dashboards = run.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert sorted(d.inputs["region"] for d in dashboards) == sorted(regions)
    assert all(len(json.loads(d.inputs["dashboardBody"])["widgets"]) == 6 for d in dashboards)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_dashboard_shows_the_hit_ratio_of_the_tools_that_cache(runs, stack):
    """One ratio per tool whose module declares a cache (http_fetch), computed
    from the very metrics the tool Lambda emits (namespace, names and dimension of its EMF)."""
    from handlers.shared.tooling import METRIC_NAMESPACE

    for dashboard in runs[stack].of_type("aws:cloudwatch/dashboard:Dashboard"):
        (widget,) = [
            w
            for w in json.loads(dashboard.inputs["dashboardBody"])["widgets"]
            if w["properties"]["title"] == "Tool result cache hit ratio (%)"
        ]
        metrics = widget["properties"]["metrics"]
        inputs = {m[-1]["id"]: tuple(m[:4]) for m in metrics if isinstance(m[0], str)}
        ratios = {m[0]["label"]: m[0]["expression"] for m in metrics if isinstance(m[0], dict)}
        assert sorted(ratios) == ["http_fetch"]
        for tool, expression in ratios.items():
            hit, miss = (k for k, v in inputs.items() if v[3] == tool)
            assert inputs[hit] == (METRIC_NAMESPACE, "CacheHit", "Tool", tool)
            assert inputs[miss] == (METRIC_NAMESPACE, "CacheMiss", "Tool", tool)
            assert expression == f"100 * {hit} / ({hit} + {miss})"
        assert widget["properties"]["region"] == dashboard.inputs["region"]


def function_key(function) -> str:
    """A function's key as the program names it: its log group is ``/agent-infra/<stack>/<key>``."""
    return function.inputs["loggingConfig"]["logGroup"].rsplit("/", 1)[1]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_function_a_turn_runs_has_an_errors_alarm_named_for_it(runs, stack):
    """The functions come from the deployed turn machine's definition, the alarm's name from
    the function it watches: an alarm named for one function watching another is refused."""
    run = runs[stack]
    functions = {f.state["arn"]: f for f in run.of_type("aws:lambda/function:Function")}
    by_name = {f.state["name"]: f for f in functions.values()}
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    watched = {}
    for alarm in alarms:
        if (alarm.inputs["namespace"], alarm.inputs["metricName"]) == ("AWS/Lambda", "Errors"):
            function = by_name[alarm.inputs["dimensions"]["FunctionName"]]
            assert alarm.inputs["region"] == function.inputs["region"]
            assert alarm.inputs["name"] == f"agent-infra-{stack}-{function_key(function)}-errors", (
                f"{alarm.inputs['name']} watches {function_key(function)}"
            )
            watched[alarm.inputs["region"], function.state["name"]] = alarm
    turns = [m for m in run.of_type("aws:sfn/stateMachine:StateMachine") if m.inputs["type"] == "EXPRESS"]
    assert len(turns) == len(stack_config(stack)["agent-infra:regions"])
    for turn in turns:
        invoked = {arn.removesuffix(":live") for arn in lambda_arns(json.loads(turn.inputs["definition"]))}
        assert len(invoked) >= 5, "prepare, record, stream, compensate and the tools"
        for arn in invoked:
            function = functions[arn]
            assert (turn.inputs["region"], function.state["name"]) in watched, f"no alarm on {function_key(function)}"


def test_the_alarm_email_is_subscribed_only_where_configured(runs):
    assert runs["dev"].of_type("aws:sns/topicSubscription:TopicSubscription") == []
    subscriptions = runs["prod"].of_type("aws:sns/topicSubscription:TopicSubscription")
    assert {s.inputs["endpoint"] for s in subscriptions} == {"oncall@example.com"}
    assert len(subscriptions) == 3


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_budget_per_stack_with_the_configured_thresholds(runs, stack):
    (budget,) = runs[stack].of_type("aws:budgets/budget:Budget")
    config = stack_config(stack)["agent-infra:budget"]
    assert budget.inputs["limitAmount"] == f"{config['monthlyUsd']:.2f}" and budget.inputs["timeUnit"] == "MONTHLY"
    assert budget.inputs["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:stack${stack}"]}]
    notifications = budget.inputs.get("notifications", [])
    if stack == "prod":
        actual = sorted(n["threshold"] for n in notifications if n["notificationType"] == "ACTUAL")
        assert actual == config["thresholds"]
        assert any(n["notificationType"] == "FORECASTED" for n in notifications)
        assert all(n["subscriberEmailAddresses"] == ["oncall@example.com"] for n in notifications)
    else:
        assert notifications == [], "no alarm email in dev: the budget tracks, nobody is mailed"


@pytest.mark.parametrize(("stack", "rate"), [("dev", 1.0), ("prod", 0.05)])
def test_xray_samples_at_the_configured_rate_from_the_edge(stack, rate):
    from components.observability import sampling_rule_name

    run = run_program(stack_config(stack), stack)
    rules = run.of_type("aws:xray/samplingRule:SamplingRule")
    regions = stack_config(stack)["agent-infra:regions"]
    assert sorted((r.inputs["region"], r.inputs["serviceType"]) for r in rules) == sorted(
        (region, kind) for region in regions for kind in ("AWS::ApiGateway::Stage", "AWS::StepFunctions::StateMachine")
    )
    for rule in rules:
        assert rule.inputs["fixedRate"] == rate and rule.inputs["reservoirSize"] == 0
        assert len(rule.inputs["ruleName"]) <= 32
    api = next(r for r in rules if r.inputs["serviceType"] == "AWS::ApiGateway::Stage")
    assert api.inputs["serviceName"] == f"agent-infra-{stack}/*"
    assert len(sampling_rule_name("a-very-long-stack-name-for-this", "states")) <= 32


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_dashboards_llm_metrics_are_the_ones_the_functions_write(runs, stack, capsys):
    """Each LLM metric on the dashboard names what ``record_usage`` writes in EMF, with the
    same dimensions (a metric drawn without its Model dimension is another, empty, metric);
    the hit ratio's expression reads them by id."""
    from handlers.shared.llm import LlmReply, record_usage

    model = stack_config(stack)["agent-infra:llm"]["model"]
    capsys.readouterr()
    record_usage(model, LlmReply("a", (), "end_turn", 1, 1, "e", cache_read_tokens=1, cache_write_tokens=1))
    emf = next(json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line)
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    written = {
        (directive["Namespace"], m["Name"], *(part for d in directive["Dimensions"][0] for part in (d, emf[d])))
        for m in directive["Metrics"]
    }
    for dashboard in runs[stack].of_type("aws:cloudwatch/dashboard:Dashboard"):
        widgets = json.loads(dashboard.inputs["dashboardBody"])["widgets"]
        drawn = [
            tuple(part for part in metric if not isinstance(part, dict))
            for w in widgets
            for metric in w["properties"]["metrics"]
            if metric and metric[0] == directive["Namespace"]
        ]
        assert drawn and set(drawn) <= written
        ratio = next(w for w in widgets if "hit ratio" in w["properties"]["title"])
        ids = {m[-1]["id"] for m in ratio["properties"]["metrics"][1:]}
        assert ids == {"r", "w", "i"} and ratio["properties"]["metrics"][0][0]["expression"] == "100 * r / (r + w + i)"
