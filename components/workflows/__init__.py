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

``common`` holds what every state shares, ``tools`` the tool calls' states, ``machines``
the loop and the two definitions, ``checks`` what a definition is checked for.
"""

from components.workflows.checks import lambda_arns, reachability_problems
from components.workflows.common import (
    APPROVAL_DENIED,
    BEDROCK_RETRYABLE,
    ECS_RETRYABLE,
    ECS_TASK_FAILED,
    HTTP_RETRYABLE,
    LAMBDA_RETRYABLE,
    LLM_UNAVAILABLE,
    LONG_TOOL_IN_TURN,
    MAX_CONFLICTS,
    SPOT_FIRST_WAIT_SECONDS,
    SPOT_MAX_WAIT_SECONDS,
    STORE_RETRYABLE,
    TRANSIENT_ERRORS,
    FargateRun,
    ModelCall,
    ToolRoute,
    WorkflowFunctions,
    WorkflowLimits,
)
from components.workflows.machines import task_definition, turn_definition
from components.workflows.tools import RECORDED

__all__ = [
    "APPROVAL_DENIED",
    "BEDROCK_RETRYABLE",
    "ECS_RETRYABLE",
    "ECS_TASK_FAILED",
    "HTTP_RETRYABLE",
    "LAMBDA_RETRYABLE",
    "LLM_UNAVAILABLE",
    "LONG_TOOL_IN_TURN",
    "MAX_CONFLICTS",
    "RECORDED",
    "SPOT_FIRST_WAIT_SECONDS",
    "SPOT_MAX_WAIT_SECONDS",
    "STORE_RETRYABLE",
    "TRANSIENT_ERRORS",
    "FargateRun",
    "ModelCall",
    "ToolRoute",
    "WorkflowFunctions",
    "WorkflowLimits",
    "lambda_arns",
    "reachability_problems",
    "task_definition",
    "turn_definition",
]
