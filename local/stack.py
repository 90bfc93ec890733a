"""The whole agent stack on this machine: no AWS account, no Pulumi CLI.

    python -m local.stack            (make dev)

- moto is the embedded AWS: in-process for our code, and also served on a loopback port
  so ``aws --endpoint-url`` can look inside (the table, the executions);
- the table, both state machines and the function list come from the same builders the
  Pulumi components use (``TABLE_SCHEMA``, ``components.workflows``, the stack config);
- every Lambda runs in-process: the real handlers, dispatched by function name, so the real
  definitions run in moto's Step Functions interpreter;
- the REST routes and the WebSocket API are served on loopback with API Gateway's paths,
  statuses and event shapes, JWT auth included (a local issuer; a dev token is printed);
- the LLM is the local stand-in (``local/model.py``) unless ``AGENT_LLM_PROVIDER`` says
  ``bedrock`` or ``openai`` (with ``AGENT_LLM_MODEL``, ``AGENT_LLM_ENDPOINTS`` as JSON and,
  for openai, ``AGENT_LLM_API_KEY``): then the real endpoints are called.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
DEV_USER = "dev-user"
LOCAL_ISSUER = "https://local-issuer.agent-infra.invalid/"


def _b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode().rstrip("=")


class SerializedClient:
    """A boto3 client whose calls run one at a time. moto's in-memory DynamoDB is not
    thread-safe (a Query iterating a partition while another thread writes to it fails
    with "dictionary changed size during iteration"); real DynamoDB needs no such thing."""

    _lock = threading.RLock()

    def __init__(self, client: Any) -> None:
        self._client = client
        self.meta = client.meta
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


class LocalIssuer:
    """A JWT issuer for the local stack: an RSA key made at start, its JWKS, and tokens."""

    def __init__(self, audience: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.audience = audience
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self._key.public_key().public_numbers()
        self.jwks = {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": "local-1",
                    "use": "sig",
                    "alg": "RS256",
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                }
            ]
        }

    def token(self, user: str = DEV_USER, ttl: int = 12 * 3600, **claims: Any) -> str:
        import jwt

        now = int(time.time())
        payload = {"iss": LOCAL_ISSUER, "aud": self.audience, "sub": user, "iat": now, "exp": now + ttl, **claims}
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": "local-1"})


def _log_line(fields: dict[str, Any]) -> None:
    print(
        json.dumps(
            {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "service": "local-gateway", **fields}
        ),
        flush=True,
    )


class LocalStack:
    """Everything wired and running; ``stop()`` ends it."""

    def __init__(
        self,
        stack: str = "dev",
        host: str = "127.0.0.1",
        api_port: int = 0,
        ws_port: int = 0,
        moto_port: int | None = 0,
        log=_log_line,
        throttle: tuple[float, int] | None = None,
    ) -> None:
        """``throttle``: (rate, burst) instead of the stack config's ``api.rateLimit``/``burstLimit``."""
        self.stack_name = stack
        self.host = host
        self.api_port = api_port
        self.ws_port = ws_port
        self.moto_port = moto_port
        self.log = log
        self.throttle = throttle
        self._stoppers: list = []

    def start(self) -> LocalStack:
        import boto3
        from moto import mock_aws

        from components.config import parse_stack_config
        from components.naming import state_machine_name
        from components.openapi import HEALTH_BURST_LIMIT, HEALTH_RATE_LIMIT, RestApiTargets, rest_api_document
        from components.workflows import (
            ModelCall,
            ToolRoute,
            WorkflowFunctions,
            WorkflowLimits,
            task_definition,
            turn_definition,
        )
        from handlers.agent_step import AgentStep, AgentStepSettings, load_tool_specs
        from handlers.approval import Approvals, ApprovalSettings
        from handlers.authorizer import Authorizer
        from handlers.compensate import Compensator
        from handlers.connection import Connections, ConnectionSettings
        from handlers.health import Health, HealthSettings
        from handlers.router import Router, RouterSettings
        from handlers.shared.llm import BedrockTransport, LlmClient, RetryPolicy, build_client
        from handlers.shared.store import Store
        from handlers.shared.streaming import AnswerStream
        from handlers.shared.table import TABLE_SCHEMA
        from handlers.shared.tokens import JwksCache, TokenVerifier
        from handlers.tools import load_tool
        from local.gateway import EventLoopThread, RestApi, RestServer, WebSocketApi
        from local.model import ScriptedModelServer
        from local.pulumi_mocks import stack_config
        from local.stepfunctions import MOTO_CONFIG, LambdaDispatcher, StepFunctionsAdapter, dispatching

        raw = {k.split(":", 1)[1]: v for k, v in stack_config(self.stack_name).items() if k.startswith("agent-infra:")}
        config = parse_stack_config(raw)
        self.config = config
        region = config.home_region
        self.region = region
        for name, value in {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": region,
        }.items():
            os.environ.setdefault(name, value)
        os.environ.pop("AWS_PROFILE", None)

        self._mock = mock_aws(config=MOTO_CONFIG)
        self._mock.start()
        self._stoppers.append(self._mock.stop)
        # What Step Functions does and moto lacks (StartSyncExecution, SendTaskFailure's cause,
        # SDK and HTTP tasks): installed before any state machine is created.
        self.adapter = StepFunctionsAdapter().install()
        self._stoppers.append(self.adapter.uninstall)
        self.events = EventLoopThread()
        self._stoppers.append(self.events.stop)
        if self.moto_port is not None:
            from moto.server import ThreadedMotoServer

            moto_server = ThreadedMotoServer(ip_address=self.host, port=self.moto_port, verbose=False)
            moto_server.start()
            self.moto_url = f"http://{self.host}:{moto_server._server.server_port}"
            self._stoppers.append(moto_server.stop)
        else:
            self.moto_url = None

        self.table_name = f"agent-infra-{self.stack_name}-local"
        dynamodb = SerializedClient(boto3.client("dynamodb", region_name=region))
        dynamodb.create_table(**TABLE_SCHEMA.create_table_request(self.table_name))
        self.dynamodb = dynamodb
        self.store = Store(self.table_name, region, config.state.ttl_days, client=dynamodb)
        self.sfn = boto3.client("stepfunctions", region_name=region)

        # The LLM: the stand-in, or the real thing when the environment says so. The state
        # machines call it themselves (the adapter answers their Converse task and HTTP Task);
        # the stream function (WebSocket turns) calls it through the LLM client.
        provider = os.environ.get("AGENT_LLM_PROVIDER", "local")
        connection_arn = None
        if provider == "local":
            self.model_server = ScriptedModelServer(self.host).start()
            self._stoppers.append(self.model_server.stop)
            self.adapter.converse_endpoint = self.model_server.url
            bedrock = boto3.client("bedrock-runtime", region_name=region, endpoint_url=self.model_server.url)

            class StandIn:  # Converse only: the stand-in does not stream
                name = "local-stand-in"

                def converse(self, request):
                    return BedrockTransport(region, 10, client=bedrock).converse(request)

            llm = LlmClient(
                "bedrock",
                "local.stand-in",
                [StandIn()],
                retry=RetryPolicy(attempts_per_endpoint=2, base_delay=0.05, max_delay=0.2),
            )
            llm_provider, llm_model, llm_endpoints = "bedrock", "local.stand-in", [region]
            self.model_label = f"local stand-in (scripted, Converse wire format) at {self.model_server.url}"
        else:
            llm_provider, llm_model = provider, os.environ["AGENT_LLM_MODEL"]
            llm_endpoints = json.loads(os.environ.get("AGENT_LLM_ENDPOINTS", json.dumps([region])))
            api_key = os.environ.get("AGENT_LLM_API_KEY")
            self.adapter.converse_endpoint = None  # the real Bedrock, with the environment's credentials
            llm = build_client(
                provider, llm_model, llm_endpoints, config.compute.llm_timeout_seconds, api_key=lambda: api_key
            )
            if provider == "openai":
                # The HTTP Task's connection, as the orchestration component makes it.
                connection_arn = boto3.client("events", region_name=region).create_connection(
                    Name=f"agent-infra-{self.stack_name}-llm",
                    AuthorizationType="API_KEY",
                    AuthParameters={
                        "ApiKeyAuthParameters": {"ApiKeyName": "Authorization", "ApiKeyValue": f"Bearer {api_key}"}
                    },
                )["ConnectionArn"]
            self.model_label = f"{provider} {llm_model} at {llm_endpoints}"

        self.issuer = LocalIssuer(config.api.auth.audience)
        authorizer = Authorizer(
            TokenVerifier(LOCAL_ISSUER, config.api.auth.audience, JwksCache(lambda: self.issuer.jwks))
        )

        def arn(name: str) -> str:
            return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"

        turn_name, task_name = state_machine_name(self.stack_name, "turn"), state_machine_name(self.stack_name, "task")
        turn_arn = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{turn_name}"
        task_arn = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{task_name}"

        self.websocket = WebSocketApi(
            lambda event: connections.handle(event), authorizer.handle, self.events, self.log, self.host, self.ws_port
        )
        self._stoppers.append(self.websocket.stop)

        def stream_to(connection_id: str, message_id: str) -> AnswerStream:
            return AnswerStream(connection_id, message_id, self.websocket.post, on_gone=self.store.connections.delete)

        specs, _ = load_tool_specs()
        approval_tools = {t.name for t in config.tools if t.requires_approval}
        configured = {t.name for t in config.tools}
        specs = [s for s in specs if s.name in configured]
        agent = AgentStep(
            AgentStepSettings(
                TABLE_NAME=self.table_name,
                AWS_REGION=region,
                LLM_PROVIDER=llm_provider,
                LLM_MODEL=llm_model,
                LLM_ENDPOINTS=llm_endpoints,
                TTL_DAYS=config.state.ttl_days,
                MAX_STEPS=config.workflow.max_steps + 1,
                MAX_TOKENS=config.compute.max_tokens,
            ),
            self.store,
            specs,
            approval_tools,
            llm=llm,
            stream_to=stream_to,
            post=self.websocket.post,
        )
        self.agent = agent
        dispatcher = LambdaDispatcher()
        dispatcher.register("agent-prepare", lambda event, ctx: agent.prepare(event))
        dispatcher.register("agent-record", lambda event, ctx: agent.record(event))
        dispatcher.register("agent-stream", lambda event, ctx: agent.stream(event, ctx.get_remaining_time_in_millis()))
        compensator = Compensator(self.store, self.websocket.post)
        dispatcher.register("compensate", lambda event, ctx: compensator.handle(event))
        self.approvals = Approvals(
            ApprovalSettings(TABLE_NAME=self.table_name, AWS_REGION=region), self.store, lambda r: self.sfn
        )
        dispatcher.register("approval-request", lambda event, ctx: self.approvals.request(event))
        routes = []
        for tool_config in config.tools:
            tool = load_tool(tool_config.name)
            tool._store = self.store
            dispatcher.register(f"tool-{tool_config.name}", lambda event, ctx, t=tool: t.lambda_handler(event, ctx))
            routes.append(ToolRoute(tool_config.name, arn(f"tool-{tool_config.name}"), tool_config.requires_approval))
        self.dispatcher = dispatcher
        self._dispatching = dispatching(dispatcher)
        self._dispatching.__enter__()
        self._stoppers.append(lambda: self._dispatching.__exit__(None, None, None))

        functions = WorkflowFunctions(
            arn("agent-prepare"),
            arn("agent-record"),
            arn("agent-stream"),
            arn("compensate"),
            routes,
            approval_request=arn("approval-request"),
        )
        model = ModelCall(
            llm_provider,
            endpoints=tuple(llm_endpoints) if llm_provider == "openai" else (),
            connection_arn=connection_arn,
            timeout_seconds=int(config.compute.llm_timeout_seconds + 0.999),
        )
        workflow = config.workflow
        role = boto3.client("iam").create_role(RoleName="local-states", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.sfn.create_state_machine(
            name=turn_name,
            type="EXPRESS",
            roleArn=role,
            definition=json.dumps(
                turn_definition(functions, model, WorkflowLimits(workflow.max_steps, workflow.express_timeout_seconds))
            ),
        )
        self.sfn.create_state_machine(
            name=task_name,
            type="STANDARD",
            roleArn=role,
            definition=json.dumps(
                task_definition(
                    functions,
                    model,
                    WorkflowLimits(
                        workflow.max_steps, workflow.task_timeout_hours * 3600, workflow.approval_timeout_hours * 3600
                    ),
                )
            ),
        )
        self.turn_arn, self.task_arn = turn_arn, task_arn

        router = Router(
            RouterSettings(
                TABLE_NAME=self.table_name,
                AWS_REGION=region,
                TASK_STATE_MACHINE_ARN=task_arn,
                MAX_BODY_BYTES=config.api.max_body_kb * 1024,
            ),
            self.store,
            lambda r: self.sfn,
        )
        health = Health(
            HealthSettings(
                TABLE_NAME=self.table_name,
                AWS_REGION=region,
                TURN_STATE_MACHINE_ARN=turn_arn,
                TASK_STATE_MACHINE_ARN=task_arn,
            ),
            dynamodb,
            self.sfn,
        )
        connections = Connections(
            ConnectionSettings(TABLE_NAME=self.table_name, AWS_REGION=region, TURN_STATE_MACHINE_ARN=turn_arn),
            self.store,
            lambda: self.sfn,
        )

        def invoke_arn(function: str) -> str:
            return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn(function)}/invocations"

        # The REST API's own document, as the Pulumi component deploys it, with this stack's ARNs.
        self.openapi = rest_api_document(
            RestApiTargets(
                region=region,
                router_invoke_arn=invoke_arn("router"),
                approval_invoke_arn=invoke_arn("approval"),
                health_invoke_arn=invoke_arn("health"),
                authorizer_invoke_arn=invoke_arn("authorizer"),
                turn_state_machine_arn=turn_arn,
                turn_role_arn=f"arn:aws:iam::{ACCOUNT}:role/local-turn-integration",
            ),
            title=f"agent-infra-{self.stack_name}",
        )
        # One API key, as each client of a deployed stack has (API Gateway wants 20-128 alphanumerics).
        self.api_key = secrets.token_hex(20)
        self.rest_api = RestApi(
            self.openapi,
            functions={"router": router.handle, "approval": self.approvals.handle, "health": health.handle},
            authorizer=authorizer.handle,
            api_keys={self.api_key: "local-dev-key"},
            stepfunctions=self.sfn,
            rate_limit=(self.throttle or (config.api.rate_limit, config.api.burst_limit))[0],
            burst_limit=(self.throttle or (config.api.rate_limit, config.api.burst_limit))[1],
            method_limits={("GET", "/v1/health"): (HEALTH_RATE_LIMIT, HEALTH_BURST_LIMIT)},
            log=self.log,
        )
        self.rest = RestServer(self.rest_api, self.events, self.host, self.api_port)
        self._stoppers.append(self.rest.stop)
        self.dev_token = self.issuer.token()
        return self

    def stop(self) -> None:
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception as error:  # keep stopping the rest
                self.log({"message": "stop failed", "error": repr(error)})
        self._stoppers.clear()

    def banner(self) -> str:
        session = f"s-{uuid.uuid4().hex[:8]}"
        lines = [
            "agent-infra local stack is up (no AWS account, no Pulumi CLI)",
            f"  REST API   {self.rest.url}/v1/...   (health: {self.rest.url}/v1/health)",
            f"  WebSocket  {self.websocket.url}/?token=<dev token>",
            f"  model      {self.model_label}",
            f"  AWS (moto) {self.moto_url or 'in-process only'}   table {self.table_name}",
            f"  dev token  {self.dev_token}",
            f"  API key    {self.api_key}   (x-api-key, as each client of a deployed stack has)",
            "",
            "try:",
            f"  curl -s -X POST {self.rest.url}/v1/sessions/{session}/messages \\",
            f"       -H 'Authorization: Bearer {self.dev_token}' -H 'x-api-key: {self.api_key}' \\",
            "       -H 'content-type: application/json' \\",
            '       -d \'{"message": "calculate 6*7"}\'',
            "",
            "make demo runs a scripted conversation against it; Ctrl-C stops it.",
        ]
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the agent stack locally")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="REST API port (WebSocket: port + 1, moto: port + 2)")
    parser.add_argument(
        "--state-file",
        default=str(ROOT / "build" / "local-stack.json"),
        help="where `make demo` finds the URLs and token",
    )
    args = parser.parse_args(argv)
    stack = LocalStack(args.stack, args.host, args.port, args.port + 1, args.port + 2).start()
    Path(args.state_file).parent.mkdir(parents=True, exist_ok=True)
    Path(args.state_file).write_text(
        json.dumps(
            {
                "rest": stack.rest.url,
                "websocket": stack.websocket.url,
                "token": stack.dev_token,
                "apiKey": stack.api_key,
                "moto": stack.moto_url,
            }
        )
    )
    print(stack.banner(), flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    print("stopping...", flush=True)
    stack.stop()
    Path(args.state_file).unlink(missing_ok=True)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
