"""agent-infra: LLM agent infrastructure on AWS, in several regions at once.

Wiring only: read and validate the stack config, build the code archives, create the
global parts and one AgentRegion per region, export outputs.
"""

import pulumi
import pulumi_aws as aws
from pulumi.runtime import config as runtime_config

from components import naming, packaging
from components.clients import ApiClientKeys, ApiClientKeysArgs
from components.config import NAMESPACE, StackConfigError, check_config_keys, load_stack_config
from components.context import RegionContext, RegionLlm
from components.endpoints import ordered_endpoints
from components.global_table import GlobalTable, GlobalTableArgs
from components.observability import StackBudget, StackBudgetArgs
from components.region import AgentRegion, AgentRegionArgs
from components.routing import GlobalRouting, GlobalRoutingArgs, RegionEndpoints
from handlers.tools import load_tool


def stack_config_keys() -> list[str]:
    """Every key of the stack's config, in every namespace (``namespace:name``).

    ``pulumi.Config`` reads one key at a time; the whole map lives in the runtime's config.
    The language host passes it as the ``PULUMI_CONFIG`` environment variable
    (``pulumi.runtime.get_config_env()``) and its launcher loads that into
    ``pulumi.runtime.config.CONFIG`` with ``set_all_config``, which is also where the
    mocks' ``set_all_config`` puts it: both are read, so neither way is missed.
    """
    return sorted({*pulumi.runtime.get_config_env(), *runtime_config.CONFIG.get()})


config_keys = stack_config_keys()
for warning in check_config_keys(config_keys).warnings:
    pulumi.log.warn(warning)
try:
    stack_config = load_stack_config(pulumi.Config(NAMESPACE).get_object, keys=config_keys)
except StackConfigError as error:
    # RunError prints just the message: the user sees which key is wrong, not a traceback.
    raise pulumi.RunError(str(error)) from None

stack = pulumi.get_stack()
if not stack_config.api.manage_account_logging:
    pulumi.log.warn(
        "agent-infra:api.manageAccountLogging is false: the stages' logs rely on API Gateway's account-wide"
        f" CloudWatch role in {', '.join(stack_config.regions)}, which the account's bootstrap sets"
        " (bootstrap/, apiGatewayAccountLogging). Without it, `pulumi up` fails with 'CloudWatch Logs role ARN"
        " must be set in account settings'; then set it true in exactly one stack per account."
    )
cost_tags = {"project": "agent-infra", "stack": stack, "managed-by": "pulumi", **stack_config.tags}

# One provider for every region: regional resources name their region with `region=`.
aws_provider = aws.Provider(
    "aws",
    region=stack_config.home_region,
    default_tags=aws.ProviderDefaultTagsArgs(tags=cost_tags),
)
stack_opts = pulumi.ResourceOptions(providers=[aws_provider])
identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=aws_provider))
role_boundary = identity.account_id.apply(lambda account: naming.boundary_arn(stack_config.partition, account, stack))


def _stack_roles(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """Every IAM role of the stack under ``/agent-infra/<stack>/`` and with the stack's
    permissions boundary: the path limits the pipeline's deploy role to this stack's roles,
    the boundary caps what any role it creates could do (both from bootstrap/)."""
    if args.type_ == "aws:iam/role:Role":
        props = {**args.props, "path": naming.role_path(stack), "permissions_boundary": role_boundary}
        return pulumi.ResourceTransformationResult(props, args.opts)
    return None


pulumi.runtime.register_stack_transformation(_stack_roles)

state = GlobalTable(
    "state",
    GlobalTableArgs(
        regions=stack_config.regions,
        stack=stack,
        partition=stack_config.partition,
        account_id=identity.account_id,
        state=stack_config.state,
        encrypts_connections=stack_config.llm.provider == "openai",
    ),
    opts=stack_opts,
)

# Code archives: built once, the same in every region.
tools = {tool.name: load_tool(tool.name) for tool in stack_config.tools}
function_code = [
    packaging.router_code(),
    packaging.agent_step_code(
        {**tools[t.name].spec(), "requiresApproval": t.requires_approval, "runtime": t.runtime}
        for t in stack_config.tools
    ),
    # fargate-spot tools run from the image (Dockerfile), not a Lambda archive.
    *(packaging.tool_code(t.name) for t in stack_config.tools if t.runtime != "fargate-spot"),
    packaging.approval_code(),
    *packaging.edge_code(),
    packaging.compensate_code(t.name for t in stack_config.tools if t.compensable),
]
archives = {code.key: str(packaging.build_function_archive(code)) for code in function_code}
layer_archive = str(packaging.build_dependency_layer())
api_key = (
    pulumi.Output.secret(stack_config.llm.api_key.get_secret_value()) if stack_config.llm.api_key is not None else None
)

# One key per API client, valid in every region (a client may be routed to any of them).
client_keys = ApiClientKeys("api-clients", ApiClientKeysArgs(api=stack_config.api), opts=stack_opts)

regions = {}
for region in stack_config.regions:
    regions[region] = AgentRegion(
        region,
        AgentRegionArgs(
            context=RegionContext(
                region=region, stack=stack, partition=stack_config.partition, account_id=identity.account_id
            ),
            stack_regions=stack_config.regions,
            table_name=state.table_name,
            kms_key_arn=state.key_arns[region],
            tools=stack_config.tools,
            tool_dynamodb_actions={name: tool.dynamodb_actions for name, tool in tools.items()},
            cached_tools=[name for name, tool in tools.items() if tool.cache is not None],
            archives=archives,
            layer_archive=layer_archive,
            llm=RegionLlm(
                provider=stack_config.llm.provider,
                model=stack_config.llm.model,
                endpoints=ordered_endpoints(
                    region, stack_config.llm.provider, stack_config.llm.endpoints, stack_config.llm.endpoint_regions
                ),
                timeout_seconds=stack_config.compute.llm_timeout_seconds,
                history_tokens=stack_config.llm.history_tokens,
                prompt_caching=stack_config.llm.prompt_caching,
                api_key=api_key,
            ),
            client_keys=client_keys.values,
            compute=stack_config.compute,
            api=stack_config.api,
            state=stack_config.state,
            workflow=stack_config.workflow,
            observability=stack_config.observability,
            fault_injection=stack_config.fault_injection,
        ),
        opts=stack_opts,
    )

StackBudget(
    "budget",
    StackBudgetArgs(stack=stack, budget=stack_config.budget, observability=stack_config.observability),
    opts=stack_opts,
)

if stack_config.domain is not None:
    routing = GlobalRouting(
        "routing",
        GlobalRoutingArgs(
            domain=stack_config.domain,
            regions=stack_config.regions,
            endpoints={
                region: RegionEndpoints(
                    rest_api_id=r.rest_api_id,
                    websocket_api_id=r.websocket_api_id,
                    rest_stage=r.rest_stage_name,
                    websocket_stage=r.websocket_stage_name,
                )
                for region, r in regions.items()
            },
            partition=stack_config.partition,
            llm=stack_config.llm,
        ),
        opts=stack_opts,
    )
    pulumi.export("apiUrl", f"https://{routing.api_domain}")
    pulumi.export("websocketUrl", f"wss://{routing.ws_domain}")

pulumi.export("homeRegion", stack_config.home_region)
pulumi.export("regions", stack_config.regions)
pulumi.export("tableName", state.table_name)
pulumi.export("tableArn", state.table_arn)
pulumi.export("tableStreamArn", state.stream_arn)
pulumi.export("tableKeyArns", state.key_arns)
pulumi.export("routerArns", {region: r.router_arn for region, r in regions.items()})
pulumi.export("agentArns", {region: r.agent_arns for region, r in regions.items()})
pulumi.export("turnStateMachineArns", {region: r.turn_arn for region, r in regions.items()})
pulumi.export("taskStateMachineArns", {region: r.task_arn for region, r in regions.items()})
if any(t.runtime == "fargate-spot" for t in stack_config.tools):
    pulumi.export("longToolClusterArns", {region: r.long_tools_cluster_arn for region, r in regions.items()})
pulumi.export("restEndpoints", {region: r.rest_endpoint for region, r in regions.items()})
pulumi.export("websocketEndpoints", {region: r.websocket_endpoint for region, r in regions.items()})
pulumi.export("alarmTopicArns", {region: r.alarm_topic_arn for region, r in regions.items()})
pulumi.export("dashboardUrls", {region: r.dashboard_url for region, r in regions.items()})
if stack_config.fault_injection.enabled:
    # README "When a region fails": aws fis start-experiment --experiment-template-id <id> --region <region>
    pulumi.export("failoverExperiments", {region: r.fault_experiment_id for region, r in regions.items()})
# Secret: `pulumi stack output apiKeys --show-secrets` prints each client's key.
pulumi.export("apiKeys", pulumi.Output.secret(client_keys.values))
