"""Orchestration, per region: the Express "turn" and the Standard "task" state machines.

Both are built by ``components.workflows`` from the function ARNs and the stack config.
Each machine logs to its own log group under ``/aws/vendedlogs/states/`` (level and
whether execution data is included come from the config: off in prod), traces with X-Ray,
and runs with a role that may invoke exactly the functions its definition names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming, policies
from components.config import ToolConfig, WorkflowConfig
from components.workflows import (
    ToolRoute,
    WorkflowFunctions,
    WorkflowLimits,
    lambda_arns,
    task_definition,
    turn_definition,
)


@dataclass(frozen=True, kw_only=True)
class AgentOrchestrationArgs:
    """Inputs of :class:`AgentOrchestration`."""

    region: str
    stack: str
    account_id: pulumi.Input[str]
    partition: str
    agent_step_arn: pulumi.Input[str]
    compensate_arn: pulumi.Input[str]
    approval_request_arn: pulumi.Input[str]
    tool_arns: Mapping[str, pulumi.Input[str]]
    tools: Sequence[ToolConfig]
    workflow: WorkflowConfig
    log_retention_days: int
    kms_key_arn: pulumi.Input[str] | None = None
    """The region's key, which encrypts the machines' log groups."""


class AgentOrchestration(pulumi.ComponentResource):
    """The two state machines of one region."""

    turn_arn: pulumi.Output[str]
    """The Express turn (API Gateway calls StartSyncExecution on it)."""
    task_arn: pulumi.Output[str]
    """The Standard task (the router starts it)."""
    turn_role_arn: pulumi.Output[str]
    """The turn's execution role."""

    def __init__(self, name: str, args: AgentOrchestrationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:orchestration:AgentOrchestration", name, None, opts)
        self._name, self._args = name, args
        self._child = pulumi.ResourceOptions(parent=self)
        names = [t.name for t in args.tools]
        arns = pulumi.Output.all(
            args.agent_step_arn, args.compensate_arn, args.approval_request_arn, *(args.tool_arns[n] for n in names)
        )

        def functions(values: list[str]) -> WorkflowFunctions:
            agent, compensate, approval, *tool_arns = values
            routes = [
                ToolRoute(t.name, arn, requires_approval=t.requires_approval)
                for t, arn in zip(args.tools, tool_arns, strict=True)
            ]
            return WorkflowFunctions(agent, compensate, routes, approval_request=approval, partition=args.partition)

        workflow = args.workflow
        turn_limits = WorkflowLimits(max_steps=workflow.max_steps, timeout_seconds=workflow.express_timeout_seconds)
        task_limits = WorkflowLimits(
            max_steps=workflow.max_steps,
            timeout_seconds=workflow.task_timeout_hours * 3600,
            approval_timeout_seconds=workflow.approval_timeout_hours * 3600,
        )
        turn, turn_role = self._machine(
            "turn", "EXPRESS", arns.apply(lambda v: turn_definition(functions(v), turn_limits))
        )
        task, _ = self._machine("task", "STANDARD", arns.apply(lambda v: task_definition(functions(v), task_limits)))
        self.turn_arn = turn.arn
        self.task_arn = task.arn
        self.turn_role_arn = turn_role.arn
        self.register_outputs({"turnArn": self.turn_arn, "taskArn": self.task_arn})

    def _machine(
        self, kind: str, machine_type: str, definition: pulumi.Output[dict]
    ) -> tuple[aws.sfn.StateMachine, aws.iam.Role]:
        args, name, child = self._args, f"{self._name}-{kind}", self._child
        machine_name = naming.state_machine_name(args.stack, kind)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            region=args.region,
            name=f"/aws/vendedlogs/states/{machine_name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            description=f"agent-infra {args.stack} {kind} state machine in {args.region}",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(policies.assume_role_policy("states.amazonaws.com", account))
            ),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=definition.apply(lambda d: json.dumps(policies.state_machine_policy(sorted(lambda_arns(d))))),
            opts=child,
        )
        machine = aws.sfn.StateMachine(
            name,
            region=args.region,
            name=machine_name,
            type=machine_type,
            role_arn=role.arn,
            definition=definition.apply(lambda d: json.dumps(d, indent=1)),
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                log_destination=log_group.arn.apply(lambda arn: f"{arn}:*"),
                include_execution_data=args.workflow.log_execution_data,
                level=args.workflow.log_level,
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[role_policy])),
        )
        return machine, role
