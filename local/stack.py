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
import gc
import json
import logging
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


def _moto_server(host: str, port: int) -> Any:
    """moto's HTTP server, started; ``PortInUseError`` when the port is taken. (moto's
    ``ThreadedMotoServer.start`` waits forever then: werkzeug's bind fails in the server's
    thread, which prints a line and exits; so the port is tried here first.)"""
    import socket

    from moto.server import ThreadedMotoServer

    from local.gateway import PortInUseError

    class Server(ThreadedMotoServer):
        failed = False

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException:  # werkzeug's sys.exit(1) on a taken port included
                self.failed = True
                self._server_ready_event.set()

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUseError(error.errno, f"{host}:{port} is already in use") from None
    server = Server(ip_address=host, port=port, verbose=False)
    server.start()
    if server.failed:
        raise PortInUseError(f"{host}:{port} is already in use")
    return server


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` map of a stack file (``Pulumi.<stack>.yaml``), every namespace."""
    import yaml

    return yaml.safe_load(Path(path).read_text()).get("config") or {}


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
        stack_file: str | Path | None = None,
    ) -> None:
        """``throttle``: (rate, burst) instead of the stack config's ``api.rateLimit``/``burstLimit``;
        ``stack_file``: the stack's config file, ``Pulumi.<stack>.yaml`` by default."""
        self.stack_name = stack
        self.stack_file = Path(stack_file) if stack_file is not None else ROOT / f"Pulumi.{stack}.yaml"
        self.host = host
        self.api_port = api_port
        self.ws_port = ws_port
        self.moto_port = moto_port
        self.log = log
        self.throttle = throttle
        self._stoppers: list = []

    def start(self) -> LocalStack:
        """Start everything; on any failure, stop what was started and raise (a
        ``StackConfigError`` for a bad config, a ``PortInUseError`` for a taken port)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        import boto3
        from moto import mock_aws

        from components.config import NAMESPACE, check_config_keys, load_stack_config
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
        from local.moto_dynamodb import DynamoDBGuard
        from local.stepfunctions import MOTO_CONFIG, LambdaDispatcher, StepFunctionsAdapter, dispatching

        # The whole stack file, as the Pulumi program checks it: an unknown agent-infra key is
        # an error (in the same message as the values' problems), another namespace a warning.
        config_map = read_stack_file(self.stack_file)
        for warning in check_config_keys(config_map).warnings:
            self.log({"service": "local-stack", "level": "WARNING", "message": f"stack config: {warning}"})
        raw = {k.split(":", 1)[1]: v for k, v in config_map.items() if k.startswith(f"{NAMESPACE}:")}
        config = load_stack_config(raw.get, keys=config_map)
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
        # moto's DynamoDB, safe for the stack's concurrent callers (a lock per table, held
        # only inside moto) and transactions that do not copy the table (local/moto_dynamodb.py).
        self._dynamodb_guard = DynamoDBGuard().install()
        self._stoppers.append(self._dynamodb_guard.uninstall)
        # What Step Functions does and moto lacks (StartSyncExecution, SendTaskFailure's cause,
        # SDK and HTTP tasks): installed before any state machine is created.
        self.adapter = StepFunctionsAdapter().install()
        self._stoppers.append(self.adapter.uninstall)
        self.events = EventLoopThread()
        self._stoppers.append(self.events.stop)
        if self.moto_port is not None:
            moto_server = _moto_server(self.host, self.moto_port)
            self.moto_url = f"http://{self.host}:{moto_server._server.server_port}"
            self._stoppers.append(moto_server.stop)
        else:
            self.moto_url = None

        self.table_name = f"agent-infra-{self.stack_name}-local"
        dynamodb = boto3.client("dynamodb", region_name=region)
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
            self.model_server = ScriptedModelServer(self.host, keep=100).start()
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
        dispatcher = LambdaDispatcher(keep=100)
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
        express_limits = WorkflowLimits(workflow.max_steps, workflow.express_timeout_seconds)
        standard_limits = WorkflowLimits(
            workflow.max_steps, workflow.task_timeout_hours * 3600, workflow.approval_timeout_hours * 3600
        )
        # moto parses a definition (ANTLR, 0.1-0.3 s each) to validate it; here that parse runs
        # in the background and leaves the program for the first execution (which waits for it
        # if it comes first). The definitions are the builders' own, which the tests validate.
        with self.adapter.validating_in_background(failed=self._definition_failed):
            for name, kind, definition in (
                (turn_name, "EXPRESS", turn_definition(functions, model, express_limits)),
                (task_name, "STANDARD", task_definition(functions, model, standard_limits)),
            ):
                self.sfn.create_state_machine(name=name, type=kind, roleArn=role, definition=json.dumps(definition))
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

    def _definition_failed(self, definition: str, error: Exception) -> None:
        name = json.loads(definition).get("Comment", "a state machine")
        self.log({"level": "ERROR", "message": f"{name}: moto cannot run this definition", "error": repr(error)})

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


PORT_ROLES = ("REST API", "WebSocket API", "moto (the AWS endpoint)")


def taken_ports(host: str, port: int) -> list[tuple[int, str]]:
    """Of PORT, PORT+1, PORT+2 (REST, WebSocket, moto), those another process listens on."""
    import socket

    taken = []
    for offset, role in enumerate(PORT_ROLES):
        with socket.socket() as probe:
            try:
                probe.bind((host, port + offset))
            except OSError:
                taken.append((port + offset, role))
    return taken


def free_port_triple(host: str = "127.0.0.1") -> int:
    """A PORT whose three ports (REST, WebSocket, moto) are all free on ``host`` now: for
    the tests and benches that start stacks of their own."""
    import socket

    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if port + len(PORT_ROLES) - 1 <= 65535 and not taken_ports(host, port):
            return port
    raise RuntimeError(f"no {len(PORT_ROLES)} consecutive free ports on {host}")


def port_message(host: str, port: int, taken: list[tuple[int, str]]) -> str:
    busy = ", ".join(f"{number} ({role})" for number, role in taken)
    return "\n".join(
        [
            f"make dev: port {busy} on {host} is already in use"
            f"{' (another make dev?)' if any(n == port for n, _ in taken) else ''}.",
            f"  The local stack listens on PORT={port} (REST API), PORT+1 (WebSocket API) and PORT+2 (moto).",
            f"  Choose other ports: make dev PORT={port + 1000}   (python -m local.stack --port {port + 1000})",
        ]
    )


class _JsonLines(logging.Formatter):
    """Log records of the libraries under the stack (moto, werkzeug, aiohttp, botocore, Python's
    warnings) as the stack's own lines: one JSON object each."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname,
            "service": "local-stack",
            "logger": record.name,
            "message": record.getMessage().strip(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def log_json_lines() -> None:
    """Every log record, warning and uncaught exception of the process as a JSON line on
    stdout (make dev)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonLines())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.captureWarnings(True)  # warnings.warn(...) → the "py.warnings" logger
    uncaught = logging.getLogger("uncaught")

    def thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:
            name = args.thread.name if args.thread is not None else "?"
            uncaught.error("exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    threading.excepthook = thread_exception


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the agent stack locally")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--stack-file", help="the stack's config file (default: Pulumi.<stack>.yaml)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=8080, help="REST API port (WebSocket: port + 1, moto: port + 2); make dev PORT=..."
    )
    parser.add_argument(
        "--state-file",
        default=str(ROOT / "build" / "local-stack.json"),
        help="where `make demo` finds the URLs and token",
    )
    parser.add_argument(
        "--throttle",
        metavar="RATE,BURST",
        help="the stage's requests/s and burst instead of the stack config's api.rateLimit and burstLimit (benchmarks)",
    )
    args = parser.parse_args(argv)
    throttle = None
    if args.throttle:
        rate, _, burst = args.throttle.partition(",")
        throttle = (float(rate), int(burst or rate))
    from components.config import StackConfigError
    from local.gateway import PortInUseError

    stack_file = Path(args.stack_file) if args.stack_file else ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_file.exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
        print(f"make dev: no stack file {stack_file}; stacks: {', '.join(stacks)}", file=sys.stderr)
        return 2
    taken = taken_ports(args.host, args.port)
    if taken:
        print(port_message(args.host, args.port, taken), file=sys.stderr)
        return 2
    log_json_lines()
    try:
        stack = LocalStack(
            args.stack, args.host, args.port, args.port + 1, args.port + 2, throttle=throttle, stack_file=stack_file
        ).start()
    except StackConfigError as error:
        print(f"make dev: {error}", file=sys.stderr)
        return 2
    except PortInUseError:  # taken between the check above and the listen
        print(port_message(args.host, args.port, taken_ports(args.host, args.port)), file=sys.stderr)
        return 2
    # What start-up built lives as long as the process: out of the collector's way, so that
    # its full collections look only at what the turns allocate.
    gc.freeze()
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
    _log_line({"service": "local-stack", "message": "stopping"})
    stack.stop()
    Path(args.state_file).unlink(missing_ok=True)
    _log_line({"service": "local-stack", "message": "stopped"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
