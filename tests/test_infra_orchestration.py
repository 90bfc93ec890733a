"""Orchestration under Pulumi mocks: both machines per region, logging, tracing, least privilege."""

from __future__ import annotations

import json

import pytest

from components.policies import wildcard_problems
from components.workflows import lambda_arns, reachability_problems
from local.pulumi_mocks import ACCOUNT_ID, run_program, stack_config

MACHINE = "aws:sfn/stateMachine:StateMachine"


@pytest.fixture(scope="module")
def runs():
    return {stack: run_program(stack_config(stack), stack) for stack in ("dev", "prod")}


def regions(stack):
    return stack_config(stack)["agent-infra:regions"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_both_machines_in_every_region(runs, stack):
    machines = runs[stack].of_type(MACHINE)
    assert sorted((m.inputs["region"], m.inputs["type"]) for m in machines) == sorted(
        (r, t) for r in regions(stack) for t in ("EXPRESS", "STANDARD")
    )
    names = {m.inputs["name"] for m in machines}
    assert names == {f"agent-infra-{stack}-turn", f"agent-infra-{stack}-task"}, "the names the router's role expects"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_logging_under_vendedlogs_and_tracing(runs, stack):
    run = runs[stack]
    groups = {g.state["arn"]: g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    workflow = stack_config(stack)["agent-infra:workflow"]
    for machine in run.of_type(MACHINE):
        logging = machine.inputs["loggingConfiguration"]
        group = groups[logging["logDestination"].removesuffix(":*")]
        assert group.inputs["name"].startswith("/aws/vendedlogs/states/")
        assert group.inputs["region"] == machine.inputs["region"]
        assert logging["level"] == workflow["logLevel"]
        assert logging["includeExecutionData"] is workflow["logExecutionData"]
        assert machine.inputs["tracingConfiguration"] == {"enabled": True}
    if stack == "prod":
        assert all(m.inputs["loggingConfiguration"]["includeExecutionData"] is False for m in run.of_type(MACHINE))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_machine_may_invoke_exactly_the_functions_of_its_definition(runs, stack):
    run = runs[stack]
    functions = {f.state["arn"]: f for f in run.of_type("aws:lambda/function:Function")}
    policies = {p.inputs["role"]: json.loads(p.inputs["policy"]) for p in run.of_type("aws:iam/rolePolicy:RolePolicy")}
    for machine in run.of_type(MACHINE):
        definition = json.loads(machine.inputs["definition"])
        assert reachability_problems(definition) == []
        invoked = lambda_arns(definition)
        # A function with provisioned concurrency is invoked through its live alias.
        unqualified = {a.removesuffix(":live") for a in invoked}
        assert unqualified <= set(functions), "every invoked function exists"
        assert {functions[a].inputs["region"] for a in unqualified} == {machine.inputs["region"]}, "its own region's"
        role_name = machine.inputs["roleArn"].rsplit("/", 1)[1]
        document = policies[role_name]
        assert wildcard_problems(document) == []
        (invoke,) = [s for s in document["Statement"] if s["Action"] == ["lambda:InvokeFunction"]]
        assert set(invoke["Resource"]) == invoked
        handlers = {functions[a].inputs["handler"] for a in unqualified}
        if machine.inputs["type"] == "EXPRESS":
            assert "handlers.approval.request_handler" not in handlers
        else:
            assert "handlers.approval.request_handler" in handlers
        assert not {"handlers.router.handler", "handlers.approval.handler"} & handlers


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_machine_roles_trust_step_functions_of_this_account(runs, stack):
    run = runs[stack]
    roles = [r for r in run.of_type("aws:iam/role:Role") if "orchestration" in r.name]
    assert len(roles) == 2 * len(regions(stack))
    for role in roles:
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
        assert trust["Principal"] == {"Service": "states.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_machines_call_the_model_themselves_with_only_that_model(runs, stack):
    run = runs[stack]
    model = stack_config(stack)["agent-infra:llm"]["model"]
    policies = {p.inputs["role"]: json.loads(p.inputs["policy"]) for p in run.of_type("aws:iam/rolePolicy:RolePolicy")}
    for machine in run.of_type(MACHINE):
        region = machine.inputs["region"]
        call = json.loads(machine.inputs["definition"])["States"]["Call model"]
        assert call["Resource"] == "arn:aws:states:::aws-sdk:bedrockruntime:converse"
        document = policies[machine.inputs["roleArn"].rsplit("/", 1)[1]]
        bedrock = [s for s in document["Statement"] if any(a.startswith("bedrock:") for a in s["Action"])]
        assert bedrock, "the role may call the model"
        assert all(model.split(".", 1)[1] in r for s in bedrock for r in s["Resource"])
        profile = next(s for s in bedrock if s["Sid"] == "InvokeThroughProfile")
        assert profile["Resource"] == [f"arn:aws:bedrock:{region}:{ACCOUNT_ID}:inference-profile/{model}"]


def test_an_openai_model_is_called_through_the_http_task_and_its_connection():
    config = stack_config("dev")
    config["agent-infra:llm"] = {
        "provider": "openai",
        "model": "gpt-test",
        "endpoints": ["https://llm-us.example.net/v1", "https://llm-eu.example.net/v1"],
        "endpointRegions": {"https://llm-us.example.net/v1": "us-east-1", "https://llm-eu.example.net/v1": "eu-west-1"},
        "apiKey": "sk-test",
    }
    run = run_program(config, "dev")
    connections = {c.inputs["region"]: c for c in run.of_type("aws:cloudwatch/eventConnection:EventConnection")}
    policies = {p.inputs["role"]: json.loads(p.inputs["policy"]) for p in run.of_type("aws:iam/rolePolicy:RolePolicy")}
    for machine in run.of_type(MACHINE):
        region = machine.inputs["region"]
        states = json.loads(machine.inputs["definition"])["States"]
        first = states["Call model 1"]["Arguments"]
        assert first["Authentication"] == {"ConnectionArn": connections[region].state["arn"]}
        nearest = "https://llm-us.example.net/v1"  # both of dev's regions are nearer the US endpoint
        assert first["ApiEndpoint"] == nearest + "/chat/completions", "nearest endpoint first"
        document = policies[machine.inputs["roleArn"].rsplit("/", 1)[1]]
        http = next(s for s in document["Statement"] if s["Action"] == ["states:InvokeHTTPEndpoint"])
        assert http["Condition"]["StringEquals"] == {"states:HTTPMethod": "POST"}
        assert sorted(http["Condition"]["StringLike"]["states:HTTPEndpoint"]) == sorted(
            e + "/chat/completions" for e in config["agent-infra:llm"]["endpoints"]
        )
        credentials = next(s for s in document["Statement"] if s["Action"] == ["events:RetrieveConnectionCredentials"])
        assert credentials["Resource"] == [connections[region].state["arn"]]
        assert not any(a.startswith("bedrock:") for s in document["Statement"] for a in s["Action"])


def test_limits_come_from_the_config(runs):
    workflow = stack_config("prod")["agent-infra:workflow"]
    for machine in runs["prod"].of_type(MACHINE):
        definition = json.loads(machine.inputs["definition"])
        choice = definition["States"]["Final answer?"]["Choices"][1]
        assert choice["NumericGreaterThan"] == workflow["maxSteps"]
        if machine.inputs["type"] == "EXPRESS":
            assert definition["TimeoutSeconds"] == workflow["expressTimeoutSeconds"]
        else:
            approve = definition["States"]["Run tools"]["ItemProcessor"]["States"]["Approve create_ticket"]
            assert approve["HeartbeatSeconds"] == workflow["approvalTimeoutHours"] * 3600
