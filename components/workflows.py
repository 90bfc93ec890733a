"""The agent loop as Amazon States Language: the Express "turn" and the Standard "task".

Pure: no Pulumi import. The same builder feeds the orchestration component, the workflow
tests (which execute the definitions in moto's interpreter) and the local stack.

Both machines loop: Prepare (a Lambda loads the conversation and builds the model request)
→ the model call → Record (a Lambda persists the step and decides) → Choice (final answer,
too many steps, or tool calls) → Map over the tool calls, each routed by name to its tool's
Lambda → Prepare. The model call is the state machine's own, so no Lambda is billed while
the model thinks: Bedrock's Converse through the AWS SDK integration, or an OpenAI-compatible
API through the HTTP Task, one state per endpoint, nearest first, each failing over to the
next. A WebSocket turn streams instead: a Lambda reads the model's stream and posts it to the
connection. The model call, the stream and Record are JSONata: the call's arguments are the
prepared request, whole, and each outputs only what the states after it read, since a
state's input and output are limited to 256 KiB; every other state is JSONPath.

Retries use exponential backoff with full jitter. A step that lost a race for the
conversation's next position (ConflictError) is prepared again, a few times. Anything
unrecoverable is caught: Compensate undoes the run's completed side effects in reverse order,
marks the turn failed in the session's history and tells a WebSocket client, and a Fail state
reports the original error. The task machine adds a ``.waitForTaskToken`` approval before
every tool that requires one; a denial or a timeout becomes that tool's result.

Long tools run in the task machine only (the Express turn answers for them with a Pass that
says to start a task, as for approval tools). A ``fargate-spot`` tool is an ECS task run with
``ecs:runTask.sync``: on Fargate Spot for its first ``spot_attempts`` runs, a Spot
interruption retried after a Wait that doubles, then once on on-demand Fargate; its result is
the one the container recorded, passed on by reference (``outputRef``) for agent-prepare to
read, status and all. A ``continuation`` tool is a Lambda invoked slice after slice with the
token it handed back, until it says it is done or ``max_slices`` ran out.
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
TRANSIENT_ERRORS = ["ToolTransientError"]
# The session's home replica could not be reached (handlers.shared.store.replicas): a retry
# reads and writes it in the session's next region.
STORE_RETRYABLE = [*LAMBDA_RETRYABLE, "ReplicaUnavailableError"]
# Bedrock's errors through the SDK integration are "BedrockRuntime.<Exception>"
# (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html#use-awssdk-integ);
# these pass: throttling, the service or the model busy, a request that timed out.
BEDROCK_RETRYABLE = [
    "BedrockRuntime.ThrottlingException",
    "BedrockRuntime.ServiceUnavailableException",
    "BedrockRuntime.InternalServerException",
    "BedrockRuntime.ModelNotReadyException",
    "BedrockRuntime.ModelTimeoutException",
    "States.Timeout",
]
# The HTTP Task fails with States.Http.StatusCode.<code> for a non-2xx answer and
# States.Http.Socket when no answer came (https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html).
HTTP_RETRYABLE = [
    "States.Http.StatusCode.429",
    "States.Http.StatusCode.500",
    "States.Http.StatusCode.502",
    "States.Http.StatusCode.503",
    "States.Http.StatusCode.504",
    "States.Http.Socket",
    "States.Timeout",
]
MAX_CONFLICTS = 3
APPROVAL_DENIED = "ApprovalDenied"
APPROVAL_GRACE_SECONDS = 300
LLM_UNAVAILABLE = "LlmUnavailableError"

# A Spot interruption, as ``ecs:runTask.sync`` reports it. ECS stops the task with the stop code
# SpotInterruption (the API's TaskStopCode enum; the task state change event shows
# "stopCode": "SpotInterruption", "stoppedReason": "Your Spot Task was interrupted.":
# https://repost.aws/knowledge-center/fargate-spot-termination-notice, after a two-minute
# warning sent to the container as SIGTERM). Step Functions then fails the Task state with
# States.TaskFailed and the stopped task's description (DescribeTasks' Task, PascalCase, as
# compact JSON) as the Cause: "StopCode":"...","StoppedReason":"...","Containers":[{"ExitCode":..}]
# (an execution's recorded failure: https://github.com/mcattarinussi/step-functions-runtask-retry/blob/master/test/data/error-events/failed-task-exit-code-1.json;
# retrying on the Cause's StoppedReason: https://github.com/toricls/aws-fargate-with-step-functions/blob/main/3-stoppedreason-based-error-handling/template.yml).
# The Choice matches the stop code in the Cause's text, which cannot fail the way parsing a
# Cause that is not JSON would (a Pass state has no Catch).
ECS_TASK_FAILED = "States.TaskFailed"
# ECS refused or could not place the task: an API error ("ECS.AmazonECSException", as a
# runTask.sync Retry names it: https://github.com/toricls/aws-fargate-with-step-functions/blob/main/3-stoppedreason-based-error-handling/template.yml),
# or RunTask's Failures (no Spot capacity, for one), which .sync turns into AmazonECS.Unknown
# (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html). Both pass; retried.
ECS_RETRYABLE = ["ECS.AmazonECSException", "AmazonECS.Unknown"]
SPOT_INTERRUPTED_CAUSE = '*"StopCode":"SpotInterruption"*'
SPOT_FIRST_WAIT_SECONDS = 30
"""The Wait after the first Spot interruption; it doubles after each one."""
SPOT_MAX_WAIT_SECONDS = 900
LONG_TOOL_IN_TURN = "this tool runs long; start a task (POST /v1/tasks) to use it"


@dataclass(frozen=True)
class FargateRun:
    """Where a ``fargate-spot`` tool's container task runs (``ecs:runTask.sync``)."""

    cluster_arn: str
    task_definition_arn: str
    container_name: str
    subnets: Sequence[str]
    security_groups: Sequence[str]
    assign_public_ip: bool = True
    spot_attempts: int = 3
    """Runs on FARGATE_SPOT before the last one on FARGATE."""


@dataclass(frozen=True)
class ToolRoute:
    name: str
    function_arn: str
    """The tool's Lambda (``lambda`` and ``continuation``); empty for ``fargate-spot``."""
    requires_approval: bool = False
    runtime: str = "lambda"
    """``lambda``, ``continuation`` or ``fargate-spot`` (``ToolConfig.runtime``)."""
    fargate: FargateRun | None = None
    max_slices: int = 100
    """``continuation``: the most slices one call may take."""
    timeout_seconds: int | None = None
    """``fargate-spot``: one run's TimeoutSeconds (the execution's own timeout bounds them all)."""

    @property
    def long(self) -> bool:
        """Runs in the task machine only (``ToolConfig.long``)."""
        return self.runtime in ("continuation", "fargate-spot")


@dataclass(frozen=True)
class WorkflowFunctions:
    prepare: str
    record: str
    stream: str
    """Reads a WebSocket turn's model stream and posts it to the connection."""
    compensate: str
    tools: Sequence[ToolRoute]
    approval_request: str | None = None
    """Records an approval and its task token (the task machine only)."""
    partition: str = "aws"


@dataclass(frozen=True)
class ModelCall:
    """How the state machine calls the model."""

    provider: str
    """``bedrock`` (Converse through the AWS SDK integration, in the machine's own region) or
    ``openai`` (the HTTP Task)."""
    endpoints: Sequence[str] = ()
    """``openai``: base URLs, nearest first; each is tried in turn."""
    connection_arn: str | None = None
    """``openai``: the EventBridge connection that holds the API key."""
    timeout_seconds: int = 60


@dataclass(frozen=True)
class WorkflowLimits:
    max_steps: int
    timeout_seconds: int
    approval_timeout_seconds: int = 3600
    tool_concurrency: int = 8
    retry_interval_seconds: int = 1
    retry_max_attempts: int = 4
    spot_wait_seconds: int = SPOT_FIRST_WAIT_SECONDS
    """The Wait after a fargate-spot tool's first Spot interruption; it doubles after each."""


def _retry(limits: WorkflowLimits, errors: Sequence[str] = (*LAMBDA_RETRYABLE, *TRANSIENT_ERRORS)) -> list[dict]:
    return [
        {
            "ErrorEquals": list(errors),
            "IntervalSeconds": limits.retry_interval_seconds,
            "BackoffRate": 2.0,
            "MaxAttempts": limits.retry_max_attempts,
            "MaxDelaySeconds": 30,
            "JitterStrategy": "FULL",
        }
    ]


def _catch_all(next_state: str) -> list[dict]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": next_state}]


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
            "Retry": _retry(limits),
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
            "Retry": _retry(limits, ECS_RETRYABLE),
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
            "Retry": _retry(limits),
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


def _tool_processor(functions: WorkflowFunctions, limits: WorkflowLimits, with_approvals: bool) -> dict:
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


# Every state's input and output must stay within Step Functions' 256 KiB payload quota, and
# going over is States.DataLimitExceeded, which no States.ALL catcher catches: the run ends
# without compensation (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html,
# https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html). So each
# state's output keeps only what the states after it read; tests/test_workflows.py runs a turn
# at every configured maximum under the local adapter, which enforces the quota.
_LOOP_KEYS = ("sessionId", "userId", "correlationId", "tools", "executionId", "startedAt", "connectionId", "mode")
"""The run's context: what every state after Record reads (and Compensate: its ids and connection)."""


def _fields(keys: Sequence[str], at: str = "$") -> dict[str, str]:
    """JSONPath Parameters: each of ``keys`` taken from the same name under ``at``."""
    return {f"{key}.$": f"{at}.{key}" for key in keys}


_LOOP_FIELDS = _fields(_LOOP_KEYS)
_INPUT_KEYS = ("sessionId", "userId", "correlationId", "tools", "message", "idempotencyKey", "connectionId")
"""What a run is started with (the APIs' start templates, the WebSocket route's function)."""
_STEP_KEYS = (*_LOOP_KEYS, "message", "idempotencyKey", "step", "toolResults", "conflicts")
"""A step's input (handlers.agent_step.StepInput): what Prepare reads, and a step read again reads."""
_RECORD_KEYS = (*_STEP_KEYS, "context")
"""What Record reads besides the model's answer: the step and Prepare's context, not the request."""


def _pick(keys: Sequence[str]) -> str:
    """JSONata: the state input's fields named ``keys`` (a null kept, an absent one left out)."""
    names = ", ".join(f"'{key}'" for key in keys)
    return f"$sift($states.input, function($v, $k) {{ $k in [{names}] }})"


def _with(keys: Sequence[str], field: str, value: str) -> str:
    """JSONata Output: the input's fields named ``keys``, plus ``field``: ``value``."""
    return f"{{% $merge([{_pick(keys)}, {{'{field}': {value}}}]) %}}"


def _jsonata_catch_all(next_state: str) -> dict:
    """A JSONata state's catcher: the failure and the run's context, for Compensate."""
    return {
        "ErrorEquals": ["States.ALL"],
        "Output": _with(_LOOP_KEYS, "failure", "$states.errorOutput"),
        "Next": next_state,
    }


def _model_states(model: ModelCall, limits: WorkflowLimits, partition: str) -> dict[str, dict]:
    """The model call, as the state machine's own Task states (JSONata: the arguments are the
    prepared request, whole). Each ends in Record; when every attempt failed, "Model
    unavailable" records why and goes to Compensate. Service integrations are named in the
    machine's partition: ``arn:aws-cn:states:::http:invoke`` in China
    (https://docs.amazonaws.cn/en_us/step-functions/latest/dg/connect-third-party-apis.html)."""
    unavailable = {
        "ErrorEquals": ["States.ALL"],
        "Output": _with(
            _LOOP_KEYS,
            "failure",
            f"{{'Error': '{LLM_UNAVAILABLE}', 'Cause': $string($states.errorOutput.Error) & ': ' & "
            "$string($states.errorOutput.Cause)}",
        ),
        "Next": "Compensate",
    }
    if model.provider == "bedrock":
        return {
            "Call model": {
                "Type": "Task",
                "QueryLanguage": "JSONata",
                "Comment": "Converse in this region (a cross-region inference profile id routes further).",
                "Resource": f"arn:{partition}:states:::aws-sdk:bedrockruntime:converse",
                "Arguments": "{% $states.input.request %}",
                "Output": _with(_RECORD_KEYS, "model", "{'converse': $states.result}"),
                "TimeoutSeconds": model.timeout_seconds,
                "Retry": _retry(limits, BEDROCK_RETRYABLE),
                "Catch": [unavailable],
                "Next": "Record",
            }
        }
    if not model.endpoints or not model.connection_arn:
        raise ValueError("an openai model call needs its endpoints and the connection that holds the API key")
    states: dict[str, dict] = {}
    for index, endpoint in enumerate(model.endpoints, start=1):
        last = index == len(model.endpoints)
        states[f"Call model {index}"] = {
            "Type": "Task",
            "QueryLanguage": "JSONata",
            "Comment": f"{endpoint} ({'the last endpoint' if last else 'then the next endpoint'})",
            "Resource": f"arn:{partition}:states:::http:invoke",
            "Arguments": {
                "ApiEndpoint": endpoint.rstrip("/") + "/chat/completions",
                "Method": "POST",
                "Authentication": {"ConnectionArn": model.connection_arn},
                "Headers": {"Content-Type": "application/json"},
                "RequestBody": "{% $states.input.request %}",
            },
            "Output": _with(_RECORD_KEYS, "model", "{'openai': $states.result.ResponseBody}"),
            "TimeoutSeconds": model.timeout_seconds,
            "Retry": _retry(limits, HTTP_RETRYABLE),
            "Catch": [
                unavailable
                if last
                else {"ErrorEquals": ["States.ALL"], "Output": "{% $states.input %}", "Next": f"Call model {index + 1}"}
            ],
            "Next": "Record",
        }
    return states


def _step_states(kind: str, functions: WorkflowFunctions, model: ModelCall, limits: WorkflowLimits) -> dict[str, dict]:
    """One step: the run's context, Prepare, the model call (or its stream) and Record."""
    first_model_state = "Call model" if model.provider == "bedrock" else "Call model 1"
    return {
        "Begin": {
            "Type": "Pass",
            "Comment": "The run's context: every later state reads it from here.",
            "Parameters": {
                **_fields(_INPUT_KEYS),
                "executionId.$": "$$.Execution.Name",
                "startedAt.$": "$$.Execution.StartTime",
                "mode": kind,
                "step": 1,
                "toolResults": [],
                "conflicts": 0,
            },
            "Next": "Prepare",
        },
        "Prepare": {
            "Type": "Task",
            "Comment": "Load the conversation (one Query) and build the model request; its output is the state.",
            "Resource": functions.prepare,
            "ResultPath": "$",
            "Retry": _retry(limits, STORE_RETRYABLE),
            "Catch": _catch_all("Compensate"),
            "Next": "Streaming?",
        },
        "Streaming?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.connectionId", "IsNull": False, "Next": "Stream model"}],
            "Default": first_model_state,
        },
        **_model_states(model, limits, functions.partition),
        "Stream model": {
            "Type": "Task",
            "QueryLanguage": "JSONata",
            "Comment": "A WebSocket turn: a Lambda reads the model's stream and posts it as it comes.",
            "Resource": functions.stream,
            "Arguments": "{% $states.input %}",
            "Output": _with(_RECORD_KEYS, "model", "$states.result"),
            "Retry": _retry(limits, LAMBDA_RETRYABLE),
            "Catch": [_jsonata_catch_all("Compensate")],
            "Next": "Record",
        },
        "Record": {
            "Type": "Task",
            "QueryLanguage": "JSONata",
            "Comment": "Persist the step (one write) and decide: the answer, or tool calls. Only the "
            "run's context and the decision go on.",
            "Resource": functions.record,
            "Arguments": "{% $states.input %}",
            "Output": _with(_LOOP_KEYS, "agent", "$states.result"),
            "Retry": _retry(limits, STORE_RETRYABLE),
            "Catch": [
                {"ErrorEquals": ["ConflictError"], "Output": f"{{% {_pick(_STEP_KEYS)} %}}", "Next": "Conflict"},
                _jsonata_catch_all("Compensate"),
            ],
            "Next": "Final answer?",
        },
    }


def _conflict_states() -> dict[str, dict]:
    """A step another turn raced: read the conversation again, a few times, then give up."""
    return {
        "Conflict": {
            "Type": "Choice",
            "Comment": "Another turn took the conversation's next position: read it again.",
            "Choices": [
                {"Variable": "$.conflicts", "NumericGreaterThanEquals": MAX_CONFLICTS, "Next": "Too many conflicts"}
            ],
            "Default": "Read again",
        },
        "Read again": {
            "Type": "Pass",
            "Parameters": {
                **_LOOP_FIELDS,
                **_fields(("message", "idempotencyKey", "step", "toolResults")),
                "conflicts.$": "States.MathAdd($.conflicts, 1)",
            },
            "Next": "Prepare",
        },
        "Too many conflicts": {
            "Type": "Pass",
            "Parameters": {
                **_LOOP_FIELDS,
                "failure": {
                    "Error": "ConflictError",
                    "Cause": f"other turns took the session's next position {MAX_CONFLICTS} times",
                },
            },
            "Next": "Compensate",
        },
    }


def _loop_states(kind: str, functions: WorkflowFunctions, limits: WorkflowLimits) -> dict[str, dict]:
    """After Record: the answer, too many steps, or the tool calls and the next step."""
    return {
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
                **_fields(("executionId", "startedAt", "userId", "sessionId", "correlationId")),
                **_fields(("seq", "name", "toolUseId", "input"), at="$$.Map.Item.Value"),
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
                **_LOOP_FIELDS,
                "message": None,
                "idempotencyKey": None,
                "step.$": "$.agent.step",
                "toolResults.$": "$.toolResults",
                "conflicts": 0,
            },
            "Next": "Prepare",
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
                **_LOOP_FIELDS,
                "failure": {
                    "Error": "MaxStepsExceeded",
                    "Cause": f"no final answer after {limits.max_steps} model calls",
                },
            },
            "Next": "Compensate",
        },
    }


def _failure_states(functions: WorkflowFunctions, limits: WorkflowLimits) -> dict[str, dict]:
    """Anything unrecoverable: Compensate undoes what the run did, then the run fails with the original error."""
    return {
        "Compensate": {
            "Type": "Task",
            "Comment": "Undo the run's completed side effects, newest first; mark the turn failed.",
            "Resource": functions.compensate,
            "Parameters": _fields(("executionId", "userId", "sessionId", "correlationId", "connectionId", "failure")),
            "ResultPath": "$.compensation",
            "Retry": _retry(limits, STORE_RETRYABLE),
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


def _definition(
    kind: str, functions: WorkflowFunctions, model: ModelCall, limits: WorkflowLimits, comment: str
) -> dict:
    states = {
        **_step_states(kind, functions, model, limits),
        **_conflict_states(),
        **_loop_states(kind, functions, limits),
        **_failure_states(functions, limits),
    }
    return {"Comment": comment, "StartAt": "Begin", "TimeoutSeconds": limits.timeout_seconds, "States": states}


def turn_definition(functions: WorkflowFunctions, model: ModelCall, limits: WorkflowLimits) -> dict:
    """The Express "turn": synchronous, under five minutes, no human in the loop."""
    if limits.timeout_seconds > 300:
        raise ValueError(f"an Express turn runs at most 300 s, got {limits.timeout_seconds}")
    return _definition("turn", functions, model, limits, "agent-infra chat turn (Express)")


def task_definition(functions: WorkflowFunctions, model: ModelCall, limits: WorkflowLimits) -> dict:
    """The Standard "task": long-running, with human approval before sensitive tools."""
    if any(t.requires_approval for t in functions.tools) and not functions.approval_request:
        raise ValueError("a task with approval tools needs the approval-request function")
    return _definition("task", functions, model, limits, "agent-infra long-running task (Standard)")


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
