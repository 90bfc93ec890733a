"""One region of the local stack: its functions, its state machines, its REST and WebSocket APIs.

The local stack (``local/stack.py``) builds one ``RegionStack`` per region from what the
regions share (``Shared``: the config, the model, the JWT issuer, the API key, the Step
Functions adapter, the regions' liveness). Each region's functions run with that region as
``AWS_REGION``: its store reads and writes the replica of each session's home, through
clients that fail while a region is down; its state machines are moto's of that region; its
Lambda tasks are dispatched to its own handlers. Everything comes from the builders the
Pulumi program deploys (the state machine definitions, the OpenAPI document).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from components import naming

__all__ = ["ACCOUNT", "RegionStack", "Shared"]

ACCOUNT = naming.STAND_IN_ACCOUNT_ID
PARTITION = "aws"
"""The partition of every region moto emulates here."""
LOCAL_SPOT_WAIT_SECONDS = 2
"""The Wait after a local Spot interruption (the deployed machine's is 30 s): no capacity to wait for here."""


@dataclass
class Shared:
    """What every region of the local stack shares."""

    config: Any
    stack_name: str
    table_name: str
    host: str
    log: Callable[[dict[str, Any]], None]
    events: Any
    """The event loop the servers run on."""
    regions: Any
    """``local.regions.Regions``: which regions are up."""
    adapter: Any
    authorizer: Callable[[dict[str, Any]], dict[str, Any]]
    api_keys: dict[str, str]
    llm: Any
    llm_provider: str
    llm_model: str
    llm_endpoints: list[str]
    connection_arn: str | None
    throttle: tuple[float, int] | None
    home_cooldown_seconds: float
    on_definition_failed: Callable[[str, Exception], None]
    specs: list[Any] = field(default_factory=list)
    approval_tools: set[str] = field(default_factory=set)
    moto_url: str | None = None
    """moto's HTTP server: where a fargate-spot tool's container (a local process) reaches AWS."""


class RegionStack:
    """One region, wired and serving; ``stop()`` ends it."""

    def __init__(self, shared: Shared, region: str, rest_port: int = 0, ws_port: int = 0) -> None:
        self.shared = shared
        self.region = region
        self.rest_port = rest_port
        self.ws_port = ws_port
        self._started = contextlib.ExitStack()
        """What stop() undoes, last started first."""

    def available(self) -> bool:
        return self.shared.regions.is_up(self.region)

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client of ``region`` (this one by default) that fails while it is down."""
        import boto3

        return self.shared.regions.guard(boto3.client(service, region_name=region or self.region))

    def start(self) -> RegionStack:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._started.close()

    def _on_stop(self, stop: Callable[[], object]) -> None:
        self._started.callback(self._stop_one, stop)

    def _stop_one(self, stop: Callable[[], object]) -> None:
        try:
            stop()
        except Exception as error:  # keep stopping the rest
            self.shared.log({"message": "stop failed", "region": self.region, "error": repr(error)})

    # -- wiring ------------------------------------------------------------------------------

    def _start(self) -> RegionStack:
        from handlers.shared.store import Replicas, Store
        from local.stepfunctions.interpreter import LambdaDispatcher

        shared, region = self.shared, self.region
        config = shared.config
        self.dynamodb = self.client("dynamodb")
        self.sfn = self.client("stepfunctions")
        sfn_clients: dict[str, Any] = {}

        def stepfunctions(in_region: str) -> Any:
            if in_region not in sfn_clients:
                sfn_clients[in_region] = self.client("stepfunctions", in_region)
            return sfn_clients[in_region]

        self.stepfunctions = stepfunctions
        replicas = Replicas(
            region,
            shared.regions.names,
            client_for=lambda replica: self.client("dynamodb", replica),
            evacuated=config.state.evacuated_regions,
            cooldown_seconds=shared.home_cooldown_seconds,
        )
        replicas.set_client(region, self.dynamodb)
        self.store = Store(shared.table_name, region, config.state.ttl_days, replicas=replicas)
        self.dispatcher = LambdaDispatcher(keep=100, available=self.available)
        self._start_websocket()
        self._register_functions()
        self._create_state_machines()
        self._start_rest()
        shared.regions.on_change(self._region_changed)
        return self

    def _arn(self, name: str) -> str:
        return naming.function_arn(PARTITION, self.region, ACCOUNT, name)

    def _start_websocket(self) -> None:
        from local.apigateway.gateway import WebSocketApi

        self.websocket = WebSocketApi(
            lambda event: self.connections.handle(event),
            self.shared.authorizer,
            self.shared.events,
            self.shared.log,
            self.shared.host,
            self.ws_port,
            available=self.available,
        )
        self._on_stop(self.websocket.stop)

    def _register_functions(self) -> None:
        from components.workflows import ToolRoute
        from handlers.agent_step import AgentStep, AgentStepSettings
        from handlers.approval import Approvals, ApprovalSettings
        from handlers.compensate import Compensator
        from handlers.shared.streaming import AnswerStream
        from handlers.tools import load_tool

        shared, region, config = self.shared, self.region, self.shared.config

        def stream_to(connection_id: str, message_id: str) -> AnswerStream:
            return AnswerStream(connection_id, message_id, self.websocket.post, on_gone=self.store.connections.delete)

        self.agent = AgentStep(
            AgentStepSettings(
                TABLE_NAME=shared.table_name,
                AWS_REGION=region,
                LLM_PROVIDER=shared.llm_provider,
                LLM_MODEL=shared.llm_model,
                LLM_ENDPOINTS=shared.llm_endpoints,
                TTL_DAYS=config.state.ttl_days,
                MAX_STEPS=config.workflow.max_steps,
                MAX_TOKENS=config.compute.max_tokens,
                HISTORY_TOKENS=config.llm.history_tokens,
                PROMPT_CACHING=config.llm.prompt_caching,
            ),
            self.store,
            shared.specs,
            shared.approval_tools,
            llm=shared.llm,
            stream_to=stream_to,
            post=self.websocket.post,
            long_tools={t.name for t in config.tools if t.long},
        )
        agent, dispatcher = self.agent, self.dispatcher
        dispatcher.register("agent-prepare", lambda event, ctx: agent.prepare(event))
        dispatcher.register("agent-record", lambda event, ctx: agent.record(event))
        dispatcher.register("agent-stream", lambda event, ctx: agent.stream(event, ctx.get_remaining_time_in_millis()))
        compensator = Compensator(self.store, self.websocket.post)
        dispatcher.register("compensate", lambda event, ctx: compensator.handle(event))
        self.approvals = Approvals(
            ApprovalSettings(TABLE_NAME=shared.table_name, AWS_REGION=region), self.store, self.stepfunctions
        )
        dispatcher.register("approval-request", lambda event, ctx: self.approvals.request(event))
        self.routes = []
        for tool_config in config.tools:
            if tool_config.runtime == "fargate-spot":
                self.routes.append(self._fargate_tool(tool_config))
                continue
            tool = load_tool(tool_config.name)
            store = self.store
            dispatcher.register(
                f"tool-{tool_config.name}", lambda event, ctx, t=tool, s=store: t.lambda_handler(event, ctx, store=s)
            )
            self.routes.append(
                ToolRoute(
                    tool_config.name,
                    self._arn(f"tool-{tool_config.name}"),
                    tool_config.requires_approval,
                    runtime=tool_config.runtime,
                    max_slices=tool_config.max_slices,
                )
            )

    def _fargate_tool(self, tool_config: Any) -> Any:
        """A fargate-spot tool: its task definition registered with the adapter's LocalEcs, which
        runs the image's entrypoint (``python -m handlers.longrun``) as a local process with the
        environment the task definition gives the container, talking to moto's HTTP server."""
        from components.workflows import FargateRun, ToolRoute
        from local.ecs.tasks import LocalTaskDefinition

        shared, region = self.shared, self.region
        if shared.moto_url is None:
            raise ValueError(
                f"tool {tool_config.name!r} runs on fargate-spot: its container (a local process) needs moto's HTTP"
                " server; start the stack with a moto port"
            )
        family = naming.task_family(shared.stack_name, tool_config.name)
        task_definition = naming.task_definition_arn(PARTITION, region, ACCOUNT, family, 1)
        shared.adapter.ecs.register(
            LocalTaskDefinition(
                task_definition,
                "tool",
                {
                    "TABLE_NAME": shared.table_name,
                    "AWS_REGION": region,
                    "AWS_DEFAULT_REGION": region,
                    "TTL_DAYS": str(shared.config.state.ttl_days),
                    "TABLE_REGIONS": json.dumps(list(shared.regions.names)),
                    "EVACUATED_REGIONS": json.dumps(list(shared.config.state.evacuated_regions)),
                    "TOOL_NAME": tool_config.name,
                    "AWS_ENDPOINT_URL": shared.moto_url,
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                },
                # Fargate's longest stop timeout, as the task definition sets it (components/long_tools.py).
                stop_timeout_seconds=120,
            )
        )
        run = FargateRun(
            naming.cluster_arn(PARTITION, region, ACCOUNT, naming.tools_cluster_name(shared.stack_name)),
            task_definition,
            "tool",
            subnets=["subnet-local"],
            security_groups=["sg-local"],
            spot_attempts=tool_config.spot_attempts,
        )
        return ToolRoute(
            tool_config.name,
            "",
            tool_config.requires_approval,
            runtime="fargate-spot",
            fargate=run,
            timeout_seconds=tool_config.timeout_seconds,
        )

    def _create_state_machines(self) -> None:
        from components.naming import state_machine_name
        from components.workflows import (
            ModelCall,
            WorkflowFunctions,
            WorkflowLimits,
            task_definition,
            turn_definition,
        )

        shared, region, config = self.shared, self.region, self.shared.config
        functions = WorkflowFunctions(
            self._arn("agent-prepare"),
            self._arn("agent-record"),
            self._arn("agent-stream"),
            self._arn("compensate"),
            self.routes,
            approval_request=self._arn("approval-request"),
        )
        model = ModelCall(
            shared.llm_provider,
            endpoints=tuple(shared.llm_endpoints) if shared.llm_provider == "openai" else (),
            connection_arn=shared.connection_arn,
            timeout_seconds=int(config.compute.llm_timeout_seconds + 0.999),
        )
        workflow = config.workflow
        iam = self.client("iam")
        try:
            role = iam.create_role(RoleName="local-states", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:  # IAM is global: the first region made it
            role = iam.get_role(RoleName="local-states")["Role"]["Arn"]
        express_limits = WorkflowLimits(workflow.max_steps, workflow.express_timeout_seconds)
        standard_limits = WorkflowLimits(
            workflow.max_steps,
            workflow.task_timeout_hours * 3600,
            workflow.approval_timeout_hours * 3600,
            spot_wait_seconds=LOCAL_SPOT_WAIT_SECONDS,
        )
        turn_name = state_machine_name(shared.stack_name, "turn")
        task_name = state_machine_name(shared.stack_name, "task")
        # moto parses a definition (ANTLR, 0.1-0.3 s each) to validate it; here that parse runs
        # in the background and leaves the program for the first execution (which waits for it
        # if it comes first). The definitions are the builders' own, which the tests validate.
        with shared.adapter.validating_in_background(failed=shared.on_definition_failed):
            for name, kind, definition in (
                (turn_name, "EXPRESS", turn_definition(functions, model, express_limits)),
                (task_name, "STANDARD", task_definition(functions, model, standard_limits)),
            ):
                self.sfn.create_state_machine(name=name, type=kind, roleArn=role, definition=json.dumps(definition))
        self.turn_arn = naming.state_machine_arn(PARTITION, region, ACCOUNT, turn_name)
        self.task_arn = naming.state_machine_arn(PARTITION, region, ACCOUNT, task_name)

    def _start_rest(self) -> None:
        from components.openapi import HEALTH_BURST_LIMIT, HEALTH_RATE_LIMIT, RestApiTargets, rest_api_document
        from handlers.connection import Connections, ConnectionSettings
        from handlers.health import Health, HealthSettings
        from handlers.router import Router, RouterSettings
        from local.apigateway.gateway import RestApi, RestServer

        shared, region, config = self.shared, self.region, self.shared.config
        router = Router(
            RouterSettings(
                TABLE_NAME=shared.table_name,
                AWS_REGION=region,
                TASK_STATE_MACHINE_ARN=self.task_arn,
                MAX_BODY_BYTES=config.api.max_body_kb * 1024,
            ),
            self.store,
            self.stepfunctions,
        )
        health = Health(
            HealthSettings(
                TABLE_NAME=shared.table_name,
                AWS_REGION=region,
                TURN_STATE_MACHINE_ARN=self.turn_arn,
                TASK_STATE_MACHINE_ARN=self.task_arn,
            ),
            self.dynamodb,
            self.sfn,
        )
        self.connections = Connections(
            ConnectionSettings(TABLE_NAME=shared.table_name, AWS_REGION=region, TURN_STATE_MACHINE_ARN=self.turn_arn),
            self.store,
            lambda: self.sfn,
        )

        def invoke_arn(function: str) -> str:
            return naming.lambda_invoke_arn(PARTITION, region, self._arn(function))

        # The REST API's own document, as the Pulumi component deploys it, with this region's ARNs.
        self.openapi = rest_api_document(
            RestApiTargets(
                region=region,
                router_invoke_arn=invoke_arn("router"),
                approval_invoke_arn=invoke_arn("approval"),
                health_invoke_arn=invoke_arn("health"),
                authorizer_invoke_arn=invoke_arn("authorizer"),
                turn_state_machine_arn=self.turn_arn,
                turn_role_arn=naming.role_arn(PARTITION, ACCOUNT, "local-turn-integration"),
            ),
            title=naming.rest_api_name(shared.stack_name),
        )
        rate, burst = shared.throttle or (config.api.rate_limit, config.api.burst_limit)
        self.rest_api = RestApi(
            self.openapi,
            functions={"router": router.handle, "approval": self.approvals.handle, "health": health.handle},
            authorizer=shared.authorizer,
            api_keys=shared.api_keys,
            stepfunctions=self.sfn,
            rate_limit=rate,
            burst_limit=burst,
            method_limits={("GET", "/v1/health"): (HEALTH_RATE_LIMIT, HEALTH_BURST_LIMIT)},
            log=shared.log,
        )
        self.rest = RestServer(self.rest_api, shared.events, shared.host, self.rest_port, available=self.available)
        self._on_stop(self.rest.stop)

    def _region_changed(self, region: str, up: bool) -> None:
        if region == self.region and not up:
            self.rest.drop_all()
            self.websocket.drop_all()
