"""Compute under Pulumi mocks: every function's runtime, tracing, logs, role and archive."""

from __future__ import annotations

import json
import zipfile

import pytest

from components.config import parse_stack_config
from components.policies import wildcard_problems
from local.pulumi_mocks import ACCOUNT_ID, run_program, stack_config
from tests.archives import check_bytecode, without_bytecode

FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

FORBIDDEN_IN_ARCHIVES = ("tests/", "__pycache__/.pytest_cache", ".venv/", "conftest", ".pyc~")

# How the mocks see a value Pulumi marks secret (pulumi.runtime rpc).
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


@pytest.fixture(scope="module")
def runs():
    return {stack: run_program(stack_config(stack), stack) for stack in ("dev", "prod")}


def tool_names(stack: str) -> list[str]:
    """The tools that run in a Lambda (a fargate-spot tool runs in a container instead)."""
    return [t["name"] for t in stack_config(stack)["agent-infra:tools"] if t.get("runtime") != "fargate-spot"]


def functions_in(run, region: str):
    return [f for f in run.of_type(FUNCTION) if f.inputs["region"] == region]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_region_has_router_the_agent_loops_functions_and_one_function_per_tool(runs, stack):
    run = runs[stack]
    for region in stack_config(stack)["agent-infra:regions"]:
        handlers = sorted(f.inputs["handler"] for f in functions_in(run, region))
        expected = sorted(
            [
                "handlers.router.handler",
                "handlers.agent_step.prepare_handler",
                "handlers.agent_step.record_handler",
                "handlers.agent_step.stream_handler",
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
        assert inputs["tracingConfig"] == {"mode": "PassThrough"}, "the sampling rules decide"
        assert inputs["memorySize"] >= 128 and inputs["timeout"] >= 1
        group = groups[(inputs["region"], inputs["loggingConfig"]["logGroup"])]
        assert group.inputs["retentionInDays"] == retention
        assert inputs["loggingConfig"]["logFormat"] == "JSON"
        assert len(inputs["layers"]) == 1 and ":layer:" in inputs["layers"][0]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_memory_and_timeouts_come_from_config(runs, stack):
    run = runs[stack]
    tools = {t["name"]: t for t in stack_config(stack)["agent-infra:tools"]}
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("agent-infra:")}
    compute = parse_stack_config(raw).compute
    for function in run.of_type(FUNCTION):
        handler = function.inputs["handler"]
        if handler.startswith("handlers.tools."):
            tool = tools[handler.split(".")[2]]
            assert function.inputs["memorySize"] == tool["memoryMb"]
            assert function.inputs["timeout"] == tool["timeoutSeconds"]
            assert function.inputs.get("reservedConcurrentExecutions") == tool.get("reservedConcurrency")
        elif handler in ("handlers.agent_step.prepare_handler", "handlers.agent_step.record_handler"):
            assert function.inputs["memorySize"] == compute.agent_step_memory_mb
            assert function.inputs["timeout"] == compute.agent_step_timeout_seconds
        elif handler == "handlers.agent_step.stream_handler":
            assert function.inputs["memorySize"] == compute.stream_memory_mb
            assert function.inputs["timeout"] == compute.stream_timeout_seconds
        elif handler == "handlers.router.handler":
            assert function.inputs["memorySize"] == compute.router_memory_mb


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
            {"Service": "ecs-tasks.amazonaws.com"},  # a fargate-spot tool's task and execution roles
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


# The functions that read and write a session, an Idempotency-Key or a decision in its home
# replica, wherever it is (handlers/shared/store/replicas.py); every other function touches its
# own region's replica only.
HOME_ROUTED = {
    "handlers.router.handler",
    "handlers.agent_step.prepare_handler",
    "handlers.agent_step.record_handler",
    "handlers.compensate.handler",
    "handlers.approval.handler",
}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_table_access_is_this_regions_replica_or_the_homes_and_llm_only_for_the_stream_function(runs, stack):
    run = runs[stack]
    table = run.one("aws:dynamodb/table:Table").state["name"]
    regions = stack_config(stack)["agent-infra:regions"]
    for function in run.of_type(FUNCTION):
        region = function.inputs["region"]
        document = _policy_of(run, function)
        table_resources = {
            r
            for s in document["Statement"]
            if any(a.startswith("dynamodb:") for a in s["Action"])
            for r in s["Resource"]
        }
        own = {
            f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table}",
            f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table}/index/GSI1",
        }
        replicas = {f"arn:aws:dynamodb:{r}:{ACCOUNT_ID}:table/{table}" for r in regions}
        handler = function.inputs["handler"]
        if handler in HOME_ROUTED:
            assert replicas <= table_resources <= own | replicas, handler
            environment = function.inputs["environment"]["variables"]
            assert json.loads(environment["TABLE_REGIONS"]) == regions
        else:
            assert table_resources <= own, handler
        has_llm = any(a.startswith("bedrock:") for a in _actions(document))
        # Only a WebSocket turn's stream reads the model from a Lambda; otherwise the state
        # machine calls it (tests/test_infra_orchestration.py).
        assert has_llm == (function.inputs["handler"] == "handlers.agent_step.stream_handler")
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
        "dynamodb:DeleteItem",  # an Idempotency-Key given back when the request failed
        "dynamodb:ConditionCheckItem",  # a claim checks the other replicas' records
        "dynamodb:Query",
    }
    router = _policy_of(run, by_handler["handlers.router.handler"])
    starts = [s for s in router["Statement"] if "states:StartExecution" in s["Action"]]
    assert starts[0]["Resource"] == [f"arn:aws:states:us-east-1:{ACCOUNT_ID}:stateMachine:agent-infra-dev-task"]


def test_bedrock_permissions_follow_the_ordered_endpoints(runs):
    run = runs["prod"]
    for function in run.of_type(FUNCTION):
        if function.inputs["handler"] != "handlers.agent_step.stream_handler":
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
    holders = {"aws:secretsmanager/secretVersion:SecretVersion", "aws:cloudwatch/eventConnection:EventConnection"}
    for resource in run.resources:
        if resource.typ not in holders:
            assert "sk-very-secret-123" not in json.dumps(resource.inputs, default=str), resource.name
    versions = run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert len(versions) == 2, "one secret per region (streaming turns)"
    connections = run.of_type("aws:cloudwatch/eventConnection:EventConnection")
    assert len(connections) == 2, "one connection per region (the HTTP Task)"
    for connection in connections:
        auth = connection.inputs["authParameters"]
        assert SECRET_SIGNATURE in auth, "the key reaches AWS as a secret"
        assert auth["value"]["apiKey"] == {"key": "Authorization", "value": "Bearer sk-very-secret-123"}
        assert connection.inputs["kmsKeyIdentifier"].startswith(f"arn:aws:kms:{connection.inputs['region']}:")
    for function in run.of_type(FUNCTION):
        if function.inputs["handler"] == "handlers.agent_step.stream_handler":
            env = function.inputs["environment"]["variables"]
            assert env["LLM_API_KEY_SECRET_ARN"].startswith(f"arn:aws:secretsmanager:{function.inputs['region']}:")
            document = _policy_of(run, function)
            reads = [s for s in document["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
            assert reads[0]["Resource"] == [env["LLM_API_KEY_SECRET_ARN"]]
            assert not any(a.startswith("bedrock:") for a in _actions(document))


def test_provisioned_concurrency_is_where_turns_go_and_the_machines_invoke_its_alias(runs):
    prod, dev = runs["prod"], runs["dev"]
    configs = prod.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig")
    regions = stack_config("prod")["agent-infra:regions"]
    assert len(prod.of_type("aws:lambda/alias:Alias")) == len(configs) == 2 * len(regions)
    provisioned = {c.inputs["functionName"] for c in configs}
    for config in configs:
        assert config.inputs["provisionedConcurrentExecutions"] == 2 and config.inputs["qualifier"] == "live"
    by_name = {f.state["name"]: f for f in prod.of_type(FUNCTION)}
    assert {by_name[n].inputs["handler"] for n in provisioned} == {
        "handlers.agent_step.prepare_handler",
        "handlers.agent_step.record_handler",
    }, "every turn passes through prepare and record; chat turns never reach the router"
    assert all(by_name[n].inputs["publish"] is True for n in provisioned)
    for machine in prod.of_type("aws:sfn/stateMachine:StateMachine"):
        states = json.loads(machine.inputs["definition"])["States"]
        assert states["Prepare"]["Resource"].endswith(":live") and states["Record"]["Resource"].endswith(":live")
    assert not any(arn.endswith(":live") for arn in prod.outputs["routerArns"].values())
    assert dev.of_type("aws:lambda/alias:Alias") == []
    assert dev.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig") == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_async_failures_go_to_an_encrypted_queue(runs, stack):
    run = runs[stack]
    queues = {q.state["arn"]: q for q in run.of_type("aws:sqs/queue:Queue")}
    keys = {k.inputs["region"]: k.state["arn"] for k in run.of_type("aws:kms/key:Key")}
    assert all(q.inputs["kmsMasterKeyId"] == keys[q.inputs["region"]] for q in queues.values())
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
        assert "handlers/__init__.py" in names and "handlers/shared/log.py" in names
        # Only the shared modules a function imports: the health check and the authorizer
        # never touch the table, and only the authorizer verifies tokens.
        no_table = function.inputs["handler"] in ("handlers.health.handler", "handlers.authorizer.handler")
        assert ("handlers/shared/store/base.py" in names) is not no_table
        assert ("handlers/shared/tokens.py" in names) is (function.inputs["handler"] == "handlers.authorizer.handler")
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
