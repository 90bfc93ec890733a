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
                                   endpoint (e.g. ``local.bedrock.model.ScriptedModelServer``), with
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
would otherwise pay on every chat turn (``local.stepfunctions.overhead``; none changes what an
execution does): each definition parsed once, one boto3 client per region, service and endpoint
for the Lambda tasks, and moto's finished threads and executions dropped.

Where each piece lives: this module installs them all and answers StartSyncExecution and
SendTaskFailure; JSONata is ``local.stepfunctions.jsonata_eval``, the payload quota
``local.stepfunctions.payload``, the task types ``local.stepfunctions.tasks`` (the HTTP Task's
request in ``local.stepfunctions.http_task``, ECS's side of runTask.sync in ``local.ecs.tasks``),
the error names ``local.stepfunctions.errors``; the Lambda tasks' handlers run in-process through
``local.stepfunctions.interpreter``.

Not emulated here: IAM (the execution role is never checked), CloudWatch Logs and X-Ray for
executions, and every integration not named above (moto's own answer them, or refuse them).

Every patch of moto is made by ``StepFunctionsAdapter.install()`` (listed in ``_patch_moto``)
and undone by ``uninstall()``, through the undo log every emulator here uses
(``local.moto_patches``); ``with StepFunctionsAdapter(...):`` does both. Nothing here edits
moto's files. Unlike the DynamoDB guard's, these patches do not nest: they route moto's
calls to one adapter (its program cache, its ECS, its sync executions), so a second
adapter is refused while one is installed. Use it inside ``moto.mock_aws(config=MOTO_CONFIG)``:

    with mock_aws(config=MOTO_CONFIG), StepFunctionsAdapter(converse_endpoint=model.url):
        sfn = boto3.client("stepfunctions")
        answer = sfn.start_sync_execution(stateMachineArn=arn, input="{}")

Over moto's HTTP server (``ThreadedMotoServer``) the same calls work once the adapter is
installed in the server's process; the client must not prepend ``sync-`` to the endpoint's
host: ``botocore.config.Config(inject_host_prefix=False)`` or
``AWS_DISABLE_HOST_PREFIX_INJECTION=true`` (see ``SYNC_CLIENT_CONFIG``).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import datetime
import json
import math
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from moto import backend_index
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions import urls as stepfunctions_urls
from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.eval import states as eval_states
from moto.stepfunctions.parser.asl.eval import variable_store as eval_variable_store
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatEndpoint
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.parse import preprocessor
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client
from moto.stepfunctions.parser.backend.execution import SyncExecution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.utils import get_partition

from local.ecs.tasks import LocalEcs
from local.moto_instances import WeakInstances
from local.moto_patches import Patches, patched
from local.stepfunctions.errors import TaskErrorName
from local.stepfunctions.jsonata_eval import (
    encode_jsonata_variable_declarations,
    evaluate_jsonata,
    string_jsonata_eval_body,
)
from local.stepfunctions.overhead import (
    JsonCopy,
    ProgramCache,
    cached_jsonpath_parser,
    keep_last_finished,
    prune_finished_threads,
)
from local.stepfunctions.payload import (
    checking_input,
    checking_parameters,
    error_equals_eval_body,
    iteration_error_name,
    verify_lambda_size_quota,
    verify_size_quota,
)
from local.stepfunctions.tasks import ROUTED_SDK_SERVICES, AwsSdkTask, EcsRunTask, HttpInvokeTask

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


def _own_query_language_scopes(parser: preprocessor.Preprocessor) -> list:
    """The parse's own stack of QueryLanguage scopes, made on first use (patch 6)."""
    return parser.__dict__.setdefault("_own_query_language_scopes", [])


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
        self._patches = Patches()
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
            try:
                self._patch_moto()
            except BaseException:
                self._patches.undo()
                _installed = None
                raise
        return self

    def uninstall(self) -> None:
        global _installed
        with _install_lock:
            if _installed is not self:
                return
            self._patches.undo()
            _installed = None

    def __enter__(self) -> StepFunctionsAdapter:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _set(self, target: Any, attribute: str, value: Any) -> None:
        self._patches.set(target, attribute, value)

    def _patch_moto(self) -> None:
        """Every runtime change to moto, in one place."""
        adapter = self

        # 1. StartSyncExecution: route the sync-states host to moto's Step Functions responses
        #    (in-process; moto's server routes by the request's signing service instead) and add
        #    the action to them.
        self._patches.append(backend_index.backend_url_patterns, ("stepfunctions", re.compile(_SYNC_HOST)))
        self._patches.append(stepfunctions_urls.url_bases, _SYNC_HOST)

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
                return HttpInvokeTask()
            if service_name == "aws-sdk":
                return AwsSdkTask(adapter)
            if service_name == "ecs":
                return EcsRunTask(adapter)
            return original_service_for(service_name)

        self._set(state_task_factory, "state_task_service_for", state_task_service_for)

        # 5. Error names: States.Http.* in Retry/Catch (the parser builds ErrorEquals from this name).
        self._set(preprocessor, "CustomErrorName", TaskErrorName)

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

        # 8. JSONata with $states and the variables bound as data (see string_jsonata_eval_body).
        self._set(
            string_expression.StringJSONata,
            "_eval_body",
            string_jsonata_eval_body(string_expression.StringJSONata._eval_body),
        )

        # 9. The interpreter's defensive deep copies of JSON data, and its JSONPath parsing, cheaper.
        json_copy = JsonCopy()
        for module in list(sys.modules.values()):
            name = getattr(module, "__name__", "")
            if not name.startswith("moto.stepfunctions.parser"):
                continue
            if module.__dict__.get("copy") is copy:
                self._set(module, "copy", json_copy)
            parse = module.__dict__.get("parse")
            if parse is not None and getattr(parse, "__module__", "").startswith("jsonpath_ng"):
                self._set(module, "parse", cached_jsonpath_parser(parse))

        # 10. STANDARD executions: moto keeps every one (and scans them all at each
        #     SendTask*), each with a deep copy of its state machine that moto's instance
        #     record keeps too. Each machine keeps its running executions and its last
        #     ``keep_finished`` finished ones; moto's record of state machines holds them weakly.
        original_start_execution = StepFunctionsParserBackend.start_execution

        def start_execution(backend: StepFunctionsParserBackend, *args: Any, **kwargs: Any) -> Any:
            execution = original_start_execution(backend, *args, **kwargs)
            state_machine = backend.describe_state_machine(execution.state_machine_arn)
            keep_last_finished(state_machine.executions, adapter.keep_finished)
            return execution

        self._set(StepFunctionsParserBackend, "start_execution", start_execution)
        self._set(StateMachine, "instances_tracked", WeakInstances())

        # 11. Parsing in parallel: moto's Preprocessor keeps its stack of QueryLanguage scopes in a
        #     class attribute (one list shared by every parse in the process), so two executions
        #     parsed at once push onto each other's stack and a JSONPath state is read as JSONata
        #     ("Unsupported declaration in QueryLanguage=JSONata block"). Each parse gets its own.
        #     AWS parses each execution's definition on its own; nothing is shared between them.
        self._set(preprocessor.Preprocessor, "_query_language_per_scope", property(_own_query_language_scopes))

        # 12. The payload quota (see check_payload): every state's input on entry, a task's
        #     input after Parameters/Arguments, every state's output and task result (moto
        #     checks these two, measured as JSON with spaces and \u escapes); States.ALL never
        #     catches or retries States.DataLimitExceeded, and a Map iteration or Parallel
        #     branch that fails with it fails its state with it.
        self._set(CommonStateField, "_eval_body", checking_input(CommonStateField._eval_body))
        self._set(CommonStateField, "_verify_size_quota", verify_size_quota)
        self._set(StateTaskService, "_verify_size_quota", verify_size_quota)
        self._set(StateTaskLambda, "_verify_size_quota", verify_lambda_size_quota)
        self._set(StateTask, "_eval_parameters", checking_parameters(StateTask._eval_parameters, False))
        self._set(StateTaskLambda, "_eval_parameters", checking_parameters(StateTaskLambda._eval_parameters, True))
        self._set(ErrorEqualsDecl, "_eval_body", error_equals_eval_body(ErrorEqualsDecl._eval_body))
        for module in (iteration_worker, branches_decl):
            self._set(module, "CustomErrorName", iteration_error_name)

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

        with patched(StepFunctionsParserBackend, "_validate_definition", staticmethod(validate)):
            yield

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
            prune_finished_threads()

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
                    ROUTED_SDK_SERVICES[sfn_service],
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


def installed() -> StepFunctionsAdapter | None:
    """The adapter currently installed, if any."""
    return _installed


__all__: list[str] = [
    "SYNC_CLIENT_CONFIG",
    "StateMachineTypeNotSupported",
    "StepFunctionsAdapter",
    "installed",
]
