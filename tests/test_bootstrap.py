"""The pipeline's IAM (bootstrap/) under Pulumi mocks: who may assume each role, and what it may do."""

from __future__ import annotations

import contextlib
import json
from fnmatch import fnmatchcase
from pathlib import Path

import pulumi
import pytest
import yaml

from bootstrap.provider_calls import DATA_SOURCES, PREVIEW_SKIPS, RESOURCES
from bootstrap.roles import (
    MANAGED_POLICY_MAX_CHARS,
    StackSettings,
    boundary_document,
    permission_documents,
    role_name,
    subject,
    trust_policy,
)
from local.pulumi_mocks import ACCOUNT_ID, AwsMocks, run_program, stack_config
from policy.rules import ACTIONS_WITHOUT_RESOURCE_TYPE, arn_condition_problems, wildcard_problems
from tests.long_tools import declared_as, example_tools, long_tools_config

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "bootstrap" / "__main__.py"
PROJECT = "agent-infra-bootstrap"
REPOSITORY = "my-org/agent-infra"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"


def example_config() -> dict:
    config = yaml.safe_load((ROOT / "bootstrap" / "Pulumi.example.yaml").read_text())["config"]
    config[f"{PROJECT}:accountId"] = ACCOUNT_ID
    config[f"{PROJECT}:repository"] = REPOSITORY
    return config


@pytest.fixture(scope="module")
def run():
    return run_program(example_config(), "main", program=BOOTSTRAP, project=PROJECT)


def roles(run) -> dict[str, dict]:
    """The pipeline's roles (named; the account's API Gateway logging role is not one)."""
    return {r.inputs["name"]: r for r in run.of_type("aws:iam/role:Role") if "name" in r.inputs}


def documents_of(run, role: str) -> list[dict]:
    policies = {p.state["arn"]: p for p in run.of_type("aws:iam/policy:Policy")}
    attached = [
        a.inputs["policyArn"]
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role
    ]
    return [json.loads(policies[arn].inputs["policy"]) for arn in attached]


def statements_of(run, role: str) -> list[dict]:
    return [s for d in documents_of(run, role) for s in d["Statement"]]


def test_one_deploy_and_one_preview_role_per_stack_and_one_oidc_provider(run):
    assert sorted(roles(run)) == [
        "agent-infra-dev-deploy",
        "agent-infra-dev-preview",
        "agent-infra-prod-deploy",
        "agent-infra-prod-preview",
    ]
    (oidc,) = run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert run.outputs["oidcProviderArn"] == OIDC_ARN


@pytest.mark.parametrize(
    ("role", "sub"),
    [
        ("agent-infra-prod-deploy", f"repo:{REPOSITORY}:environment:prod"),
        ("agent-infra-dev-deploy", f"repo:{REPOSITORY}:environment:dev"),
        ("agent-infra-prod-preview", f"repo:{REPOSITORY}:pull_request"),
        ("agent-infra-dev-preview", f"repo:{REPOSITORY}:pull_request"),
    ],
)
def test_each_role_trusts_exactly_one_github_subject_of_this_repository(run, role, sub):
    trust = json.loads(roles(run)[role].inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": sub,
        }
    }, "StringEquals on aud and the exact sub: no StringLike, no wildcard"
    other_subjects = [
        f"repo:{REPOSITORY}-fork:environment:prod",
        "repo:other-org/agent-infra:environment:prod",
        f"repo:{REPOSITORY}:ref:refs/heads/feature",
        f"repo:{REPOSITORY}:ref:refs/heads/main",
        f"repo:{REPOSITORY}:environment:staging",
    ]
    assert all(
        s != statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] for s in other_subjects
    )


def test_subjects_and_trust_refuse_wildcards():
    with pytest.raises(ValueError, match="owner"):
        subject("my-org/*")
    with pytest.raises(ValueError, match="owner"):
        subject("agent-infra")
    with pytest.raises(ValueError, match="no wildcards"):
        trust_policy(OIDC_ARN, "repo:my-org/*:pull_request")
    with pytest.raises(ValueError, match="kind must be one of"):
        role_name("dev", "admin")


@pytest.mark.parametrize("role", ["agent-infra-dev-deploy", "agent-infra-prod-deploy", "agent-infra-dev-preview"])
def test_every_statement_names_resources_and_star_only_for_actions_without_a_resource_type(run, role):
    documents = documents_of(run, role)
    assert documents
    for document in documents:
        assert wildcard_problems(document) == []
        assert arn_condition_problems(document) == []
        assert len(json.dumps(document, separators=(",", ":"))) <= MANAGED_POLICY_MAX_CHARS
    assert len(documents) <= 10, "IAM attaches at most 10 managed policies to a role by default"
    for statement in statements_of(run, role):
        assert statement["Effect"] == "Allow"
        for resource in statement["Resource"]:
            if resource == "*":
                assert set(statement["Action"]) <= ACTIONS_WITHOUT_RESOURCE_TYPE
            else:
                assert f":{ACCOUNT_ID}:" in resource or resource.startswith(
                    ("arn:aws:apigateway:", "arn:aws:route53:::")
                ), f"{statement['Sid']}: {resource} is not in this account"


def _allowed(statements: list[dict], action: str, resource: str) -> list[dict]:
    return [
        s
        for s in statements
        if any(fnmatchcase(action, a) for a in s["Action"]) and any(fnmatchcase(resource, r) for r in s["Resource"])
    ]


def test_the_deploy_role_reaches_only_this_stacks_named_resources(run):
    statements = statements_of(run, "agent-infra-dev-deploy")
    arn = f"arn:aws:%s:us-east-1:{ACCOUNT_ID}:%s"
    inside = [
        ("states:UpdateStateMachine", arn % ("states", "stateMachine:agent-infra-dev-turn")),
        ("logs:CreateLogGroup", arn % ("logs", "log-group:/agent-infra/dev/router")),
        ("logs:CreateLogGroup", arn % ("logs", "log-group:/aws/vendedlogs/states/agent-infra-dev-task")),
        ("sns:CreateTopic", arn % ("sns", "agent-infra-dev-alarms")),
        ("cloudwatch:PutMetricAlarm", arn % ("cloudwatch", "alarm:agent-infra-dev-api-5xx")),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT_ID}:role/agent-infra/dev/us-east-1-compute-router-role-abc"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT_ID}:role/agent-infra/dev/us-east-1-compute-router-role-abc"),
        ("budgets:ModifyBudget", f"arn:aws:budgets::{ACCOUNT_ID}:budget/agent-infra-dev"),
        ("lambda:PublishLayerVersion", arn % ("lambda", "layer:agent-infra-dev-deps")),
    ]
    outside = [
        ("states:UpdateStateMachine", arn % ("states", "stateMachine:agent-infra-prod-turn")),
        ("logs:CreateLogGroup", arn % ("logs", "log-group:/agent-infra/prod/router")),
        ("logs:DeleteLogGroup", arn % ("logs", "log-group:/aws/lambda/anything")),
        ("sns:CreateTopic", arn % ("sns", "agent-infra-prod-alarms")),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT_ID}:role/agent-infra/prod/us-east-1-compute-router-role-abc"),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT_ID}:role/agent-infra-dev-deploy"),
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT_ID}:role/Admin"),
        ("iam:TagRole", f"arn:aws:iam::{ACCOUNT_ID}:role/Admin"),
        ("budgets:ModifyBudget", f"arn:aws:budgets::{ACCOUNT_ID}:budget/agent-infra-prod"),
        ("s3:DeleteBucket", "arn:aws:s3:::anything"),
        ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT_ID}:user/x"),
    ]
    for action, resource in inside:
        assert _allowed(statements, action, resource), f"{action} on {resource}"
    for action, resource in outside:
        assert not _allowed(statements, action, resource), f"{action} on {resource} must stay out of reach"


def test_generated_names_are_reached_through_the_stack_tag_and_the_stacks_regions(run):
    statements = statements_of(run, "agent-infra-dev-deploy")
    for action in ("lambda:UpdateFunctionCode", "dynamodb:UpdateTable", "sqs:SetQueueAttributes", "kms:PutKeyPolicy"):
        (statement,) = [s for s in statements if action in s["Action"]]
        assert statement["Condition"]["StringEquals"]["aws:ResourceTag/stack"] == "dev"
        assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == ["us-east-1", "us-west-2"]
    for action in ("lambda:CreateFunction", "dynamodb:CreateTable", "sqs:CreateQueue", "kms:CreateKey"):
        (statement,) = [s for s in statements if action in s["Action"]]
        assert statement["Condition"]["StringEquals"]["aws:RequestTag/stack"] == "dev"
    passed = sorted(
        str(s["Condition"]["StringEquals"]["iam:PassedToService"]) for s in statements if "iam:PassRole" in s["Action"]
    )
    # The program's roles to the services that run them; the long tools' two to ECS only.
    assert passed == [
        str(["apigateway.amazonaws.com", "lambda.amazonaws.com", "states.amazonaws.com"]),
        "ecs-tasks.amazonaws.com",
    ]


def test_the_preview_role_reads_configuration_and_no_data(run):
    statements = statements_of(run, "agent-infra-prod-preview")
    actions = {a for s in statements for a in s["Action"]}
    writes = {"Create", "Delete", "Put", "Update", "Tag", "Untag", "Modify", "Pass", "Publish", "Add", "Remove", "Set"}
    assert not [a for a in actions if any(a.split(":")[1].startswith(w) for w in writes)], "read only"
    assert not actions & {"apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE"}
    data = {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
        "sqs:ReceiveMessage",
        "secretsmanager:GetSecretValue",
        "kms:Encrypt",
        "kms:GenerateDataKey",
    }
    assert not actions & data
    (decrypt,) = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert all(v.startswith("lambda.") for v in decrypt["Condition"]["StringEquals"]["kms:ViaService"]), (
        "decrypt only what Lambda shows of a function's environment"
    )


def test_the_deploy_role_covers_every_resource_type_the_program_creates():
    """Each AWS type of the real program (prod, with a domain) has a write statement for its service."""
    config = stack_config("prod")
    config["agent-infra:domain"] = {"zone": "agents.example.com"}
    program = run_program(config, "prod")
    settings = StackSettings(regions=config["agent-infra:regions"], environment="prod", hosted_zone_id="Z0123456789")
    statements = [
        s
        for d in permission_documents("deploy", partition="aws", account=ACCOUNT_ID, stack="prod", settings=settings)
        for s in d["Statement"]
    ]
    services = {a.split(":")[0] for s in statements for a in s["Action"]}
    service_of = {"cloudwatch/logGroup": "logs", "apigatewayv2": "apigateway", "sfn": "states", "index": "sts"}
    for typ in {r.typ for r in program.resources if r.typ.startswith("aws:")}:
        module = typ.split(":")[1]
        service = service_of.get(module) or service_of.get(module.split("/")[0]) or module.split("/")[0]
        assert service in services, f"no permission for {typ}"


def test_the_deploy_role_covers_the_failover_experiments_only_when_the_stack_has_them():
    config = stack_config("dev")
    config["agent-infra:faultInjection"] = {"enabled": True}
    program = run_program(config, "dev")

    def services(fault_injection: bool) -> set[str]:
        settings = StackSettings(regions=config["agent-infra:regions"], fault_injection=fault_injection)
        documents = permission_documents("deploy", partition="aws", account=ACCOUNT_ID, stack="dev", settings=settings)
        return {a.split(":")[0] for d in documents for s in d["Statement"] for a in s["Action"]}

    created = {r.typ.split(":")[1].split("/")[0] for r in program.resources if r.typ.startswith("aws:")}
    assert {"fis", "s3"} <= created
    assert {"fis", "s3", "ssm"} <= services(True)
    assert not {"fis", "s3"} & services(False)


def test_roles_of_the_program_live_under_the_stacks_path():
    run = run_program(stack_config("dev"), "dev")
    assert {r.inputs["path"] for r in run.of_type("aws:iam/role:Role")} == {"/agent-infra/dev/"}
    assert all(
        r.state["arn"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:role/agent-infra/dev/")
        for r in run.of_type("aws:iam/role:Role")
    )


def test_an_existing_oidc_provider_is_looked_up_not_created():
    config = example_config()
    config[f"{PROJECT}:createOidcProvider"] = False
    run = run_program(config, "main", program=BOOTSTRAP, project=PROJECT)
    assert run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert run.outputs["oidcProviderArn"] == OIDC_ARN


def test_the_provider_refuses_other_accounts_and_tags_the_bootstrap_as_its_own(run):
    (provider,) = run.of_type("pulumi:providers:aws")
    allowed = provider.inputs["allowedAccountIds"]
    assert (json.loads(allowed) if isinstance(allowed, str) else allowed) == [ACCOUNT_ID]
    tags = provider.inputs["defaultTags"]
    tags = (json.loads(tags) if isinstance(tags, str) else tags)["tags"]
    assert tags["stack"] == "bootstrap-main", "never a program stack's tag: the deploy roles must not reach it"


def test_no_stacks_is_an_error():
    config = example_config()
    config[f"{PROJECT}:stacks"] = {}
    with pytest.raises(pulumi.RunError, match="names no stack"):
        run_program(config, "main", program=BOOTSTRAP, project=PROJECT)


# --- the permissions boundary -------------------------------------------------------------------


def boundary_of(run, stack: str) -> dict:
    (policy,) = [p for p in run.of_type("aws:iam/policy:Policy") if p.inputs["name"] == f"agent-infra-{stack}-boundary"]
    return json.loads(policy.inputs["policy"])


def test_the_deploy_role_creates_and_writes_roles_only_with_the_stacks_boundary(run):
    statements = statements_of(run, "agent-infra-dev-deploy")
    boundary = f"arn:aws:iam::{ACCOUNT_ID}:policy/agent-infra-dev-boundary"
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary"):
        (statement,) = [s for s in statements if action in s["Action"]]
        assert statement["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": boundary}}, action
    actions = {a for s in statements for a in s["Action"]}
    assert not actions & {
        "iam:DeleteRolePermissionsBoundary",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:CreatePolicy",
    }, "it can neither lift the boundary nor rewrite it"
    assert not _allowed(statements, "iam:CreatePolicyVersion", boundary)
    # It attaches one managed policy, API Gateway's logging policy, to roles with the boundary.
    (attach,) = [s for s in statements if "iam:AttachRolePolicy" in s["Action"]]
    assert attach["Condition"] == {
        "ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"},
        "StringEquals": {"iam:PermissionsBoundary": boundary},
    }
    assert attach["Resource"] == [f"arn:aws:iam::{ACCOUNT_ID}:role/agent-infra/dev/*"]


def _covered(boundary: dict, action: str, resource: str, region: str | None) -> bool:
    for statement in boundary["Statement"]:
        if not any(fnmatchcase(action, a) for a in statement["Action"]):
            continue
        if not any(fnmatchcase(resource, r) for r in statement["Resource"]):
            continue
        regions = statement.get("Condition", {}).get("StringEquals", {}).get("aws:RequestedRegion")
        if regions and region not in regions:
            continue
        return True
    return False


@pytest.mark.parametrize("variant", ["dev", "prod", "openai", "fault-injection", "long-tools"])
def test_the_boundary_lets_every_role_of_the_program_do_what_its_own_policy_grants(variant):
    """A boundary too tight would break the deployed program: every (action, resource) of
    every role policy of the real program must fall inside it."""
    stack = "prod" if variant == "prod" else "dev"
    config = stack_config(stack)
    if variant == "openai":
        config["agent-infra:llm"] = {"provider": "openai", "model": "m", "endpoints": ["https://llm.example.com/v1"]}
        config["agent-infra:llm"]["apiKey"] = "sk-test"
    if variant == "fault-injection":
        config["agent-infra:faultInjection"] = {"enabled": True}
    if variant == "long-tools":
        config = long_tools_config(stack)
    with declared_as(example_tools()) if variant == "long-tools" else contextlib.nullcontext():
        program = run_program(config, stack, AwsMocks())
    from bootstrap.roles import boundary_document

    boundary = boundary_document(
        partition="aws",
        account=ACCOUNT_ID,
        stack=stack,
        regions=config["agent-infra:regions"],
        fault_injection=variant == "fault-injection",
        long_tools=any(t.get("runtime") == "fargate-spot" for t in config["agent-infra:tools"]),
    )
    assert (
        wildcard_problems(boundary) == []
        and len(json.dumps(boundary, separators=(",", ":"))) <= MANAGED_POLICY_MAX_CHARS
    )
    checked = 0
    for role_policy in program.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(role_policy.inputs["policy"])["Statement"]:
            for action in statement["Action"]:
                for resource in statement["Resource"]:
                    region = resource.split(":")[3] if resource.startswith("arn:") else None
                    assert _covered(boundary, action, resource, region), f"{role_policy.name}: {action} on {resource}"
                    checked += 1
    assert checked > 200
    for role in program.of_type("aws:iam/role:Role"):
        assert role.inputs["permissionsBoundary"] == f"arn:aws:iam::{ACCOUNT_ID}:policy/agent-infra-{stack}-boundary"


def test_the_boundary_keeps_out_what_the_program_never_does():
    from bootstrap.roles import boundary_document

    boundary = boundary_document(partition="aws", account=ACCOUNT_ID, stack="dev", regions=["us-east-1", "us-west-2"])
    for action, resource, region in [
        ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT_ID}:user/x", None),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT_ID}:role/Admin", None),
        ("s3:GetObject", "arn:aws:s3:::any-bucket/key", None),
        ("dynamodb:Scan", f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/t", "us-east-1"),
        ("dynamodb:GetItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT_ID}:table/t", "eu-west-1"),
        ("dynamodb:DeleteTable", f"arn:aws:dynamodb:us-east-1:{ACCOUNT_ID}:table/t", "us-east-1"),
        ("states:StartExecution", f"arn:aws:states:us-east-1:{ACCOUNT_ID}:stateMachine:agent-infra-prod-task", None),
        ("logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:/agent-infra/prod/router:*", None),
        ("kms:ScheduleKeyDeletion", f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/k", None),
    ]:
        assert not _covered(boundary, action, resource, region), f"{action} on {resource}"


# --- tags: a stack's roles cannot claim another stack's resources ----------------------------------

TAGGING_ACTION_WORDS = ("Tag", "tag")
# Route 53 health checks take no tag conditions (service authorization reference,
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonroute53.html):
# their ids are generated, so only separate accounts keep one stack's from another's (docs/deploy.md).
TAGGING_WITHOUT_TAG_CONDITIONS = {"route53:ChangeTagsForResource"}


def _tagging_actions(statement: dict) -> list[str]:
    return [
        a
        for a in statement["Action"]
        if any(w in a.split(":")[1] for w in TAGGING_WITHOUT_TAG_CONDITIONS | set(TAGGING_ACTION_WORDS))
        and not a.split(":")[1].startswith(("List", "Get", "Describe"))
    ]


@pytest.mark.parametrize(
    "settings",
    [
        StackSettings(regions=["us-east-1", "us-west-2"]),
        StackSettings(regions=["us-east-1", "eu-west-1"], environment="prod", hosted_zone_id="Z0123456789"),
        StackSettings(regions=["us-east-1"], fault_injection=True),
    ],
    ids=["dev", "prod with a domain", "fault injection"],
)
def test_every_tag_grant_refuses_a_resource_tagged_for_another_stack(settings):
    """A grant to tag (or untag) a resource either names the stack's own resources (an ARN with
    the stack's name or path in it) or requires that the resource's ``stack`` tag, if it has
    one, is this stack's: ``aws:RequestTag`` alone would let dev's deploy role retag prod's
    resources as dev's and then manage them."""
    stack = "dev"
    documents = permission_documents("deploy", partition="aws", account=ACCOUNT_ID, stack=stack, settings=settings)
    checked = 0
    for statement in (s for d in documents for s in d["Statement"]):
        tagging = [a for a in _tagging_actions(statement) if a not in TAGGING_WITHOUT_TAG_CONDITIONS]
        if not tagging:
            continue
        checked += 1
        condition = statement.get("Condition", {})
        guarded = any(
            condition.get(operator, {}).get("aws:ResourceTag/stack") == stack
            for operator in ("StringEquals", "StringEqualsIfExists")
        )
        named = all(
            f"agent-infra-{stack}-" in r or f"/agent-infra/{stack}/" in r or r.endswith(f"/agent-infra-{stack}")
            for r in statement["Resource"]
        )
        assert guarded or named, f"{statement['Sid']}: {tagging} on {statement['Resource']} without the stack tag guard"
    assert checked >= 10


def test_the_boundary_keeps_every_role_of_the_stack_to_its_own_tables():
    boundary = boundary_document(partition="aws", account=ACCOUNT_ID, stack="dev", regions=["us-east-1"])
    table_statements = [s for s in boundary["Statement"] if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert table_statements
    for statement in table_statements:
        assert statement["Condition"]["StringEquals"]["aws:ResourceTag/stack"] == "dev", statement["Sid"]


# --- the account's settings and the provider ---------------------------------------------------------


def test_the_bootstrap_sets_api_gateway_logging_in_every_region_of_its_stacks_so_any_stack_can_go_first(run):
    """A fresh account: whichever stack deploys first finds API Gateway's account-wide
    CloudWatch role set, so no stack needs ``api.manageAccountLogging``."""
    accounts = run.of_type("aws:apigateway/account:Account")
    regions = {r for stack in example_config()[f"{PROJECT}:stacks"].values() for r in stack["regions"]}
    assert sorted(a.inputs["region"] for a in accounts) == sorted(regions)
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if "name" not in r.inputs]
    assert {a.inputs["cloudwatchRoleArn"] for a in accounts} == {role.state["arn"]}
    (attachment,) = [
        a
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.state["name"]
    ]
    assert attachment.inputs["policyArn"].endswith(":policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
    for stack in ("dev", "prod"):
        api = stack_config(stack).get("agent-infra:api", {})
        assert api.get("manageAccountLogging", False) is False, f"{stack} leaves it to the bootstrap"


def test_an_account_whose_logging_is_set_elsewhere_can_leave_it_out():
    config = example_config()
    config[f"{PROJECT}:apiGatewayAccountLogging"] = False
    run = run_program(config, "main", program=BOOTSTRAP, project=PROJECT)
    assert run.of_type("aws:apigateway/account:Account") == []


def test_the_provider_gets_the_region_explicitly_and_deploy_sessions_outlast_a_first_deploy(run):
    (provider,) = run.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == example_config()["aws:region"]
    durations = {name: role.inputs["maxSessionDuration"] for name, role in roles(run).items()}
    assert durations["agent-infra-prod-deploy"] == durations["agent-infra-dev-deploy"] == 4 * 3600
    assert durations["agent-infra-prod-preview"] == 3600


# --- what the provider calls, type by type ----------------------------------------------------------


def _shapes() -> dict[str, tuple[dict, str, StackSettings]]:
    """The program in every shape its resource types depend on, with the bootstrap settings
    of each."""
    dev, prod = stack_config("dev"), stack_config("prod")
    domain = {**prod, "agent-infra:domain": {"zone": "agents.example.com"}}
    openai = {
        **dev,
        "agent-infra:llm": {
            "provider": "openai",
            "model": "gpt-test",
            "endpoints": ["https://llm-eu.example.com/v1", "https://llm-us.example.com/v1"],
            "apiKey": "sk-test",
        },
    }
    fis = {**dev, "agent-infra:faultInjection": {"enabled": True}}
    logging = {**dev, "agent-infra:api": {**dev.get("agent-infra:api", {}), "manageAccountLogging": True}}
    long_tools = long_tools_config("dev")

    def settings(config: dict, **more) -> StackSettings:
        # longTools as the bootstrap's example says: true for a stack with a fargate-spot tool.
        containers = any(t.get("runtime") == "fargate-spot" for t in config.get("agent-infra:tools", []))
        return StackSettings(regions=config["agent-infra:regions"], **{"long_tools": containers, **more})

    return {
        "dev": (dev, "dev", settings(dev)),
        "prod": (prod, "prod", settings(prod, environment="prod")),
        "prod with a domain": (domain, "prod", settings(domain, environment="prod", hosted_zone_id="Z0123456789")),
        "openai": (openai, "dev", settings(openai)),
        "failover experiments": (fis, "dev", settings(fis, fault_injection=True)),
        "account logging": (logging, "dev", settings(logging)),
        "long tools": (long_tools, "dev", settings(long_tools, long_tools=True)),
    }


@pytest.fixture(scope="module")
def shapes():
    runs = {}
    for name, (config, stack, settings) in _shapes().items():
        with declared_as(example_tools()) if name == "long tools" else contextlib.nullcontext():
            run = run_program(config, stack, AwsMocks())
        types = {r.typ for r in run.resources if r.typ.startswith("aws:")}
        invokes = {token for token, _ in run.calls if token.startswith("aws:")}
        runs[name] = (stack, settings, types, invokes)
    return runs


def _grants(kind: str, stack: str, settings: StackSettings) -> list[str]:
    documents = permission_documents(kind, partition="aws", account=ACCOUNT_ID, stack=stack, settings=settings)
    return [a for d in documents for s in d["Statement"] if s["Effect"] == "Allow" for a in s["Action"]]


def _refused(actions, grants: list[str]) -> list[str]:
    return sorted({a for a in actions if not any(fnmatchcase(a.lower(), g.lower()) for g in grants)})


def test_every_resource_type_and_data_source_of_the_program_has_its_row_of_provider_calls(shapes):
    missing = {
        name: sorted((types - RESOURCES.keys()) | (invokes - DATA_SOURCES.keys()))
        for name, (_, _, types, invokes) in shapes.items()
    }
    assert not any(missing.values()), f"add their rows to bootstrap/provider_calls.py: {missing}"
    seen = set().union(*(types | invokes for _, _, types, invokes in shapes.values()))
    stale = sorted((RESOURCES.keys() | DATA_SOURCES.keys()) - seen)
    assert not stale, f"rows for types no shape of the program creates: {stale}"
    for typ, row in {**RESOURCES, **DATA_SOURCES}.items():
        assert row.source.startswith("internal/service/") and row.source.endswith(".go"), typ


@pytest.mark.parametrize("shape", list(_shapes()))
def test_the_deploy_role_can_make_every_call_and_the_preview_role_every_read(shapes, shape):
    stack, settings, types, invokes = shapes[shape]
    deploy, preview = _grants("deploy", stack, settings), _grants("preview", stack, settings)
    for typ in sorted(types):
        row = RESOURCES[typ]
        refused = _refused(row.writes | set(row.read), deploy)
        assert not refused, f"{typ} ({row.source}): the deploy role may not {refused}"
        if typ not in PREVIEW_SKIPS:
            refused = _refused(row.read, preview)
            assert not refused, f"{typ} ({row.source}): the preview role cannot refresh it: {refused}"
    for token in sorted(invokes):
        row = DATA_SOURCES[token]
        for kind, grants in (("deploy", deploy), ("preview", preview)):
            refused = _refused(row.read, grants)
            assert not refused, f"{token} ({row.source}): the {kind} role may not {refused}"


def test_the_policy_pack_allows_every_long_tool_read_the_bootstrap_grants_on_any_resource():
    """The policy pack imports nothing from the project, so it repeats these actions; this
    keeps the two lists in step (a read granted on '*' that the pack refuses would fail the
    bootstrap's own stack)."""
    from bootstrap.roles import LONG_TOOLS_READS_WITHOUT_RESOURCE_TYPES
    from policy.rules import ACTIONS_WITHOUT_RESOURCE_TYPE

    assert set(LONG_TOOLS_READS_WITHOUT_RESOURCE_TYPES) <= ACTIONS_WITHOUT_RESOURCE_TYPE
