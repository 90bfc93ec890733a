"""The agent loop as Amazon States Language: the Express "turn" and the Standard "task".

Pure: no Pulumi import. The same builder feeds the orchestration component, the workflow
tests (which execute the definitions in moto's interpreter) and the local stack. JSONPath
only, so the definitions run in moto as they run on AWS.

Both machines loop: agent-step (the model) → Choice (final answer, too many steps, or tool
calls) → Map over the tool calls, each routed by name to its tool's Lambda → agent-step.
Every Lambda task retries the Lambda service errors and our transient errors with
exponential backoff and full jitter. Anything unrecoverable is caught, the Compensate step
undoes the run's completed side effects in reverse order, and a Fail state reports the
original error and cause. The task machine adds a ``.waitForTaskToken`` approval before
every tool that requires one; a denial or a timeout becomes that tool's result, so the
model can change its plan.

State payloads stay small: tool outputs over 8 KB travel by reference (see
``handlers.shared.tooling``), and at most ``MAX_TOOL_CALLS_PER_STEP`` calls run per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LAMBDA_RETRYABLE = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
TRANSIENT_ERRORS = ["ToolTransientError", "ConflictError"]
MAX_TOOL_CALLS_PER_STEP = 16
APPROVAL_DENIED = "ApprovalDenied"
APPROVAL_GRACE_SECONDS = 300


@dataclass(frozen=True)
class ToolRoute:
    name: str
    function_arn: str
    requires_approval: bool = False


@dataclass(frozen=True)
class WorkflowFunctions:
    agent_step: str
    compensate: str
    tools: Sequence[ToolRoute]
    approval_request: str | None = None
    """Records an approval and its task token (the task machine only)."""
    partition: str = "aws"


@dataclass(frozen=True)
class WorkflowLimits:
    max_steps: int
    timeout_seconds: int
    approval_timeout_seconds: int = 3600
    tool_concurrency: int = 8
    retry_interval_seconds: int = 1
    retry_max_attempts: int = 4


def _retry(limits: WorkflowLimits, extra: Sequence[str] = ()) -> list[dict]:
    return [
        {
            "ErrorEquals": [*LAMBDA_RETRYABLE, *TRANSIENT_ERRORS, *extra],
            "IntervalSeconds": limits.retry_interval_seconds,
            "BackoffRate": 2.0,
            "MaxAttempts": limits.retry_max_attempts,
            "MaxDelaySeconds": 30,
            "JitterStrategy": "FULL",
        }
    ]


def _catch_all(next_state: str) -> list[dict]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": next_state}]


def _tool_result(status: str, error: str, **extra: str) -> dict:
    """A Pass state's Parameters that answer for a tool call without running it."""
    return {
        "toolUseId.$": "$.toolUseId",
        "name.$": "$.name",
        "seq.$": "$.seq",
        "status": status,
        "output": {"error": error, **extra},
    }


_TOOL_EVENT = {
    "executionId.$": "$.executionId",
    "seq.$": "$.seq",
    "name.$": "$.name",
    "toolUseId.$": "$.toolUseId",
    "input.$": "$.input",
    "userId.$": "$.userId",
    "sessionId.$": "$.sessionId",
    "correlationId.$": "$.correlationId",
}


def _tool_processor(functions: WorkflowFunctions, limits: WorkflowLimits, with_approvals: bool) -> dict:
    choices, states = [], {}
    for tool in functions.tools:
        run = f"Run {tool.name}"
        states[run] = {
            "Type": "Task",
            "Resource": tool.function_arn,
            "Parameters": _TOOL_EVENT,
            "Retry": _retry(limits),
            "End": True,
        }
        entry = run
        if tool.requires_approval and not with_approvals:
            entry = f"Needs approval {tool.name}"
            states.pop(run)
            states[entry] = {
                "Type": "Pass",
                "Parameters": _tool_result("FAILED", "this tool needs a human's approval; start a task to use it"),
                "End": True,
            }
        elif tool.requires_approval:
            entry = f"Approve {tool.name}"
            states[entry] = {
                "Type": "Task",
                "Resource": f"arn:{functions.partition}:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": functions.approval_request,
                    "Payload": {
                        **_TOOL_EVENT,
                        "taskToken.$": "$$.Task.Token",
                        "timeoutSeconds": limits.approval_timeout_seconds,
                    },
                },
                # Nobody heartbeats a human decision, so the heartbeat is the approval window;
                # TimeoutSeconds caps the wait outright a little later.
                "HeartbeatSeconds": limits.approval_timeout_seconds,
                "TimeoutSeconds": limits.approval_timeout_seconds + APPROVAL_GRACE_SECONDS,
                "ResultPath": "$.approval",
                "Retry": _retry(limits),
                "Catch": [
                    {"ErrorEquals": [APPROVAL_DENIED], "ResultPath": "$.approval", "Next": f"Denied {tool.name}"},
                    {
                        "ErrorEquals": ["States.Timeout", "States.HeartbeatTimeout"],
                        "ResultPath": "$.approval",
                        "Next": f"Expired {tool.name}",
                    },
                ],
                "Next": run,
            }
            states[f"Denied {tool.name}"] = {
                "Type": "Pass",
                "Parameters": _tool_result("FAILED", "a human denied this call", **{"comment.$": "$.approval.Cause"}),
                "End": True,
            }
            states[f"Expired {tool.name}"] = {
                "Type": "Pass",
                "Parameters": _tool_result("FAILED", "nobody approved this call in time"),
                "End": True,
            }
        choices.append({"Variable": "$.name", "StringEquals": tool.name, "Next": entry})
    states["Route tool"] = {"Type": "Choice", "Choices": choices, "Default": "Tool not available"}
    states["Tool not available"] = {
        "Type": "Pass",
        "Parameters": _tool_result("FAILED", "no such tool here"),
        "End": True,
    }
    if not choices:
        states["Route tool"] = {"Type": "Pass", "Next": "Tool not available"}
    return {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Route tool", "States": states}


def _definition(kind: str, functions: WorkflowFunctions, limits: WorkflowLimits, comment: str) -> dict:
    loop_fields = {
        "sessionId.$": "$.sessionId",
        "userId.$": "$.userId",
        "correlationId.$": "$.correlationId",
        "tools.$": "$.tools",
        "executionId.$": "$.executionId",
        "connectionId.$": "$.connectionId",
    }
    states: dict[str, dict] = {
        "Begin": {
            "Type": "Pass",
            "Comment": "The run's context: every later state reads it from here.",
            "Parameters": {
                "sessionId.$": "$.sessionId",
                "userId.$": "$.userId",
                "correlationId.$": "$.correlationId",
                "tools.$": "$.tools",
                "message.$": "$.message",
                "idempotencyKey.$": "$.idempotencyKey",
                "connectionId.$": "$.connectionId",
                "executionId.$": "$$.Execution.Name",
                "step": 1,
                "toolResults": [],
            },
            "Next": "Agent step",
        },
        "Agent step": {
            "Type": "Task",
            "Resource": functions.agent_step,
            "Parameters": {
                **loop_fields,
                "step.$": "$.step",
                "message.$": "$.message",
                "idempotencyKey.$": "$.idempotencyKey",
                "toolResults.$": "$.toolResults",
                "mode": kind,
            },
            "ResultPath": "$.agent",
            "Retry": _retry(limits),
            "Catch": _catch_all("Compensate"),
            "Next": "Final answer?",
        },
        "Final answer?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.agent.done", "BooleanEquals": True, "Next": "Answer"},
                {"Variable": "$.agent.step", "NumericGreaterThan": limits.max_steps, "Next": "Too many steps"},
            ],
            "Default": "Run tools",
        },
        "Run tools": {
            "Type": "Map",
            "ItemsPath": "$.agent.toolCalls",
            "ItemSelector": {
                "executionId.$": "$.executionId",
                "userId.$": "$.userId",
                "sessionId.$": "$.sessionId",
                "correlationId.$": "$.correlationId",
                "seq.$": "$$.Map.Item.Value.seq",
                "name.$": "$$.Map.Item.Value.name",
                "toolUseId.$": "$$.Map.Item.Value.toolUseId",
                "input.$": "$$.Map.Item.Value.input",
            },
            "MaxConcurrency": limits.tool_concurrency,
            "ItemProcessor": _tool_processor(functions, limits, with_approvals=kind == "task"),
            "ResultPath": "$.toolResults",
            "Catch": _catch_all("Compensate"),
            "Next": "Next step",
        },
        "Next step": {
            "Type": "Pass",
            "Parameters": {
                **loop_fields,
                "message": None,
                "idempotencyKey": None,
                "step.$": "$.agent.step",
                "toolResults.$": "$.toolResults",
            },
            "Next": "Agent step",
        },
        "Answer": {
            "Type": "Pass",
            "Parameters": {
                "sessionId.$": "$.sessionId",
                "messageId.$": "$.agent.messageId",
                "answer.$": "$.agent.answer",
                "toolCalls.$": "$.agent.turnToolCalls",
                "usage.$": "$.agent.turnUsage",
            },
            "End": True,
        },
        "Too many steps": {
            "Type": "Pass",
            "Parameters": {
                **loop_fields,
                "failure": {
                    "Error": "MaxStepsExceeded",
                    "Cause": f"no final answer after {limits.max_steps} model calls",
                },
            },
            "Next": "Compensate",
        },
        "Compensate": {
            "Type": "Task",
            "Comment": "Undo the run's completed side effects, newest first.",
            "Resource": functions.compensate,
            "Parameters": {
                "executionId.$": "$.executionId",
                "userId.$": "$.userId",
                "sessionId.$": "$.sessionId",
                "correlationId.$": "$.correlationId",
                "failure.$": "$.failure",
            },
            "ResultPath": "$.compensation",
            "Retry": _retry(limits),
            "Catch": [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.compensationFailure", "Next": "Compensation failed"}
            ],
            "Next": "Failed",
        },
        "Failed": {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"},
        "Compensation failed": {
            "Type": "Fail",
            "Error": "CompensationFailed",
            "CausePath": "$.compensationFailure.Cause",
        },
    }
    return {"Comment": comment, "StartAt": "Begin", "TimeoutSeconds": limits.timeout_seconds, "States": states}


def turn_definition(functions: WorkflowFunctions, limits: WorkflowLimits) -> dict:
    """The Express "turn": synchronous, under five minutes, no human in the loop."""
    if limits.timeout_seconds > 300:
        raise ValueError(f"an Express turn runs at most 300 s, got {limits.timeout_seconds}")
    return _definition("turn", functions, limits, "agent-infra chat turn (Express)")


def task_definition(functions: WorkflowFunctions, limits: WorkflowLimits) -> dict:
    """The Standard "task": long-running, with human approval before sensitive tools."""
    if any(t.requires_approval for t in functions.tools) and not functions.approval_request:
        raise ValueError("a task with approval tools needs the approval-request function")
    return _definition("task", functions, limits, "agent-infra long-running task (Standard)")


def lambda_arns(definition: Mapping) -> set[str]:
    """Every Lambda function a definition invokes (for the state machine's role)."""
    found: set[str] = set()

    def visit(states: Mapping) -> None:
        for state in states.values():
            resource = state.get("Resource", "")
            if resource.startswith("arn:") and ":lambda:" in resource and ":function:" in resource:
                found.add(resource)
            function_name = state.get("Parameters", {}).get("FunctionName")
            if function_name:
                found.add(function_name)
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                visit(processor["States"])

    visit(definition["States"])
    return found


def reachability_problems(definition: Mapping) -> list[str]:
    """States nobody reaches and transitions to states that do not exist, at every level."""
    problems: list[str] = []

    def targets(state: Mapping) -> list[str]:
        out = [state["Next"]] if "Next" in state else []
        out += [c["Next"] for c in state.get("Choices", [])]
        out += [c["Next"] for c in state.get("Catch", [])]
        if "Default" in state:
            out.append(state["Default"])
        return out

    def check(machine: Mapping, where: str) -> None:
        states = machine["States"]
        if machine["StartAt"] not in states:
            problems.append(f"{where}: StartAt {machine['StartAt']!r} does not exist")
        seen, todo = set(), [machine["StartAt"]]
        while todo:
            name = todo.pop()
            if name in seen or name not in states:
                continue
            seen.add(name)
            for target in targets(states[name]):
                if target not in states:
                    problems.append(f"{where}: {name!r} goes to missing state {target!r}")
                todo.append(target)
        for name in states:
            if name not in seen:
                problems.append(f"{where}: {name!r} is never reached")
            processor = states[name].get("ItemProcessor") or states[name].get("Iterator")
            if processor:
                check(processor, f"{where}/{name}")
            state = states[name]
            if state["Type"] not in ("Choice", "Succeed", "Fail") and not state.get("End") and "Next" not in state:
                problems.append(f"{where}: {name!r} neither ends nor has a Next")

    check(definition, "root")
    return problems
