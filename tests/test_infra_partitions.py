"""The program in the other AWS partitions under Pulumi mocks: every ARN it writes into a state
machine definition, a policy or a function's settings is in the stack's partition.

The partition comes from the home region (botocore's endpoint data, ``StackConfig.partition``)
and the mocks answer every ARN, and the partition invoke, in the same partition, as AWS would
there. ``arn:aws:`` anywhere in what the program renders would be another partition's
resource: refused at deploy time, or a policy that grants nothing.
"""

from __future__ import annotations

import json
import re

import pytest

from local.pulumi_mocks import AwsMocks, run_program, stack_config

PARTITIONS = {
    "aws-cn": ["cn-north-1", "cn-northwest-1"],
    "aws-us-gov": ["us-gov-west-1", "us-gov-east-1"],
}
OPENAI = {
    "provider": "openai",
    "model": "gpt-test",
    "endpoints": ["https://llm.example.com/v1"],
    "apiKey": "sk-test",
}
AWS_PARTITION_ARN = re.compile(r"arn:aws:[^\"\\\s]*")


def run_in(partition: str, provider: str):
    config = stack_config("dev")
    config["agent-infra:regions"] = PARTITIONS[partition]
    # Fault injection on: its functions' settings and policies are rendered too.
    config["agent-infra:faultInjection"] = {"enabled": True}
    if provider == "openai":
        config["agent-infra:llm"] = OPENAI
    return run_program(config, "dev", AwsMocks(partition=partition))


def rendered(value) -> str:
    """A resource's inputs as text (archives by their path)."""
    return json.dumps(value, default=str)


@pytest.mark.parametrize("provider", ["bedrock", "openai"])
@pytest.mark.parametrize("partition", sorted(PARTITIONS))
def test_no_arn_of_the_aws_partition_in_definitions_policies_or_settings(partition, provider):
    run = run_in(partition, provider)
    machines = run.of_type("aws:sfn/stateMachine:StateMachine")
    assert len(machines) == 2 * len(PARTITIONS[partition])
    integration = "http:invoke" if provider == "openai" else "aws-sdk:bedrockruntime:converse"
    for machine in machines:
        assert f'"arn:{partition}:states:::{integration}"' in machine.inputs["definition"], machine.name
    policies = run.of_type("aws:iam/rolePolicy:RolePolicy") + run.of_type("aws:kms/key:Key")
    assert len(policies) > 20
    for resource in policies:
        assert f"arn:{partition}:" in resource.inputs["policy"], f"{resource.name} names no ARN of {partition}"
    found = {
        f"{r.typ} {r.name}: {match}"
        for r in run.resources
        if r.typ.startswith("aws:")
        for match in AWS_PARTITION_ARN.findall(rendered(r.inputs))
    }
    assert found == set(), "\n".join(sorted(found))


SUFFIX = {"aws-cn": "amazonaws.com.cn", "aws-us-gov": "amazonaws.com"}
# A regional host: a service (or an API's id and execute-api) in one of the partition's regions.
REGIONAL_HOST = r"[a-z0-9.-]+\.{region}\.amazonaws\.com(?:\.cn)?"


def regional_hosts(text: str, regions: list[str]) -> set[str]:
    return {host for region in regions for host in re.findall(REGIONAL_HOST.format(region=region), text)}


@pytest.mark.parametrize("partition", sorted(PARTITIONS))
def test_endpoints_are_in_the_partitions_domain_and_service_principals_stay_global(partition):
    """API hosts (outputs, the WebSocket endpoint the functions post to, the health checks'
    hosts) and ``kms:ViaService`` endpoints end in the partition's DNS suffix (amazonaws.com.cn
    in China); the service principals the roles trust keep ``<service>.amazonaws.com``."""
    config = stack_config("dev")
    config["agent-infra:regions"] = PARTITIONS[partition]
    config["agent-infra:domain"] = {"zone": "agents.example.com"}  # its health checks probe each API's host
    run = run_program(config, "dev", AwsMocks(partition=partition))
    regions = PARTITIONS[partition]
    suffix = SUFFIX[partition]
    assert len(run.of_type("aws:route53/healthCheck:HealthCheck")) >= 2 * len(regions)
    text = rendered([r.inputs for r in run.resources if r.typ.startswith("aws:")]) + rendered(run.outputs)
    hosts = regional_hosts(text, regions)
    assert any(".execute-api." in host for host in hosts)
    assert any(host.startswith("lambda.") for host in hosts), "no kms:ViaService endpoint rendered"
    assert {host for host in hosts if not host.endswith(f".{region_suffix(host, regions)}.{suffix}")} == set()
    websocket = {
        r.inputs["environment"]["variables"].get("WEBSOCKET_ENDPOINT")
        for r in run.of_type("aws:lambda/function:Function")
    }
    assert websocket - {None}
    assert {url for url in websocket if url and not url.split("/")[2].endswith(suffix)} == set()
    trusted = {
        statement["Principal"]["Service"]
        for role in run.of_type("aws:iam/role:Role")
        for statement in json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    }
    assert trusted and {p for p in trusted if not p.endswith(".amazonaws.com")} == set()


def region_suffix(host: str, regions: list[str]) -> str:
    return next(region for region in regions if f".{region}." in host)


def test_the_bootstrap_roles_name_the_china_endpoints_in_kms_via_service():
    from tests.test_bootstrap import BOOTSTRAP, PROJECT, example_config

    config = example_config()
    config[f"{PROJECT}:partition"] = "aws-cn"
    config[f"{PROJECT}:stacks"] = {"dev": {"regions": PARTITIONS["aws-cn"], "environment": "dev"}}
    run = run_program(config, "main", AwsMocks(partition="aws-cn"), program=BOOTSTRAP, project=PROJECT)
    text = rendered([r.inputs for r in run.resources])
    hosts = regional_hosts(text, PARTITIONS["aws-cn"])
    assert {h.split(".")[0] for h in hosts} >= {"lambda", "dynamodb", "sqs", "secretsmanager"}
    assert {h for h in hosts if not h.endswith(".amazonaws.com.cn")} == set()
