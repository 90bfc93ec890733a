"""What every state of the two machines shares: the errors they retry and name, the Spot
interruption as ``runTask.sync`` reports it, what a machine is built from (its functions,
tools, model call and limits), and the Retry and Catch every Task carries."""

from __future__ import annotations

from collections.abc import Sequence
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


def retry(limits: WorkflowLimits, errors: Sequence[str] = (*LAMBDA_RETRYABLE, *TRANSIENT_ERRORS)) -> list[dict]:
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


def catch_all(next_state: str) -> list[dict]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": next_state}]
