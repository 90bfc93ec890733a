"""The policy pack against the real program under Pulumi mocks, and against a bad example of
each rule (the real program with one thing broken), which the pack must refuse."""

from __future__ import annotations

import copy
import json
import runpy
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import yaml

from local.policy_check import analyze, has_tags
from local.pulumi_mocks import AwsMocks, ProgramRun, RecordedResource, run_program, stack_config
from policy import rules
from policy.pack import PACK_NAME, build_policies
from tests.long_tools import declared_as, example_tools, long_tools_config

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 11, 28)
ZONE = "agents.example.com"


def policies():
    return build_policies(lambda: TODAY)


def with_domain(stack: str) -> dict:
    config = stack_config(stack)
    config["agent-infra:domain"] = {"zone": ZONE}
    return config


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    return {
        "dev": run_program(stack_config("dev"), "dev"),
        "prod": run_program(stack_config("prod"), "prod"),
        "prod-domain": run_program(with_domain("prod"), "prod"),
        "prod-logging": run_program(with_account_logging("prod"), "prod"),
        "prod-long-tools": _long_tools_run(),
    }


def _long_tools_run() -> ProgramRun:
    """prod with a fargate-spot and a continuation tool (tests/long_tools.py)."""
    with declared_as(example_tools()):
        return run_program(long_tools_config("prod"), "prod", AwsMocks())


def with_account_logging(stack: str) -> dict:
    """The stack setting API Gateway's account logging itself (an account without the
    bootstrap's): the one managed policy the program attaches."""
    config = stack_config(stack)
    config["agent-infra:api"] = {**config["agent-infra:api"], "manageAccountLogging": True}
    return config


STACK_OF = {"dev": "dev", "prod": "prod", "prod-domain": "prod", "prod-logging": "prod", "prod-long-tools": "prod"}


@pytest.mark.parametrize("case", ["dev", "prod", "prod-domain", "prod-long-tools"])
def test_the_real_program_passes_every_policy(runs, case):
    run = runs[case]
    assert analyze(run, STACK_OF[case], policies()) == []


def test_the_checks_see_what_they_check(runs):
    """Guards against a pack that passes because it looks at nothing."""
    run = runs["prod-domain"]
    types = {r.typ for r in run.resources}
    for typ in (
        "aws:iam/rolePolicy:RolePolicy",
        "aws:kms/key:Key",
        "aws:dynamodb/table:Table",
        "aws:sqs/queue:Queue",
        "aws:sns/topic:Topic",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:lambda/function:Function",
        "aws:lambda/layerVersion:LayerVersion",
        "aws:apigateway/domainName:DomainName",
        "aws:apigatewayv2/domainName:DomainName",
        "aws:apigateway/stage:Stage",
        "aws:apigatewayv2/stage:Stage",
        "aws:apigateway/methodSettings:MethodSettings",
    ):
        assert typ in types
    tagged = [r for r in run.resources if has_tags(r.typ)]
    assert len(tagged) > 100 and not has_tags("aws:iam/rolePolicy:RolePolicy") and has_tags("aws:iam/role:Role")


# --- bad examples: the real program with one thing broken ----------------------------------------


def broken(
    run: ProgramRun, typ: str, change: Callable[[dict], None], *, which: Callable[[RecordedResource], bool] = bool
) -> tuple[ProgramRun, str]:
    """A copy of ``run`` where the first ``typ`` resource ``which`` accepts has ``change``
    applied to its inputs and outputs; returns the copy and that resource's name."""
    resources = copy.deepcopy(run.resources)
    target = next(r for r in resources if r.typ == typ and which(r))
    change(target.inputs)
    change(target.state)
    return replace(run, resources=resources), target.name


def refused(run: ProgramRun, stack: str, name: str) -> dict[str, list[str]]:
    """The violations reported for resource ``name``, by policy."""
    found: dict[str, list[str]] = {}
    for violation in analyze(run, stack, policies()):
        if violation.resource.endswith(f"::{name}"):
            found.setdefault(violation.policy, []).append(violation.message)
    return found


def set_policy(key: str, statement: dict) -> Callable[[dict], None]:
    def change(props: dict) -> None:
        document = json.loads(props[key])
        document["Statement"].append(statement)
        props[key] = json.dumps(document)

    return change


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            {"Sid": "Bad", "Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"},
            "policy: Bad: resource * for ['dynamodb:GetItem']",
        ),
        (
            {"Sid": "Bad", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
            "policy: Bad: action s3:*",
        ),
        (
            {"Sid": "Bad", "Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
            "policy: Bad: NotAction allows everything it does not name",
        ),
        (
            {
                "Sid": "Bad",
                "Effect": "Allow",
                "Action": "sns:Publish",
                "Resource": "arn:aws:sns:us-east-1:123456789012:t",
                "Condition": {"StringLike": {"aws:SourceArn": "arn:aws:cloudwatch:*"}},
            },
            "policy: Bad: StringLike on aws:SourceArn; use ArnLike/ArnEquals",
        ),
    ],
)
def test_iam_statements_that_do_not_name_resources_are_refused(runs, statement, expected):
    run, name = broken(runs["dev"], "aws:iam/rolePolicy:RolePolicy", set_policy("policy", statement))
    assert refused(run, "dev", name) == {"iam-statements-name-resources": [expected]}


def test_a_wildcard_key_policy_and_a_string_compared_arn_in_a_trust_policy_are_refused(runs):
    everything = {"Sid": "All", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}
    run, key = broken(runs["dev"], "aws:kms/key:Key", set_policy("policy", everything))
    assert refused(run, "dev", key) == {
        "iam-statements-name-resources": [
            "policy: All: action kms:*",
            "policy: All: Principal * lets in anyone: no condition on the caller's account, organization or ARN",
        ]
    }
    trust = {
        "Sid": "Confused",
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringLike": {"aws:SourceArn": "arn:aws:lambda:*"}},
    }
    run, role = broken(runs["dev"], "aws:iam/role:Role", set_policy("assumeRolePolicy", trust))
    assert refused(run, "dev", role) == {
        "iam-statements-name-resources": [
            "assumeRolePolicy: Confused: StringLike on aws:SourceArn; use ArnLike/ArnEquals"
        ]
    }


ANYONE = "Principal * lets in anyone: no condition on the caller's account, organization or ARN"


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["arn:aws:iam::123456789012:root", "*"]}])
def test_a_key_policy_open_to_anyone_is_refused(runs, principal):
    anyone = {"Sid": "Anyone", "Effect": "Allow", "Principal": principal, "Action": "kms:Decrypt", "Resource": "*"}
    run, key = broken(runs["dev"], "aws:kms/key:Key", set_policy("policy", anyone))
    assert refused(run, "dev", key) == {"iam-statements-name-resources": [f"policy: Anyone: {ANYONE}"]}
    # The same grant to the caller's own account only, as the program's key policies write it, passes.
    anyone["Condition"] = {"StringEquals": {"kms:CallerAccount": "123456789012"}}
    run, key = broken(runs["dev"], "aws:kms/key:Key", set_policy("policy", anyone))
    assert refused(run, "dev", key) == {}
    for weak in (
        {"StringEqualsIfExists": {"kms:CallerAccount": "123456789012"}},
        {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-abc"}},
        {"StringLike": {"aws:PrincipalAccount": "*"}},
        {"Bool": {"aws:SecureTransport": "true"}},
    ):
        anyone["Condition"] = weak
        run, key = broken(runs["dev"], "aws:kms/key:Key", set_policy("policy", anyone))
        assert refused(run, "dev", key) == {"iam-statements-name-resources": [f"policy: Anyone: {ANYONE}"]}, weak


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}])
def test_a_role_anyone_may_assume_is_refused(runs, principal):
    trust = {"Sid": "Anyone", "Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    run, role = broken(runs["dev"], "aws:iam/role:Role", set_policy("assumeRolePolicy", trust))
    assert refused(run, "dev", role) == {"iam-statements-name-resources": [f"assumeRolePolicy: Anyone: {ANYONE}"]}
    lets_in_all_but = {"Sid": "AllBut", "Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "sts:AssumeRole"}
    run, role = broken(runs["dev"], "aws:iam/role:Role", set_policy("assumeRolePolicy", lets_in_all_but))
    assert refused(run, "dev", role) == {
        "iam-statements-name-resources": [
            "assumeRolePolicy: AllBut: NotPrincipal with Allow lets in everyone it does not name"
        ]
    }


def test_a_role_another_account_may_assume_without_a_condition_is_refused(runs):
    foreign = {
        "Sid": "Foreign",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": "sts:AssumeRole",
    }
    run, role = broken(runs["dev"], "aws:iam/role:Role", set_policy("assumeRolePolicy", foreign))
    assert refused(run, "dev", role) == {
        "iam-principals-of-this-account": [
            f"{role} assumeRolePolicy: Foreign: lets in account 999999999999, not this stack's, with no condition"
        ]
    }
    # With an external id, or the stack's own account, it passes.
    foreign["Condition"] = {"StringEquals": {"sts:ExternalId": "agreed-id"}}
    run, role = broken(runs["dev"], "aws:iam/role:Role", set_policy("assumeRolePolicy", foreign))
    assert refused(run, "dev", role) == {}
    own = {**foreign, "Principal": {"AWS": "123456789012"}}
    del own["Condition"]
    run, role = broken(runs["dev"], "aws:iam/role:Role", set_policy("assumeRolePolicy", own))
    assert refused(run, "dev", role) == {}


def test_a_key_another_account_may_use_without_a_condition_is_refused(runs):
    foreign = {
        "Sid": "Foreign",
        "Effect": "Allow",
        "Principal": {"AWS": "999999999999"},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    run, key = broken(runs["dev"], "aws:kms/key:Key", set_policy("policy", foreign))
    assert refused(run, "dev", key) == {
        "iam-principals-of-this-account": [
            f"{key} policy: Foreign: lets in account 999999999999, not this stack's, with no condition"
        ]
    }


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
ADMIN_REFUSED = (
    "attaches the AWS managed policy AdministratorAccess; allowed: "
    "['service-role/AmazonAPIGatewayPushToCloudWatchLogs'] (write the statements the role needs instead)"
)


def test_a_managed_policy_attachment_other_than_the_allowed_is_refused(runs):
    # A stack that sets API Gateway's account logging: its role has the one managed policy allowed.
    attachment = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    assert runs["prod-logging"].of_type(attachment)
    run, name = broken(runs["prod-logging"], attachment, _set(ADMIN, "policyArn"))
    assert refused(run, "prod", name) == {"iam-statements-name-resources": [f"policyArn: {ADMIN_REFUSED}"]}
    run, role = broken(runs["prod-logging"], "aws:iam/role:Role", _set([ADMIN], "managedPolicyArns"))
    assert refused(run, "prod", role) == {"iam-statements-name-resources": [f"managedPolicyArns: {ADMIN_REFUSED}"]}


def _unset(*path: str) -> Callable[[dict], None]:
    def change(props: dict) -> None:
        for key in path[:-1]:
            props = props[key]
        props.pop(path[-1], None)

    return change


def _set(value, *path: str) -> Callable[[dict], None]:
    def change(props: dict) -> None:
        for key in path[:-1]:
            props = props[key]
        props[path[-1]] = value

    return change


ENCRYPTION_CASES = [
    ("aws:dynamodb/table:Table", _set(False, "serverSideEncryption", "enabled"), "table is not encrypted"),
    (
        "aws:dynamodb/table:Table",
        _set("alias/aws/dynamodb", "serverSideEncryption", "kmsKeyArn"),
        "table names 'alias/aws/dynamodb', not the ARN of a customer-managed KMS key",
    ),
    ("aws:sqs/queue:Queue", _unset("kmsMasterKeyId"), "queue is not encrypted"),
    ("aws:sns/topic:Topic", _set("alias/aws/sns", "kmsMasterKeyId"), "topic names 'alias/aws/sns'"),
    ("aws:cloudwatch/logGroup:LogGroup", _unset("kmsKeyId"), "log group is not encrypted"),
    ("aws:lambda/function:Function", _unset("kmsKeyArn"), "environment variables is not encrypted"),
]


@pytest.mark.parametrize(("typ", "change", "message"), ENCRYPTION_CASES)
def test_stores_without_a_customer_managed_key_are_refused(runs, typ, change, message):
    run, name = broken(runs["dev"], typ, change)
    found = refused(run, "dev", name)
    # An alias is also a key the stack does not manage: the stack policy may refuse it too.
    assert set(found) <= {"encryption-at-rest-customer-keys", "encryption-with-the-stacks-keys"}, found
    assert any(message in m for m in found["encryption-at-rest-customer-keys"]), found


def test_a_replica_without_its_key_or_with_another_regions_key_is_refused(runs):
    run, name = broken(runs["prod"], "aws:dynamodb/table:Table", lambda p: p["replicas"][0].pop("kmsKeyArn"))
    assert refused(run, "prod", name) == {
        "encryption-at-rest-customer-keys": [
            "replica in eu-west-1 is not encrypted with a customer-managed KMS key (no key set)"
        ]
    }
    home_key = next(
        k.state["arn"] for k in runs["prod"].of_type("aws:kms/key:Key") if k.inputs["region"] == "us-east-1"
    )
    run, name = broken(runs["prod"], "aws:dynamodb/table:Table", lambda p: p["replicas"][0].update(kmsKeyArn=home_key))
    assert refused(run, "prod", name) == {
        "encryption-at-rest-customer-keys": [
            f"replica in eu-west-1 is in eu-west-1 but its key {home_key} is in us-east-1"
        ],
        "encryption-with-the-stacks-keys": [
            "replica in eu-west-1 of state-table is in eu-west-1, its key in us-east-1"
        ],
    }


def test_a_secret_without_the_stacks_key_is_refused():
    config = stack_config("dev")
    config["agent-infra:llm"] = {"provider": "openai", "model": "m", "endpoints": ["https://llm.example.com/v1"]}
    config["agent-infra:llm"]["apiKey"] = "sk-test"
    run = run_program(config, "dev")
    assert analyze(run, "dev", policies()) == []
    run, name = broken(run, "aws:secretsmanager/secret:Secret", _unset("kmsKeyId"))
    assert list(refused(run, "dev", name)) == ["encryption-at-rest-customer-keys"]


def test_a_key_the_stack_does_not_manage_is_refused_by_the_stack_policy(runs):
    foreign = "arn:aws:kms:us-east-1:999999999999:key/00000000-0000-0000-0000-000000000000"
    run, name = broken(
        runs["dev"],
        "aws:cloudwatch/logGroup:LogGroup",
        _set(foreign, "kmsKeyId"),
        which=lambda r: r.inputs["region"] == "us-east-1",
    )
    violations = [v for v in analyze(run, "dev", policies()) if v.policy == "encryption-with-the-stacks-keys"]
    assert [v.message for v in violations] == [f"log group of {name} uses {foreign}, a key this stack does not manage"]
    assert violations[0].resource.endswith(f"::{name}")


def test_custom_domains_below_tls12_are_refused(runs):
    run, rest = broken(runs["prod-domain"], "aws:apigateway/domainName:DomainName", _set("TLS_1_0", "securityPolicy"))
    assert refused(run, "prod", rest) == {
        "custom-domains-tls12": ["custom domain security policy 'TLS_1_0'; allowed: ['TLS_1_2']"]
    }
    run, ws = broken(
        runs["prod-domain"],
        "aws:apigatewayv2/domainName:DomainName",
        _unset("domainNameConfiguration", "securityPolicy"),
    )
    assert refused(run, "prod", ws) == {
        "custom-domains-tls12": ["custom domain security policy None; allowed: ['TLS_1_2']"]
    }


def test_stages_without_access_logs_or_tracing_and_data_traces_are_refused(runs):
    run, stage = broken(runs["dev"], "aws:apigateway/stage:Stage", _unset("accessLogSettings"))
    assert refused(run, "dev", stage) == {
        "api-stages-access-logs-and-tracing": ["stage has no access logs (accessLogSettings destination and format)"]
    }
    run, stage = broken(runs["dev"], "aws:apigateway/stage:Stage", _set(False, "xrayTracingEnabled"))
    assert refused(run, "dev", stage) == {
        "api-stages-access-logs-and-tracing": ["REST stage without X-Ray tracing (xrayTracingEnabled)"]
    }
    run, ws = broken(
        runs["dev"], "aws:apigatewayv2/stage:Stage", _set(True, "defaultRouteSettings", "dataTraceEnabled")
    )
    assert refused(run, "dev", ws) == {"api-no-data-traces": ["data trace logging is on (dataTraceEnabled)"]}
    run, ws = broken(runs["dev"], "aws:apigatewayv2/stage:Stage", _unset("accessLogSettings"))
    assert list(refused(run, "dev", ws)) == ["api-stages-access-logs-and-tracing"]
    run, settings = broken(
        runs["dev"], "aws:apigateway/methodSettings:MethodSettings", _set(True, "settings", "dataTraceEnabled")
    )
    assert refused(run, "dev", settings) == {"api-no-data-traces": ["data trace logging is on (dataTraceEnabled)"]}


def test_prods_table_and_keys_must_be_protected(runs):
    prod = runs["prod"]
    table = prod.one("aws:dynamodb/table:Table").name
    unprotected = replace(prod, protected={**prod.protected, table: False})
    assert refused(unprotected, "prod", table) == {"protected-state": ["the prod table must carry Pulumi protect"]}
    run, table = broken(prod, "aws:dynamodb/table:Table", _set(False, "deletionProtectionEnabled"))
    assert refused(run, "prod", table) == {"protected-state": ["the prod table must have DynamoDB deletion protection"]}
    run, table = broken(
        prod, "aws:dynamodb/table:Table", lambda p: p["replicas"][1].update(deletionProtectionEnabled=False)
    )
    assert refused(run, "prod", table) == {
        "protected-state": ["the prod replica in ap-northeast-1 must have deletion protection"]
    }
    key = prod.of_type("aws:kms/key:Key")[0].name
    unprotected = replace(prod, protected={**prod.protected, key: False})
    assert refused(unprotected, "prod", key) == {"protected-state": ["the prod key must carry Pulumi protect"]}
    run, key = broken(prod, "aws:kms/key:Key", _set(7, "deletionWindowInDays"))
    assert refused(run, "prod", key) == {
        "protected-state": ["the prod key's deletion window is 7; 30 days, the longest KMS allows"]
    }


def test_dev_may_leave_its_state_unprotected(runs):
    dev = runs["dev"]
    assert dev.protected[dev.one("aws:dynamodb/table:Table").name] is False
    assert [v for v in analyze(dev, "dev", policies()) if v.policy == "protected-state"] == []


def test_resources_without_the_cost_allocation_tags_are_refused(runs):
    run, _ = broken(runs["dev"], "pulumi:providers:aws", _unset("defaultTags"))
    violations = analyze(run, "dev", policies())
    assert violations and {v.policy for v in violations} == {"cost-allocation-tags"}
    tagged = {r.name for r in run.resources if has_tags(r.typ)}
    assert {v.resource.rsplit("::", 1)[1] for v in violations} == tagged, "every taggable resource, nothing else"
    assert {v.message for v in violations} == {
        "missing cost-allocation tag 'project'",
        "missing cost-allocation tag 'stack'",
        "missing cost-allocation tag 'managed-by'",
    }
    run, name = broken(runs["dev"], "aws:sqs/queue:Queue", _set({"stack": "prod"}, "tags"))
    assert refused(run, "dev", name) == {
        "cost-allocation-tags": ["tag stack='prod' but the resource is in stack 'dev'"]
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("python3.9", "runtime"), "runtime python3.9 is deprecated since 2025-12-15"),
        (_set("python3.11", "runtime"), "runtime python3.11 is deprecated since 2026-06-30"),
        (_set("python3.99", "runtime"), "runtime python3.99 is not in the table of"),
        (_set(["x86_64"], "architectures"), "architectures ['x86_64']: only ['arm64']"),
        (_unset("architectures"), "architectures ['x86_64']: only ['arm64']"),
    ],
)
def test_deprecated_runtimes_and_other_architectures_are_refused(runs, change, message):
    run, name = broken(runs["dev"], "aws:lambda/function:Function", change)
    found = refused(run, "dev", name)
    assert list(found) == ["lambda-supported-runtime-arm64"] and found["lambda-supported-runtime-arm64"][0].startswith(
        message
    ), found


def test_a_layer_for_another_architecture_is_refused(runs):
    run, name = broken(runs["dev"], "aws:lambda/layerVersion:LayerVersion", _set(["x86_64"], "compatibleArchitectures"))
    assert refused(run, "dev", name) == {"lambda-supported-runtime-arm64": ["architectures ['x86_64']: only ['arm64']"]}


def test_runtime_deprecation_follows_the_date():
    assert rules.runtime_problem("python3.13", date(2029, 6, 29)) is None
    assert rules.runtime_problem("python3.13", date(2029, 6, 30)).startswith("runtime python3.13 is deprecated")
    assert rules.LAMBDA_RUNTIMES_SOURCE == "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"


# --- the pack as Pulumi runs it ------------------------------------------------------------------


def test_the_pack_entry_point_builds_every_policy_mandatory(monkeypatch):
    import pulumi_policy

    made = {}

    def record(**kwargs):
        made.update(kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", record)
    runpy.run_path(str(ROOT / "policy"), run_name="__main__")
    assert made["name"] == PACK_NAME
    assert made["enforcement_level"] is pulumi_policy.EnforcementLevel.MANDATORY
    names = [p.name for p in made["policies"]]
    assert names == [p.name for p in policies()] and len(set(names)) == len(names) == 10
    assert all(p.enforcement_level is None for p in made["policies"]), "each policy takes the pack's level"


def test_the_pack_project_runs_on_the_repositorys_pinned_virtualenv():
    project = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (ROOT / "policy" / project["runtime"]["options"]["virtualenv"]).resolve() == (ROOT / ".venv").resolve()
    dev_requirements = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-r policy/requirements.txt" in dev_requirements
