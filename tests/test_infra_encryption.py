"""Encryption at rest under Pulumi mocks: every store uses its region's customer-managed key,
and that key's policy lets exactly the services that need it use it."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import pytest

from local.pulumi_mocks import run_program, stack_config

KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
FUNCTION = "aws:lambda/function:Function"


@pytest.fixture(scope="module")
def runs():
    return {stack: run_program(stack_config(stack), stack) for stack in ("dev", "prod")}


def region_keys(run) -> dict[str, str]:
    return {k.inputs["region"]: k.state["arn"] for k in run.of_type(KEY)}


def key_policies(run) -> dict[str, dict]:
    return {
        k.inputs["region"]: {s["Sid"]: s for s in json.loads(k.inputs["policy"])["Statement"]} for k in run.of_type(KEY)
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_log_group_uses_its_regions_key_and_the_key_lets_logs_use_it_for_that_group(runs, stack):
    run = runs[stack]
    keys, policies = region_keys(run), key_policies(run)
    groups = run.of_type(LOG_GROUP)
    assert len(groups) >= 10
    for group in groups:
        region = group.inputs["region"]
        assert group.inputs["kmsKeyId"] == keys[region], group.name
        logs = policies[region]["LogsForTheStacksLogGroups"]
        assert logs["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
        patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        assert any(fnmatchcase(group.state["arn"], p) for p in patterns), f"{group.state['arn']} outside {patterns}"
    for patterns in (p["LogsForTheStacksLogGroups"]["Condition"]["ArnLike"].values() for p in policies.values()):
        for pattern in next(iter(patterns)):
            assert f"/agent-infra/{stack}/" in pattern or f"/aws/vendedlogs/states/agent-infra-{stack}-" in pattern, (
                "only this stack's log groups, not the account's"
            )


def test_another_stacks_log_groups_are_outside_the_keys_grant(runs):
    patterns = key_policies(runs["dev"])["us-east-1"]["LogsForTheStacksLogGroups"]["Condition"]["ArnLike"][
        "kms:EncryptionContext:aws:logs:arn"
    ]
    for outsider in (
        "arn:aws:logs:us-east-1:123456789012:log-group:/agent-infra/prod/router",
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/agent-infra-prod-turn",
        "arn:aws:logs:us-west-2:123456789012:log-group:/agent-infra/dev/router",
        "arn:aws:logs:us-east-1:999999999999:log-group:/agent-infra/dev/router",
    ):
        assert not any(fnmatchcase(outsider, p) for p in patterns), outsider


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_functions_encrypt_their_environment_with_the_regions_key_and_may_decrypt_it(runs, stack):
    run = runs[stack]
    keys = region_keys(run)
    policies = {p.inputs["role"]: json.loads(p.inputs["policy"]) for p in run.of_type("aws:iam/rolePolicy:RolePolicy")}
    for function in run.of_type(FUNCTION):
        region = function.inputs["region"]
        assert function.inputs["kmsKeyArn"] == keys[region]
        document = policies[function.inputs["role"].rsplit("/", 1)[1]]
        (use,) = [s for s in document["Statement"] if s["Sid"] == "UseRegionKey"]
        assert use["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and use["Resource"] == [keys[region]]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_alarm_topics_are_encrypted_and_cloudwatch_may_publish(runs, stack):
    run = runs[stack]
    keys, policies = region_keys(run), key_policies(run)
    topics = run.of_type("aws:sns/topic:Topic")
    assert topics
    for topic in topics:
        assert topic.inputs["kmsMasterKeyId"] == keys[topic.inputs["region"]]
        alarms = policies[topic.inputs["region"]]["AlarmsPublishToEncryptedTopics"]
        assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_the_llm_api_key_secret_uses_the_regions_key():
    config = stack_config("dev")
    config["agent-infra:llm"] = {"provider": "openai", "model": "m", "endpoints": ["https://llm.example.com/v1"]}
    config["agent-infra:llm"]["apiKey"] = "sk-test"
    run = run_program(config, "openai")
    keys = region_keys(run)
    secrets = run.of_type("aws:secretsmanager/secret:Secret")
    assert len(secrets) == 2
    assert all(s.inputs["kmsKeyId"] == keys[s.inputs["region"]] for s in secrets)


def test_the_key_of_each_llm_connection_carries_the_tag_eventbridge_requires(runs):
    """EventBridge refuses CreateConnection with a customer-managed key that lacks the tag
    EventBridgeApiDestinations=true (https://docs.aws.amazon.com/eventbridge/latest/userguide/encryption-connections.html)."""
    config = stack_config("dev")
    config["agent-infra:llm"] = {
        "provider": "openai",
        "model": "m",
        "endpoints": ["https://llm.example.com/v1"],
        "apiKey": "sk-test",
    }
    run = run_program(config, "openai")
    keys = {k.state["arn"]: k for k in run.of_type(KEY)}
    connections = run.of_type("aws:cloudwatch/eventConnection:EventConnection")
    assert len(connections) == len(config["agent-infra:regions"])
    for connection in connections:
        key = keys[connection.inputs["kmsKeyIdentifier"]]
        assert key.inputs["region"] == connection.inputs["region"]
        assert (key.inputs.get("tags") or {}).get("EventBridgeApiDestinations") == "true", key.name
    bedrock_keys = runs["dev"].of_type(KEY)
    assert bedrock_keys and not any("EventBridgeApiDestinations" in (k.inputs.get("tags") or {}) for k in bedrock_keys)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_outputs_name_each_regions_alarm_topic_and_dashboard(runs, stack):
    run = runs[stack]
    regions = stack_config(stack)["agent-infra:regions"]
    topics = {t.inputs["region"]: t.state["arn"] for t in run.of_type("aws:sns/topic:Topic")}
    assert run.outputs["alarmTopicArns"] == topics
    assert sorted(run.outputs["dashboardUrls"]) == sorted(regions)
    for region, url in run.outputs["dashboardUrls"].items():
        assert url == (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards/dashboard/agent-infra-{stack}-{region}"
        )
