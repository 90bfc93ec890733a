"""The real program under Pulumi mocks: the global table, its keys and replicas, per stack."""

from __future__ import annotations

import json

import pulumi
import pytest

from handlers.shared.table import GSI1_NAME, TABLE_SCHEMA, TTL_ATTRIBUTE
from local.pulumi_mocks import ACCOUNT_ID, provider_name, run_program, stack_config

TABLE = "aws:dynamodb/table:Table"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"

FIVE_REGIONS = ["eu-central-1", "us-east-1", "us-west-2", "ap-southeast-2", "sa-east-1"]


def five_region_config() -> dict:
    config = stack_config("dev")
    config["agent-infra:regions"] = FIVE_REGIONS
    return config


@pytest.fixture(scope="module")
def runs():
    return {
        "dev": run_program(stack_config("dev"), "dev"),
        "prod": run_program(stack_config("prod"), "prod"),
        "five": run_program(five_region_config(), "five"),
    }


REGIONS = {
    "dev": stack_config("dev")["agent-infra:regions"],
    "prod": stack_config("prod")["agent-infra:regions"],
    "five": FIVE_REGIONS,
}
STACKS = list(REGIONS)


@pytest.mark.parametrize("stack", STACKS)
def test_one_table_in_the_home_region_with_a_replica_for_every_other_region(runs, stack):
    regions = REGIONS[stack]
    table = runs[stack].one(TABLE)
    assert table.inputs["region"] == regions[0]
    replica_regions = [r["regionName"] for r in table.inputs.get("replicas", [])]
    assert sorted(replica_regions) == sorted(regions[1:])
    assert len(replica_regions) == len(set(replica_regions))


@pytest.mark.parametrize("stack", STACKS)
def test_table_and_every_replica_have_pitr_and_their_regions_kms_key(runs, stack):
    run = runs[stack]
    keys = {k.inputs["region"]: k for k in run.of_type(KEY)}
    assert sorted(keys) == sorted(REGIONS[stack]), "one customer-managed key per region"
    table = run.one(TABLE)
    home = REGIONS[stack][0]
    assert table.inputs["pointInTimeRecovery"]["enabled"] is True
    assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": keys[home].state["arn"]}
    for replica in table.inputs.get("replicas", []):
        region = replica["regionName"]
        assert replica["pointInTimeRecovery"] is True
        assert replica["kmsKeyArn"] == keys[region].state["arn"]
        assert f":kms:{region}:" in replica["kmsKeyArn"]
    for key in keys.values():
        assert key.inputs["enableKeyRotation"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_streams_ttl_keys_and_gsi1(runs, stack):
    table = runs[stack].one(TABLE)
    inputs = table.inputs
    assert inputs["billingMode"] == "PAY_PER_REQUEST"
    assert inputs["streamEnabled"] is True
    assert inputs["streamViewType"] == "NEW_AND_OLD_IMAGES"
    assert inputs["ttl"] == {"enabled": True, "attributeName": TTL_ATTRIBUTE}
    assert (inputs["hashKey"], inputs["rangeKey"]) == ("PK", "SK")
    assert {(a["name"], a["type"]) for a in inputs["attributes"]} == {(a.name, a.type) for a in TABLE_SCHEMA.attributes}
    (gsi,) = inputs["globalSecondaryIndexes"]
    assert gsi["name"] == GSI1_NAME
    assert gsi["projectionType"] == "ALL"
    assert sorted((k["attributeName"], k["keyType"]) for k in gsi["keySchemas"]) == [
        ("GSI1PK", "HASH"),
        ("GSI1SK", "RANGE"),
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_no_aws_resource_uses_a_default_provider(runs, stack):
    run = runs[stack]
    providers = run.of_type("pulumi:providers:aws")
    assert [p.name for p in providers] == ["aws"], "exactly one explicit AWS provider for the stack"
    aws_resources = [r for r in run.resources if r.typ.startswith("aws:")]
    assert aws_resources
    for resource in aws_resources:
        assert resource.provider, f"{resource.name} has no provider"
        assert provider_name(resource.provider) == "aws", f"{resource.name} uses {resource.provider}"


GLOBAL_SERVICES = ("aws:iam/", "aws:route53/", "aws:budgets/")  # global services: no region argument


@pytest.mark.parametrize("stack", STACKS)
def test_every_regional_resource_names_its_region(runs, stack):
    regional = [r for r in runs[stack].resources if r.typ.startswith("aws:") and not r.typ.startswith(GLOBAL_SERVICES)]
    assert regional
    for resource in regional:
        assert resource.inputs.get("region") in REGIONS[stack], resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_key_policy_allows_use_only_through_dynamodb_in_its_region(runs, stack):
    for key in runs[stack].of_type(KEY):
        region = key.inputs["region"]
        policy = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
        admin, use, grants = (
            policy["KeyAdministration"],
            policy["UseThroughDynamoDBOnly"],
            policy["GrantsForDynamoDBOnly"],
        )
        # Every other data use goes through the regional Lambda, SQS and Secrets Manager,
        # and only for principals whose IAM policy allows it (Principal: the account root).
        others = [s for sid, s in policy.items() if sid.startswith("IamGranted") and s["Principal"] != {"AWS": "*"}]
        assert len(others) == 2
        for statement in others:
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert all(v.endswith(f".{region}.amazonaws.com") for v in ([via] if isinstance(via, str) else via))
            assert statement["Condition"]["StringEquals"]["kms:CallerAccount"] == ACCOUNT_ID
        assert [s for s in policy.values() if s["Principal"] == {"AWS": "*"}] == [use, grants]
        assert admin["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}
        assert not any(a in admin["Action"] for a in ("kms:*", "kms:Decrypt", "kms:Encrypt"))
        for statement in (use, grants):
            assert statement["Condition"]["StringEquals"] == {
                "kms:ViaService": f"dynamodb.{region}.amazonaws.com",
                "kms:CallerAccount": ACCOUNT_ID,
            }
        assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


@pytest.mark.parametrize("stack", STACKS)
def test_each_key_has_the_same_alias_in_its_region(runs, stack):
    run = runs[stack]
    aliases = run.of_type(ALIAS)
    assert sorted(a.inputs["region"] for a in aliases) == sorted(REGIONS[stack])
    assert {a.inputs["name"] for a in aliases} == {f"alias/agent-infra-{stack}-state"}
    key_ids = {k.inputs["region"]: k.state["keyId"] for k in run.of_type(KEY)}
    for alias in aliases:
        assert alias.inputs["targetKeyId"] == key_ids[alias.inputs["region"]]


def test_dev_and_prod_differ_where_they_should(runs):
    dev, prod = runs["dev"].one(TABLE), runs["prod"].one(TABLE)
    assert dev.inputs["deletionProtectionEnabled"] is False
    assert prod.inputs["deletionProtectionEnabled"] is True
    assert all(r["deletionProtectionEnabled"] is True for r in prod.inputs["replicas"])
    assert all(r["deletionProtectionEnabled"] is False for r in dev.inputs["replicas"])
    assert runs["prod"].protected["state-table"] is True
    assert runs["dev"].protected["state-table"] is False
    assert all(runs["prod"].protected[k.name] for k in runs["prod"].of_type(KEY))
    assert dev.inputs["pointInTimeRecovery"]["recoveryPeriodInDays"] == 1
    assert prod.inputs["pointInTimeRecovery"]["recoveryPeriodInDays"] == 35
    assert {k.inputs["deletionWindowInDays"] for k in runs["dev"].of_type(KEY)} == {7}
    assert {k.inputs["deletionWindowInDays"] for k in runs["prod"].of_type(KEY)} == {30}
    assert len(REGIONS["dev"]) == 2 and len(REGIONS["prod"]) == 3


@pytest.mark.parametrize("stack", STACKS)
def test_cost_allocation_tags_on_the_provider(runs, stack):
    (provider,) = runs[stack].of_type("pulumi:providers:aws")
    tags = (
        json.loads(provider.inputs["defaultTags"])
        if isinstance(provider.inputs["defaultTags"], str)
        else provider.inputs["defaultTags"]
    )
    assert tags["tags"] == {"project": "agent-infra", "stack": stack, "managed-by": "pulumi"}
    assert provider.inputs["region"] == REGIONS[stack][0]


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_name_the_table_and_its_keys(runs, stack):
    run = runs[stack]
    table = run.one(TABLE)
    outputs = run.outputs
    assert outputs["homeRegion"] == REGIONS[stack][0]
    assert outputs["regions"] == REGIONS[stack]
    assert outputs["tableName"] == table.state["name"]
    assert outputs["tableArn"] == f"arn:aws:dynamodb:{REGIONS[stack][0]}:{ACCOUNT_ID}:table/{table.state['name']}"
    assert outputs["tableStreamArn"].startswith(outputs["tableArn"] + "/stream/")
    assert sorted(outputs["tableKeyArns"]) == sorted(REGIONS[stack])


def test_strong_consistency_is_refused_at_preview_with_why():
    config = stack_config("dev")
    config["agent-infra:regions"] = ["us-east-1", "us-east-2", "us-west-2"]
    config["agent-infra:state"] = {**config["agent-infra:state"], "strongConsistency": True}
    with pytest.raises(pulumi.RunError) as caught:
        run_program(config, "mrsc")
    assert "MRSC global tables support neither TTL" in str(caught.value)


def test_a_bad_config_stops_the_program_with_its_message():
    config = stack_config("dev")
    config["agent-infra:regions"] = ["us-east-1", "mars-north-1"]
    with pytest.raises(pulumi.RunError) as caught:
        run_program(config, "bad")
    assert "agent-infra:regions = ['us-east-1', 'mars-north-1']: mars-north-1 is not an AWS region" in str(caught.value)
