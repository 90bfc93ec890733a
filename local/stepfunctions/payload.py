"""Step Functions' payload quota: 256 KiB on every state's input and output, a terminal error past it.

moto checks only a state's output and a task's result, measured as ``json.dumps``'s default form
(spaces after separators, non-ASCII as ``\\uXXXX``). Here, as the service quotas page says
(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): every state's input
on entry, a task's input after Parameters/Arguments, every output and task result, counted as
compact UTF-8 JSON; and States.DataLimitExceeded is terminal: no Retry or Catch, States.ALL
included, handles it (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).

Not emulated: the quota on an execution's history events (moto keeps them all).
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from local.stepfunctions.errors import TaskErrorName, error_name_of
from local.stepfunctions.jsonata_eval import json_default

# https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html (quotas related to
# task executions, Standard and Express alike): "Maximum input or output size for a task,
# state, or execution: 256 KiB of data as a UTF-8 encoded string. This quota affects tasks
# (activity, Lambda function, or integrated service), state or execution output, and input
# data when scheduling a task, entering a state, or starting an execution."
PAYLOAD_LIMIT_BYTES = 256 * 1024
# https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
# States.DataLimitExceeded: "A terminal error that can't be caught by the States.ALL error
# type", reported when a connector's output, a state's output, or a state's input after
# Parameters processing is larger than the payload size quota ("States.ALL ... can't catch the
# States.DataLimitExceeded terminal error"). Terminal: here no retrier or catcher handles it.
DATA_LIMIT_EXCEEDED = StatesErrorNameType.StatesStatesDataLimitExceeded.to_name()


def payload_bytes(value: Any) -> int:
    """A payload's size as the quota counts it: its JSON (compact, every character written as
    itself) as UTF-8. moto counts ``json.dumps``'s default form, with spaces after separators
    and non-ASCII characters as ``\\uXXXX`` escapes (a CJK character 6 bytes, not 3)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)
    return len(text.encode("utf-8", "surrogatepass"))


def check_payload(state: Any, env: Any, value: Any, what: str) -> None:
    """Raise States.DataLimitExceeded when ``value`` is over the quota."""
    size = payload_bytes(value)
    if size <= PAYLOAD_LIMIT_BYTES:
        return
    cause = (
        f"The state/task '{state.name}' {what} is {size:,} bytes as UTF-8 JSON, over the "
        f"{PAYLOAD_LIMIT_BYTES:,}-byte (256 KiB) payload size quota."
    )
    raise FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(error=DATA_LIMIT_EXCEEDED, cause=cause)
            ),
        )
    )


def verify_size_quota(state: Any, env: Any, value: Any) -> None:
    """moto's hook for a state's output and a task's result."""
    check_payload(state, env, value, "returned a result that")


def verify_lambda_size_quota(state: Any, env: Any, value: Any) -> None:
    """The same for a Lambda function task, whose result moto passes with its invocation's
    envelope (StatusCode, ExecutedVersion): the function's payload is the task's result."""
    is_invocation = isinstance(value, dict) and "StatusCode" in value and "Payload" in value
    verify_size_quota(state, env, value["Payload"] if is_invocation else value)


def checking_input(original: Any) -> Any:
    """A state's evaluation that first checks its input ("entering a state"): the previous
    state's output is checked already, so this adds the execution's input and each Map
    iteration's item after ItemSelector."""

    def eval_body(state: Any, env: Any) -> None:
        check_payload(state, env, env.states._states_data["input"], "input")
        original(state, env)

    return eval_body


def checking_parameters(original: Any, lambda_payload: bool) -> Any:
    """A task's effective input, after Parameters or Arguments ("scheduling a task")."""

    def eval_parameters(state: Any, env: Any) -> dict:
        parameters = original(state, env)
        check_payload(
            state, env, parameters["Payload"] if lambda_payload else parameters, "input after Parameters/Arguments"
        )
        return parameters

    return eval_parameters


def error_equals_eval_body(original: Any) -> Any:
    """Retry and Catch matching: States.DataLimitExceeded is terminal, matched by no retrier
    or catcher (States.ALL, which the documentation names, included)."""

    def eval_body(decl: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if isinstance(error_name, ErrorName) and error_name.error_name == DATA_LIMIT_EXCEEDED:
            env.stack.pop()
            env.stack.append(False)
            return
        original(decl, env)

    return eval_body


def iteration_error_name(error_name: str | None) -> ErrorName:
    """The error a failed Map iteration or Parallel branch passes to its state, named as the
    branch failed: moto builds a ``CustomErrorName``, which refuses a ``States.`` name and so
    turned every one (States.DataLimitExceeded included) into States.Runtime."""
    return TaskErrorName(error_name) if error_name is None else error_name_of(error_name)
