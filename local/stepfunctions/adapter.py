"""What AWS Step Functions does that moto's copy of it lacks, added at runtime for the tests and the local stack.

moto (``moto.stepfunctions.parser``, a copy of LocalStack's v2 interpreter) runs our real
definitions, but its API layer and its task types stop short of what our callers and our
next state machines use. This module adds exactly those pieces, each resting on the AWS
documentation cited beside it:

=================================  ==========================================================
``StartSyncExecution``             the API action (and the ``sync-states`` host boto3 sends it
                                   to): runs an EXPRESS execution to its end and answers with
                                   AWS's response shape; STANDARD machines are refused.
``SendTaskFailure``                keeps the ``cause`` (moto's response layer drops it).
JSONata                            ``jsonata-python`` as the interpreter's evaluator, and JSON
                                   escaping for string variables it declares; a variable
                                   holding null is null (not undefined), whole numbers are
                                   JavaScript's (3.0 prints 3).
``aws-sdk:bedrockruntime:*``       sent as a real HTTP request to a configurable Converse
                                   endpoint (e.g. ``local.model.ScriptedModelServer``), with
                                   PascalCase parameters and results and SDK error names.
``aws-sdk:*`` parameters           PascalCase only, as AWS takes them: a key in another case
                                   (``tableName``) is refused, naming the PascalCase wanted.
``http:invoke``                    the HTTP Task: a real HTTP request, auth from the
                                   EventBridge connection, ``States.Http.StatusCode.<code>``.
parsing in parallel                each parse its own QueryLanguage scope stack (moto shares
                                   one between threads: parallel executions misread states).
the payload quota                  256 KiB on every state's input (on entry and after
                                   Parameters) and output, counted as UTF-8 JSON;
                                   States.DataLimitExceeded is terminal: no Retry or Catch
                                   (States.ALL included) handles it.
an early callback                  SendTaskSuccess/Failure before the task's heartbeat wait
                                   starts is seen at once (moto's wait slept HeartbeatSeconds).
``ecs:runTask.sync``               ECS's RunTask then DescribeTasks, as ``LocalEcs``: the task
                                   definition's container (a registered command, e.g. ``python
                                   -m handlers.longrun``) runs as a local process with the task
                                   definition's environment and the overrides'; the state gets
                                   the stopped task (PascalCase, LastStatus STOPPED, StopCode,
                                   StoppedReason, Containers[].ExitCode). Exit 0: success; any
                                   other exit, or a container that did not start
                                   (TaskFailedToStart): States.TaskFailed with that description
                                   as compact JSON in the Cause. A Spot interruption, injected
                                   on request on a FARGATE_SPOT task: SIGTERM, SIGKILL after the
                                   stop timeout, StopCode SpotInterruption. A state that times
                                   out (or an execution that stops) stops its task the same way.
=================================  ==========================================================

and three costs of moto's interpreter that grow with every execution, which the local stack
would otherwise pay on every chat turn (none changes what an execution does):

=================================  ==========================================================
parsed programs                    moto parses a definition with ANTLR at every execution
                                   (about 65 ms for our turn); parsed once per definition
                                   here (``ProgramCache``), the program shared by executions.
Lambda/SDK clients                 moto builds a boto3 client for every Lambda task (about
                                   7 ms); one per region, service and endpoint here.
``TMP_THREADS``                    moto appends every thread it starts to a module list and
                                   never removes it; finished ones are dropped here.
=================================  ==========================================================

Every patch of moto is made by ``StepFunctionsAdapter.install()`` (listed in ``_patch_moto``)
and undone by ``uninstall()``; ``with StepFunctionsAdapter(...):`` does both. Nothing here
edits moto's files. Use it inside ``moto.mock_aws(config=MOTO_CONFIG)``:

    with mock_aws(config=MOTO_CONFIG), StepFunctionsAdapter(converse_endpoint=model.url):
        sfn = boto3.client("stepfunctions")
        answer = sfn.start_sync_execution(stateMachineArn=arn, input="{}")

Over moto's HTTP server (``ThreadedMotoServer``) the same calls work once the adapter is
installed in the server's process; the client must not prepend ``sync-`` to the endpoint's
host: ``botocore.config.Config(inject_host_prefix=False)`` or
``AWS_DISABLE_HOST_PREFIX_INJECTION=true`` (see ``SYNC_CLIENT_CONFIG``).
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import contextlib
import copy
import datetime
import functools
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import jsonata
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import ListShape, MapShape, StructureShape
from moto import backend_index
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions import urls as stepfunctions_urls
from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser import utils as parser_utils
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.intrinsic.jsonata import get_intrinsic_functions_declarations
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.eval import states as eval_states
from moto.stepfunctions.parser.asl.eval import variable_store as eval_variable_store
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatEndpoint
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.parse import preprocessor
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.execution import SyncExecution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.utils import get_partition

from local.moto_instances import WeakInstances

# A client for StartSyncExecution against moto's HTTP server: boto3 would otherwise send it to
# ``sync-<endpoint host>``, which does not resolve for a loopback endpoint.
SYNC_CLIENT_CONFIG = Config(inject_host_prefix=False)

# StartSyncExecution is served on the ``sync-states.<region>.amazonaws.com`` endpoint
# (https://docs.aws.amazon.com/general/latest/gr/step-functions.html, synchronous Express);
# botocore's model gives the operation the host prefix ``sync-``.
_SYNC_HOST = r"https?://sync-states\.(.+)\.amazonaws\.com"

# https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html#API_StartSyncExecution_Errors
# "StateMachineTypeNotSupported: State machine type is not supported." (HTTP 400); the action
# "is not available for STANDARD workflows".


class StateMachineTypeNotSupported(AWSError):
    TYPE = "StateMachineTypeNotSupported"
    STATUS = 400


# https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
# "If an AWS SDK integration encounters an error, the resulting Error field is composed of the
# service name and the error name, separated by a period character: ServiceName.ErrorName. Both
# are in PascalCase" and always carry the "Exception" suffix. The Step Functions service name for
# the SDK integration ``bedrockruntime`` is the SDK's service id without spaces, ``BedrockRuntime``
# (botocore's ``serviceId`` for bedrock-runtime is "Bedrock Runtime").
_ROUTED_SDK_SERVICES = {"bedrockruntime": "bedrock-runtime"}

# https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html
# "HTTP Task requests time out after 60 seconds" (Connectivity for an HTTP Task).
_HTTP_TASK_TIMEOUT_SECONDS = 60.0


# https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html
# The HTTP Task reports errors named States.Http.StatusCode.<code> and States.Http.Socket, which
# definitions name in Retry and Catch; moto's grammar knows only the older States.* names and
# refuses any other name with that prefix.
_SERVICE_STATES_ERRORS = ("States.Http.",)


class _ErrorName(CustomErrorName):
    """A custom error name, or one of the service-defined ``States.Http.*`` names. Not a
    ``StatesErrorName``, so ``States.TaskFailed`` and ``States.ALL`` match it, as on AWS
    (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html)."""

    def __init__(self, error_name: str | None) -> None:
        if error_name is not None and error_name.startswith(_SERVICE_STATES_ERRORS):
            ErrorName.__init__(self, error_name=error_name)
        else:
            super().__init__(error_name=error_name)


class _TaskFailure(Exception):
    """A task failure with a Step Functions error name and cause (caught by Retry/Catch)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


def _error_name(error: str) -> ErrorName:
    try:
        return StatesErrorName.from_name(error)  # States.Runtime, States.Timeout, ...
    except ValueError:
        return _ErrorName(error)


def _task_failure_event(task: StateTaskService, env: Any, error: str, cause: str) -> FailureEvent:
    return FailureEvent(
        env=env,
        error_name=_error_name(error),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(
            taskFailedEventDetails=TaskFailedEventDetails(
                resource=task._get_sfn_resource(),
                resourceType=task._get_sfn_resource_type(),
                error=error,
                cause=cause,
            )
        ),
    )


# ---------------------------------------------------------------------------------------------
# JSONata
# ---------------------------------------------------------------------------------------------


def evaluate_jsonata(expression: str, bindings: dict[str, Any] | None = None) -> Any:
    """The interpreter's JSONata hook: the expression's value as plain JSON data (None when
    undefined; the interpreter tells null from undefined with ``$exists``). ``bindings``:
    variables (name without ``$`` → JSON data) the expression sees, as Step Functions binds
    ``$states`` and the workflow's variables."""
    try:
        # A compiled expression is shared; each evaluation runs on a shallow copy of it (an
        # evaluation sets the instance's timestamp), as jsonata-python's per-thread copies do.
        instance = copy.copy(_compiled_jsonata(expression))
        jsonata.Jsonata.CURRENT.jsonata = instance
        value = instance.evaluate(None, bindings or {})
        # jsonata-python answers JSONata arrays as its own list type; functions are not JSON.
        return json.loads(json.dumps(value))
    except Exception as error:
        failure = moto_jsonata.JSONataException("UNKNOWN", str(error))
        failure.args = (f"{type(error).__name__}: {error}",)  # so the execution's cause says what failed
        raise failure from error


JSONATA_NULL = jsonata.utils.Utils.NULL_VALUE
"""jsonata-python's JSON null; a binding of None is undefined to it."""

_JSONATA_CACHE_SIZE = 512
_jsonata_cache: collections.OrderedDict[str, Any] = collections.OrderedDict()
_jsonata_cache_lock = threading.Lock()


def _compiled_jsonata(expression: str) -> Any:
    with _jsonata_cache_lock:
        compiled = _jsonata_cache.get(expression)
        if compiled is not None:
            _jsonata_cache.move_to_end(expression)
            return compiled
    compiled = jsonata.Jsonata(expression)  # a syntax error raises here, every time
    with _jsonata_cache_lock:
        _jsonata_cache[expression] = compiled
        while len(_jsonata_cache) > _JSONATA_CACHE_SIZE:
            _jsonata_cache.popitem(last=False)
    return compiled


def jsonata_bindings(env: Any, references: set[str]) -> dict[str, Any]:
    """What moto would write into the expression as ``$name:=<JSON>;`` declarations, as
    variables instead: ``$states`` (the parts of it the expression names, as moto chooses
    them) and the workflow's variables, outer scope first. Encoded and decoded with moto's own
    JSON encoder (datetimes become ISO strings, as in moto's declarations), so the expression
    works on a copy, never on the execution's own data."""
    data = env.states._states_data
    if not references or eval_states._STATES_PREFIX in references:
        states = data
    else:
        candidates = {
            "input": eval_states._STATES_INPUT_PREFIX,
            "context": eval_states._STATES_CONTEXT_PREFIX,
            "result": eval_states._STATES_RESULT_PREFIX,
            "errorOutput": eval_states._STATES_ERROR_OUTPUT_PREFIX,
        }
        states = {}
        for reference in references:
            for key, prefix in list(candidates.items()):
                if reference.startswith(prefix):
                    states[key] = data[key]
                    del candidates[key]
                    break
    store = env.variable_store
    variables = {**store._outer_scope, **store._inner_scope}
    bindings = json.loads(to_json_str({**variables, "states": states}), parse_float=_javascript_number)
    # A variable holding null is a value in JSONata ($exists is true, `= null` holds);
    # jsonata-python reads a binding of None as undefined, and its own null as null.
    return {name: JSONATA_NULL if value is None else value for name, value in bindings.items()}


def _javascript_number(text: str) -> float | int:
    """A JSON number as JSONata on AWS holds it: a JavaScript number has no integral and
    float kinds, so JSON's ``3.0`` is ``3`` and prints as ``3``
    (https://tc39.es/ecma262/#sec-numeric-types-number-tostring); Python's json reads a
    float that jsonata-python then prints as ``3.0``. Whole values below 1e21, where
    JavaScript turns to exponent notation, become ints."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 1e21 else value


def _string_jsonata_eval_body(original: Any) -> Any:
    """``StringJSONata._eval_body`` (a ``{% ... %}`` string), with ``$states`` and the
    variables bound as data instead of written into the expression as JSON text that
    JSONata then tokenises again: the compiled expression is reused, whatever the data.

    moto's own path still runs where it decides more than the value: an expression that uses
    Step Functions' JSONata functions ($partition, $hash, $uuid, ...: declared by moto as
    JSONata code), and a result that is null or undefined (moto tells them apart and fails
    the state on undefined). A string result needs no check: its JSONata type is a string."""

    def eval_body(component: Any, env: Any) -> None:
        references = moto_jsonata.extract_jsonata_variable_references(component.expression)
        if get_intrinsic_functions_declarations(variable_references=references):
            original(component, env)
            return
        result = evaluate_jsonata(component.expression, jsonata_bindings(env, references))
        if result is None:
            original(component, env)
            return
        env.stack.append(result)

    return eval_body


def encode_jsonata_variable_declarations(bindings: dict[str, Any]) -> str:
    """``$name:=<value>;`` for each binding, every value a JSON literal (moto quotes strings
    without escaping them, so a variable holding a quote or a newline breaks every expression).
    JSONata string literals take JSON's escapes: https://docs.jsonata.org/simple"""
    # Characters outside the BMP written as themselves, not as an escaped surrogate pair, which
    # jsonata-python reads as two characters: the declared string is then the one bound as
    # data (json.dumps still escapes quotes, backslashes and control characters).
    return "".join(
        f"{name}:={json.dumps(value, separators=(',', ':'), ensure_ascii=False, default=_json_default)};"
        for name, value in bindings.items()
    )


def _json_default(value: Any) -> str:
    """What moto's declarations write for what JSON has no type for (its to_json_str)."""
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------
# The payload quota: 256 KiB on every state's input and output, a terminal error past it
# ---------------------------------------------------------------------------------------------

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
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return len(text.encode("utf-8", "surrogatepass"))


def _check_payload(state: Any, env: Any, value: Any, what: str) -> None:
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


def _verify_size_quota(state: Any, env: Any, value: Any) -> None:
    """moto's hook for a state's output and a task's result."""
    _check_payload(state, env, value, "returned a result that")


def _verify_lambda_size_quota(state: Any, env: Any, value: Any) -> None:
    """The same for a Lambda function task, whose result moto passes with its invocation's
    envelope (StatusCode, ExecutedVersion): the function's payload is the task's result."""
    is_invocation = isinstance(value, dict) and "StatusCode" in value and "Payload" in value
    _verify_size_quota(state, env, value["Payload"] if is_invocation else value)


def _checking_input(original: Any) -> Any:
    """A state's evaluation that first checks its input ("entering a state"): the previous
    state's output is checked already, so this adds the execution's input and each Map
    iteration's item after ItemSelector."""

    def eval_body(state: Any, env: Any) -> None:
        _check_payload(state, env, env.states._states_data["input"], "input")
        original(state, env)

    return eval_body


def _checking_parameters(original: Any, lambda_payload: bool) -> Any:
    """A task's effective input, after Parameters or Arguments ("scheduling a task")."""

    def eval_parameters(state: Any, env: Any) -> dict:
        parameters = original(state, env)
        _check_payload(
            state, env, parameters["Payload"] if lambda_payload else parameters, "input after Parameters/Arguments"
        )
        return parameters

    return eval_parameters


def _error_equals_eval_body(original: Any) -> Any:
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


def _iteration_error_name(error_name: str | None) -> ErrorName:
    """The error a failed Map iteration or Parallel branch passes to its state, named as the
    branch failed: moto builds a ``CustomErrorName``, which refuses a ``States.`` name and so
    turned every one (States.DataLimitExceeded included) into States.Runtime."""
    return _ErrorName(error_name) if error_name is None else _error_name(error_name)


# ---------------------------------------------------------------------------------------------
# aws-sdk:bedrockruntime:* → a real Converse endpoint
# ---------------------------------------------------------------------------------------------


@cache
def _service_model(boto_service: str) -> Any:
    return botocore.session.get_session().get_service_model(boto_service)


class _AwsSdkTask(StateTaskServiceAwsSdk):
    """moto's AWS SDK task; for the services in ``_ROUTED_SDK_SERVICES`` the call goes over HTTP
    to the adapter's endpoint instead of to moto (which has no Bedrock Runtime)."""

    def __init__(self, adapter: StepFunctionsAdapter) -> None:
        super().__init__()
        self._adapter = adapter

    def _routed(self) -> bool:
        return self.resource.api_name in _ROUTED_SDK_SERVICES

    def _operation(self) -> Any:
        service = _ROUTED_SDK_SERVICES.get(self.resource.api_name) or self._get_boto_service_name()
        action = self.resource.api_action  # converse → Converse, putItem → PutItem
        return _service_model(service).operation_model(action[:1].upper() + action[1:])

    def _normalise_parameters(self, parameters: dict, boto_service_name=None, service_action_name=None) -> None:
        # https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
        # "Parameters in Step Functions are expressed in PascalCase, even if the native service
        # API is in camelCase" (ModelId, Messages, ToolConfig; TableName, Item). moto matches
        # keys in any case (tableName reaches DynamoDB as TableName); here any other spelling
        # of a member is refused, naming the key and its PascalCase. (AWS refuses a wrong
        # field of static Parameters at CreateStateMachine: "SCHEMA_VALIDATION_FAILED: The
        # field ... is not supported by Step Functions", https://github.com/aws/aws-cdk/issues/29968;
        # our Arguments are expressions, so the check is made when the task runs.)
        converted = self._service_parameters(parameters, self._operation().input_shape, "")
        parameters.clear()
        parameters.update(converted)

    def _service_parameters(self, value: Any, shape: Any, path: str) -> Any:
        """``value`` with Step Functions' member names turned into the service model's, at every
        level; a document (a tool's input, a JSON schema) and a map's keys are data, kept."""
        if isinstance(value, dict) and isinstance(shape, StructureShape) and not shape.is_document_type:
            members = {StateTaskService._to_sfn_cased(member): member for member in shape.members}
            converted = {}
            for key, item in value.items():
                if key not in members:
                    raise _TaskFailure("States.Runtime", self._parameter_problem(path + key, key, members))
                member = members[key]
                converted[member] = self._service_parameters(item, shape.members[member], f"{path}{key}.")
            return converted
        if isinstance(value, list) and isinstance(shape, ListShape):
            return [self._service_parameters(item, shape.member, path) for item in value]
        if isinstance(value, dict) and isinstance(shape, MapShape):
            return {key: self._service_parameters(item, shape.value, f"{path}{key}.") for key, item in value.items()}
        if isinstance(shape, StructureShape | ListShape | MapShape):
            return value  # a document, or a value of the wrong type: the service says what is wrong
        return self._to_boto_request_value(value, shape)  # moto's: a string member given JSON, a blob

    def _parameter_problem(self, where: str, key: str, members: dict[str, str]) -> str:
        resource = f"aws-sdk:{self.resource.api_name}:{self.resource.api_action}"
        pascal = next((name for name in members if name.lower() == key.lower()), None)
        if pascal is not None:
            return (
                f"{resource}: the parameter '{where}' must be written '{pascal}': Step Functions takes "
                "an AWS SDK integration's parameters in PascalCase, even where the service's API is camelCase"
            )
        return (
            f"{resource}: '{where}' is not a parameter of the API; at that level it takes {', '.join(sorted(members))}"
        )

    def _normalise_response(self, response: Any, boto_service_name=None, service_action_name=None) -> None:
        # The result comes back with the same PascalCase member names (Output.Message.Content,
        # StopReason, Usage.InputTokens); free-form documents (a tool's input) keep their keys.
        if self._routed():
            self._from_boto_response(response, self._operation().output_shape)

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> None:
        if not self._routed():
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        client = self._adapter.sdk_client(self.resource.api_name, resource_runtime_part.region)
        response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(response)

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, _TaskFailure):
            return _task_failure_event(self, env, ex.error, ex.cause)
        if not (self._routed() and isinstance(ex, ClientError)):
            return super()._from_error(env=env, ex=ex)
        # https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
        # Error "ServiceName.ErrorName" with the Exception suffix, e.g. BedrockRuntime.ThrottlingException.
        service = _service_model(_ROUTED_SDK_SERVICES[self.resource.api_name]).service_id.replace(" ", "")
        code = ex.response.get("Error", {}).get("Code") or type(ex).__name__
        error = f"{service}.{code}" if code.endswith("Exception") else f"{service}.{code}Exception"
        metadata = ex.response.get("ResponseMetadata", {})
        cause = (
            f"{ex.response.get('Error', {}).get('Message', '')} (Service: {service}, "
            f"Status Code: {metadata.get('HTTPStatusCode')}, Request ID: {metadata.get('RequestId', '')})"
        )
        return _task_failure_event(self, env, error, cause)


# ---------------------------------------------------------------------------------------------
# http:invoke → the HTTP Task
# ---------------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _form_encode(body: dict[str, Any], array_format: str) -> str:
    # https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html
    # Transform.RequestBodyEncoding URL_ENCODED, RequestEncodingOptions.ArrayFormat
    # INDICES (default: a[0]=x&a[1]=y), REPEAT (a=x&a=y), COMMAS (a=x,y), BRACKETS (a[]=x&a[]=y).
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        if isinstance(value, list):
            items = [_scalar(item) for item in value]
            if array_format == "REPEAT":
                pairs += [(key, item) for item in items]
            elif array_format == "COMMAS":
                pairs.append((key, ",".join(items)))
            elif array_format == "BRACKETS":
                pairs += [(f"{key}[]", item) for item in items]
            else:
                pairs += [(f"{key}[{i}]", item) for i, item in enumerate(items)]
        else:
            pairs.append((key, _scalar(value)))
    return urllib.parse.urlencode(pairs)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


class _HttpInvokeTask(StateTaskService):
    """``arn:aws:states:::http:invoke``: https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html"""

    def __init__(self, adapter: StepFunctionsAdapter) -> None:
        super().__init__()
        self._adapter = adapter

    def _validate_service_integration_is_supported(self) -> None:
        pass

    def _get_sfn_resource_type(self) -> str:
        return "http"

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> None:
        env.stack.append(self._adapter.http_invoke(normalised_parameters))

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, _TaskFailure):
            return _task_failure_event(self, env, ex.error, ex.cause)
        return super()._from_error(env=env, ex=ex)


# ---------------------------------------------------------------------------------------------
# ecs:runTask.sync → the task's container as a local process
# ---------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
LONGRUN_COMMAND = (sys.executable, "-m", "handlers.longrun")
"""The container's entrypoint, as the image runs it (the Dockerfile's command)."""
# ECS's default stop timeout when a container definition sets none; Fargate allows at most 120 s
# (https://repost.aws/knowledge-center/fargate-spot-termination-notice).
DEFAULT_STOP_TIMEOUT_SECONDS = 30.0
# The stopped task's fields, as DescribeTasks (API_Task) and the Spot interruption event name them:
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html (stopCode: TaskStopCode),
# https://repost.aws/knowledge-center/fargate-spot-termination-notice ("stopCode":
# "SpotInterruption", "stoppedReason": "Your Spot Task was interrupted."), and an essential
# container that exited: "Essential container in task exited" (an execution's recorded Cause:
# https://github.com/mcattarinussi/step-functions-runtask-retry/blob/master/test/data/error-events/failed-task-exit-code-1.json).
EXITED = ("EssentialContainerExited", "Essential container in task exited")
SPOT_INTERRUPTED = ("SpotInterruption", "Your Spot Task was interrupted.")
USER_STOPPED = ("UserInitiated", "Task stopped by AWS Step Functions")
# https://docs.aws.amazon.com/AmazonECS/latest/userguide/stopped-task-error-codes.html
# "CannotStartContainerError: This error occurs when a container can't be started."
FAILED_TO_START = "TaskFailedToStart"
# RunTask refused (bad parameters, an unknown task definition): the ECS API error as a runTask
# state's Retry names it (components.workflows.ECS_RETRYABLE).
ECS_API_ERROR = "ECS.AmazonECSException"


@dataclass(frozen=True)
class LocalTaskDefinition:
    """A registered task definition's one container, as the local stack runs it."""

    arn: str
    container_name: str
    environment: Mapping[str, str]
    command: Sequence[str] = LONGRUN_COMMAND
    stop_timeout_seconds: float = DEFAULT_STOP_TIMEOUT_SECONDS
    cwd: Path = ROOT


@dataclass
class _Interruption:
    """A Spot interruption to inject into the next Spot task: once ``when()`` holds (polled),
    or ``after_seconds`` after the task started."""

    after_seconds: float
    when: Callable[[], bool] | None


class _RunningTask:
    def __init__(self, arn: str, spot: bool, process: subprocess.Popen) -> None:
        self.arn, self.spot, self.process = arn, spot, process
        self.started = time.monotonic()
        self.stop: tuple[str, str] | None = None  # (stop code, reason) once asked to stop
        self.kill_at: float | None = None
        self.interruption: _Interruption | None = None
        self.work_items = 0
        """The container's ``work item`` log lines so far (one per item done)."""


class LocalEcs:
    """RunTask and DescribeTasks for ``ecs:runTask.sync``, each task a local process.

    ``register`` a task definition (the local stack: one per fargate-spot tool); ``run_task``
    runs one to its end as the .sync integration waits for it; ``interrupt_next`` injects a
    Spot interruption into the next Spot task (a test, the demo); ``stopped`` keeps each
    finished task's description. ``log(line)`` hears the containers' output."""

    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self.definitions: dict[str, LocalTaskDefinition] = {}
        self.stopped: list[dict[str, Any]] = []
        self.running: dict[str, _RunningTask] = {}
        self._planned: list[_Interruption] = []
        self._lock = threading.Lock()
        self._log = log
        self.spot_trigger: Path | None = None
        """A file another process writes to interrupt the next Spot task (``make demo``; by
        hand: ``echo '{"afterItems": 2}' > build/spot-interruption``): read and removed when
        that task starts; it is interrupted once it has done ``afterItems`` work items (0: as
        it starts)."""

    def register(self, definition: LocalTaskDefinition) -> None:
        self.definitions[definition.arn] = definition

    def interrupt_next(
        self, count: int = 1, after_seconds: float = 0.0, when: Callable[[], bool] | None = None
    ) -> None:
        """Interrupt the next ``count`` tasks that start on FARGATE_SPOT."""
        with self._lock:
            self._planned.extend(_Interruption(after_seconds, when) for _ in range(count))

    def interrupt(self, task_arn: str) -> None:
        """A Spot interruption of a running Spot task, now."""
        with self._lock:
            task = self.running.get(task_arn)
            if task is None:
                raise KeyError(f"no running task {task_arn}")
            if not task.spot:
                raise ValueError(f"{task_arn} runs on FARGATE: only a FARGATE_SPOT task is interrupted")
            task.interruption = _Interruption(0.0, None)

    # -- RunTask, to the task's end -------------------------------------------------------------

    def run_task(self, parameters: dict[str, Any], region: str, is_running: Callable[[], bool]) -> dict[str, Any]:
        """The stopped task (DescribeTasks' Task, PascalCase); ``_TaskFailure`` as Step
        Functions fails the state. ``is_running()`` false (the state timed out, the execution
        stopped): the task is stopped as StopTask does (SIGTERM, SIGKILL after the timeout)."""
        definition, spot, environment, override = self._placement(parameters)
        task_id = uuid.uuid4().hex
        cluster = parameters["Cluster"]
        account = cluster.split(":")[4] if cluster.startswith("arn:") else "123456789012"
        cluster_name = cluster.rsplit("/", 1)[-1]
        arn = f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/{task_id}"
        created = _now_ms()
        description: dict[str, Any] = {
            "TaskArn": arn,
            "ClusterArn": cluster
            if cluster.startswith("arn:")
            else f"arn:aws:ecs:{region}:{account}:cluster/{cluster}",
            "TaskDefinitionArn": definition.arn,
            "CapacityProviderName": "FARGATE_SPOT" if spot else "FARGATE",
            "LaunchType": "FARGATE",
            "StartedBy": "AWS Step Functions",
            "Group": "family:" + definition.arn.rsplit("/", 1)[-1].split(":")[0],
            "Overrides": {"ContainerOverrides": [override]} if override else {"ContainerOverrides": []},
            "CreatedAt": created,
            "DesiredStatus": "STOPPED",
            "LastStatus": "STOPPED",
        }
        container: dict[str, Any] = {
            "Name": definition.container_name,
            "ContainerArn": f"arn:aws:ecs:{region}:{account}:container/{cluster_name}/{task_id}/{uuid.uuid4()}",
            "TaskArn": arn,
            "LastStatus": "STOPPED",
        }
        try:
            process = subprocess.Popen(  # noqa: S603 - a registered task definition's own command
                list(definition.command),
                cwd=definition.cwd,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as error:
            reason = f"CannotStartContainerError: {error}"
            container["Reason"] = reason
            description.update(StopCode=FAILED_TO_START, StoppedReason=reason, StoppedAt=_now_ms())
            return self._finished(description, [container])
        description["StartedAt"] = _now_ms()
        task = _RunningTask(arn, spot, process)
        with self._lock:
            if spot and self._planned:
                task.interruption = self._planned.pop(0)
            elif spot:
                task.interruption = self._triggered(task)
            self.running[arn] = task
        reader = threading.Thread(target=self._read_output, args=(process, task), name="ecs-task-output", daemon=True)
        reader.start()
        try:
            self._wait(task, definition, is_running)
        finally:
            with self._lock:
                self.running.pop(arn, None)
            reader.join(timeout=5)
        code, reason = task.stop or EXITED
        container["ExitCode"] = _exit_code(process.returncode)
        description.update(StopCode=code, StoppedReason=reason, StoppedAt=_now_ms())
        if task.stop is not None:
            description["StoppingAt"] = description["StoppedAt"]
        return self._finished(description, [container])

    def _placement(self, parameters: dict[str, Any]) -> tuple[LocalTaskDefinition, bool, dict[str, str], dict | None]:
        """The task definition, whether it runs on Spot, the container's environment and the
        override as given: RunTask's checks, with ECS's messages."""

        def refused(message: str) -> _TaskFailure:
            return _TaskFailure(
                ECS_API_ERROR,
                f"{message} (Service: AmazonECS; Status Code: 400; Error Code: InvalidParameterException)",
            )

        if not parameters.get("Cluster"):
            raise refused("Cluster is required here: the local ECS has no default cluster")
        definition = self.definitions.get(parameters.get("TaskDefinition", ""))
        if definition is None:
            raise refused(f"Unable to find task definition {parameters.get('TaskDefinition')!r}")
        strategy = parameters.get("CapacityProviderStrategy") or []
        if strategy and parameters.get("LaunchType"):
            # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
            raise refused("If a capacityProviderStrategy is specified, the launchType parameter must be omitted")
        providers = {item.get("CapacityProvider") for item in strategy}
        if providers - {"FARGATE", "FARGATE_SPOT"}:
            raise refused(f"The local ECS has FARGATE and FARGATE_SPOT only, not {sorted(providers)}")
        spot = providers == {"FARGATE_SPOT"}
        overrides = (parameters.get("Overrides") or {}).get("ContainerOverrides") or []
        environment = {"PATH": os.environ.get("PATH", ""), **definition.environment}
        given = None
        for override in overrides:
            if override.get("Name") != definition.container_name:
                raise refused(
                    f"Override for container named {override.get('Name')} is not a container in the TaskDefinition."
                )
            environment.update({item["Name"]: item["Value"] for item in override.get("Environment") or []})
            given = override
        return definition, spot, environment, given

    def _wait(self, task: _RunningTask, definition: LocalTaskDefinition, is_running: Callable[[], bool]) -> None:
        """Until the process ends: inject the planned interruption, stop the task when the
        state no longer runs, SIGKILL once the stop timeout is over."""
        process = task.process
        while process.poll() is None:
            now = time.monotonic()
            interruption = task.interruption
            if task.stop is None and interruption is not None:
                due = (
                    interruption.when()
                    if interruption.when is not None
                    else now - task.started >= interruption.after_seconds
                )
                if due:
                    self._stop(task, SPOT_INTERRUPTED, definition)
            if task.stop is None and not is_running():
                self._stop(task, USER_STOPPED, definition)
            if task.kill_at is not None and now >= task.kill_at:
                process.kill()
                task.kill_at = None
            time.sleep(0.02)

    def _stop(self, task: _RunningTask, why: tuple[str, str], definition: LocalTaskDefinition) -> None:
        # ECS sends SIGTERM, then SIGKILL once the container's stop timeout is over
        # (https://repost.aws/knowledge-center/fargate-spot-termination-notice).
        task.stop = why
        task.process.send_signal(signal.SIGTERM)
        task.kill_at = time.monotonic() + definition.stop_timeout_seconds

    def _finished(self, description: dict[str, Any], containers: list[dict[str, Any]]) -> dict[str, Any]:
        description["Containers"] = containers
        with self._lock:
            self.stopped.append(description)
        if all(c.get("ExitCode") == 0 for c in containers):
            return description
        raise _TaskFailure(ECS_TASK_FAILED, json.dumps(description, separators=(",", ":")))

    def _triggered(self, task: _RunningTask) -> _Interruption | None:
        """The interruption ``spot_trigger`` asks for, once (the file is removed)."""
        if self.spot_trigger is None:
            return None
        try:
            text = self.spot_trigger.read_text()
            self.spot_trigger.unlink()
        except FileNotFoundError:
            return None
        try:
            after = int(json.loads(text or "{}").get("afterItems", 0))
        except (ValueError, AttributeError, TypeError):
            after = 0  # a trigger that says nothing readable interrupts at the start
        return _Interruption(0.0, lambda: task.work_items >= after)

    def _read_output(self, process: subprocess.Popen, task: _RunningTask | None = None) -> None:
        for line in process.stdout or ():
            if task is not None and '"message": "work item"' in line:
                task.work_items += 1
            if self._log is not None:
                self._log(line.rstrip("\n"))


# Step Functions fails a runTask.sync state whose task stopped with a non-zero exit with this
# error and the task's description as the Cause (components.workflows.ECS_TASK_FAILED).
ECS_TASK_FAILED = "States.TaskFailed"


def _exit_code(returncode: int | None) -> int | None:
    """A container's exit code as ECS reports it: a process ended by a signal exits 128 +
    the signal's number (137 after SIGKILL, 143 after SIGTERM), as in "Common exit codes":
    https://repost.aws/knowledge-center/ecs-task-stopped"""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


def _now_ms() -> int:
    return int(time.time() * 1000)


class _EcsRunTask(StateTaskService):
    """``arn:aws:states:::ecs:runTask.sync`` answered by the adapter's ``LocalEcs``:
    https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html"""

    def __init__(self, adapter: StepFunctionsAdapter) -> None:
        super().__init__()
        self._adapter = adapter

    def _validate_service_integration_is_supported(self) -> None:
        if self.resource.api_action != "runTask" or self.resource.condition != "sync":
            raise ValueError(
                f"The local adapter answers arn:aws:states:::ecs:runTask.sync only, not {self.resource.resource_arn}"
            )

    def _get_sfn_resource(self) -> str:
        return "runTask.sync"

    def _get_sfn_resource_type(self) -> str:
        return "ecs"

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> None:
        env.stack.append(
            self._adapter.ecs.run_task(normalised_parameters, resource_runtime_part.region, env.is_running)
        )

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, _TaskFailure):
            return _task_failure_event(self, env, ex.error, ex.cause)
        return super()._from_error(env=env, ex=ex)


def _own_query_language_scopes(parser: preprocessor.Preprocessor) -> list:
    """The parse's own stack of QueryLanguage scopes, made on first use (patch 6)."""
    return parser.__dict__.setdefault("_own_query_language_scopes", [])


# ---------------------------------------------------------------------------------------------
# What moto's interpreter would redo at every execution
# ---------------------------------------------------------------------------------------------


class ProgramCache:
    """``AmazonStateLanguageParser.parse``, once per definition (the most recent ``size`` kept).

    A parsed program is a tree of components holding only the definition: each execution's
    state lives in its own ``Environment`` (stack, heap, frames, event history), so one
    program serves every execution of its definition, concurrently too. The one value a
    component computes lazily, its ``heap_key`` (a random id naming its slot in an
    environment's heap), is computed here before the program is shared, so two threads can
    never give one component two keys. The programs hold the task types the adapter
    installed, so the cache lives and dies with the adapter.
    """

    def __init__(self, parse: Any, size: int = 64) -> None:
        self._parse = parse
        self._size = size
        self._programs: collections.OrderedDict[str, tuple[Any, Any]] = collections.OrderedDict()
        self._parsing: dict[str, concurrent.futures.Future] = {}
        self._lock = threading.Lock()
        self.parsed = 0  # definitions actually parsed (misses), for the tests and the bench

    def parse(self, definition: str) -> tuple[Any, Any]:
        """The parsed program: from the cache, from the parse another thread is running for
        the same definition (it waits for it), or parsed here. A syntax error raises as before
        (and is not cached)."""
        with self._lock:
            cached = self._programs.get(definition)
            if cached is not None:
                self._programs.move_to_end(definition)
                return cached
            running = self._parsing.get(definition)
            if running is None:
                running = self._parsing[definition] = concurrent.futures.Future()
                mine = True
            else:
                mine = False
        if not mine:
            return running.result()
        try:
            parsed = self._parse(definition)
            _assign_heap_keys(parsed[0])
        except BaseException as error:
            with self._lock:
                del self._parsing[definition]
            running.set_exception(error)
            raise
        with self._lock:
            self.parsed += 1
            self._programs[definition] = parsed
            del self._parsing[definition]
            while len(self._programs) > self._size:
                self._programs.popitem(last=False)
        running.set_result(parsed)
        return parsed


def _assign_heap_keys(program: Any) -> None:
    """Touch ``heap_key`` on every component reachable from ``program``."""
    seen: set[int] = set()
    pending = [program]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, Component):
            if isinstance(item, EvalComponent):
                item.heap_key  # noqa: B018 - computed now, once, before the program is shared
            pending.extend(vars(item).values())


def _json_deepcopy(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` for the JSON data the interpreter copies at every state (its input,
    each path's value, each result): dicts, lists and scalars copied directly, anything
    else by ``copy.deepcopy``. The same copy, several times faster (no memo: JSON data has
    no cycles, and a value shared twice in it is copied twice, which JSON cannot tell)."""
    kind = type(value)
    if kind is dict:
        return {key: _json_deepcopy(item) for key, item in value.items()}
    if kind is list:
        return [_json_deepcopy(item) for item in value]
    if kind in _JSON_SCALARS:
        return value
    return copy.deepcopy(value, memo)


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


class _JsonCopy:
    """The ``copy`` module as moto's interpreter modules see it: ``deepcopy`` is ``_json_deepcopy``."""

    deepcopy = staticmethod(_json_deepcopy)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _cached_jsonpath_parser(parse: Any) -> Any:
    """jsonpath-ng's ``parse`` builds a new PLY parser (its tables, by introspection) at every
    call; moto calls it for each path of each state at every execution. The parsed path is
    an immutable tree (``find`` and ``update_or_create`` only read it), so one per path."""
    return functools.lru_cache(maxsize=2048)(parse)


def _keep_last_finished(executions: list[Any], keep: int) -> None:
    """Drop the oldest finished executions beyond ``keep`` (in place; order kept)."""
    finished = [e for e in executions if e.exec_status is not None and e.exec_status.value != "RUNNING"]
    if len(finished) <= keep:
        return
    dropped = {id(e) for e in finished[: len(finished) - keep]}
    executions[:] = [e for e in executions if id(e) not in dropped]


def _prune_finished_threads() -> None:
    """Drop finished threads from moto's ``TMP_THREADS`` (only ever appended to; nothing in
    moto reads it back). A thread appended while this runs may be dropped from the list too,
    which changes nothing: the thread runs on, the list only held a reference to it."""
    threads = parser_utils.TMP_THREADS
    threads[:] = [thread for thread in list(threads) if thread.is_alive()]


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------

_MISSING = object()
_install_lock = threading.Lock()
_installed: StepFunctionsAdapter | None = None


class StepFunctionsAdapter:
    """Install into moto what AWS Step Functions does and moto lacks (see the module docstring).

    ``converse_endpoint``: base URL that ``aws-sdk:bedrockruntime:*`` tasks are sent to (the
    Bedrock Runtime wire format), e.g. ``ScriptedModelServer(...).url``; settable later.
    ``keep``: how many finished sync executions ``sync_executions`` keeps for inspection
    (their history: ``execution.to_history_output()``). ``keep_finished``: how many finished
    STANDARD executions each state machine keeps (listed and described as AWS does for 90
    days); running ones are always kept.
    """

    def __init__(self, converse_endpoint: str | None = None, keep: int = 100, keep_finished: int = 1000) -> None:
        self.converse_endpoint = converse_endpoint
        self.keep_finished = keep_finished
        self.sync_executions: collections.deque[SyncExecution] = collections.deque(maxlen=keep)
        self._undo: list[tuple[Any, str, Any]] = []
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self._moto_clients: dict[tuple[str, str, bool, str], Any] = {}
        self.programs: ProgramCache | None = None
        self._executions_since_prune = 0
        self.ecs = LocalEcs()
        """``ecs:runTask.sync``'s ECS: register task definitions, inject Spot interruptions."""

    # -- install / uninstall ------------------------------------------------------------------

    def install(self) -> StepFunctionsAdapter:
        global _installed
        with _install_lock:
            if _installed is not None:
                raise RuntimeError("a StepFunctionsAdapter is already installed")
            _installed = self
            self._patch_moto()
        return self

    def uninstall(self) -> None:
        global _installed
        with _install_lock:
            if _installed is not self:
                return
            for target, attribute, old in reversed(self._undo):
                if old is _MISSING:
                    delattr(target, attribute)
                else:
                    setattr(target, attribute, old)
            self._undo.clear()
            backend_index.backend_url_patterns[:] = [
                entry for entry in backend_index.backend_url_patterns if entry[1].pattern != _SYNC_HOST
            ]
            stepfunctions_urls.url_bases[:] = [base for base in stepfunctions_urls.url_bases if base != _SYNC_HOST]
            _installed = None

    def __enter__(self) -> StepFunctionsAdapter:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _set(self, target: Any, attribute: str, value: Any) -> None:
        self._undo.append((target, attribute, target.__dict__.get(attribute, _MISSING)))
        setattr(target, attribute, value)

    def _patch_moto(self) -> None:
        """Every runtime change to moto, in one place."""
        adapter = self

        # 1. StartSyncExecution: route the sync-states host to moto's Step Functions responses
        #    (in-process; moto's server routes by the request's signing service instead) and add
        #    the action to them.
        backend_index.backend_url_patterns.append(("stepfunctions", re.compile(_SYNC_HOST)))
        stepfunctions_urls.url_bases.append(_SYNC_HOST)

        def start_sync_execution(response: StepFunctionResponse) -> ActionResult:
            return ActionResult(adapter.start_sync_execution(response))

        self._set(StepFunctionResponse, "start_sync_execution", start_sync_execution)

        # 2. SendTaskFailure: pass the cause on, as AWS does.
        original_send_task_failure = StepFunctionResponse.send_task_failure

        def send_task_failure(response: StepFunctionResponse) -> ActionResult:
            backend = response.stepfunction_backend
            if not isinstance(backend, StepFunctionsParserBackend):
                return original_send_task_failure(response)
            # https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html
            # request: taskToken, error, cause. The state's Catch sees {"Error": error, "Cause": cause}.
            backend.send_task_failure(
                response._get_param("taskToken"), error=response._get_param("error"), cause=response._get_param("cause")
            )
            return EmptyResult()

        self._set(StepFunctionResponse, "send_task_failure", send_task_failure)

        # 3. JSONata: the evaluator hook (None in moto) and string-safe variable declarations.
        self._set(moto_jsonata, "_eval_jsonata", evaluate_jsonata)
        self._set(eval_states, "encode_jsonata_variable_declarations", encode_jsonata_variable_declarations)
        self._set(eval_variable_store, "encode_jsonata_variable_declarations", encode_jsonata_variable_declarations)

        # 4. Task types: the HTTP Task, the SDK integrations routed to real endpoints, and
        #    ecs:runTask.sync answered by LocalEcs.
        original_service_for = state_task_factory.state_task_service_for

        def state_task_service_for(service_name: str) -> StateTaskService:
            if service_name == "http":
                return _HttpInvokeTask(adapter)
            if service_name == "aws-sdk":
                return _AwsSdkTask(adapter)
            if service_name == "ecs":
                return _EcsRunTask(adapter)
            return original_service_for(service_name)

        self._set(state_task_factory, "state_task_service_for", state_task_service_for)

        # 5. Error names: States.Http.* in Retry/Catch (the parser builds ErrorEquals from this name).
        self._set(preprocessor, "CustomErrorName", _ErrorName)

        # 6. Each definition parsed once (at CreateStateMachine, which validates it), not at
        #    every execution; the programs built above, with this adapter's task types.
        self.programs = ProgramCache(AmazonStateLanguageParser.parse)
        self._set(AmazonStateLanguageParser, "parse", staticmethod(self.programs.parse))

        # 7. One boto3 client per region, service and endpoint for the Lambda (and other SDK)
        #    tasks moto sends to itself, instead of one per task. moto's function takes the
        #    state's credentials and ignores them (every client it makes signs with "ak"/"sk").
        original_client_for = moto_boto_client.boto_client_for

        def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            from moto.core.models import botocore_stubber
            from moto.settings import moto_server_port

            key = (region, service, botocore_stubber.enabled, moto_server_port())
            with self._clients_lock:
                client = self._moto_clients.get(key)
                if client is None:
                    client = self._moto_clients[key] = original_client_for(region, service, state_credentials)
            return client

        for module in list(sys.modules.values()):
            name = getattr(module, "__name__", "")
            if name.startswith("moto.stepfunctions.parser") and module.__dict__.get("boto_client_for") is (
                original_client_for
            ):
                self._set(module, "boto_client_for", boto_client_for)

        # 8. JSONata with $states and the variables bound as data (see _string_jsonata_eval_body).
        self._set(
            string_expression.StringJSONata,
            "_eval_body",
            _string_jsonata_eval_body(string_expression.StringJSONata._eval_body),
        )

        # 9. The interpreter's defensive deep copies of JSON data, and its JSONPath parsing, cheaper.
        json_copy = _JsonCopy()
        for module in list(sys.modules.values()):
            name = getattr(module, "__name__", "")
            if not name.startswith("moto.stepfunctions.parser"):
                continue
            if module.__dict__.get("copy") is copy:
                self._set(module, "copy", json_copy)
            parse = module.__dict__.get("parse")
            if parse is not None and getattr(parse, "__module__", "").startswith("jsonpath_ng"):
                self._set(module, "parse", _cached_jsonpath_parser(parse))

        # 10. STANDARD executions: moto keeps every one (and scans them all at each
        #     SendTask*), each with a deep copy of its state machine that moto's instance
        #     record keeps too. Each machine keeps its running executions and its last
        #     ``keep_finished`` finished ones; moto's record of state machines holds them weakly.
        original_start_execution = StepFunctionsParserBackend.start_execution

        def start_execution(backend: StepFunctionsParserBackend, *args: Any, **kwargs: Any) -> Any:
            execution = original_start_execution(backend, *args, **kwargs)
            state_machine = backend.describe_state_machine(execution.state_machine_arn)
            _keep_last_finished(state_machine.executions, adapter.keep_finished)
            return execution

        self._set(StepFunctionsParserBackend, "start_execution", start_execution)
        self._set(StateMachine, "instances_tracked", WeakInstances())

        # 11. Parsing in parallel: moto's Preprocessor keeps its stack of QueryLanguage scopes in a
        #     class attribute (one list shared by every parse in the process), so two executions
        #     parsed at once push onto each other's stack and a JSONPath state is read as JSONata
        #     ("Unsupported declaration in QueryLanguage=JSONata block"). Each parse gets its own.
        #     AWS parses each execution's definition on its own; nothing is shared between them.
        self._set(preprocessor.Preprocessor, "_query_language_per_scope", property(_own_query_language_scopes))

        # 12. The payload quota (see _check_payload): every state's input on entry, a task's
        #     input after Parameters/Arguments, every state's output and task result (moto
        #     checks these two, measured as JSON with spaces and \u escapes); States.ALL never
        #     catches or retries States.DataLimitExceeded, and a Map iteration or Parallel
        #     branch that fails with it fails its state with it.
        self._set(CommonStateField, "_eval_body", _checking_input(CommonStateField._eval_body))
        self._set(CommonStateField, "_verify_size_quota", _verify_size_quota)
        self._set(StateTaskService, "_verify_size_quota", _verify_size_quota)
        self._set(StateTaskLambda, "_verify_size_quota", _verify_lambda_size_quota)
        self._set(StateTask, "_eval_parameters", _checking_parameters(StateTask._eval_parameters, False))
        self._set(StateTaskLambda, "_eval_parameters", _checking_parameters(StateTaskLambda._eval_parameters, True))
        self._set(ErrorEqualsDecl, "_eval_body", _error_equals_eval_body(ErrorEqualsDecl._eval_body))
        for module in (iteration_worker, branches_decl):
            self._set(module, "CustomErrorName", _iteration_error_name)

        # 13. A callback that comes before the wait: a task token is valid from when the execution
        #     enters the task state ("Task tokens are generated by Step Functions ... in the
        #     context object when a workflow enters a task state",
        #     https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskHeartbeat.html),
        #     so SendTaskSuccess/Failure may arrive while the Lambda that received the token still
        #     runs. moto keeps that outcome but sets up the task's heartbeat wait only after the
        #     Lambda returns, and that wait then sleeps HeartbeatSeconds before it looks at the
        #     outcome. The new wait is told of an outcome already there.
        original_setup_heartbeat = CallbackEndpoint.setup_heartbeat_endpoint

        def setup_heartbeat_endpoint(endpoint: CallbackEndpoint, heartbeat_seconds: int) -> HeartbeatEndpoint:
            heartbeat = original_setup_heartbeat(endpoint, heartbeat_seconds)
            if endpoint.get_outcome() is not None:  # notify() sets the outcome, then reads the heartbeat
                heartbeat.notify()
            return heartbeat

        self._set(CallbackEndpoint, "setup_heartbeat_endpoint", setup_heartbeat_endpoint)

    @contextlib.contextmanager
    def validating_in_background(self, failed: Any = None) -> Iterator[None]:
        """CreateStateMachine, while the block runs, checks only that the definition is JSON
        and answers at once; the full check (moto's parse, 0.1-0.3 s a definition) runs in a
        thread and leaves the program in the cache, where the first execution finds it (or
        waits for it). For the local stack's start, whose definitions come from the same
        builders the tests validate; ``failed(definition, error)`` hears of any that does not
        parse (its executions then fail with moto's parse error)."""
        original = StepFunctionsParserBackend.__dict__["_validate_definition"]
        programs = self.programs

        def validate(definition: str) -> None:
            try:
                json.loads(definition)
            except ValueError:
                original.__func__(definition)  # moto's own InvalidDefinition

            def parse() -> None:
                try:
                    programs.parse(definition)
                except Exception as error:
                    if failed is not None:
                        failed(definition, error)

            threading.Thread(target=parse, name="asl-parse", daemon=True).start()

        StepFunctionsParserBackend._validate_definition = staticmethod(validate)
        try:
            yield
        finally:
            StepFunctionsParserBackend._validate_definition = original

    # -- StartSyncExecution ---------------------------------------------------------------------

    def start_sync_execution(self, response: StepFunctionResponse) -> dict[str, Any]:
        """https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html"""
        backend = response.stepfunction_backend
        if not isinstance(backend, StepFunctionsParserBackend):
            raise RuntimeError("StartSyncExecution needs moto's interpreter: mock_aws(config=MOTO_CONFIG)")
        state_machine_arn = response._get_param("stateMachineArn")
        name = response._get_param("name")
        execution_input = response._get_param("input")
        trace_header = response._get_param("traceHeader")

        # Errors: InvalidArn, StateMachineDoesNotExist (moto's own checks), then the type.
        state_machine = backend.describe_state_machine(state_machine_arn)
        if state_machine.type != "EXPRESS":
            # "StartSyncExecution is not available for STANDARD workflows."
            raise StateMachineTypeNotSupported("This operation is not supported by this type of state machine")
        if name is None:
            # https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
            # "If you don't provide a name for the execution, Step Functions automatically
            # generates a universally unique identifier (UUID) as the execution name."
            name = str(uuid.uuid4())
        else:
            # Name: length 1-80, no white space, brackets, wildcards, special or control
            # characters (API_StartExecution, "name"); InvalidName otherwise. moto's check.
            backend._validate_name(name)
        if execution_input is None:
            # "If you don't include any JSON input data, you still must include the two braces"
            execution_input = "{}"
        try:
            json.loads(execution_input)
        except ValueError as error:
            raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{error}'") from error

        # A snapshot of the definition for this run (moto deep-copies the machine; a shallow copy
        # without its executions is enough, nothing here mutates it). EXPRESS executions are not
        # listed or described by the API (ListExecutions/DescribeExecution do not support them),
        # so the execution is not added to the machine's list; ``sync_executions`` keeps it.
        # Made without the class's constructor: moto's models record every instance they
        # construct (``instances_tracked``, for its dashboard), and a copy per run would be
        # kept for as long as the process runs.
        snapshot = object.__new__(type(state_machine))
        snapshot.__dict__.update(state_machine.__dict__)
        snapshot.executions = []
        snapshot.sm_type = state_machine.type
        # An Express execution's ARN: arn:<partition>:states:<region>:<account>:express:<machine>:<name>:<id>
        # (the form AWS returns; LocalStack's AWS-validated snapshots record the same).
        execution_arn = ":".join(
            [
                "arn",
                get_partition(backend.region_name),
                "states",
                backend.region_name,
                backend.account_id,
                "express",
                state_machine.name,
                name,
                str(uuid.uuid4()),
            ]
        )
        execution = SyncExecution(
            name=name,
            sm_type=state_machine.type,
            role_arn=state_machine.roleArn,
            exec_arn=execution_arn,
            account_id=backend.account_id,
            region_name=backend.region_name,
            state_machine=snapshot,
            start_date=datetime.datetime.now(tz=datetime.UTC),
            cloud_watch_logging_session=None,
            activity_store={},
            input_data=execution_input,
            trace_header=trace_header,
        )
        # moto's SyncExecutionWorker runs the program in this thread and returns when it has
        # ended (succeeded, failed or timed out): no polling.
        execution.start()
        self.sync_executions.append(execution)
        with self._clients_lock:
            self._executions_since_prune += 1
            prune = self._executions_since_prune >= 64
            if prune:
                self._executions_since_prune = 0
        if prune:
            _prune_finished_threads()

        # Response: executionArn, stateMachineArn, name, startDate, stopDate, status (SUCCEEDED |
        # FAILED | TIMED_OUT), error, cause, input, inputDetails, output (only when it succeeded),
        # outputDetails, traceHeader, billingDetails. A TIMED_OUT answer carries no error and no
        # cause; moto sets none for a timeout.
        answer = dict(execution.to_start_sync_execution_output())
        if answer.get("traceHeader") is None:
            answer.pop("traceHeader", None)
        # https://docs.aws.amazon.com/step-functions/latest/apireference/API_BillingDetails.html
        # billedDurationInMilliseconds / billedMemoryUsedInMB. Express workflows are billed by
        # duration rounded up to the next 100 ms and by memory in 64-MB chunks
        # (https://aws.amazon.com/step-functions/pricing/); moto measures no memory, so the
        # smallest chunk is reported.
        elapsed_ms = (execution.stop_date - execution.start_date).total_seconds() * 1000
        answer["billingDetails"] = {
            "billedMemoryUsedInMB": 64,
            "billedDurationInMilliseconds": max(100, math.ceil(elapsed_ms / 100) * 100),
        }
        return answer

    # -- SDK integrations routed to real endpoints ----------------------------------------------

    def sdk_client(self, sfn_service: str, region: str) -> Any:
        """A boto3 client for a routed SDK integration service (one per service, region, URL).
        With no ``converse_endpoint`` the call goes to the real service, with the environment's
        own credentials (moto lets requests it does not mock through)."""
        endpoint = self.converse_endpoint
        key = (sfn_service, region, endpoint or "aws")
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                local = (
                    {
                        "endpoint_url": endpoint,
                        "aws_access_key_id": "ak",
                        "aws_secret_access_key": "sk",  # a placeholder the local endpoint ignores
                    }
                    if endpoint
                    else {}
                )
                client = boto3.client(
                    _ROUTED_SDK_SERVICES[sfn_service],
                    region_name=region,
                    **local,
                    config=Config(
                        # Step Functions makes one call; the definition's Retry decides the rest.
                        retries={"total_max_attempts": 1},
                        connect_timeout=10,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    ),
                )
                self._clients[key] = client
        return client

    # -- the HTTP Task --------------------------------------------------------------------------

    def http_invoke(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """One HTTP Task call: https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html

        Fields: ApiEndpoint, Method, Authentication.ConnectionArn (all required), Headers,
        QueryParameters, RequestBody, Transform. Output: {Headers, ResponseBody, StatusCode,
        StatusText}. A non-2xx status fails the task with States.Http.StatusCode.<code>; no
        answer at all (refused, reset, timed out) with States.Http.Socket. The connection's
        secret goes into the request only: never into the output, the error or the history.
        """
        endpoint = parameters.get("ApiEndpoint")
        method = str(parameters.get("Method", "")).upper()
        connection_arn = (parameters.get("Authentication") or {}).get("ConnectionArn")
        if not endpoint or not method or not connection_arn:
            raise _TaskFailure(
                "States.Runtime", "An HTTP Task needs ApiEndpoint, Method and Authentication.ConnectionArn"
            )
        auth_headers, connection_parameters = _connection_auth(connection_arn)

        headers = {str(k): _scalar(v) for k, v in (parameters.get("Headers") or {}).items()}
        query = list(urllib.parse.parse_qsl(urllib.parse.urlsplit(endpoint).query, keep_blank_values=True))
        for key, value in (parameters.get("QueryParameters") or {}).items():
            values = value if isinstance(value, list) else [value]
            query += [(key, _scalar(item)) for item in values]
        body = parameters.get("RequestBody")
        # call-https-apis.html, "Merging EventBridge connection and HTTP Task definition data":
        # the connection's invocation parameters are added to the request; a key in both takes
        # the connection's value.
        for item in connection_parameters.get("HeaderParameters", []):
            headers[item["Key"]] = item["Value"]
        for item in connection_parameters.get("QueryStringParameters", []):
            query = [(k, v) for k, v in query if k != item["Key"]] + [(item["Key"], item["Value"])]
        body_parameters = connection_parameters.get("BodyParameters", [])
        if body_parameters and (body is None or isinstance(body, dict)):
            body = {**(body or {}), **{item["Key"]: item["Value"] for item in body_parameters}}

        transform = parameters.get("Transform") or {}
        data: bytes | None = None
        if body is not None:
            if transform.get("RequestBodyEncoding") == "URL_ENCODED" and isinstance(body, dict):
                array_format = (transform.get("RequestEncodingOptions") or {}).get("ArrayFormat", "INDICES")
                data = _form_encode(body, array_format).encode()
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = json.dumps(body).encode()
                headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        headers.update(auth_headers)

        split = urllib.parse.urlsplit(endpoint)
        if split.scheme not in ("http", "https"):
            raise _TaskFailure("States.Runtime", f"ApiEndpoint must be an http(s) URL, got {split.scheme!r}")
        url = urllib.parse.urlunsplit(split._replace(query=urllib.parse.urlencode(query)))
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - http(s), checked
        # Redirects are not followed here: a redirect would carry the connection's key to
        # another host; the 3xx fails the task like any non-2xx status.
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=_HTTP_TASK_TIMEOUT_SECONDS) as answer:
                status, reason, answer_headers, raw = answer.status, answer.reason, answer.headers, answer.read()
        except urllib.error.HTTPError as answer:
            status, reason, answer_headers, raw = answer.code, answer.reason, answer.headers, answer.read()
        except (OSError, urllib.error.URLError) as error:  # refused, reset, timed out: no HTTP answer
            raise _TaskFailure("States.Http.Socket", f"{type(error).__name__}: {error}") from None

        output = {
            "Headers": _headers_of(answer_headers),
            "ResponseBody": _body_of(raw, answer_headers.get("Content-Type", "")),
            "StatusCode": status,
            "StatusText": reason or "",
        }
        if not 200 <= status < 300:
            raise _TaskFailure(f"States.Http.StatusCode.{status}", json.dumps(output))
        return output


def _headers_of(headers: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in headers.items():
        out.setdefault(key, []).append(value)
    return out


def _body_of(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _connection_auth(connection_arn: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The auth header and invocation parameters of an EventBridge connection in moto (created
    with the ordinary ``events.create_connection`` call, as the deployed stack creates it)."""
    from moto.events.models import events_backends

    # arn:<partition>:events:<region>:<account>:connection/<name>/<id>
    parts = connection_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "events" or not parts[5].startswith("connection/"):
        raise _TaskFailure("Events.ConnectionResource.ResourceNotFound", f"Not a connection ARN: {connection_arn}")
    region, account, name = parts[3], parts[4], parts[5].split("/")[1]
    connection = events_backends[account][region].connections.get(name)
    if connection is None or connection.arn != connection_arn:
        raise _TaskFailure("Events.ConnectionResource.ResourceNotFound", f"Connection {connection_arn} not found")
    auth = connection.auth_parameters
    invocation = auth.get("InvocationHttpParameters") or {}
    if connection.authorization_type == "API_KEY":
        key = auth["ApiKeyAuthParameters"]
        return {key["ApiKeyName"]: key["ApiKeyValue"]}, invocation
    if connection.authorization_type == "BASIC":
        basic = auth["BasicAuthParameters"]
        token = base64.b64encode(f"{basic['Username']}:{basic['Password']}".encode()).decode()
        return {"Authorization": f"Basic {token}"}, invocation
    raise _TaskFailure(
        "Events.ConnectionResource.InvalidConnectionState",
        f"The local adapter supports API_KEY and BASIC connections, not {connection.authorization_type}",
    )


def installed() -> StepFunctionsAdapter | None:
    """The adapter currently installed, if any."""
    return _installed


__all__: list[str] = [
    "LONGRUN_COMMAND",
    "SYNC_CLIENT_CONFIG",
    "LocalEcs",
    "LocalTaskDefinition",
    "StateMachineTypeNotSupported",
    "StepFunctionsAdapter",
    "encode_jsonata_variable_declarations",
    "evaluate_jsonata",
    "installed",
]
