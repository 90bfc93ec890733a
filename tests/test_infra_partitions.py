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
