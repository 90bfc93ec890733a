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
                                   escaping for string variables it declares.
=================================  ==========================================================

Every patch of moto is made by ``StepFunctionsAdapter.install()`` (listed in ``_patch_moto``)
and undone by ``uninstall()``; ``with StepFunctionsAdapter(...):`` does both. Nothing here
edits moto's files. Use it inside ``moto.mock_aws(config=MOTO_CONFIG)``:

    with mock_aws(config=MOTO_CONFIG), StepFunctionsAdapter():
        sfn = boto3.client("stepfunctions")
        answer = sfn.start_sync_execution(stateMachineArn=arn, input="{}")

Over moto's HTTP server (``ThreadedMotoServer``) the same calls work once the adapter is
installed in the server's process; the client must not prepend ``sync-`` to the endpoint's
host: ``botocore.config.Config(inject_host_prefix=False)`` or
``AWS_DISABLE_HOST_PREFIX_INJECTION=true`` (see ``SYNC_CLIENT_CONFIG``).
"""

from __future__ import annotations

import collections
import copy
import datetime
import json
import math
import re
import threading
import uuid
from typing import Any

import jsonata
from botocore.config import Config
from moto import backend_index
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions import urls as stepfunctions_urls
from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.asl.eval import states as eval_states
from moto.stepfunctions.parser.asl.eval import variable_store as eval_variable_store
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
from moto.stepfunctions.parser.backend.execution import SyncExecution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.utils import get_partition

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


# ---------------------------------------------------------------------------------------------
# JSONata
# ---------------------------------------------------------------------------------------------


def evaluate_jsonata(expression: str) -> Any:
    """The interpreter's JSONata hook: the expression's value as plain JSON data (None when
    undefined; the interpreter tells null from undefined with ``$exists``)."""
    try:
        value = jsonata.Jsonata(expression).evaluate(None)
        # jsonata-python answers JSONata arrays as its own list type; functions are not JSON.
        return json.loads(json.dumps(value))
    except Exception as error:
        failure = moto_jsonata.JSONataException("UNKNOWN", str(error))
        failure.args = (f"{type(error).__name__}: {error}",)  # so the execution's cause says what failed
        raise failure from error


def encode_jsonata_variable_declarations(bindings: dict[str, Any]) -> str:
    """``$name:=<value>;`` for each binding, every value a JSON literal (moto quotes strings
    without escaping them, so a variable holding a quote or a newline breaks every expression).
    JSONata string literals take JSON's escapes: https://docs.jsonata.org/simple"""
    return "".join(f"{name}:={to_json_str(value, separators=(',', ':'))};" for name, value in bindings.items())


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------

_MISSING = object()
_install_lock = threading.Lock()
_installed: StepFunctionsAdapter | None = None


class StepFunctionsAdapter:
    """Install into moto what AWS Step Functions does and moto lacks (see the module docstring).

    ``keep``: how many finished sync executions ``sync_executions`` keeps for inspection
    (their history: ``execution.to_history_output()``).
    """

    def __init__(self, keep: int = 100) -> None:
        self.sync_executions: collections.deque[SyncExecution] = collections.deque(maxlen=keep)
        self._undo: list[tuple[Any, str, Any]] = []

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
        snapshot = copy.copy(state_machine)
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


def installed() -> StepFunctionsAdapter | None:
    """The adapter currently installed, if any."""
    return _installed


__all__: list[str] = [
    "SYNC_CLIENT_CONFIG",
    "StateMachineTypeNotSupported",
    "StepFunctionsAdapter",
    "encode_jsonata_variable_declarations",
    "evaluate_jsonata",
    "installed",
]
