"""The generated definitions, checked as documents: structure, retries, an independent validator."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from components.workflows import (
    BEDROCK_RETRYABLE,
    ECS_RETRYABLE,
    HTTP_RETRYABLE,
    LAMBDA_RETRYABLE,
    LONG_TOOL_IN_TURN,
    RECORDED,
    FargateRun,
    ModelCall,
    ToolRoute,
    WorkflowFunctions,
    WorkflowLimits,
    lambda_arns,
    reachability_problems,
    task_definition,
    turn_definition,
)

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = ROOT / "validators" / "node_modules" / ".bin" / "asl-validator"
A = "arn:aws:lambda:us-east-1:123456789012:function:"
RUN = FargateRun(
    cluster_arn="arn:aws:ecs:us-east-1:123456789012:cluster/agent-infra-test",
    task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/agent-infra-test-digest:3",
    container_name="tool",
    subnets=("subnet-a", "subnet-b"),
    security_groups=("sg-1",),
    assign_public_ip=False,
    spot_attempts=2,
)
FUNCTIONS = WorkflowFunctions(
    prepare=A + "agent-prepare",
    record=A + "agent-record",
    stream=A + "agent-stream",
    compensate=A + "compensate",
    tools=[
        ToolRoute("calculator", A + "calculator"),
        ToolRoute("http_fetch", A + "http-fetch"),
        ToolRoute("create_ticket", A + "create-ticket", True),
        ToolRoute("digest", "", runtime="fargate-spot", fargate=RUN, timeout_seconds=7_200),
        ToolRoute("crawl", A + "crawl", runtime="continuation", max_slices=5),
    ],
    approval_request=A + "approval-request",
)
BEDROCK = ModelCall("bedrock", timeout_seconds=30)
OPENAI = ModelCall(
    "openai",
    endpoints=("https://llm-a.example.com/v1", "https://llm-b.example.com/v1"),
    connection_arn="arn:aws:events:us-east-1:123456789012:connection/agent-infra-test-llm/abc",
    timeout_seconds=30,
)
DEFINITIONS = {
    "turn": turn_definition(FUNCTIONS, BEDROCK, WorkflowLimits(max_steps=8, timeout_seconds=120)),
    "task": task_definition(
        FUNCTIONS, BEDROCK, WorkflowLimits(max_steps=8, timeout_seconds=86_400, approval_timeout_seconds=3_600)
    ),
    "turn-openai": turn_definition(FUNCTIONS, OPENAI, WorkflowLimits(max_steps=8, timeout_seconds=120)),
}


def all_states(definition):
    for name, state in definition["States"].items():
        yield name, state
        processor = state.get("ItemProcessor")
        if processor:
            yield from all_states(processor)


@pytest.mark.parametrize("kind", DEFINITIONS)
def test_every_state_is_reachable_and_every_next_exists(kind):
    assert reachability_problems(DEFINITIONS[kind]) == []


def test_the_reachability_check_finds_real_problems():
    broken = json.loads(json.dumps(DEFINITIONS["turn"]))
    broken["States"]["Answer"]["Next"] = "Nowhere"
    del broken["States"]["Answer"]["End"]
    broken["States"]["Orphan"] = {"Type": "Pass", "End": True}
    problems = reachability_problems(broken)
    assert "root: 'Answer' goes to missing state 'Nowhere'" in problems
    assert "root: 'Orphan' is never reached" in problems


@pytest.mark.parametrize("kind", DEFINITIONS)
def test_every_task_retries_its_passing_errors_with_full_jitter(kind):
    tasks = [(n, s) for n, s in all_states(DEFINITIONS[kind]) if s["Type"] == "Task"]
    assert tasks
    for name, state in tasks:
        (retry,) = state["Retry"]
        if state["Resource"] == "arn:aws:states:::aws-sdk:bedrockruntime:converse":
            assert retry["ErrorEquals"] == BEDROCK_RETRYABLE, name
        elif state["Resource"] == "arn:aws:states:::http:invoke":
            assert retry["ErrorEquals"] == HTTP_RETRYABLE, name
        elif state["Resource"] == "arn:aws:states:::ecs:runTask.sync":
            assert retry["ErrorEquals"] == ECS_RETRYABLE, name
        else:
            assert set(LAMBDA_RETRYABLE) <= set(retry["ErrorEquals"]), name
        assert retry["JitterStrategy"] == "FULL" and retry["BackoffRate"] == 2.0, name
    tools = [
        s
        for n, s in all_states(DEFINITIONS[kind])
        if n.startswith(("Run ", "Slice ")) and s["Type"] == "Task" and s["Resource"].startswith(A)
    ]
    assert tools
    assert all("ToolTransientError" in s["Retry"][0]["ErrorEquals"] for s in tools)


@pytest.mark.parametrize("kind", DEFINITIONS)
def test_failures_are_caught_into_compensation_then_fail_with_the_original_error(kind):
    states = DEFINITIONS[kind]["States"]
    for name in ("Prepare", "Run tools"):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Compensate"}
        ]
    # The JSONata states hand Compensate the run's context and the failure, nothing else.
    for name in ("Stream model", "Record"):
        catch_all = states[name]["Catch"][-1]
        assert catch_all["ErrorEquals"] == ["States.ALL"] and catch_all["Next"] == "Compensate"
        assert "{'failure': $states.errorOutput}" in catch_all["Output"]
    conflict = states["Record"]["Catch"][0]
    assert conflict["ErrorEquals"] == ["ConflictError"] and conflict["Next"] == "Conflict"
    assert states["Compensate"]["Next"] == "Failed"
    assert states["Failed"] == {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"}


def test_the_task_waits_for_approval_only_before_tools_that_need_it():
    task = dict(all_states(DEFINITIONS["task"]))
    approve = task["Approve create_ticket"]
    assert approve["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert approve["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert approve["HeartbeatSeconds"] == 3_600 and approve["TimeoutSeconds"] > approve["HeartbeatSeconds"]
    assert {c["ErrorEquals"][0] for c in approve["Catch"]} == {"ApprovalDenied", "States.Timeout"}
    assert "Approve calculator" not in task
    turn = dict(all_states(DEFINITIONS["turn"]))
    assert not any(name.startswith("Approve") for name in turn)
    assert turn["Needs approval create_ticket"]["Type"] == "Pass"


def test_no_lambda_waits_for_the_model_but_a_streaming_turns():
    turn = DEFINITIONS["turn"]["States"]
    call = turn["Call model"]
    assert call["Resource"] == "arn:aws:states:::aws-sdk:bedrockruntime:converse"
    assert call["QueryLanguage"] == "JSONata" and call["Arguments"] == "{% $states.input.request %}"
    assert call["Next"] == "Record" and call["Catch"][0]["Next"] == "Compensate"
    assert turn["Streaming?"]["Choices"] == [{"Variable": "$.connectionId", "IsNull": False, "Next": "Stream model"}]
    assert turn["Streaming?"]["Default"] == "Call model"


def test_an_openai_model_fails_over_along_its_endpoints_nearest_first():
    states = DEFINITIONS["turn-openai"]["States"]
    first, second = states["Call model 1"], states["Call model 2"]
    assert first["Resource"] == second["Resource"] == "arn:aws:states:::http:invoke"
    assert first["Arguments"]["ApiEndpoint"] == "https://llm-a.example.com/v1/chat/completions"
    assert second["Arguments"]["ApiEndpoint"] == "https://llm-b.example.com/v1/chat/completions"
    assert first["Arguments"]["Authentication"] == {"ConnectionArn": OPENAI.connection_arn}
    assert "Authorization" not in json.dumps(first["Arguments"]), "the key stays in the connection"
    assert first["Catch"][0]["Next"] == "Call model 2"
    assert second["Catch"][0]["Next"] == "Compensate" and "LlmUnavailableError" in second["Catch"][0]["Output"]
    assert states["Streaming?"]["Default"] == "Call model 1"


def test_the_definitions_invoke_exactly_their_functions():
    assert lambda_arns(DEFINITIONS["task"]) == {
        A + "agent-prepare",
        A + "agent-record",
        A + "agent-stream",
        A + "compensate",
        A + "calculator",
        A + "http-fetch",
        A + "create-ticket",
        A + "crawl",
        A + "approval-request",
    }
    assert A + "approval-request" not in lambda_arns(DEFINITIONS["turn"])
    assert A + "crawl" not in lambda_arns(DEFINITIONS["turn"]), "the turn never runs a long tool"
    assert A + "create-ticket" not in lambda_arns(DEFINITIONS["turn"]), "the turn never runs an approval tool"


def test_limits_are_checked():
    with pytest.raises(ValueError, match="at most 300 s"):
        turn_definition(FUNCTIONS, BEDROCK, WorkflowLimits(max_steps=8, timeout_seconds=301))
    with pytest.raises(ValueError, match="needs the approval-request function"):
        task_definition(
            WorkflowFunctions(A + "p", A + "r", A + "s", A + "c", [ToolRoute("create_ticket", A + "t", True)]),
            BEDROCK,
            WorkflowLimits(8, 60),
        )
    with pytest.raises(ValueError, match="needs its endpoints and the connection"):
        turn_definition(FUNCTIONS, ModelCall("openai"), WorkflowLimits(8, 60))


def test_the_turn_answers_a_long_tool_call_without_running_it():
    turn = dict(all_states(DEFINITIONS["turn"]))
    for tool in ("digest", "crawl"):
        assert turn[f"Runs long {tool}"]["Type"] == "Pass"
        assert turn[f"Runs long {tool}"]["Parameters"]["output"] == {"error": LONG_TOOL_IN_TURN}
        assert not any(name.startswith(f"Start {tool}") for name in turn)
    assert "POST /v1/tasks" in LONG_TOOL_IN_TURN
    assert not any("ecs:" in s.get("Resource", "") for _, s in all_states(DEFINITIONS["turn"]))


def test_a_fargate_spot_tool_runs_on_spot_then_on_demand_with_the_tool_event_in_its_environment():
    task = dict(all_states(DEFINITIONS["task"]))
    spot, demand = task["Run digest on Spot"], task["Run digest on demand"]
    for state, provider in ((spot, "FARGATE_SPOT"), (demand, "FARGATE")):
        assert state["Resource"] == "arn:aws:states:::ecs:runTask.sync"
        parameters = state["Parameters"]
        assert parameters["Cluster"] == RUN.cluster_arn and parameters["TaskDefinition"] == RUN.task_definition_arn
        assert parameters["CapacityProviderStrategy"] == [{"CapacityProvider": provider, "Weight": 1}]
        assert "LaunchType" not in parameters, "RunTask takes a capacity provider strategy or a launch type"
        assert parameters["NetworkConfiguration"]["AwsvpcConfiguration"] == {
            "Subnets": ["subnet-a", "subnet-b"],
            "SecurityGroups": ["sg-1"],
            "AssignPublicIp": "DISABLED",
        }
        (override,) = parameters["Overrides"]["ContainerOverrides"]
        assert override == {
            "Name": "tool",
            "Environment": [{"Name": "TOOL_EVENT", "Value.$": "States.JsonToString($.event)"}],
        }
        assert state["TimeoutSeconds"] == 7_200 and state["ResultPath"] is None and state["Next"] == "Ran digest"
    # The event the container gets is the one a Lambda tool gets.
    assert task["Start digest"]["Parameters"]["event"] == task["Run calculator"]["Parameters"]
    assert task["Spot left digest?"]["Choices"][0]["NumericLessThan"] == 2
    assert task["Spot left digest?"]["Default"] == "Run digest on demand"
    # Only a Spot run's failure can be a Spot interruption; the on-demand run's is a crash.
    assert [c["Next"] for c in spot["Catch"]] == ["Interrupted digest?", "Crashed digest"]
    assert [c["Next"] for c in demand["Catch"]] == ["Crashed digest"]
    interrupted = task["Interrupted digest?"]
    assert interrupted["Choices"][0]["Next"] == "Back off digest" and interrupted["Default"] == "Crashed digest"
    assert task["Back off digest"] == {"Type": "Wait", "SecondsPath": "$.waitSeconds", "Next": "Again digest"}
    ran = task["Ran digest"]["Parameters"]
    assert ran["status"] == RECORDED
    assert ran["outputRef"] == {
        "executionId.$": "$.event.executionId",
        "seq.$": "$.event.seq",
        "name.$": "$.event.name",
    }


def test_a_continuation_tool_loops_with_its_token_up_to_max_slices():
    task = dict(all_states(DEFINITIONS["task"]))
    slice_ = task["Slice crawl"]
    assert slice_["Resource"] == A + "crawl" and slice_["Parameters"]["continuation.$"] == "$.continuation"
    assert slice_["Catch"][0]["Next"] == "Crashed crawl"
    done = task["Done crawl?"]["Choices"]
    assert done[0] == {"Variable": "$.sliced.done", "BooleanEquals": True, "Next": "Finished crawl"}
    assert done[1]["NumericGreaterThanEquals"] == 5
    assert task["Next slice crawl"]["Parameters"]["continuation.$"] == "$.sliced.continuation"
    assert task["Finished crawl"]["OutputPath"] == "$.sliced.result"


def test_a_long_tool_needs_what_it_runs_on():
    def with_tool(route):
        return WorkflowFunctions(A + "p", A + "r", A + "s", A + "c", [route])

    with pytest.raises(ValueError, match="has no FargateRun"):
        task_definition(with_tool(ToolRoute("digest", "", runtime="fargate-spot")), BEDROCK, WorkflowLimits(8, 60))
    with pytest.raises(ValueError, match="unknown runtime 'batch'"):
        task_definition(with_tool(ToolRoute("digest", A + "d", runtime="batch")), BEDROCK, WorkflowLimits(8, 60))


def run_validator(definition, tmp_path, name):
    node = shutil.which("node")
    assert node, "Node.js is needed for the ASL validator"
    assert VALIDATOR.exists(), "run `make test`: it installs validators/ (npm ci)"
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(definition))
    command = [node, str(VALIDATOR), "--json-path", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own files


@pytest.mark.parametrize("kind", DEFINITIONS)
def test_definitions_pass_the_independent_asl_validator(kind, tmp_path):
    result = run_validator(DEFINITIONS[kind], tmp_path, kind)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_the_validator_rejects_a_broken_definition(tmp_path):
    broken = json.loads(json.dumps(DEFINITIONS["turn"]))
    broken["States"]["Prepare"]["Type"] = "Tusk"
    result = run_validator(broken, tmp_path, "broken")
    assert result.returncode != 0
