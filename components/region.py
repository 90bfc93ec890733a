"""AgentRegion: everything the agent runs in one region, under one parent: compute,
orchestration and the APIs, the same shape in every region."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components import naming
from components.api import AgentApi, AgentApiArgs, create_websocket_api
from components.compute import AgentCompute, AgentComputeArgs
from components.config import (
    ApiConfig,
    ComputeConfig,
    FaultInjectionConfig,
    ObservabilityConfig,
    StateConfig,
    ToolConfig,
    WorkflowConfig,
)
from components.context import RegionContext, RegionLlm
from components.fault_injection import (
    FaultInjectionSupport,
    FaultInjectionSupportArgs,
    RegionFaultExperiment,
    RegionFaultExperimentArgs,
)
from components.long_tools import CONTAINER_NAME, LongTools, LongToolsArgs
from components.observability import RegionObservability, RegionObservabilityArgs
from components.orchestration import AgentOrchestration, AgentOrchestrationArgs, FargateTargets


@dataclass(frozen=True, kw_only=True)
class AgentRegionArgs:
    """Inputs of :class:`AgentRegion`: what its components need, each given once."""

    context: RegionContext
    stack_regions: Sequence[str]
    """Every region of the stack."""
    table_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """The region's key (:class:`~components.global_table.GlobalTable`)."""
    tools: Sequence[ToolConfig]
    tool_dynamodb_actions: Mapping[str, Sequence[str]]
    """Extra DynamoDB actions each tool declares (its module's ``TOOL.dynamodb_actions``)."""
    cached_tools: Sequence[str] = ()
    """Tools whose results are reused (their module's ``TOOL.cache``)."""
    archives: Mapping[str, str]
    """Function key → path of its code zip, built once for every region."""
    layer_archive: str
    llm: RegionLlm
    client_keys: Mapping[str, pulumi.Input[str]]
    """Each API client's key value, the same in every region (:class:`ApiClientKeys`)."""
    compute: ComputeConfig
    api: ApiConfig
    state: StateConfig
    workflow: WorkflowConfig
    observability: ObservabilityConfig
    fault_injection: FaultInjectionConfig
    """With ``enabled``: the region's failover experiment (components/fault_injection.py)."""


class AgentRegion(pulumi.ComponentResource):
    """One region of the agent: the same shape in every region of the stack."""

    router_arn: pulumi.Output[str]
    """What API Gateway invokes for the short routes."""
    agent_arns: dict[str, pulumi.Output[str]]
    """The agent loop's functions the state machines call (prepare, record, stream)."""
    tool_arns: dict[str, pulumi.Output[str]]
    """Each tool's function, by tool name."""
    turn_arn: pulumi.Output[str]
    """The Express turn state machine."""
    task_arn: pulumi.Output[str]
    """The Standard task state machine."""
    rest_api_id: pulumi.Output[str]
    """The region's REST API."""
    rest_endpoint: pulumi.Output[str]
    """The REST stage's base URL on its execute-api host."""
    websocket_api_id: pulumi.Output[str]
    """The region's WebSocket API."""
    websocket_endpoint: pulumi.Output[str]
    """The WebSocket stage's wss:// URL."""
    rest_stage_name: pulumi.Output[str]
    """The REST stage (custom domains map to it once it exists)."""
    websocket_stage_name: pulumi.Output[str]
    """The WebSocket stage."""
    alarm_topic_arn: pulumi.Output[str]
    """The region's alarm topic."""
    dashboard_url: str
    """The region's CloudWatch dashboard."""
    long_tools_cluster_arn: pulumi.Output[str] | None
    """The ECS cluster of the region's ``fargate-spot`` tools, if the stack has any."""

    def __init__(self, name: str, args: AgentRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:region:AgentRegion", name, None, opts)
        child_opts = pulumi.ResourceOptions(parent=self)
        context = args.context
        websocket = create_websocket_api(name, context, child_opts)
        fis_support = (
            FaultInjectionSupport(
                naming.component_name(name, "fis"), FaultInjectionSupportArgs(context=context), child_opts
            )
            if args.fault_injection.enabled
            else None
        )
        compute = AgentCompute(
            naming.component_name(name, "compute"),
            AgentComputeArgs(
                context=context,
                stack_regions=args.stack_regions,
                table_name=args.table_name,
                kms_key_arn=args.kms_key_arn,
                websocket_api_id=websocket.id,
                tools=args.tools,
                tool_dynamodb_actions=args.tool_dynamodb_actions,
                archives=args.archives,
                layer_archive=args.layer_archive,
                llm=args.llm,
                compute=args.compute,
                api=args.api,
                state=args.state,
                workflow=args.workflow,
                observability=args.observability,
                fault_injection=fis_support,
            ),
            child_opts,
        )
        fargate = self._long_tools(name, args, child_opts)
        orchestration = AgentOrchestration(
            naming.component_name(name, "orchestration"),
            AgentOrchestrationArgs(
                context=context,
                agent_arns=compute.agent_arns,
                compensate_arn=compute.compensate_arn,
                approval_request_arn=compute.approval_request_arn,
                tool_arns=compute.tool_arns,
                tools=args.tools,
                llm=args.llm,
                kms_key_arn=args.kms_key_arn,
                workflow=args.workflow,
                observability=args.observability,
                fargate=fargate,
            ),
            child_opts,
        )
        api = AgentApi(
            naming.component_name(name, "api"),
            AgentApiArgs(
                context=context,
                functions=compute.functions,
                router_invoke_target=compute.router_arn,
                turn_arn=orchestration.turn_arn,
                websocket_api=websocket,
                client_keys=args.client_keys,
                kms_key_arn=args.kms_key_arn,
                api=args.api,
                observability=args.observability,
            ),
            child_opts,
        )
        observability = RegionObservability(
            naming.component_name(name, "observability"),
            RegionObservabilityArgs(
                context=context,
                observability=args.observability,
                router_name=compute.router_name,
                turn_function_names=compute.turn_function_names,
                turn_arn=orchestration.turn_arn,
                task_arn=orchestration.task_arn,
                rest_stage=api.rest_stage_name,
                dlq_name=compute.dlq_name,
                llm_model=args.llm.model,
                kms_key_arn=args.kms_key_arn,
                cached_tools=args.cached_tools,
            ),
            child_opts,
        )
        self.fault_experiment_id: pulumi.Output[str] | None = None
        if fis_support is not None:
            experiment = RegionFaultExperiment(
                naming.component_name(name, "failover-experiment"),
                RegionFaultExperimentArgs(
                    context=context,
                    table_name=args.table_name,
                    support=fis_support,
                    config=args.fault_injection,
                    observability=args.observability,
                    kms_key_arn=args.kms_key_arn,
                    functions_ready=list(compute.functions.values()),
                ),
                child_opts,
            )
            self.fault_experiment_id = experiment.template_id
        self.router_arn = compute.router_arn
        self.agent_arns = compute.agent_arns
        self.tool_arns = compute.tool_arns
        self.turn_arn = orchestration.turn_arn
        self.task_arn = orchestration.task_arn
        self.rest_api_id = api.rest_api_id
        self.rest_endpoint = api.rest_endpoint
        self.websocket_api_id = websocket.id
        self.websocket_endpoint = api.websocket_endpoint
        self.rest_stage_name = api.rest_stage_name
        self.websocket_stage_name = api.websocket_stage_name
        self.alarm_topic_arn = observability.topic_arn
        self.dashboard_url = observability.dashboard_url
        self.long_tools_cluster_arn = fargate.cluster_arn if fargate is not None else None
        self.register_outputs(
            {
                "routerArn": self.router_arn,
                "agentArns": self.agent_arns,
                "toolArns": self.tool_arns,
                "turnArn": self.turn_arn,
                "taskArn": self.task_arn,
                "restEndpoint": self.rest_endpoint,
                "websocketEndpoint": self.websocket_endpoint,
            }
        )

    @staticmethod
    def _long_tools(name: str, args: AgentRegionArgs, opts: pulumi.ResourceOptions) -> FargateTargets | None:
        """The region's long tools (cluster, network, image, task definitions), when the stack
        has a ``fargate-spot`` tool."""
        long_tools = [t for t in args.tools if t.runtime == "fargate-spot"]
        if not long_tools:
            return None
        component = LongTools(
            naming.component_name(name, "long-tools"),
            LongToolsArgs(
                context=args.context,
                stack_regions=args.stack_regions,
                tools=long_tools,
                tool_dynamodb_actions=args.tool_dynamodb_actions,
                table_name=args.table_name,
                kms_key_arn=args.kms_key_arn,
                state=args.state,
                observability=args.observability,
            ),
            opts,
        )
        return FargateTargets(
            cluster_arn=component.cluster_arn,
            subnet_ids=component.subnet_ids,
            security_group_id=component.security_group_id,
            task_definition_arns=component.task_definition_arns,
            role_arns=[component.execution_role_arn, *component.task_role_arns.values()],
            container_name=CONTAINER_NAME,
        )
