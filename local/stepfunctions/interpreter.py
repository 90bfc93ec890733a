"""Run our state machines in moto's Step Functions interpreter, with Lambdas dispatched in-process.

moto's interpreter invokes each Lambda task through moto's Lambda service. With
``lambda.use_docker`` off, that service's ``invoke`` is replaced here by a dispatcher that
calls the real handler registered under the function's name. A handler that raises comes
back as a Lambda function error whose ``errorType`` is the exception's class name, so the
definitions' Retry and Catch match exactly as on AWS.

Used by the workflow tests and by the local stack. What AWS does and moto's API lacks
(StartSyncExecution, SendTaskFailure's cause, JSONata, the Bedrock SDK integration and the HTTP
Task) is added by ``StepFunctionsAdapter`` (local/stepfunctions/adapter.py), installed with
``with StepFunctionsAdapter(...):`` inside ``mock_aws(config=MOTO_CONFIG)``.

Not emulated: Lambda's runtime (the handler runs in this process: no cold start, memory or
concurrency limit, no separate environment), and the function's timeout (the context's
remaining time is reported; nothing stops a handler that overruns it).
"""

from __future__ import annotations

import collections
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from local.moto_patches import patched
from local.stepfunctions.adapter import SYNC_CLIENT_CONFIG, StepFunctionsAdapter

__all__ = [
    "MOTO_CONFIG",
    "SYNC_CLIENT_CONFIG",
    "LambdaContext",
    "LambdaDispatcher",
    "StepFunctionsAdapter",
    "dispatching",
    "function_name_of",
    "instant_retries",
    "run_to_completion",
    "wait_for_execution",
]

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaContext:
    """The parts of the Lambda context object our handlers use."""

    def __init__(self, function_name: str, timeout_ms: int = 60_000) -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_name_of(name_or_arn: str) -> str:
    """``arn:aws:lambda:r:acct:function:name[:qualifier]`` or ``name`` → ``name``."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[6]
    return name_or_arn


class LambdaDispatcher:
    """Function name → handler; records every invocation (name, event, outcome), or the
    last ``keep`` of them when given (the local stack runs for hours). While ``available()``
    is false (its region is down), every invocation fails as Lambda's service failing does:
    ``Lambda.ServiceException``, which the definitions retry and then catch."""

    def __init__(self, keep: int | None = None, available: Callable[[], bool] = lambda: True) -> None:
        self.handlers: dict[str, Handler] = {}
        self.invocations: collections.deque[tuple[str, dict[str, Any], str]] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        self.available = available

    def register(self, name: str, handler: Handler) -> str:
        self.handlers[name] = handler
        return name

    def invoke(self, function_name: str, payload: bytes | str | None) -> tuple[bytes, str | None]:
        name = function_name_of(function_name)
        event = json.loads(payload or "{}")
        handler = self.handlers.get(name)
        if not self.available():
            outcome = {"errorType": "Lambda.ServiceException", "errorMessage": "the region's Lambda is unavailable"}
            error = "Unhandled"
        elif handler is None:
            outcome: Any = {"errorType": "ResourceNotFoundException", "errorMessage": f"no handler for {name}"}
            error = "Unhandled"
        else:
            try:
                outcome, error = handler(event, LambdaContext(name)), None
            except Exception as exc:
                outcome = {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception_only(type(exc), exc),
                }
                error = "Unhandled"
        with self._lock:
            self.invocations.append((name, event, "error" if error else "ok"))
        return json.dumps(outcome).encode(), error

    def calls_to(self, name: str) -> list[dict[str, Any]]:
        return [event for called, event, _ in self.invocations if called == name]


@contextmanager
def dispatching(
    dispatcher: LambdaDispatcher | Mapping[str, LambdaDispatcher],
) -> Iterator[LambdaDispatcher | Mapping[str, LambdaDispatcher]]:
    """Route moto's simple Lambda backend to ``dispatcher`` while the block runs: one for every
    region, or one per region (``{region: dispatcher}``, the region of the function's ARN)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    by_region = dispatcher if isinstance(dispatcher, Mapping) else None

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        chosen = by_region.get(self.region_name) if by_region is not None else dispatcher
        if chosen is None:
            raise ValueError(f"no functions in {self.region_name}: the local regions are {sorted(by_region)}")
        payload, error = chosen.invoke(function_name, body)
        if error:
            response_headers["x-amz-function-error"] = error
        return payload

    with patched(LambdaSimpleBackend, "invoke", invoke):
        yield dispatcher


@contextmanager
def instant_retries(recorded: list[float] | None = None) -> Iterator[list[float]]:
    """Make the interpreter's Retry pauses instant, recording each interval it chose."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    pauses = recorded if recorded is not None else []

    class _Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            pauses.append(seconds)

    with patched(retrier_decl, "time", _Time):
        yield pauses


def wait_for_execution(sfn: Any, execution_arn: str, timeout: float = 30.0, poll: float = 0.02) -> dict[str, Any]:
    """Describe the execution until it leaves RUNNING (moto has no StartSyncExecution)."""
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout:g}s")
        time.sleep(poll)


def run_to_completion(
    sfn: Any, state_machine_arn: str, execution_input: dict[str, Any], timeout: float = 30.0, name: str | None = None
) -> dict[str, Any]:
    """Start and wait. Always names the execution: AWS generates a name when none is given,
    moto leaves ``$$.Execution.Name`` empty."""
    started = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name or uuid.uuid4().hex, input=json.dumps(execution_input)
    )
    return wait_for_execution(sfn, started["executionArn"], timeout)
