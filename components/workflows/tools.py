"""The tool calls' states: the Map's item processor routes each call by name to its tool,
a Lambda invoked once, a ``continuation`` Lambda looped slice after slice, or a
``fargate-spot`` container run with ``ecs:runTask.sync`` (Spot first, on-demand last); the
task machine's approval before a tool that needs one. A crashed or refused call is a
result the model hears about, never a failed run."""

from __future__ import annotations

from components.workflows.common import (
    APPROVAL_DENIED,
    APPROVAL_GRACE_SECONDS,
    ECS_RETRYABLE,
    ECS_TASK_FAILED,
    LONG_TOOL_IN_TURN,
    SPOT_INTERRUPTED_CAUSE,
    SPOT_MAX_WAIT_SECONDS,
    FargateRun,
    ToolRoute,
    WorkflowFunctions,
    WorkflowLimits,
    retry,
)


def _tool_result(status: str, error: str, at: str = "$", **extra: str) -> dict:
    """A Pass state's Parameters that answer for a tool call without running it (``at``: where
    the call's event is in the state)."""
    return {
        "toolUseId.$": f"{at}.toolUseId",
        "name.$": f"{at}.name",
        "seq.$": f"{at}.seq",
        "status": status,
        "output": {"error": error, **extra},
    }


_EVENT_KEYS = ("executionId", "startedAt", "seq", "name", "toolUseId", "input", "userId", "sessionId", "correlationId")


def _event_at(at: str) -> dict:
    """Parameters: the tool event (what a tool Lambda and a tool's container get) read at ``at``."""
    return {f"{key}.$": f"{at}.{key}" for key in _EVENT_KEYS}


_TOOL_EVENT = _event_at("$")
RECORDED = "RECORDED"
"""A long tool's call status until agent-prepare reads the recorded one (``outputRef``)."""


def _crashed(at: str = "$") -> dict:
    # A tool that crashes (after its retries) is a failed call the model hears about, never a
    # failed turn and never a call left without a result; compensation then treats it as any.
    return {
        "Type": "Pass",
        "Parameters": _tool_result("FAILED", "the tool failed", at, **{"errorType.$": "$.crash.Error"}),
        "End": True,
    }


def _crash_catch(tool: ToolRoute) -> list[dict]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.crash", "Next": f"Crashed {tool.name}"}]


def _lambda_states(tool: ToolRoute, limits: WorkflowLimits) -> tuple[str, dict[str, dict]]:
    run = f"Run {tool.name}"
    return run, {
        run: {
            "Type": "Task",
            "Resource": tool.function_arn,
            "Parameters": _TOOL_EVENT,
            "Retry": retry(limits),
            "Catch": _crash_catch(tool),
            "End": True,
        },
        f"Crashed {tool.name}": _crashed(),
    }


def _run_task(run: FargateRun, capacity_provider: str) -> dict:
    """``ecs:runTask.sync``'s Parameters (RunTask's, PascalCase), the tool event in the
    container's environment as TOOL_EVENT. A capacity provider strategy instead of a launch
    type (RunTask: "If a capacityProviderStrategy is specified, the launchType parameter must
    be omitted", https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html;
    Step Functions passes it: https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_stepfunctions_tasks.CapacityProviderOptions.html)."""
    return {
        "Cluster": run.cluster_arn,
        "TaskDefinition": run.task_definition_arn,
        "CapacityProviderStrategy": [{"CapacityProvider": capacity_provider, "Weight": 1}],
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "Subnets": list(run.subnets),
                "SecurityGroups": list(run.security_groups),
                "AssignPublicIp": "ENABLED" if run.assign_public_ip else "DISABLED",
            }
        },
        "Overrides": {
            "ContainerOverrides": [
                {
                    "Name": run.container_name,
                    "Environment": [{"Name": "TOOL_EVENT", "Value.$": "States.JsonToString($.event)"}],
                }
            ]
        },
    }


def _fargate_states(tool: ToolRoute, limits: WorkflowLimits, partition: str) -> tuple[str, dict[str, dict]]:
    """A ``fargate-spot`` call: runs on Fargate Spot while Spot attempts are left, each Spot
    interruption followed by a Wait that doubles (to SPOT_MAX_WAIT_SECONDS), then one run on
    on-demand Fargate. Any other failure (the container exited non-zero, the task did not
    start, the run timed out, ECS refused the call) is a crashed call. The container records
    the call's result itself; the call's result here points at that record."""
    run = tool.fargate
    if run is None:
        raise ValueError(f"tool {tool.name!r} runs on fargate-spot but has no FargateRun (cluster, task definition)")
    if run.spot_attempts < 1:
        raise ValueError(f"tool {tool.name!r}: spot_attempts must be at least 1, got {run.spot_attempts}")
    name = tool.name
    resource = f"arn:{partition}:states:::ecs:runTask.sync"
    timeout = {"TimeoutSeconds": tool.timeout_seconds} if tool.timeout_seconds else {}

    def run_on(capacity_provider: str, catch: list[dict]) -> dict:
        return {
            "Type": "Task",
            "Resource": resource,
            "Parameters": _run_task(run, capacity_provider),
            "ResultPath": None,  # the stopped task's description: the record is the result
            **timeout,
            "Retry": retry(limits, ECS_RETRYABLE),
            "Catch": catch,
            "Next": f"Ran {name}",
        }

    entry = f"Start {name}"
    states = {
        entry: {
            "Type": "Pass",
            "Comment": f"Run on Fargate Spot up to {run.spot_attempts} times, then on Fargate.",
            "Parameters": {"event": _TOOL_EVENT, "attempt": 0, "waitSeconds": limits.spot_wait_seconds},
            "Next": f"Spot left {name}?",
        },
        f"Spot left {name}?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.attempt", "NumericLessThan": run.spot_attempts, "Next": f"Run {name} on Spot"}],
            "Default": f"Run {name} on demand",
        },
        f"Run {name} on Spot": run_on(
            "FARGATE_SPOT",
            [
                {"ErrorEquals": [ECS_TASK_FAILED], "ResultPath": "$.crash", "Next": f"Interrupted {name}?"},
                *_crash_catch(tool),
            ],
        ),
        f"Run {name} on demand": run_on("FARGATE", _crash_catch(tool)),
        f"Interrupted {name}?": {
            "Type": "Choice",
            "Comment": "A Spot interruption: the stopped task's StopCode, in the failure's Cause.",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.crash.Cause", "IsPresent": True},
                        {"Variable": "$.crash.Cause", "StringMatches": SPOT_INTERRUPTED_CAUSE},
                    ],
                    "Next": f"Back off {name}",
                }
            ],
            "Default": f"Crashed {name}",
        },
        f"Back off {name}": {"Type": "Wait", "SecondsPath": "$.waitSeconds", "Next": f"Again {name}"},
        f"Again {name}": {
            "Type": "Pass",
            "QueryLanguage": "JSONata",
            "Output": "{% {'event': $states.input.event, 'attempt': $states.input.attempt + 1, "
            f"'waitSeconds': $min([$states.input.waitSeconds * 2, {SPOT_MAX_WAIT_SECONDS}])}} %}}",
            "Next": f"Spot left {name}?",
        },
        f"Ran {name}": {
            "Type": "Pass",
            "Comment": "The container recorded the result (RUN#<executionId> / TOOL#<seq>#<name>): "
            "agent-prepare reads it, status included.",
            "Parameters": {
                "toolUseId.$": "$.event.toolUseId",
                "name.$": "$.event.name",
                "seq.$": "$.event.seq",
                "status": RECORDED,
                "outputRef": {"executionId.$": "$.event.executionId", "seq.$": "$.event.seq", "name.$": "$.event.name"},
            },
            "End": True,
        },
        f"Crashed {name}": _crashed("$.event"),
    }
    return entry, states


def _continuation_states(tool: ToolRoute, limits: WorkflowLimits) -> tuple[str, dict[str, dict]]:
    """A ``continuation`` call: the tool's Lambda does a slice and hands back a token, invoked
    again with it until it answers ``{"done": true, "result": <a tool's result>}``; at most
    ``max_slices`` slices."""
    if tool.max_slices < 1:
        raise ValueError(f"tool {tool.name!r}: max_slices must be at least 1, got {tool.max_slices}")
    name = tool.name
    entry = f"Start {name}"
    states = {
        entry: {
            "Type": "Pass",
            "Parameters": {"event": _TOOL_EVENT, "continuation": None, "slice": 1},
            "Next": f"Slice {name}",
        },
        f"Slice {name}": {
            "Type": "Task",
            "Resource": tool.function_arn,
            "Parameters": {**_event_at("$.event"), "continuation.$": "$.continuation"},
            "ResultPath": "$.sliced",
            "Retry": retry(limits),
            "Catch": _crash_catch(tool),
            "Next": f"Done {name}?",
        },
        f"Done {name}?": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.sliced.done", "BooleanEquals": True, "Next": f"Finished {name}"},
                {"Variable": "$.slice", "NumericGreaterThanEquals": tool.max_slices, "Next": f"Too many slices {name}"},
            ],
            "Default": f"Next slice {name}",
        },
        f"Next slice {name}": {
            "Type": "Pass",
            "Parameters": {
                "event.$": "$.event",
                "continuation.$": "$.sliced.continuation",
                "slice.$": "States.MathAdd($.slice, 1)",
            },
            "Next": f"Slice {name}",
        },
        f"Finished {name}": {"Type": "Pass", "OutputPath": "$.sliced.result", "End": True},
        f"Too many slices {name}": {
            "Type": "Pass",
            "Parameters": _tool_result("FAILED", f"the tool did not finish within {tool.max_slices} slices", "$.event"),
            "End": True,
        },
        f"Crashed {name}": _crashed("$.event"),
    }
    return entry, states


def tool_processor(functions: WorkflowFunctions, limits: WorkflowLimits, with_approvals: bool) -> dict:
    choices, states = [], {}
    for tool in functions.tools:
        if tool.long and not with_approvals:
            # The Express turn (5 minutes) never runs a long tool (agent-prepare does not offer
            # one either); a call the model makes anyway is answered, as for approval tools.
            entry = f"Runs long {tool.name}"
            states[entry] = {"Type": "Pass", "Parameters": _tool_result("FAILED", LONG_TOOL_IN_TURN), "End": True}
            choices.append({"Variable": "$.name", "StringEquals": tool.name, "Next": entry})
            continue
        if tool.requires_approval and not with_approvals:
            entry = f"Needs approval {tool.name}"
            states[entry] = {
                "Type": "Pass",
                "Parameters": _tool_result("FAILED", "this tool needs a human's approval; start a task to use it"),
                "End": True,
            }
            choices.append({"Variable": "$.name", "StringEquals": tool.name, "Next": entry})
            continue
        if tool.runtime == "fargate-spot":
            run, tool_states = _fargate_states(tool, limits, functions.partition)
        elif tool.runtime == "continuation":
            run, tool_states = _continuation_states(tool, limits)
        elif tool.runtime == "lambda":
            run, tool_states = _lambda_states(tool, limits)
        else:
            raise ValueError(f"tool {tool.name!r}: unknown runtime {tool.runtime!r}")
        states.update(tool_states)
        entry = run
        if tool.requires_approval:
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
                "Retry": retry(limits),
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
