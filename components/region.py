"""AgentRegion: everything the agent runs in one region, under one parent.

Today: compute and orchestration. The APIs join it as they are built.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.compute import AgentCompute, AgentComputeArgs
from components.config import WorkflowConfig
from components.orchestration import AgentOrchestration, AgentOrchestrationArgs


@dataclass(frozen=True, kw_only=True)
class AgentRegionArgs:
    """Inputs of :class:`AgentRegion`."""

    compute: AgentComputeArgs
    workflow: WorkflowConfig


class AgentRegion(pulumi.ComponentResource):
    """One region of the agent: the same shape in every region of the stack."""

    router_arn: pulumi.Output[str]
    """What API Gateway invokes for the short routes."""
    agent_step_arn: pulumi.Output[str]
    """The agent-step function the state machines call."""
    tool_arns: dict[str, pulumi.Output[str]]
    """Each tool's function, by tool name."""
    turn_arn: pulumi.Output[str]
    """The Express turn state machine."""
    task_arn: pulumi.Output[str]
    """The Standard task state machine."""

    def __init__(self, name: str, args: AgentRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:region:AgentRegion", name, None, opts)
        child_opts = pulumi.ResourceOptions(parent=self)
        compute = AgentCompute(f"{name}-compute", args.compute, child_opts)
        orchestration = AgentOrchestration(
            f"{name}-orchestration",
            AgentOrchestrationArgs(
                region=args.compute.region,
                stack=args.compute.stack,
                account_id=args.compute.account_id,
                agent_step_arn=compute.agent_step_arn,
                compensate_arn=compute.compensate_arn,
                approval_request_arn=compute.approval_request_arn,
                tool_arns=compute.tool_arns,
                tools=args.compute.tools,
                workflow=args.workflow,
                log_retention_days=args.compute.log_retention_days,
            ),
            child_opts,
        )
        self.router_arn = compute.router_arn
        self.agent_step_arn = compute.agent_step_arn
        self.tool_arns = compute.tool_arns
        self.turn_arn = orchestration.turn_arn
        self.task_arn = orchestration.task_arn
        self.register_outputs(
            {
                "routerArn": self.router_arn,
                "agentStepArn": self.agent_step_arn,
                "toolArns": self.tool_arns,
                "turnArn": self.turn_arn,
                "taskArn": self.task_arn,
            }
        )
