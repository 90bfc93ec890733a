"""Alarms, dashboards and the budget under Pulumi mocks."""

from __future__ import annotations

import json

import pytest

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
    assert len(alarms) == 6 * len(regions)
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topics[alarm.inputs["region"]]], "alarms publish in their own region"
    names = {a.inputs["name"].rsplit("-", 2)[-2] + "-" + a.inputs["name"].rsplit("-", 1)[-1] for a in alarms}
    assert {"router-errors", "step-errors", "turns-failed", "tasks-failed", "api-5xx", "not-empty"} <= names
    dashboards = run.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert sorted(d.inputs["region"] for d in dashboards) == sorted(regions)
    assert all(len(json.loads(d.inputs["dashboardBody"])["widgets"]) == 4 for d in dashboards)


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
