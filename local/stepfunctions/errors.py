"""How a task state fails in the adapter's task types: the error name and cause Step Functions reports.

Step Functions names a task's failure with an error name and a cause that the state's Retry
and Catch match (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
moto's grammar knows only the older ``States.*`` names; the HTTP Task's ``States.Http.*`` names
(https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html) are added here, as
names that ``States.TaskFailed`` and ``States.ALL`` match, as on AWS.

Not emulated: the error names of integrations the adapter does not answer (moto's own, or none).
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

# https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html
# The HTTP Task reports errors named States.Http.StatusCode.<code> and States.Http.Socket, which
# definitions name in Retry and Catch; moto's grammar knows only the older States.* names and
# refuses any other name with that prefix.
_SERVICE_STATES_ERRORS = ("States.Http.",)


class TaskErrorName(CustomErrorName):
    """A custom error name, or one of the service-defined ``States.Http.*`` names. Not a
    ``StatesErrorName``, so ``States.TaskFailed`` and ``States.ALL`` match it, as on AWS
    (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html)."""

    def __init__(self, error_name: str | None) -> None:
        if error_name is not None and error_name.startswith(_SERVICE_STATES_ERRORS):
            ErrorName.__init__(self, error_name=error_name)
        else:
            super().__init__(error_name=error_name)


class TaskFailure(Exception):
    """A task failure with a Step Functions error name and cause (caught by Retry/Catch)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


def error_name_of(error: str) -> ErrorName:
    try:
        return StatesErrorName.from_name(error)  # States.Runtime, States.Timeout, ...
    except ValueError:
        return TaskErrorName(error)


def task_failure_event(task: StateTaskService, env: Any, error: str, cause: str) -> FailureEvent:
    return FailureEvent(
        env=env,
        error_name=error_name_of(error),
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
