"""Compute under Pulumi mocks: every function's runtime, tracing, logs, role and archive."""

from __future__ import annotations

import json
import zipfile

import pytest

from components.policies import wildcard_problems
from local.pulumi_mocks import ACCOUNT_ID, run_program, stack_config
from tests.archives import check_bytecode, without_bytecode

FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

FORBIDDEN_IN_ARCHIVES = ("tests/", "__pycache__/.pytest_cache", ".venv/", "conftest", ".pyc~")


@pytest.fixture(scope="module")
def runs():
    return {stack: run_program(stack_config(stack), stack) for stack in ("dev", "prod")}


def tool_names(stack: str) -> list[str]:
    return [t["name"] for t in stack_config(stack)["agent-infra:tools"]]


def functions_in(run, region: str):
    return [f for f in run.of_type(FUNCTION) if f.inputs["region"] == region]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_region_has_router_agent_step_and_one_function_per_tool(runs, stack):
    run = runs[stack]
    for region in stack_config(stack)["agent-infra:regions"]:
        handlers = sorted(f.inputs["handler"] for f in functions_in(run, region))
        expected = sorted(
            [
                "handlers.router.handler",
                "handlers.agent_step.handler",
                "handlers.approval.handler",
                "handlers.approval.request_handler",
                "handlers.compensate.handler",
                "handlers.authorizer.handler",
                "handlers.connection.handler",
                "handlers.health.handler",
            ]
            + [f"handlers.tools.{name}.handler" for name in tool_names(stack)]
        )
        assert handlers == expected


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_function_is_arm64_python313_traced_with_its_own_logs_and_role(runs, stack):
    run = runs[stack]
    functions = run.of_type(FUNCTION)
    retention = stack_config(stack)["agent-infra:observability"]["logRetentionDays"]
    groups = {(g.inputs["region"], g.state["name"]): g for g in run.of_type(LOG_GROUP)}
    assert functions
    assert len({f.inputs["role"] for f in functions}) == len(functions), "one role per function"
    assert len({(f.inputs["region"], f.inputs["loggingConfig"]["logGroup"]) for f in functions}) == len(functions)
    for function in functions:
        inputs = function.inputs
        assert inputs["architectures"] == ["arm64"]
        assert inputs["runtime"] == "python3.13"
        assert inputs["tracingConfig"] == {"mode": "Active"}
        assert inputs["memorySize"] >= 128 and inputs["timeout"] >= 1
        group = groups[(inputs["region"], inputs["loggingConfig"]["logGroup"])]
        assert group.inputs["retentionInDays"] == retention
        assert inputs["loggingConfig"]["logFormat"] == "JSON"
        assert len(inputs["layers"]) == 1 and ":layer:" in inputs["layers"][0]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_memory_and_timeouts_come_from_config(runs, stack):
    run = runs[stack]
    tools = {t["name"]: t for t in stack_config(stack)["agent-infra:tools"]}
    compute = stack_config(stack)["agent-infra:compute"]
    for function in run.of_type(FUNCTION):
        handler = function.inputs["handler"]
        if handler.startswith("handlers.tools."):
            tool = tools[handler.split(".")[2]]
            assert function.inputs["memorySize"] == tool["memoryMb"]
            assert function.inputs["timeout"] == tool["timeoutSeconds"]
            assert function.inputs.get("reservedConcurrentExecutions") == tool.get("reservedConcurrency")
        elif handler == "handlers.agent_step.handler":
            assert function.inputs["memorySize"] == compute["agentStepMemoryMb"]
            assert function.inputs["timeout"] == compute["agentStepTimeoutSeconds"]
        elif handler == "handlers.router.handler":
            assert function.inputs["memorySize"] == compute["routerMemoryMb"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_policy_has_a_wildcard_action_or_an_avoidable_wildcard_resource(runs, stack):
    run = runs[stack]
    documents = [json.loads(p.inputs["policy"]) for p in run.of_type(ROLE_POLICY)]
    # AWS's managed policy for API Gateway's account logging role is the only one attached.
    attached = run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert [a.inputs["policyArn"] for a in attached] == [
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    ] * len(attached)
    assert len(documents) + len(attached) == len(run.of_type(ROLE)), "every role's policy is checked"
    for document in documents:
        assert wildcard_problems(document) == []
    for role in run.of_type(ROLE):
        trust = json.loads(role.inputs["assumeRolePolicy"])
        principal = trust["Statement"][0]["Principal"]
        assert principal in (
            {"Service": "lambda.amazonaws.com"},
            {"Service": "states.amazonaws.com"},
            {"Service": "apigateway.amazonaws.com"},
        )
        if principal == {"Service": "apigateway.amazonaws.com"}:
            # API Gateway sets no aws:SourceAccount when it assumes a role: no condition.
            assert "Condition" not in trust["Statement"][0]
        else:
            assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}


def _policy_of(run, function):
    role_name = function.inputs["role"].rsplit("/", 1)[1]
    (policy,) = [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role_name]
    return json.loads(policy.inputs["policy"])


def _actions(document) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_table_access_is_this_regions_replica_only_and_llm_only_for_the_agent_step(runs, stack):
    run = runs[stack]
    table = run.one("aws:dynamodb/table:Table").state["name"]
    for function in run.of_type(FUNCTION):
        region = function.inputs["region"]
        document = _policy_of(run, function)
        table_resources = {
            r
            for s in document["Statement"]
            if any(a.startswith("dynamodb:") for a in s["Action"])
            for r in s["Resource"]
        }
        assert table_resources <= {
            f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table}",
            f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table}/index/GSI1",
        }
        has_llm = any(a.startswith("bedrock:") for a in _actions(document))
        assert has_llm == (function.inputs["handler"] == "handlers.agent_step.handler")
        assert "dynamodb:Scan" not in _actions(document)
        assert "dynamodb:DeleteTable" not in _actions(document)


def test_tools_get_only_the_actions_they_declare(runs):
    run = runs["dev"]
    by_handler = {f.inputs["handler"]: f for f in functions_in(run, "us-east-1")}
    dynamo = {h: {a for a in _actions(_policy_of(run, f)) if a.startswith("dynamodb:")} for h, f in by_handler.items()}
    assert dynamo["handlers.tools.calculator.handler"] == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert dynamo["handlers.tools.memory.handler"] == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
    assert dynamo["handlers.tools.create_ticket.handler"] == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    }
    assert dynamo["handlers.router.handler"] == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
    }
    router = _policy_of(run, by_handler["handlers.router.handler"])
    starts = [s for s in router["Statement"] if "states:StartExecution" in s["Action"]]
    assert starts[0]["Resource"] == [f"arn:aws:states:us-east-1:{ACCOUNT_ID}:stateMachine:agent-infra-dev-task"]


def test_bedrock_permissions_follow_the_ordered_endpoints(runs):
    run = runs["prod"]
    for function in run.of_type(FUNCTION):
        if function.inputs["handler"] != "handlers.agent_step.handler":
            continue
        env = function.inputs["environment"]["variables"]
        endpoints = json.loads(env["LLM_ENDPOINTS"])
        assert endpoints[0] == function.inputs["region"], "a region that serves the model is its own nearest"
        document = _policy_of(run, function)
        profile = next(s for s in document["Statement"] if s["Sid"] == "InvokeThroughProfile")
        assert [r.split(":")[3] for r in profile["Resource"]] == endpoints


def test_no_secret_in_any_environment_and_openai_key_goes_to_secrets_manager():
    config = stack_config("dev")
    config["agent-infra:llm"] = {
        "provider": "openai",
        "model": "gpt-test",
        "endpoints": ["https://llm-eu.example.com/v1", "https://llm-us.example.com/v1"],
        "apiKey": "sk-very-secret-123",
    }
    run = run_program(config, "openai")
    for resource in run.resources:
        if resource.typ != "aws:secretsmanager/secretVersion:SecretVersion":
            assert "sk-very-secret-123" not in json.dumps(resource.inputs, default=str), resource.name
    versions = run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert len(versions) == 2, "one secret per region"
    for function in run.of_type(FUNCTION):
        if function.inputs["handler"] == "handlers.agent_step.handler":
            env = function.inputs["environment"]["variables"]
            assert env["LLM_API_KEY_SECRET_ARN"].startswith(f"arn:aws:secretsmanager:{function.inputs['region']}:")
            document = _policy_of(run, function)
            reads = [s for s in document["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
            assert reads[0]["Resource"] == [env["LLM_API_KEY_SECRET_ARN"]]
            assert not any(a.startswith("bedrock:") for a in _actions(document))


def test_prod_router_has_provisioned_concurrency_on_an_alias_and_dev_has_none(runs):
    prod, dev = runs["prod"], runs["dev"]
    aliases = prod.of_type("aws:lambda/alias:Alias")
    configs = prod.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig")
    assert len(aliases) == len(configs) == 3
    for config in configs:
        assert config.inputs["provisionedConcurrentExecutions"] == 2
        assert config.inputs["qualifier"] == "live"
    routers = [f for f in prod.of_type(FUNCTION) if f.inputs["handler"] == "handlers.router.handler"]
    assert all(f.inputs["publish"] is True for f in routers)
    assert all(arn.endswith(":live") for arn in prod.outputs["routerArns"].values())
    assert dev.of_type("aws:lambda/alias:Alias") == []
    assert dev.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig") == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_async_failures_go_to_an_encrypted_queue(runs, stack):
    run = runs[stack]
    queues = {q.state["arn"]: q for q in run.of_type("aws:sqs/queue:Queue")}
    assert all(q.inputs["sqsManagedSseEnabled"] is True for q in queues.values())
    configs = run.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    assert len(configs) == len(run.of_type(FUNCTION))
    for config in configs:
        destination = config.inputs["destinationConfig"]["onFailure"]["destination"]
        assert destination in queues
        assert queues[destination].inputs["region"] == config.inputs["region"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_archives_hold_only_what_each_function_needs(runs, stack):
    for function in runs[stack].of_type(FUNCTION):
        path = function.inputs["code"].path
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        check_bytecode(path)
        names = without_bytecode(names)  # checked above: one .pyc per module on 3.13, none elsewhere
        assert "handlers/__init__.py" in names and "handlers/shared/state.py" in names
        assert not any(n.startswith(("tests/", ".venv/", "local/", "components/", "bench/")) for n in names)
        assert not any(".pytest_cache" in n or n.endswith((".pyo", ".orig")) for n in names)
        handler_module = function.inputs["handler"].rsplit(".", 1)[0].replace(".", "/") + ".py"
        assert handler_module in names
        other_handlers = {"handlers/router.py", "handlers/agent_step.py"} - {handler_module}
        assert not other_handlers & set(names)
        tool_modules = {n for n in names if n.startswith("handlers/tools/") and not n.endswith("__init__.py")}
        if function.inputs["handler"] == "handlers.compensate.handler":
            compensable = {
                f"handlers/tools/{t['name']}.py"
                for t in stack_config(stack)["agent-infra:tools"]
                if t.get("compensable")
            }
            assert tool_modules == compensable, "compensation carries the tools it may undo, no others"
        else:
            assert tool_modules <= {handler_module}, "a tool archive carries its own module only"
