"""The failover drill on AWS under Pulumi mocks: an FIS experiment template per region, off by
default; its actions, targets, stop condition and role, and what the functions carry for it."""

from __future__ import annotations

import json

import pytest

from components.fault_injection import CONFIG_PREFIX, EXEC_WRAPPER, FIS_EXTENSION_PARAMETER
from local.pulumi_mocks import ACCOUNT_ID, run_program, stack_config

TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
REGIONS = stack_config("dev")["agent-infra:regions"]


def with_fault_injection(minutes: int = 10) -> dict:
    config = stack_config("dev")
    config["agent-infra:faultInjection"] = {"enabled": True, "durationMinutes": minutes}
    return config


@pytest.fixture(scope="module")
def runs():
    return {"off": run_program(stack_config("dev"), "dev"), "on": run_program(with_fault_injection(15), "dev")}


def policy_of(run, role_arn: str):
    role_name = role_arn.rsplit("/", 1)[1]
    (policy,) = [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role_name]
    return json.loads(policy.inputs["policy"])


def test_nothing_of_it_by_default(runs):
    run = runs["off"]
    assert run.of_type(TEMPLATE) == [] and run.of_type("aws:s3/bucket:Bucket") == []
    for function in run.of_type(FUNCTION):
        assert len(function.inputs["layers"]) == 1
        assert "AWS_LAMBDA_EXEC_WRAPPER" not in function.inputs["environment"]["variables"]
    assert "failoverExperiments" not in run.outputs


def test_one_template_per_region_pauses_that_replica_and_fails_that_regions_functions(runs):
    run = runs["on"]
    table = run.one("aws:dynamodb/table:Table").state["name"]
    templates = {t.inputs["region"]: t for t in run.of_type(TEMPLATE)}
    assert sorted(templates) == sorted(REGIONS)
    assert sorted(run.outputs["failoverExperiments"]) == sorted(REGIONS)
    for region, template in templates.items():
        actions = {a["name"]: a for a in template.inputs["actions"]}
        assert set(actions) == {"pause-replication", "fail-functions"}
        pause, fail = actions["pause-replication"], actions["fail-functions"]
        assert pause["actionId"] == "aws:dynamodb:global-table-pause-replication"
        assert pause["parameters"] == [{"key": "duration", "value": "PT15M"}]
        assert pause["target"] == {"key": "Tables", "value": "replica"}
        assert fail["actionId"] == "aws:lambda:invocation-error"
        assert {p["key"]: p["value"] for p in fail["parameters"]} == {
            "duration": "PT15M",
            "invocationPercentage": "100",
            "preventExecution": "true",
        }
        assert fail["target"] == {"key": "Functions", "value": "functions"}
        assert "startAfters" not in pause and "startAfters" not in fail, "both at once"
        targets = {t["name"]: t for t in template.inputs["targets"]}
        assert targets["replica"]["resourceType"] == "aws:dynamodb:global-table"
        assert targets["replica"]["resourceArns"] == [f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table}"]
        assert targets["functions"]["resourceType"] == "aws:lambda:function"
        assert targets["functions"]["resourceTags"] == [{"key": "stack", "value": "dev"}]
        assert all(t["selectionMode"] == "ALL" for t in targets.values())
        assert template.inputs["logConfiguration"]["cloudwatchLogsConfiguration"]["logGroupArn"].endswith(":*")


def test_the_stop_condition_is_the_regions_abort_alarm(runs):
    run = runs["on"]
    alarms = {
        a.inputs["region"]: a
        for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs.get("namespace") == "AgentInfra/Drill"
    }
    for template in run.of_type(TEMPLATE):
        alarm = alarms[template.inputs["region"]]
        assert template.inputs["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": alarm.state["arn"]}]
        assert alarm.inputs["metricName"] == "Abort" and alarm.inputs["threshold"] == 1
        assert alarm.inputs["treatMissingData"] == "notBreaching"


def test_the_experiment_role_trusts_fis_in_its_region_and_reaches_only_that_regions_resources(runs):
    run = runs["on"]
    roles = {r.state["arn"]: r for r in run.of_type(ROLE)}
    for template in run.of_type(TEMPLATE):
        region = template.inputs["region"]
        role = roles[template.inputs["roleArn"]]
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": "fis.amazonaws.com"}
        assert trust["Condition"] == {
            "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:aws:fis:{region}:{ACCOUNT_ID}:experiment/*"},
        }
        statements = {s["Sid"]: s for s in policy_of(run, template.inputs["roleArn"])["Statement"]}
        pause = statements["PauseReplicationOfThisReplica"]
        assert all(f":dynamodb:{region}:" in r for r in pause["Resource"])
        assert any(r.endswith("/stream/*") for r in pause["Resource"])
        assert statements["FindFunctions"]["Resource"] == [f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:*"]
        assert all(r.endswith(f"/{CONFIG_PREFIX}*") for r in statements["WriteFunctionFaults"]["Resource"])
        assert {a for s in statements.values() for a in s["Action"]} <= {
            "dynamodb:DeleteResourcePolicy",
            "dynamodb:DescribeTable",
            "dynamodb:GetResourcePolicy",
            "dynamodb:PutResourcePolicy",
            "tag:GetResources",
            "lambda:GetFunction",
            "s3:DeleteObject",
            "s3:PutObject",
            "logs:CreateLogDelivery",
            "logs:DescribeLogGroups",
            "logs:DescribeResourcePolicies",
            "logs:PutResourcePolicy",
        }


def test_every_function_carries_the_fis_extension_of_its_region_and_reads_only_its_configuration(runs):
    run = runs["on"]
    buckets = {b.inputs["region"]: b for b in run.of_type("aws:s3/bucket:Bucket")}
    assert sorted(buckets) == sorted(REGIONS)
    asked = [args for name, args in run.calls if name == "aws:ssm/getParameter:getParameter"]
    assert sorted(a["region"] for a in asked) == sorted(REGIONS)
    assert {a["name"] for a in asked} == {FIS_EXTENSION_PARAMETER}
    for function in run.of_type(FUNCTION):
        region = function.inputs["region"]
        bucket = buckets[region].state["bucket"]
        assert any(
            ":layer:aws-fis-extension-arm64:" in layer and f":{region}:" in layer for layer in function.inputs["layers"]
        )
        variables = function.inputs["environment"]["variables"]
        assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == EXEC_WRAPPER
        assert variables["AWS_FIS_CONFIGURATION_LOCATION"] == f"arn:aws:s3:::{bucket}/{CONFIG_PREFIX}"
        statements = {s["Sid"]: s for s in policy_of(run, function.inputs["role"])["Statement"]}
        assert statements["ReadFisConfiguration"]["Resource"] == [f"{buckets[region].state['arn']}/{CONFIG_PREFIX}*"]
        assert statements["ListFisConfiguration"]["Condition"] == {"StringLike": {"s3:prefix": [f"{CONFIG_PREFIX}*"]}}


def test_the_fault_configurations_bucket_is_private_encrypted_tls_only_and_expires_them(runs):
    run = runs["on"]
    for block in run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        assert all(
            block.inputs[k]
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
    for encryption in run.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ):
        assert encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    for policy in run.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        (deny,) = json.loads(policy.inputs["policy"])["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for lifecycle in run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        (rule,) = lifecycle.inputs["rules"]
        assert rule["filter"] == {"prefix": CONFIG_PREFIX} and rule["expiration"] == {"days": 1}


@pytest.mark.parametrize("minutes", [0, 61])
def test_an_experiment_lasts_one_minute_to_an_hour(minutes):
    import pulumi

    with pytest.raises(pulumi.RunError, match=r"faultInjection\.durationMinutes"):
        run_program(with_fault_injection(minutes), "dev")
