"""AgentRegion: everything the agent runs in one region, under one parent: compute,
orchestration and the APIs, the same shape in every region."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components import naming
from components.api import AgentApi, AgentApiArgs, create_websocket_api
from components.compute import AgentCompute, AgentComputeArgs
from components.config import ApiConfig, ObservabilityConfig, WorkflowConfig
from components.observability import RegionObservability, RegionObservabilityArgs
from components.orchestration import AgentOrchestration, AgentOrchestrationArgs


@dataclass(frozen=True, kw_only=True)
class AgentRegionArgs:
    """Inputs of :class:`AgentRegion`. ``compute.websocket_api_id`` is filled in here."""

    compute: AgentComputeArgs
    workflow: WorkflowConfig
    api: ApiConfig
    observability: ObservabilityConfig
    client_keys: Mapping[str, pulumi.Input[str]]
    """Each API client's key value, the same in every region (:class:`ApiClientKeys`)."""


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

    def __init__(self, name: str, args: AgentRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:region:AgentRegion", name, None, opts)
        child_opts = pulumi.ResourceOptions(parent=self)
        websocket = create_websocket_api(name, args.compute.region, args.compute.stack, child_opts)
        compute_args = dataclasses.replace(args.compute, websocket_api_id=websocket.id)
        compute = AgentCompute(naming.component_name(name, "compute"), compute_args, child_opts)
        orchestration = AgentOrchestration(
            f"{name}-orchestration",
            AgentOrchestrationArgs(
                region=compute_args.region,
                stack=compute_args.stack,
                account_id=compute_args.account_id,
                partition=compute_args.partition,
                agent_arns=compute.agent_arns,
                compensate_arn=compute.compensate_arn,
                approval_request_arn=compute.approval_request_arn,
                tool_arns=compute.tool_arns,
                tools=args.compute.tools,
                workflow=args.workflow,
                log_retention_days=args.compute.log_retention_days,
                llm_provider=compute_args.llm.provider,
                llm_model=compute_args.llm.model,
                llm_endpoints=compute_args.llm.endpoints,
                llm_timeout_seconds=compute_args.compute.llm_timeout_seconds,
                llm_api_key=compute_args.llm.api_key,
                kms_key_arn=compute_args.kms_key_arn,
            ),
            child_opts,
        )
        api = AgentApi(
            f"{name}-api",
            AgentApiArgs(
                region=compute_args.region,
                stack=compute_args.stack,
                partition=compute_args.partition,
                account_id=compute_args.account_id,
                functions=compute.functions,
                router_invoke_target=compute.router_arn,
                turn_arn=orchestration.turn_arn,
                websocket_api=websocket,
                rate_limit=args.api.rate_limit,
                burst_limit=args.api.burst_limit,
                quota_per_day=args.api.quota_per_day,
                client_keys=args.client_keys,
                log_retention_days=compute_args.log_retention_days,
                execution_log_level=args.api.execution_log_level,
                manage_account_logging=args.api.manage_account_logging,
                kms_key_arn=compute_args.kms_key_arn,
            ),
            child_opts,
        )
        observability = RegionObservability(
            f"{name}-observability",
            RegionObservabilityArgs(
                region=compute_args.region,
                stack=compute_args.stack,
                alarm_email=args.observability.alarm_email,
                router_name=compute.router_name,
                agent_step_name=compute.functions["agent-record"].name,
                turn_arn=orchestration.turn_arn,
                task_arn=orchestration.task_arn,
                rest_api_name=naming.rest_api_name(compute_args.stack),
                rest_stage=api.rest_stage_name,
                dlq_name=compute.dlq_name,
                kms_key_arn=compute_args.kms_key_arn,
                trace_sample_rate=args.observability.trace_sample_rate,
            ),
            child_opts,
        )
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
