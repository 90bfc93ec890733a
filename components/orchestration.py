"""Orchestration, per region: the Express "turn" and the Standard "task" state machines.

Both are built by ``components.workflows`` from the function ARNs and the stack config.
Each machine logs to its own log group under ``/aws/vendedlogs/states/`` (level and
whether execution data is included come from the config: off in prod), traces with X-Ray,
and runs with a role that may invoke exactly the functions its definition names and call
the model: Bedrock's Converse on the configured model, or, for an OpenAI-compatible API,
the HTTP Task through an EventBridge connection that holds the API key (encrypted with the
region's key; it never appears in the definition, the state or the logs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming, policies
from components.config import ObservabilityConfig, ToolConfig, WorkflowConfig
from components.context import RegionContext, RegionLlm
from components.workflows import (
    FargateRun,
    ModelCall,
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

    context: RegionContext
    agent_arns: Mapping[str, pulumi.Input[str]]
    """``prepare``, ``record`` and ``stream``: what the machines invoke for each."""
    compensate_arn: pulumi.Input[str]
    approval_request_arn: pulumi.Input[str]
    tool_arns: Mapping[str, pulumi.Input[str]]
    tools: Sequence[ToolConfig]
    llm: RegionLlm
    """The model the machines call; for openai, its API key goes into the EventBridge
    connection the HTTP Task uses."""
    kms_key_arn: pulumi.Input[str]
    """The region's key, which encrypts the machines' log groups and the connection's secret."""
    workflow: WorkflowConfig
    observability: ObservabilityConfig
    """``logRetentionDays`` of the machines' log groups."""
    fargate: FargateTargets | None = None
    """Where the ``fargate-spot`` tools run (:class:`~components.long_tools.LongTools`); None
    when the stack has none."""


@dataclass(frozen=True, kw_only=True)
class FargateTargets:
    """A region's long tools as the task machine runs them: the cluster, the network, each
    tool's task definition and the roles a run passes to ECS."""

    cluster_arn: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    task_definition_arns: Mapping[str, pulumi.Input[str]]
    role_arns: Sequence[pulumi.Input[str]]
    """The execution role and every task role."""
    container_name: str


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
        connection = self._create_connection()
        arns = pulumi.Output.all(
            prepare=args.agent_arns["prepare"],
            record=args.agent_arns["record"],
            stream=args.agent_arns["stream"],
            compensate=args.compensate_arn,
            approval_request=args.approval_request_arn,
            connection=connection.arn if connection is not None else None,
            tools={t.name: args.tool_arns.get(t.name, "") for t in args.tools},
            fargate=self._fargate_values(),
        )
        self._connection = connection

        def functions(v: dict) -> tuple[WorkflowFunctions, ModelCall]:
            routes = [self._route(t, v["tools"][t.name], v["fargate"]) for t in args.tools]
            model = ModelCall(
                args.llm.provider,
                endpoints=tuple(args.llm.endpoints) if args.llm.provider == "openai" else (),
                connection_arn=v["connection"],
                timeout_seconds=int(args.llm.timeout_seconds + 0.999),
            )
            return (
                WorkflowFunctions(
                    v["prepare"],
                    v["record"],
                    v["stream"],
                    v["compensate"],
                    routes,
                    approval_request=v["approval_request"],
                    partition=args.context.partition,
                ),
                model,
            )

        workflow = args.workflow
        turn_limits = WorkflowLimits(max_steps=workflow.max_steps, timeout_seconds=workflow.express_timeout_seconds)
        task_limits = WorkflowLimits(
            max_steps=workflow.max_steps,
            timeout_seconds=workflow.task_timeout_hours * 3600,
            approval_timeout_seconds=workflow.approval_timeout_hours * 3600,
        )
        turn, turn_role = self._machine(
            "turn", "EXPRESS", arns.apply(lambda v: turn_definition(*functions(v), turn_limits))
        )
        # Only the task runs long tools (the turn tells the model to start a task instead).
        task, _ = self._machine(
            "task",
            "STANDARD",
            arns.apply(lambda v: task_definition(*functions(v), task_limits)),
            run_tasks=arns.apply(lambda v: self._run_task_statements(v["fargate"])),
        )
        self.turn_arn = turn.arn
        self.task_arn = task.arn
        self.turn_role_arn = turn_role.arn
        self.register_outputs({"turnArn": self.turn_arn, "taskArn": self.task_arn})

    # -- long tools ---------------------------------------------------------------------------

    def _fargate_values(self) -> pulumi.Output[dict] | None:
        fargate = self._args.fargate
        if fargate is None:
            return None
        return pulumi.Output.all(
            cluster=fargate.cluster_arn,
            subnets=list(fargate.subnet_ids),
            security_group=fargate.security_group_id,
            task_definitions=dict(fargate.task_definition_arns),
            roles=list(fargate.role_arns),
            account=self._args.context.account_id,
        )

    def _route(self, tool: ToolConfig, function_arn: str, fargate: dict | None) -> ToolRoute:
        """A tool as the machines call it: a Lambda (``lambda``, ``continuation``, looped up to
        ``maxSlices``) or a container task (``fargate-spot``)."""
        run = None
        if tool.runtime == "fargate-spot":
            if fargate is None:
                raise ValueError(f"tool {tool.name} runs on fargate-spot but the region has no long tools")
            run = FargateRun(
                cluster_arn=fargate["cluster"],
                task_definition_arn=fargate["task_definitions"][tool.name],
                container_name=self._args.fargate.container_name,
                subnets=tuple(fargate["subnets"]),
                security_groups=(fargate["security_group"],),
                # Public subnets, no NAT: the task reaches ECR and the web with its own IP.
                assign_public_ip=True,
                spot_attempts=tool.spot_attempts,
            )
        return ToolRoute(
            tool.name,
            function_arn,
            requires_approval=tool.requires_approval,
            runtime=tool.runtime,
            fargate=run,
            max_slices=tool.max_slices,
            # Each run's limit (ToolConfig.timeoutSeconds): a Spot retry gets its own.
            timeout_seconds=tool.timeout_seconds if tool.runtime == "fargate-spot" else None,
        )

    def _run_task_statements(self, fargate: dict | None) -> list[dict]:
        if fargate is None:
            return []
        context = self._args.context
        return policies.ecs_run_task_statements(
            context.partition,
            context.region,
            fargate["account"],
            fargate["cluster"],
            list(fargate["task_definitions"].values()),
            fargate["roles"],
        )

    def _machine(
        self,
        kind: str,
        machine_type: str,
        definition: pulumi.Output[dict],
        run_tasks: pulumi.Output[list[dict]] | None = None,
    ) -> tuple[aws.sfn.StateMachine, aws.iam.Role]:
        args, name, child = self._args, f"{self._name}-{kind}", self._child
        context = args.context
        machine_name = naming.state_machine_name(context.stack, kind)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            region=context.region,
            name=f"/aws/vendedlogs/states/{machine_name}",
            retention_in_days=args.observability.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            description=f"agent-infra {context.stack} {kind} state machine in {context.region}",
            assume_role_policy=pulumi.Output.from_input(context.account_id).apply(
                lambda account: json.dumps(policies.assume_role_policy("states.amazonaws.com", account))
            ),
            opts=child,
        )
        model_statements = pulumi.Output.all(
            account_id=context.account_id,
            connection_arn=self._connection.arn if self._connection is not None else None,
            secret_arn=self._connection_secret(),
            key_arn=args.kms_key_arn,
            run_tasks=run_tasks if run_tasks is not None else [],
        ).apply(
            lambda v: [*self._model_statements(**{k: x for k, x in v.items() if k != "run_tasks"}), *v["run_tasks"]]
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            # Applied, not passed to Output.all: that would lift every node of the definition
            # into an Output of its own.
            policy=definition.apply(
                lambda document: model_statements.apply(
                    lambda model: json.dumps(policies.state_machine_policy(sorted(lambda_arns(document)), model))
                )
            ),
            opts=child,
        )
        machine = aws.sfn.StateMachine(
            name,
            region=context.region,
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

    # -- the model call ---------------------------------------------------------------------

    def _create_connection(self) -> aws.cloudwatch.EventConnection | None:
        """openai: the EventBridge connection the HTTP Task authenticates with. EventBridge
        keeps the key in a Secrets Manager secret of its own, encrypted with the region's key
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-target-connection.html)."""
        args = self._args
        context = args.context
        if args.llm.provider != "openai":
            return None
        if args.llm.api_key is None:
            raise ValueError("provider openai needs llm.apiKey for the HTTP Task's connection")
        return aws.cloudwatch.EventConnection(
            f"{self._name}-llm-connection",
            region=context.region,
            name=naming.stack_resource_name(context.stack, "llm"),
            description="API key of the OpenAI-compatible LLM endpoints",
            authorization_type="API_KEY",
            auth_parameters=aws.cloudwatch.EventConnectionAuthParametersArgs(
                api_key=aws.cloudwatch.EventConnectionAuthParametersApiKeyArgs(
                    key="Authorization",
                    value=pulumi.Output.secret(
                        pulumi.Output.from_input(args.llm.api_key).apply(lambda k: f"Bearer {k}")
                    ),
                )
            ),
            # The region's key carries the tag EventBridge requires of it (GlobalTable,
            # ``encrypts_connections``).
            kms_key_identifier=args.kms_key_arn,
            opts=self._child,
        )

    def _connection_secret(self) -> pulumi.Output[str] | None:
        return self._connection.secret_arn if self._connection is not None else None

    def _model_statements(
        self, account_id: str, connection_arn: str | None, secret_arn: str | None, key_arn: str | None
    ) -> list[dict]:
        args = self._args
        context = args.context
        if args.llm.provider == "bedrock":
            # The SDK integration calls Converse in the machine's own region.
            return policies.bedrock_invoke(args.llm.model, [context.region], account_id, context.partition)
        machines = [
            naming.state_machine_arn(
                context.partition, context.region, account_id, naming.state_machine_name(context.stack, k)
            )
            for k in ("turn", "task")
        ]
        return policies.http_task_statements(
            machines,
            connection_arn or "",
            secret_arn or "",
            key_arn,
            [e.rstrip("/") + "/chat/completions" for e in args.llm.endpoints],
        )
