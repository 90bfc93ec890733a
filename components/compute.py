"""Compute, per region: the router, the agent loop's functions around the model call
(prepare, record, and stream for WebSocket turns), one Lambda per tool, and the API's own.

Every function: arm64, Python 3.13, explicit memory and timeout, X-Ray active tracing,
JSON logs to its own log group with the configured retention, its own role with only the
actions it uses on this region's resources, and an SQS queue for failed asynchronous
invocations. Log groups, environment variables, the queue and the LLM API key secret are
encrypted with the region's customer-managed key. Tools may have reserved concurrency; a
function named in ``compute.provisionedConcurrency`` is published with a ``live`` alias
carrying it, and what calls the function (the state machines, API Gateway) calls the alias.

One module (about 680 lines) because it is one component: every function is made by
:meth:`AgentCompute._function`, which is where the rules above are kept, and each
``_create_*`` method only says what one function is for (its handler, environment and
statements), so a reader checks every role's privileges against the same builder here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import fault_injection, naming, policies
from components.config import ApiConfig, ComputeConfig, ObservabilityConfig, StateConfig, ToolConfig, WorkflowConfig
from components.context import RegionContext, RegionLlm
from components.fault_injection import FaultInjectionSupport
from components.packaging import ARCHITECTURE, LAMBDA_RUNTIME

# Service Quotas code of Lambda's "Concurrent executions" per region.
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"
UNRESERVED_MINIMUM = 100
AGENT_FUNCTIONS = ("prepare", "record", "stream")
# Memory of the API's own functions (approval, compensate, authorizer, connection, health):
# python -m bench.cold_start measures every handler's peak at about 48 MB after init, and a
# request adds little; 1.5x that peak rounds up to Lambda's 128 MB floor.
SMALL_FUNCTION_MB = 128


@dataclass(frozen=True, kw_only=True)
class AgentComputeArgs:
    """Inputs of :class:`AgentCompute`."""

    context: RegionContext
    stack_regions: Sequence[str]
    """Every region of the stack: the router describes a task in the region it runs in."""
    table_name: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """The region's customer-managed key: log groups, environment variables, the failure
    queue and the LLM API key secret are encrypted with it."""
    websocket_api_id: pulumi.Input[str]
    """The region's WebSocket API (created first, so the agent-step can stream to it)."""
    tools: Sequence[ToolConfig]
    tool_dynamodb_actions: Mapping[str, Sequence[str]]
    """Extra DynamoDB actions each tool declares (its module's ``TOOL.dynamodb_actions``)."""
    archives: Mapping[str, str]
    """Function key (``router``, ``agent-step``, ``tool-<name>``) → path of its code zip."""
    layer_archive: str
    llm: RegionLlm
    compute: ComputeConfig
    api: ApiConfig
    """``maxBodyKb`` (the router) and ``auth`` (the authorizer)."""
    state: StateConfig
    """``ttlDays`` of every item a function writes."""
    workflow: WorkflowConfig
    """``maxSteps`` of the agent loop."""
    observability: ObservabilityConfig
    """``logRetentionDays`` of the functions' log groups."""
    fault_injection: FaultInjectionSupport | None = None
    """With ``faultInjection.enabled``: the FIS extension every function carries."""


class AgentCompute(pulumi.ComponentResource):
    """The Lambda functions of one region."""

    router_arn: pulumi.Output[str]
    """ARN API Gateway invokes for the router (the ``live`` alias when provisioned)."""
    router_name: pulumi.Output[str]
    """Name of the router function."""
    turn_function_names: dict[str, pulumi.Output[str]]
    """Every function a turn runs (the agent loop's, each tool's, compensate), by function key:
    what the region's alarms watch."""
    agent_arns: dict[str, pulumi.Output[str]]
    """What the state machines invoke for ``prepare``, ``record`` and ``stream`` (the
    ``live`` alias where concurrency is provisioned)."""
    approval_arn: pulumi.Output[str]
    """ARN of the approval API function (POST /v1/approvals/{approvalId})."""
    approval_request_arn: pulumi.Output[str]
    """ARN of the function the task machine calls to record an approval."""
    compensate_arn: pulumi.Output[str]
    """ARN of the compensation function."""
    functions: dict[str, aws.lambda_.Function]
    """Every function, by key (for invoke ARNs and permissions)."""
    tool_arns: dict[str, pulumi.Output[str]]
    """ARN of each Lambda tool's function (``lambda`` and ``continuation``), by tool name."""
    dlq_arn: pulumi.Output[str]
    """The queue that receives failed asynchronous invocations."""
    dlq_name: pulumi.Output[str]
    """Name of that queue (for its alarm)."""

    def __init__(self, name: str, args: AgentComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:compute:AgentCompute", name, None, opts)
        context = args.context
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        region = context.region

        self._dlq = aws.sqs.Queue(
            f"{name}-dlq",
            region=region,
            kms_master_key_id=args.kms_key_arn,
            message_retention_seconds=14 * 24 * 3600,
            opts=self._child,
        )
        self._layer = aws.lambda_.LayerVersion(
            f"{name}-deps",
            region=region,
            layer_name=naming.stack_resource_name(context.stack, "deps"),
            code=pulumi.FileArchive(args.layer_archive),
            compatible_runtimes=[LAMBDA_RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            opts=self._child,
        )
        self._table_arn = pulumi.Output.all(account=context.account_id, table=args.table_name).apply(
            lambda v: naming.table_arn(context.partition, region, v["account"], v["table"])
        )
        # Every replica: the functions that read and write a session (or a key, or a decision)
        # in its home replica, wherever that is (handlers/shared/store/replicas.py).
        self._replica_arns = pulumi.Output.all(account=context.account_id, table=args.table_name).apply(
            lambda v: [naming.table_arn(context.partition, r, v["account"], v["table"]) for r in args.stack_regions]
        )
        self._store_environment = {
            "TABLE_REGIONS": json.dumps(list(args.stack_regions)),
            "EVACUATED_REGIONS": json.dumps(list(args.state.evacuated_regions)),
        }
        # Where the agent loop and compensation post WebSocket frames.
        self._connections_arn = pulumi.Output.all(account=context.account_id, api=args.websocket_api_id).apply(
            lambda v: (
                f"arn:{context.partition}:execute-api:{region}:{v['account']}:{v['api']}"
                f"/{naming.STAGE}/POST/@connections/*"
            )
        )
        self._websocket_endpoint = pulumi.Output.from_input(args.websocket_api_id).apply(
            lambda api: f"https://{naming.execute_api_host(api, region, context.partition)}/{naming.STAGE}"
        )
        # Every function's role trusts Lambda in this account: one document for all of them.
        self._assume_role_policy = pulumi.Output.from_input(context.account_id).apply(
            lambda account: json.dumps(policies.lambda_assume_role_policy(account))
        )

        self._concurrency_fits = self._check_concurrency_quota()
        self.functions = {}
        self._targets: dict[str, pulumi.Output[str]] = {}
        router = self._create_router()
        self._create_agent_functions()
        # A fargate-spot tool runs as a container task (components/long_tools.py), not a Lambda.
        lambda_tools = [tool for tool in args.tools if tool.runtime != "fargate-spot"]
        self.tool_arns = {tool.name: self._target(self._create_tool(tool)) for tool in lambda_tools}
        self.approval_arn, self.approval_request_arn = self._create_approval()
        self.compensate_arn = self._create_compensate().arn
        self._create_edge_functions()

        self.router_name = router.name
        turn_keys = (
            *(f"agent-{kind}" for kind in AGENT_FUNCTIONS),
            *(naming.function_key(tool.name) for tool in lambda_tools),
            "compensate",
        )
        self.turn_function_names = {key: self.functions[key].name for key in turn_keys}
        self.router_arn = self._target(router)
        self.agent_arns = {kind: self._target(self.functions[f"agent-{kind}"]) for kind in AGENT_FUNCTIONS}
        self.dlq_arn = self._dlq.arn
        self.dlq_name = self._dlq.name
        self.register_outputs(
            {
                "routerArn": self.router_arn,
                "agentArns": self.agent_arns,
                "toolArns": self.tool_arns,
                "approvalArn": self.approval_arn,
                "approvalRequestArn": self.approval_request_arn,
                "compensateArn": self.compensate_arn,
                "dlqArn": self.dlq_arn,
            }
        )

    # -- the account's concurrency ------------------------------------------------------

    def _check_concurrency_quota(self) -> pulumi.Output[bool] | None:
        """Reserved and provisioned concurrency come out of the account's Lambda concurrency
        in the region, and AWS refuses any that leaves fewer than 100 executions unreserved
        (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html); new
        accounts start far lower than the default 1,000
        (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). Read the
        quota (Service Quotas, ``L-B99A9384``) and stop at preview, naming the region, the
        quota and the sum needed, instead of failing halfway through ``pulumi up``."""
        args = self._args
        context = args.context
        reserved = sum(t.reserved_concurrency or 0 for t in args.tools)
        provisioned = sum(args.compute.provisioned_concurrency.values())
        if reserved + provisioned == 0:
            return None
        needed = reserved + provisioned + UNRESERVED_MINIMUM
        quota = aws.servicequotas.get_service_quota_output(
            service_code="lambda",
            quota_code=LAMBDA_CONCURRENCY_QUOTA,
            region=context.region,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )

        def fits(value: float) -> bool:
            if value < needed:
                raise ValueError(
                    f"Lambda concurrency in {context.region}: the stack reserves {reserved} (tools' reservedConcurrency)"
                    f" and provisions {provisioned} (compute.provisionedConcurrency); with the {UNRESERVED_MINIMUM}"
                    f" executions AWS keeps unreserved that needs {needed}, but the account's quota"
                    f" (Service Quotas lambda/{LAMBDA_CONCURRENCY_QUOTA}) is {value:g}. Lower the reservations or"
                    " request a quota increase."
                )
            return True

        return quota.value.apply(fits)

    # -- the functions --------------------------------------------------------------------

    def _create_router(self) -> aws.lambda_.Function:
        args = self._args
        context = args.context
        task_machine = naming.state_machine_name(context.stack, "task")
        statements = pulumi.Output.all(
            account=context.account_id, table_arn=self._table_arn, replicas=self._replica_arns
        ).apply(
            lambda v: [
                *policies.table_access(v["table_arn"], ["dynamodb:GetItem", "dynamodb:PutItem"], ["dynamodb:Query"]),
                # Sessions and Idempotency-Key claims in their home replicas: a claim is a
                # conditional put with checks of the other replicas' records (and a GetItem of
                # the record in each other replica), given back (DeleteItem) when the request
                # fails, completed (UpdateItem) when it is done.
                policies.replica_access(
                    v["replicas"],
                    [
                        "dynamodb:GetItem",
                        "dynamodb:Query",
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:ConditionCheckItem",
                    ],
                ),
                policies.statement(
                    "StartTasks",
                    ["states:StartExecution"],
                    [naming.state_machine_arn(context.partition, context.region, v["account"], task_machine)],
                ),
                # A task is described in the region it runs in, whichever region is asked.
                policies.statement(
                    "DescribeTasks",
                    ["states:DescribeExecution"],
                    [
                        naming.executions_arn(context.partition, r, v["account"], task_machine)
                        for r in args.stack_regions
                    ],
                ),
            ]
        )
        environment = pulumi.Output.all(account=context.account_id, table=args.table_name).apply(
            lambda v: {
                "TABLE_NAME": v["table"],
                "TTL_DAYS": str(args.state.ttl_days),
                **self._store_environment,
                "MAX_BODY_BYTES": str(args.api.max_body_kb * 1024),
                "TASK_STATE_MACHINE_ARN": naming.state_machine_arn(
                    context.partition, context.region, v["account"], task_machine
                ),
            }
        )
        return self._function(
            "router",
            handler="handlers.router.handler",
            memory=args.compute.router_memory_mb,
            timeout=args.compute.router_timeout_seconds,
            environment=environment,
            statements=statements,
        )

    def _create_agent_functions(self) -> None:
        """The agent loop's three functions, from one archive: prepare (reads the
        conversation), record (writes a step, posts WebSocket frames) and stream (a
        WebSocket turn's model call, the only one that calls the model itself)."""
        args = self._args
        context = args.context
        llm = args.llm
        secret_arn: pulumi.Output[str] | None = None
        if llm.api_key is not None:
            secret = aws.secretsmanager.Secret(
                f"{self._name}-llm-api-key",
                region=context.region,
                description="API key of the OpenAI-compatible LLM endpoints (streaming turns)",
                kms_key_id=args.kms_key_arn,
                recovery_window_in_days=7,
                opts=self._child,
            )
            aws.secretsmanager.SecretVersion(
                f"{self._name}-llm-api-key-value",
                region=context.region,
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(llm.api_key),
                opts=self._child,
            )
            secret_arn = secret.arn
        connections = self._connections_arn
        environment = pulumi.Output.all(table=args.table_name, websocket=self._websocket_endpoint).apply(
            lambda v: {
                "WEBSOCKET_ENDPOINT": v["websocket"],
                "TABLE_NAME": v["table"],
                "TTL_DAYS": str(args.state.ttl_days),
                **self._store_environment,
                "MAX_STEPS": str(args.workflow.max_steps),
                "MAX_TOKENS": str(args.compute.max_tokens),
                "LLM_PROVIDER": llm.provider,
                "LLM_MODEL": llm.model,
                "LLM_ENDPOINTS": json.dumps(list(llm.endpoints)),
                "LLM_TIMEOUT_SECONDS": f"{llm.timeout_seconds:g}",
                "HISTORY_TOKENS": str(llm.history_tokens),
                "PROMPT_CACHING": "true" if llm.prompt_caching else "false",
            }
        )
        compute = args.compute
        self._function(
            "agent-prepare",
            archive="agent-step",
            handler="handlers.agent_step.prepare_handler",
            memory=compute.agent_step_memory_mb,
            timeout=compute.agent_step_timeout_seconds,
            environment=environment,
            # Query loads the conversation, in the session's home replica; BatchGetItem reads
            # tool outputs passed by reference (this region's runs).
            statements=pulumi.Output.all(table_arn=self._table_arn, replicas=self._replica_arns).apply(
                lambda v: [
                    *policies.table_access(v["table_arn"], ["dynamodb:BatchGetItem"]),
                    policies.replica_access(v["replicas"], ["dynamodb:Query"]),
                ]
            ),
        )
        self._function(
            "agent-record",
            archive="agent-step",
            handler="handlers.agent_step.record_handler",
            memory=compute.agent_step_memory_mb,
            timeout=compute.agent_step_timeout_seconds,
            environment=environment,
            statements=pulumi.Output.all(
                table_arn=self._table_arn, replicas=self._replica_arns, connections=connections
            ).apply(
                lambda v: [
                    # BatchGetItem reads tool outputs passed by reference; DeleteItem forgets a
                    # WebSocket connection that is gone (both this region's items).
                    *policies.table_access(v["table_arn"], ["dynamodb:BatchGetItem", "dynamodb:DeleteItem"]),
                    # In the session's home replica: PutItem writes a step (and, in a
                    # transaction, a new session's metadata or a turn's idempotency claim, with
                    # ConditionChecks of the other replicas' claims, after a GetItem of the claim
                    # in each other replica); UpdateItem refreshes the session's place in the
                    # recent list.
                    policies.replica_access(
                        v["replicas"],
                        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
                    ),
                    policies.statement("PostToConnections", ["execute-api:ManageConnections"], [v["connections"]]),
                ]
            ),
        )

        def stream_statements(account_id: str, table_arn: str, connection_arn: str, secret: str | None) -> list:
            model = (
                policies.bedrock_invoke(llm.model, list(llm.endpoints), account_id, context.partition)
                if llm.provider == "bedrock"
                else [policies.statement("ReadLlmApiKey", ["secretsmanager:GetSecretValue"], [secret])]
                if secret
                else []
            )
            return [
                *policies.table_access(table_arn, ["dynamodb:DeleteItem"]),
                policies.statement("StreamToConnections", ["execute-api:ManageConnections"], [connection_arn]),
                *model,
            ]

        self._function(
            "agent-stream",
            archive="agent-step",
            handler="handlers.agent_step.stream_handler",
            memory=compute.stream_memory_mb,
            timeout=compute.stream_timeout_seconds,
            environment=pulumi.Output.all(environment=environment, secret_arn=secret_arn).apply(
                lambda v: {
                    **v["environment"],
                    "AGENT_STEP_ENTRY": "stream",
                    **({"LLM_API_KEY_SECRET_ARN": v["secret_arn"]} if v["secret_arn"] else {}),
                }
            ),
            statements=pulumi.Output.all(
                account_id=context.account_id, table_arn=self._table_arn, connection_arn=connections, secret=secret_arn
            ).apply(lambda v: stream_statements(**v)),
        )

    def _create_tool(self, tool: ToolConfig) -> aws.lambda_.Function:
        args = self._args
        extra = list(args.tool_dynamodb_actions.get(tool.name, ()))
        statements = self._table_arn.apply(
            lambda arn: policies.table_access(arn, sorted({"dynamodb:GetItem", "dynamodb:PutItem", *extra}))
        )
        environment = pulumi.Output.from_input(args.table_name).apply(
            lambda table: {"TABLE_NAME": table, "TTL_DAYS": str(args.state.ttl_days)}
        )
        return self._function(
            naming.function_key(tool.name),
            handler=f"handlers.tools.{tool.name}.handler",
            memory=tool.memory_mb,
            timeout=tool.timeout_seconds,
            environment=environment,
            statements=statements,
            reserved_concurrency=tool.reserved_concurrency,
        )

    def _create_approval(self) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """Two functions from one module: the API side may read, decide and call back; the
        state-machine side may only record a request."""
        args = self._args
        environment = pulumi.Output.from_input(args.table_name).apply(
            lambda table: {"TABLE_NAME": table, "TTL_DAYS": str(args.state.ttl_days), **self._store_environment}
        )
        decide = self._function(
            "approval",
            handler="handlers.approval.handler",
            memory=SMALL_FUNCTION_MB,
            timeout=10,
            environment=environment,
            statements=pulumi.Output.all(table_arn=self._table_arn, replicas=self._replica_arns).apply(
                lambda v: [
                    *policies.table_access(v["table_arn"], ["dynamodb:Query"]),
                    # A decision is taken in the execution's region (or the run's next one): a
                    # transaction of the decision, a check that the approval is pending and
                    # checks of the other replicas' decisions; UpdateItem marks it delivered.
                    policies.replica_access(
                        v["replicas"], ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
                    ),
                    # Task tokens are not ARNs: these actions take no resource-level scope.
                    policies.statement("AnswerApprovals", policies.TASK_TOKEN_ACTIONS, ["*"]),
                ]
            ),
        )
        request = self._function(
            "approval-request",
            archive="approval",
            handler="handlers.approval.request_handler",
            memory=SMALL_FUNCTION_MB,
            timeout=10,
            environment=environment,
            statements=self._table_arn.apply(lambda arn: policies.table_access(arn, ["dynamodb:PutItem"])),
        )
        return decide.arn, request.arn

    def _create_edge_functions(self) -> None:
        args = self._args
        context = args.context
        turn = naming.state_machine_name(context.stack, "turn")
        task = naming.state_machine_name(context.stack, "task")
        self._function(
            "authorizer",
            handler="handlers.authorizer.handler",
            memory=SMALL_FUNCTION_MB,
            timeout=5,
            environment={"AUTH_ISSUER": args.api.auth.issuer, "AUTH_AUDIENCE": args.api.auth.audience},
            statements=pulumi.Output.from_input([]),
        )
        machines = pulumi.Output.from_input(context.account_id).apply(
            lambda account: {
                kind: naming.state_machine_arn(context.partition, context.region, account, machine)
                for kind, machine in (("turn", turn), ("task", task))
            }
        )
        self._function(
            "connection",
            handler="handlers.connection.handler",
            memory=SMALL_FUNCTION_MB,
            timeout=10,
            environment=pulumi.Output.all(table=args.table_name, machines=machines).apply(
                lambda v: {
                    "TABLE_NAME": v["table"],
                    "TTL_DAYS": str(args.state.ttl_days),
                    "TURN_STATE_MACHINE_ARN": v["machines"]["turn"],
                }
            ),
            statements=pulumi.Output.all(table_arn=self._table_arn, machines=machines).apply(
                lambda v: [
                    *policies.table_access(
                        v["table_arn"], ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
                    ),
                    policies.statement("StartTurns", ["states:StartExecution"], [v["machines"]["turn"]]),
                ]
            ),
        )
        self._function(
            "health",
            handler="handlers.health.handler",
            memory=SMALL_FUNCTION_MB,
            timeout=5,
            environment=pulumi.Output.all(table=args.table_name, machines=machines).apply(
                lambda v: {
                    "TABLE_NAME": v["table"],
                    "TURN_STATE_MACHINE_ARN": v["machines"]["turn"],
                    "TASK_STATE_MACHINE_ARN": v["machines"]["task"],
                }
            ),
            statements=pulumi.Output.all(table_arn=self._table_arn, machines=machines).apply(
                lambda v: [
                    policies.statement("DescribeTable", ["dynamodb:DescribeTable"], [v["table_arn"]]),
                    policies.statement(
                        "DescribeMachines",
                        ["states:DescribeStateMachine"],
                        [v["machines"]["turn"], v["machines"]["task"]],
                    ),
                ]
            ),
        )

    def _create_compensate(self) -> aws.lambda_.Function:
        args = self._args
        actions = {"dynamodb:Query", "dynamodb:UpdateItem"}
        for tool in args.tools:
            if tool.compensable:
                actions |= set(args.tool_dynamodb_actions.get(tool.name, ()))
        # It reads the session and appends the run's failed marker, and tells a WebSocket client.
        actions |= {"dynamodb:PutItem", "dynamodb:DeleteItem"}
        environment = pulumi.Output.all(table=args.table_name, websocket=self._websocket_endpoint).apply(
            lambda v: {
                "TABLE_NAME": v["table"],
                "TTL_DAYS": str(args.state.ttl_days),
                **self._store_environment,
                "WEBSOCKET_ENDPOINT": v["websocket"],
            }
        )
        return self._function(
            "compensate",
            handler="handlers.compensate.handler",
            memory=SMALL_FUNCTION_MB,
            timeout=60,
            environment=environment,
            statements=pulumi.Output.all(
                table_arn=self._table_arn, replicas=self._replica_arns, connections=self._connections_arn
            ).apply(
                lambda v: [
                    *policies.table_access(v["table_arn"], sorted(actions)),
                    # The failed marker goes to the session's home replica.
                    policies.replica_access(v["replicas"], ["dynamodb:Query", "dynamodb:PutItem"]),
                    policies.statement("TellConnections", ["execute-api:ManageConnections"], [v["connections"]]),
                ]
            ),
        )

    def _function(
        self,
        key: str,
        *,
        archive: str | None = None,
        handler: str,
        memory: int,
        timeout: int,
        environment: pulumi.Input[Mapping[str, str]],
        statements: pulumi.Output[list[dict]],
        reserved_concurrency: int | None = None,
    ) -> aws.lambda_.Function:
        args, name, child = self._args, f"{self._name}-{key}", self._child
        context = args.context
        layers: list[pulumi.Input[str]] = [self._layer.arn]
        fis = args.fault_injection
        if fis is not None:
            # The FIS Lambda actions work through an extension in each function
            # (components/fault_injection.py): its layer, its settings, its configuration's bucket.
            layers.append(fis.layer_arn)
            environment = pulumi.Output.all(env=environment, bucket=fis.bucket_arn).apply(
                lambda v: {**v["env"], **fault_injection.function_environment(v["bucket"])}
            )
            statements = pulumi.Output.all(own=statements, bucket=fis.bucket_arn).apply(
                lambda v: [*v["own"], *fault_injection.function_statements(v["bucket"])]
            )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            region=context.region,
            name=naming.function_log_group(context.stack, key),
            retention_in_days=args.observability.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            description=f"agent-infra {context.stack} {key} in {context.region}",
            assume_role_policy=self._assume_role_policy,
            opts=child,
        )
        # The statements (a list of documents) are applied, never passed to Output.all: that
        # would lift every nested dict and list into Outputs of its own, for nothing.
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(
                log_group_arn=log_group.arn, dlq_arn=self._dlq.arn, key_arn=args.kms_key_arn
            ).apply(
                lambda basics: statements.apply(
                    lambda own: json.dumps(policies.policy(*own, *policies.function_basics(**basics)))
                )
            ),
            opts=child,
        )
        function = aws.lambda_.Function(
            name,
            region=context.region,
            role=role.arn,
            runtime=LAMBDA_RUNTIME,
            architectures=[ARCHITECTURE],
            handler=handler,
            code=pulumi.FileArchive(args.archives[archive or key]),
            layers=layers,
            memory_size=memory,
            timeout=timeout,
            # PassThrough: a function traces a request when its caller (API Gateway, Step
            # Functions) sampled it, so the stack's sampling rules set the rate end to end.
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="PassThrough"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=log_group.name, application_log_level="INFO", system_log_level="WARN"
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            kms_key_arn=args.kms_key_arn,
            reserved_concurrent_executions=(
                None
                if reserved_concurrency is None
                else self._concurrency_fits.apply(lambda _: reserved_concurrency)  # only once it fits
            ),
            publish=key in args.compute.provisioned_concurrency,
            # The role must be able to write logs before the first invocation.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[role_policy])),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            region=context.region,
            function_name=function.name,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=3600,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self._dlq.arn
                )
            ),
            opts=child,
        )
        self.functions[key] = function
        return function

    def _target(self, function: aws.lambda_.Function) -> pulumi.Output[str]:
        """What callers invoke: the function, or its ``live`` alias carrying provisioned
        concurrency when ``compute.provisionedConcurrency`` names it."""
        args = self._args
        context = args.context
        key = next(k for k, f in self.functions.items() if f is function)
        provisioned = args.compute.provisioned_concurrency.get(key, 0)
        if provisioned <= 0:
            return function.arn
        alias = aws.lambda_.Alias(
            f"{self._name}-{key}-live",
            region=context.region,
            name="live",
            function_name=function.name,
            function_version=function.version,
            opts=self._child,
        )
        aws.lambda_.ProvisionedConcurrencyConfig(
            f"{self._name}-{key}-provisioned",
            region=context.region,
            function_name=function.name,
            qualifier=alias.name,
            provisioned_concurrent_executions=self._concurrency_fits.apply(lambda _: provisioned),
            opts=self._child,
        )
        return alias.arn
