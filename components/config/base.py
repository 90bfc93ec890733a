"""What every section of the stack config shares: the namespace, the error, the model's
settings (camelCase keys, unknown keys refused, frozen), the regions botocore knows, and
the AWS limits more than one section is checked against."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

NAMESPACE = "agent-infra"

# Step Functions' HTTP Task (the openai provider's model call) gets its answer within 60 s or
# fails, whatever the state's TimeoutSeconds says: "HTTP Task duration — time to send an HTTP
# request and receive a response: 60 seconds (Hard quota)"
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html; the HTTP Task:
# https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html).
HTTP_TASK_TIMEOUT_SECONDS = 60

# API Gateway waits for a REST integration 29 s at most ("Integration timeout: 50 milliseconds
# - 29 seconds for all integration types",
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html);
# past it the caller gets API Gateway's own 504 while the integration goes on.
REST_INTEGRATION_TIMEOUT_SECONDS = 29


class StackConfigError(ValueError):
    """The stack config is invalid; the message lists every bad key, its value and what is allowed."""


@cache
def regions_by_partition() -> dict[str, tuple[str, ...]]:
    """The regions DynamoDB runs in, per AWS partition, from the endpoint data botocore ships."""
    import boto3  # boto3's session knows the partitions; imported here to keep module import light

    session = boto3.session.Session()
    return {
        partition: tuple(session.get_available_regions("dynamodb", partition_name=partition))
        for partition in session.get_available_partitions()
    }


def longest_region() -> str:
    """The longest region name botocore knows, in any partition: tool-derived names must fit it."""
    return max((r for regions in regions_by_partition().values() for r in regions), key=len)


def partition_of(region: str) -> str | None:
    for partition, regions in regions_by_partition().items():
        if region in regions:
            return partition
    return None


class ConfigModel(BaseModel):
    """A section of the stack config: keys in camelCase, an unknown key refused, values frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
    )


def https_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.hostname:
        raise ValueError("must be an https:// URL with a host")
    return value


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The section model a field's annotation holds (itself, in a list, or optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def keys_of(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, as they are written in the stack config (camelCase)."""
    return [info.alias or name for name, info in model.model_fields.items()]
