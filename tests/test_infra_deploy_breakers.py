"""What would break the first real `pulumi up` or the first real request, found by reviewing the
program against AWS's documented behaviour (each test names the doc the fix rests on)."""

from __future__ import annotations

import copy
import json

import pytest

from components import naming
from components.config import MAX_TOOL_NAME, StackConfigError, longest_region, parse_stack_config
from local.pulumi_mocks import AwsMocks, run_program, stack_config

ACCOUNT = "aws:apigateway/account:Account"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"


@pytest.fixture(scope="module")
def runs():
    return {stack: run_program(stack_config(stack), stack) for stack in ("dev", "prod")}


def regions(stack):
    return stack_config(stack)["agent-infra:regions"]


def raw_config(stack: str) -> dict:
    return {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("agent-infra:")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_health_method_settings_use_the_escaped_resource_path(runs, stack):
    # UpdateStage: "any slash must be escaped with ~1"; v1/health/GET is not a key AWS knows.
    health = [m for m in runs[stack].of_type(METHOD_SETTINGS) if m.inputs["methodPath"] != "*/*"]
    assert [m.inputs["methodPath"] for m in health] == ["~1v1~1health/GET"] * len(regions(stack))
    assert all(m.inputs["settings"]["throttlingRateLimit"] <= 5 for m in health)


def test_the_account_logging_role_is_awss_managed_policy_and_the_account_waits_for_it():
    # The bootstrap owns the setting (tests/test_bootstrap.py); a stack may, when it says so.
    config = stack_config("prod")
    config["agent-infra:api"] = {**config["agent-infra:api"], "manageAccountLogging": True}
    prod = run_program(config, "prod")
    accounts = prod.of_type(ACCOUNT)
    assert len(accounts) == len(regions("prod")), "the stack owns the account setting in each of its regions"
    for account in accounts:
        region = account.inputs["region"]
        role = next(
            r for r in prod.of_type("aws:iam/role:Role") if r.state["arn"] == account.inputs["cloudwatchRoleArn"]
        )
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust == [
            {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
        (attachment,) = [
            a
            for a in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if a.inputs["role"] == role.state["name"]
        ]
        assert attachment.inputs["policyArn"].endswith("service-role/AmazonAPIGatewayPushToCloudWatchLogs")
        assert set(prod.depends_on[account.name]) == {
            f"{region}-api-cloudwatch-role",
            f"{region}-api-cloudwatch-policy",
        }
        stages = [s for s in prod.of_type("aws:apigateway/stage:Stage") if s.inputs["region"] == region]
        assert all(account.name in prod.depends_on[s.name] for s in stages), "stages log only once the role is set"


def test_only_a_stack_that_says_so_sets_the_account_wide_logging_role(runs):
    assert (
        parse_stack_config(
            {k: v for k, v in raw_config("dev").items() if k != "api"}
            | {"api": {"auth": raw_config("dev")["api"]["auth"]}}
        ).api.manage_account_logging
        is False
    ), "the safe default: a stack never takes over an account setting"
    assert runs["dev"].of_type(ACCOUNT) == []
    assert not [r for r in runs["dev"].of_type("aws:iam/role:Role") if "cloudwatch" in r.name]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_turn_integration_role_trusts_api_gateway_without_a_source_account_condition(runs, stack):
    run = runs[stack]
    for role in (r for r in run.of_type("aws:iam/role:Role") if "turn-integration" in r.name):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement == {
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_gateway_responses_map_only_documented_header_sources(runs, stack):
    for api in runs[stack].of_type("aws:apigateway/restApi:RestApi"):
        responses = json.loads(api.inputs["body"])["x-amazon-apigateway-gateway-responses"]
        assert {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
        for response in responses.values():
            for value in response.get("responseParameters", {}).values():
                # Request parameters or a quoted literal: nothing from $context.
                assert value.startswith(("method.request.", "'")), value


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_request_models_never_say_nullable(runs, stack):
    for api in runs[stack].of_type("aws:apigateway/restApi:RestApi"):
        schemas = json.loads(api.inputs["body"])["components"]["schemas"]
        assert "nullable" not in json.dumps(schemas)


def test_a_model_that_allows_null_is_refused_at_build_time():
    import msgspec

    from components.openapi import model_schema

    class Loose(msgspec.Struct):
        note: str | None = None

    with pytest.raises(ValueError, match=r"Loose.note allows null"):
        model_schema(Loose)


def test_reservations_that_do_not_fit_the_accounts_quota_stop_the_preview():
    with pytest.raises(Exception, match=r"Lambda concurrency in eu-west-1") as caught:
        run_program(stack_config("prod"), "prod", AwsMocks(lambda_concurrency={"eu-west-1": 10}))
    message = str(caught.value)
    reserved = sum(t.get("reservedConcurrency", 0) for t in stack_config("prod")["agent-infra:tools"])
    provisioned = sum(stack_config("prod")["agent-infra:compute"]["provisionedConcurrency"].values())
    assert f"reserves {reserved}" in message and f"provisions {provisioned}" in message
    assert (
        f"needs {reserved + provisioned + 100}" in message
        and "quota (Service Quotas lambda/L-B99A9384) is 10" in message
    )


def test_the_defaults_deploy_in_a_new_account_with_a_quota_of_ten():
    run = run_program(stack_config("dev"), "dev", AwsMocks(lambda_concurrency=dict.fromkeys(regions("dev"), 10)))
    functions = run.of_type("aws:lambda/function:Function")
    assert functions and all("reservedConcurrentExecutions" not in f.inputs for f in functions)
    assert not [c for c in run.calls if c[0] == "aws:servicequotas/getServiceQuota:getServiceQuota"]


def test_prod_reads_the_quota_in_every_region(runs):
    asked = {
        args["region"]
        for function, args in runs["prod"].calls
        if function == "aws:servicequotas/getServiceQuota:getServiceQuota"
    }
    assert asked == set(regions("prod"))


def test_a_tool_name_too_long_for_awss_name_limits_is_refused():
    raw = copy.deepcopy(raw_config("dev"))
    raw["tools"] = [{"name": "calculator"}, {"name": "c" * (MAX_TOOL_NAME + 1)}]
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw)
    message = str(caught.value)
    assert "agent-infra:tools[1].name" in message and "IAM role name would be 65 characters, AWS allows 64" in message
    assert naming.longest_tool_name(longest_region()) == MAX_TOOL_NAME


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_names_derived_from_tools_are_the_ones_the_program_makes(runs, stack):
    run = runs[stack]
    for tool in stack_config(stack)["agent-infra:tools"]:
        if tool.get("runtime") == "fargate-spot":
            continue  # a container, no Lambda (tests/test_infra_long_tools.py)
        for region in regions(stack):
            expected = naming.tool_derived_names(tool["name"], region, stack)
            (function,) = [
                f
                for f in run.of_type("aws:lambda/function:Function")
                if f.inputs["region"] == region and f.inputs["handler"] == f"handlers.tools.{tool['name']}.handler"
            ]
            role = next(r for r in run.of_type("aws:iam/role:Role") if r.state["arn"] == function.inputs["role"])
            assert len(function.state["name"]) == len(expected["Lambda function"])
            assert len(role.state["name"]) == len(expected["IAM role"])
            assert function.inputs["loggingConfig"]["logGroup"] == expected["log group"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_api_key_value_per_client_valid_in_every_region(runs, stack):
    run = runs[stack]
    clients = stack_config(stack)["agent-infra:api"].get("clients", ["default"])
    passwords = {p.name: p for p in run.of_type("random:index/randomPassword:RandomPassword")}
    assert len(passwords) == len(clients)
    keys = run.of_type("aws:apigateway/apiKey:ApiKey")
    assert len(keys) == len(clients) * len(regions(stack))
    for client in clients:
        values = {
            json.dumps(k.inputs["value"], sort_keys=True)
            for k in keys
            if k.inputs["name"] == f"agent-infra-{stack}-{client}"
        }
        assert len(values) == 1, "the same value in every region"
        (value,) = values
        assert "4dabf18193072939515e22adb298388d" in value, "the value reaches AWS as a secret"
        assert run.outputs["apiKeys"][client] == passwords[f"api-clients-{client}"].state["result"]
        assert passwords[f"api-clients-{client}"].inputs == {"length": 40, "special": False}
    assert "apiKeys" in run.secret_outputs
