"""The task types the adapter adds to moto's interpreter: AWS SDK, HTTP and ``ecs:runTask.sync``.

- ``aws-sdk:*``: parameters in PascalCase only, as Step Functions takes them
  (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html);
  ``aws-sdk:bedrockruntime:*`` sent over HTTP to a configurable Converse endpoint (moto has no
  Bedrock Runtime), its errors named ``BedrockRuntime.<Name>Exception``;
- ``http:invoke``: ``local.stepfunctions.http_task``;
- ``ecs:runTask.sync``: ``local.ecs.tasks.LocalEcs``
  (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html).

Not emulated: the other optimized integrations (moto's own answer them, or refuse them), the
``.waitForTaskToken`` pattern on ECS, and ``runTask`` without ``.sync``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import ListShape, MapShape, StructureShape
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)

from local.stepfunctions.errors import TaskFailure, task_failure_event
from local.stepfunctions.http_task import http_invoke

if TYPE_CHECKING:
    from local.stepfunctions.adapter import StepFunctionsAdapter


# https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
# "If an AWS SDK integration encounters an error, the resulting Error field is composed of the
# service name and the error name, separated by a period character: ServiceName.ErrorName. Both
# are in PascalCase" and always carry the "Exception" suffix. The Step Functions service name for
# the SDK integration ``bedrockruntime`` is the SDK's service id without spaces, ``BedrockRuntime``
# (botocore's ``serviceId`` for bedrock-runtime is "Bedrock Runtime").
ROUTED_SDK_SERVICES = {"bedrockruntime": "bedrock-runtime"}


@cache
def _service_model(boto_service: str) -> Any:
    return botocore.session.get_session().get_service_model(boto_service)


class AwsSdkTask(StateTaskServiceAwsSdk):
    """moto's AWS SDK task; for the services in ``ROUTED_SDK_SERVICES`` the call goes over HTTP
    to the adapter's endpoint instead of to moto (which has no Bedrock Runtime)."""

    def __init__(self, adapter: StepFunctionsAdapter) -> None:
        super().__init__()
        self._adapter = adapter

    def _routed(self) -> bool:
        return self.resource.api_name in ROUTED_SDK_SERVICES

    def _operation(self) -> Any:
        service = ROUTED_SDK_SERVICES.get(self.resource.api_name) or self._get_boto_service_name()
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
                    raise TaskFailure("States.Runtime", self._parameter_problem(path + key, key, members))
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
        if isinstance(ex, TaskFailure):
            return task_failure_event(self, env, ex.error, ex.cause)
        if not (self._routed() and isinstance(ex, ClientError)):
            return super()._from_error(env=env, ex=ex)
        # https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
        # Error "ServiceName.ErrorName" with the Exception suffix, e.g. BedrockRuntime.ThrottlingException.
        service = _service_model(ROUTED_SDK_SERVICES[self.resource.api_name]).service_id.replace(" ", "")
        code = ex.response.get("Error", {}).get("Code") or type(ex).__name__
        error = f"{service}.{code}" if code.endswith("Exception") else f"{service}.{code}Exception"
        metadata = ex.response.get("ResponseMetadata", {})
        cause = (
            f"{ex.response.get('Error', {}).get('Message', '')} (Service: {service}, "
            f"Status Code: {metadata.get('HTTPStatusCode')}, Request ID: {metadata.get('RequestId', '')})"
        )
        return task_failure_event(self, env, error, cause)


class HttpInvokeTask(StateTaskService):
    """``arn:aws:states:::http:invoke``: https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html"""

    def _validate_service_integration_is_supported(self) -> None:
        pass

    def _get_sfn_resource_type(self) -> str:
        return "http"

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> None:
        env.stack.append(http_invoke(normalised_parameters))

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, TaskFailure):
            return task_failure_event(self, env, ex.error, ex.cause)
        return super()._from_error(env=env, ex=ex)


class EcsRunTask(StateTaskService):
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
        if isinstance(ex, TaskFailure):
            return task_failure_event(self, env, ex.error, ex.cause)
        return super()._from_error(env=env, ex=ex)
