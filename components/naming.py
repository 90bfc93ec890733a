"""Names fixed by convention, so one region's resources can name another's before they exist."""

from __future__ import annotations

from functools import cache

PROJECT = "agent-infra"
STAGE = "live"
"""The stage of both APIs, in every region (custom domains and the functions that post
to WebSocket connections name it)."""
STAND_IN_ACCOUNT_ID = "123456789012"
"""The account every stand-in answers for: the Pulumi mocks, moto (its default account,
``moto.core.DEFAULT_ACCOUNT_ID``), the local stack's ARNs and the cost model's sample log
record. AWS's documentation uses it as its example account; no deploy ever reads it."""


def stack_resource_name(stack: str, *parts: str) -> str:
    """``agent-infra-<stack>[-<part>…]``: what AWS calls a resource of the stack."""
    return "-".join((PROJECT, stack, *parts))


def state_machine_name(stack: str, kind: str) -> str:
    """``agent-infra-<stack>-turn`` / ``-task``: the same name in every region."""
    return stack_resource_name(stack, kind)


def rest_api_name(stack: str) -> str:
    """The REST API, the same name in every region (its metrics are keyed by it)."""
    return stack_resource_name(stack)


def table_key_alias(stack: str) -> str:
    """Alias of the region's table key, the same name in every region."""
    return f"alias/{stack_resource_name(stack, 'state')}"


def state_machine_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:states:{region}:{account_id}:stateMachine:{name}"


def executions_arn(partition: str, region: str, account_id: str, name: str) -> str:
    """Every execution of the state machine ``name`` in ``region``."""
    return f"arn:{partition}:states:{region}:{account_id}:execution:{name}:*"


def function_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:lambda:{region}:{account_id}:function:{name}"


def lambda_invoke_arn(partition: str, region: str, function_arn: str) -> str:
    """What an API Gateway integration invokes a function by (its ``uri``)."""
    return f"arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def role_arn(partition: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:iam::{account_id}:role/{name}"


def task_family(stack: str, tool: str) -> str:
    """The task definition family of a long tool, the same in every region."""
    return stack_resource_name(stack, tool.replace("_", "-"))


def tools_cluster_name(stack: str) -> str:
    """The ECS cluster the long tools run on, the same name in every region."""
    return stack_resource_name(stack, "tools")


def task_definition_arn(partition: str, region: str, account_id: str, family: str, revision: int) -> str:
    return f"arn:{partition}:ecs:{region}:{account_id}:task-definition/{family}:{revision}"


def cluster_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:ecs:{region}:{account_id}:cluster/{name}"


def table_arn(partition: str, region: str, account_id: str, table_name: str) -> str:
    """The table's replica in ``region`` (a global table has the same name everywhere)."""
    return f"arn:{partition}:dynamodb:{region}:{account_id}:table/{table_name}"


# -- names derived from a tool, and AWS's limits on them ----------------------------------

# Pulumi auto-names a resource "<logical name>-<7 random characters>".
AUTONAME_SUFFIX = len("-abcdef1")
NAME_LIMITS = {
    # https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html (FunctionName)
    "Lambda function": 64,
    # https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html (RoleName)
    "IAM role": 64,
    # https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html (PolicyName)
    "IAM role policy": 128,
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
    "log group": 512,
    # https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html (state names: 80)
    "state name": 80,
}


def component_name(region: str, component: str) -> str:
    """Logical name of one of a region's components, e.g. ``us-east-1-compute``."""
    return f"{region}-{component}"


def function_key(tool: str) -> str:
    """A tool's function key: its archive, its log group and its resources' names."""
    return f"tool-{tool.replace('_', '-')}"


def function_log_group(stack: str, key: str) -> str:
    """A function's log group, or the access logs' (``api-access``, ``ws-access``)."""
    return f"/{PROJECT}/{stack}/{key}"


def function_key_of_log_group(stack: str, log_group: str) -> str | None:
    """The function key whose log group is ``log_group`` (:func:`function_log_group` read
    back), None for a log group that is not a function's of ``stack``."""
    prefix = function_log_group(stack, "")
    key = log_group.removeprefix(prefix)
    return key if log_group.startswith(prefix) and key and "/" not in key else None


def tool_derived_names(tool: str, region: str, stack: str) -> dict[str, str]:
    """Every name AWS sees that a tool's name is part of, as the components build them
    (a test holds the components to it), in ``region``."""
    function = f"{component_name(region, 'compute')}-{function_key(tool)}"
    suffix = "x" * AUTONAME_SUFFIX
    return {
        "Lambda function": f"{function}{suffix}",
        "IAM role": f"{function}-role{suffix}",
        "IAM role policy": f"{function}-policy{suffix}",
        "log group": function_log_group(stack, function_key(tool)),
        "state name": f"Needs approval {tool}",  # the longest state a tool names
    }


def tool_name_problems(tool: str, longest_region: str, stack: str = "x" * 64) -> list[str]:
    """Why ``tool`` would make a name longer than AWS allows, in the longest region."""
    problems = []
    for kind, name in tool_derived_names(tool, longest_region, stack).items():
        if len(name) > NAME_LIMITS[kind]:
            problems.append(f"its {kind} name would be {len(name)} characters, AWS allows {NAME_LIMITS[kind]}")
    return problems


def longest_tool_name(longest_region: str) -> int:
    """The longest tool name every derived name still fits with."""
    length = 1
    while not tool_name_problems("t" * (length + 1), longest_region):
        length += 1
    return length


def log_group_prefixes(stack: str) -> list[str]:
    """Name prefixes of every log group of the stack: the functions' and the APIs' access
    logs under ``/agent-infra/<stack>/``, the state machines' under
    ``/aws/vendedlogs/states/agent-infra-<stack>-``. The region's key may encrypt these only."""
    return [f"/{PROJECT}/{stack}/", f"/aws/vendedlogs/states/{state_machine_name(stack, '')}"]


def role_path(stack: str) -> str:
    """IAM path of every role of the stack (set on each role by ``__main__.py``): the
    pipeline's deploy role may manage roles under this path only (``bootstrap/roles.py``)."""
    return f"/agent-infra/{stack}/"


@cache
def dns_suffix(partition: str) -> str:
    """The domain every service endpoint of ``partition`` ends in, from the endpoint data
    botocore ships (where ``StackConfig.partition`` comes from too): ``amazonaws.com`` in aws
    and aws-us-gov, ``amazonaws.com.cn`` in aws-cn
    (https://docs.aws.amazon.com/general/latest/gr/rande.html; China:
    https://docs.amazonaws.cn/en_us/aws/latest/userguide/general-info.html, "The endpoint
    domain for both the Beijing and Ningxia Regions is amazonaws.com.cn").

    The global service principals the program trusts (``lambda``, ``states``, ``apigateway``,
    ``ecs-tasks``, ``cloudwatch``, ``fis``) are not endpoints and keep
    ``<service>.amazonaws.com`` in every partition: IAM refuses ``monitoring.rds.amazonaws.com.cn`` as a principal in China
    (https://github.com/terraform-aws-modules/terraform-aws-rds-aurora/issues/437, and the
    same for ``ecs-tasks`` in terraform-aws-modules/terraform-aws-ecs#124)."""
    import botocore.loaders  # the endpoint data; imported here to keep this module's import light

    suffixes = {
        p["partition"]: p["dnsSuffix"] for p in botocore.loaders.create_loader().load_data("endpoints")["partitions"]
    }
    if partition not in suffixes:
        raise ValueError(f"unknown AWS partition {partition!r}; botocore knows {', '.join(sorted(suffixes))}")
    return suffixes[partition]


def service_endpoint(service: str, region: str, partition: str) -> str:
    """A regional service endpoint's host, e.g. ``lambda.cn-north-1.amazonaws.com.cn``
    (what ``kms:ViaService`` names)."""
    return f"{service}.{region}.{dns_suffix(partition)}"


def execute_api_host(api_id: str, region: str, partition: str) -> str:
    """The default host of an API Gateway API (REST or WebSocket) in ``region``
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html)."""
    return f"{api_id}.execute-api.{region}.{dns_suffix(partition)}"


def api_gateway_logging_policy_arn(partition: str) -> str:
    """AWS's managed policy for API Gateway's CloudWatch role
    (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonAPIGatewayPushToCloudWatchLogs.html):
    the one managed policy the program attaches, and the only one its deploy role may."""
    return f"arn:{partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"


def boundary_arn(partition: str, account_id: str, stack: str) -> str:
    """The permissions boundary every role of the stack is created with; the bootstrap
    program (``bootstrap/``) creates it, and the deploy role may create roles only with it."""
    return f"arn:{partition}:iam::{account_id}:policy/{stack_resource_name(stack, 'boundary')}"
