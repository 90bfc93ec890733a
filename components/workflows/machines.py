"""The two machines' loop: a step (the run's context, Prepare, the model call or its
stream, Record), a step another turn raced, the answer or the tool calls and the next step,
and compensation when anything fails; the Express turn and the Standard task differ in
their limits and in the approvals only the task has."""

from __future__ import annotations

from collections.abc import Sequence

from components.workflows.common import (
    BEDROCK_RETRYABLE,
    HTTP_RETRYABLE,
    LAMBDA_RETRYABLE,
    LLM_UNAVAILABLE,
    MAX_CONFLICTS,
    STORE_RETRYABLE,
    ModelCall,
    WorkflowFunctions,
    WorkflowLimits,
    catch_all,
    retry,
)
from components.workflows.tools import tool_processor

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
                "Retry": retry(limits, BEDROCK_RETRYABLE),
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
            "Retry": retry(limits, HTTP_RETRYABLE),
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
            "Retry": retry(limits, STORE_RETRYABLE),
            "Catch": catch_all("Compensate"),
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
            "Retry": retry(limits, LAMBDA_RETRYABLE),
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
            "Retry": retry(limits, STORE_RETRYABLE),
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
            "ItemProcessor": tool_processor(functions, limits, with_approvals=kind == "task"),
            "ResultPath": "$.toolResults",
            "Catch": catch_all("Compensate"),
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
            "Retry": retry(limits, STORE_RETRYABLE),
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
