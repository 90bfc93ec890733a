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
- the LLM is the local stand-in (``local/bedrock/model.py``) unless ``AGENT_LLM_PROVIDER`` says
  ``bedrock`` or ``openai`` (with ``AGENT_LLM_MODEL``, ``AGENT_LLM_ENDPOINTS`` as JSON and,
  for openai, ``AGENT_LLM_API_KEY``): then the real endpoints are called.

One module on purpose: it is the composition root of make dev (the config, every emulator,
the regions, the servers, the banner and the command line), each step a named method.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from components import naming
from local.dynamodb.global_tables import DEFAULT_LAG_SECONDS
from local.region_stack import ACCOUNT

ROOT = Path(__file__).resolve().parent.parent
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
    from moto.server import ThreadedMotoServer

    from local.apigateway.gateway import PortInUseError

    class Server(ThreadedMotoServer):
        failed = False

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException:  # werkzeug's sys.exit(1) on a taken port included
                self.failed = True
                self._server_ready_event.set()

    if not port_free(host, port):
        raise PortInUseError(f"{host}:{port} is already in use")
    server = Server(ip_address=host, port=port, verbose=False)
    server.start()
    if server.failed:
        raise PortInUseError(f"{host}:{port} is already in use")
    return server


class _StandInEndpoint:
    """The LLM client's one endpoint in front of the stand-in model: Converse only, since
    the stand-in does not stream."""

    name = "local-stand-in"

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def converse(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._transport.converse(request)


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` map of a stack file (``Pulumi.<stack>.yaml``), every namespace."""
    import yaml

    return yaml.safe_load(Path(path).read_text()).get("config") or {}


def _log_line(fields: dict[str, Any]) -> None:
    print(
        json.dumps(
            {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "level": "INFO",
                "service": "local-gateway",
                **fields,
            }
        ),
        flush=True,
    )


class LocalStack:
    """Everything wired and running; ``stop()`` ends it.

    One region by default (the stack's home region), or the ``regions`` given: each region is
    a ``RegionStack`` (local/region_stack.py), the table is one global table with a replica
    in each (local/dynamodb/global_tables.py), and a global endpoint answers like the deployed Route 53
    records (local/route53/global_endpoint.py) on ``api_port``/``ws_port``; the regions listen on
    ``region_ports`` (REST, WebSocket) each."""

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
        regions: Sequence[str] | None = None,
        region_ports: Sequence[tuple[int, int]] | None = None,
        replication_lag_seconds: float = DEFAULT_LAG_SECONDS,
        health_check_scale: float = 1.0,
        home_cooldown_seconds: float | None = None,
    ) -> None:
        """``throttle``: (rate, burst) instead of the stack config's ``api.rateLimit``/``burstLimit``;
        ``stack_file``: the stack's config file, ``Pulumi.<stack>.yaml`` by default;
        ``regions``: the local regions (the stack's home region alone by default);
        ``health_check_scale``: how much faster than Route 53's the global endpoint's health
        checks run (10: a 30 s interval becomes 3 s)."""
        self.stack_name = stack
        self.stack_file = Path(stack_file) if stack_file is not None else ROOT / f"Pulumi.{stack}.yaml"
        self.host = host
        self.api_port = api_port
        self.ws_port = ws_port
        self.moto_port = moto_port
        self.log = log
        self.throttle = throttle
        self.requested_regions = list(regions) if regions else None
        self.region_ports = list(region_ports or [])
        self.replication_lag_seconds = replication_lag_seconds
        self.health_check_scale = health_check_scale
        self.home_cooldown_seconds = home_cooldown_seconds
        self.endpoint = None
        # What stop() undoes, last started first; a part that fails to stop is logged and the
        # rest still stop.
        self._started = contextlib.ExitStack()

    def start(self) -> LocalStack:
        """Start everything; on any failure, stop what was started and raise (a
        ``StackConfigError`` for a bad config, a ``PortInUseError`` for a taken port)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        self._load_config()
        self._start_aws()
        self._start_model()
        self._start_regions()
        if len(self.regions) > 1:
            self._start_global_endpoint()
        self.dev_token = self.issuer.token()
        return self

    # -- the parts, in the order they start ---------------------------------------------------

    def _load_config(self) -> None:
        from components.config import NAMESPACE, check_config_keys, load_stack_config

        # The whole stack file, as the Pulumi program checks it: an unknown agent-infra key is
        # an error (in the same message as the values' problems), another namespace a warning.
        config_map = read_stack_file(self.stack_file)
        for warning in check_config_keys(config_map).warnings:
            self.log({"service": "local-stack", "level": "WARNING", "message": f"stack config: {warning}"})
        raw = {k.split(":", 1)[1]: v for k, v in config_map.items() if k.startswith(f"{NAMESPACE}:")}
        if self.requested_regions:
            raw["regions"] = self.requested_regions  # validated like the stack's own list
        self.config = load_stack_config(raw.get, keys=config_map)
        self.region = self.config.home_region
        self.regions = self.requested_regions or [self.region]
        if len(self.region_ports) not in (0, len(self.regions)):
            raise ValueError(f"region_ports gives {len(self.region_ports)} pairs for {len(self.regions)} regions")

    def _start_aws(self) -> None:
        from moto import mock_aws

        from handlers.shared.table import TABLE_SCHEMA
        from local.apigateway.gateway import EventLoopThread
        from local.dynamodb.global_tables import GlobalTable
        from local.dynamodb.guard import DynamoDBGuard
        from local.regions import Regions
        from local.stepfunctions.interpreter import MOTO_CONFIG, StepFunctionsAdapter

        for name, value in {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": self.region,
        }.items():
            os.environ.setdefault(name, value)
        os.environ.pop("AWS_PROFILE", None)
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._mock.start()
        self._on_stop(self._mock.stop)
        # moto's DynamoDB, safe for the stack's concurrent callers (a lock per table, held
        # only inside moto) and transactions that do not copy the table (local/dynamodb/guard.py).
        self._dynamodb_guard = DynamoDBGuard().install()
        self._on_stop(self._dynamodb_guard.uninstall)
        # What Step Functions does and moto lacks (StartSyncExecution, SendTaskFailure's cause,
        # SDK and HTTP tasks): installed before any state machine is created.
        self.adapter = StepFunctionsAdapter().install()
        self._on_stop(self.adapter.uninstall)
        self.events = EventLoopThread()
        self._on_stop(self.events.stop)
        # A fargate-spot tool's container is a process of its own: it reaches the table through
        # moto's HTTP server, on a free port when none was asked for.
        containers = any(t.runtime == "fargate-spot" for t in self.config.tools)
        if self.moto_port is not None or containers:
            moto_server = _moto_server(self.host, self.moto_port or 0)
            self.moto_url = f"http://{self.host}:{moto_server.get_host_and_port()[1]}"
            self._on_stop(moto_server.stop)
        else:
            self.moto_url = None
        self.table_name = naming.stack_resource_name(self.stack_name, "local")
        self.fabric = Regions(self.regions)
        # One table, a replica in each region (one region: a regional table, nothing to replicate).
        self.global_table = GlobalTable(
            self.fabric, TABLE_SCHEMA.create_table_request(self.table_name), ACCOUNT, self.replication_lag_seconds
        ).start(replicate=len(self.regions) > 1)
        self._on_stop(self.global_table.stop)

    def _start_model(self) -> None:
        """The LLM: the stand-in, or the real thing when the environment says so. The state
        machines call it themselves (the adapter answers their Converse task and HTTP Task);
        the stream function (WebSocket turns) calls it through the LLM client."""
        import boto3

        from handlers.shared.llm import BedrockTransport, LlmClient, RetryPolicy, build_client
        from local.bedrock.model import PromptCache, ScriptedModelServer

        region, config = self.region, self.config
        provider = os.environ.get("AGENT_LLM_PROVIDER", "local")
        self.connection_arn = None
        if provider == "local":
            # The stand-in answers as the stack's model would be billed: its prompt cache
            # (checkpoints, minimum tokens) is that model's.
            self.model_server = ScriptedModelServer(self.host, keep=100, prompt_cache=PromptCache()).start()
            self._on_stop(self.model_server.stop)
            self.adapter.converse_endpoint = self.model_server.url
            bedrock = boto3.client("bedrock-runtime", region_name=region, endpoint_url=self.model_server.url)
            model = config.llm.model if config.llm.provider == "bedrock" else "local.stand-in"
            self.llm = LlmClient(
                "bedrock",
                model,
                [_StandInEndpoint(BedrockTransport(region, 10, client=bedrock))],
                retry=RetryPolicy(attempts_per_endpoint=2, base_delay=0.05, max_delay=0.2),
            )
            self.llm_provider, self.llm_model, self.llm_endpoints = "bedrock", model, [region]
            self.model_label = f"local stand-in (scripted, Converse wire format) at {self.model_server.url}"
        else:
            self.llm_provider, self.llm_model = provider, os.environ["AGENT_LLM_MODEL"]
            self.llm_endpoints = json.loads(os.environ.get("AGENT_LLM_ENDPOINTS", json.dumps([region])))
            api_key = os.environ.get("AGENT_LLM_API_KEY")
            self.adapter.converse_endpoint = None  # the real Bedrock, with the environment's credentials
            self.llm = build_client(
                provider,
                self.llm_model,
                self.llm_endpoints,
                config.compute.llm_timeout_seconds,
                api_key=lambda: api_key,
            )
            if provider == "openai":
                # The HTTP Task's connection, as the orchestration component makes it.
                for in_region in self.regions:
                    self.connection_arn = boto3.client("events", region_name=in_region).create_connection(
                        Name=naming.stack_resource_name(self.stack_name, "llm"),
                        AuthorizationType="API_KEY",
                        AuthParameters={
                            "ApiKeyAuthParameters": {"ApiKeyName": "Authorization", "ApiKeyValue": f"Bearer {api_key}"}
                        },
                    )["ConnectionArn"]
            self.model_label = f"{provider} {self.llm_model} at {self.llm_endpoints}"

    def _start_regions(self) -> None:
        from handlers.agent_step import load_tool_specs
        from handlers.authorizer import Authorizer
        from handlers.shared.store.replicas import DEFAULT_COOLDOWN_SECONDS
        from handlers.shared.tokens import JwksCache, TokenVerifier
        from local.region_stack import RegionStack, Shared
        from local.stepfunctions.interpreter import dispatching

        config = self.config
        self.issuer = LocalIssuer(config.api.auth.audience)
        authorizer = Authorizer(
            TokenVerifier(LOCAL_ISSUER, config.api.auth.audience, JwksCache(lambda: self.issuer.jwks))
        )
        # One API key, as each client of a deployed stack has, valid in every region (API
        # Gateway wants 20-128 alphanumerics).
        self.api_key = secrets.token_hex(20)
        specs, _ = load_tool_specs()
        configured = {t.name for t in config.tools}
        cooldown = self.home_cooldown_seconds
        if cooldown is None:
            cooldown = DEFAULT_COOLDOWN_SECONDS / self.health_check_scale
        shared = Shared(
            config=config,
            stack_name=self.stack_name,
            table_name=self.table_name,
            host=self.host,
            log=self.log,
            events=self.events,
            regions=self.fabric,
            adapter=self.adapter,
            authorizer=authorizer.handle,
            api_keys={self.api_key: "local-dev-key"},
            llm=self.llm,
            llm_provider=self.llm_provider,
            llm_model=self.llm_model,
            llm_endpoints=self.llm_endpoints,
            connection_arn=self.connection_arn,
            throttle=self.throttle,
            home_cooldown_seconds=cooldown,
            on_definition_failed=self._definition_failed,
            specs=[s for s in specs if s.name in configured],
            approval_tools={t.name for t in config.tools if t.requires_approval},
            moto_url=self.moto_url,
        )
        single = len(self.regions) == 1
        self.region_stacks: dict[str, RegionStack] = {}
        for index, region in enumerate(self.regions):
            if single:
                rest_port, ws_port = self.api_port, self.ws_port
            else:
                rest_port, ws_port = self.region_ports[index] if self.region_ports else (0, 0)
            stack = RegionStack(shared, region, rest_port, ws_port)
            self.region_stacks[region] = stack
            self._on_stop(stack.stop)
            stack.start()
        self._started.enter_context(dispatching({r: s.dispatcher for r, s in self.region_stacks.items()}))
        # The home region's parts, by their single-region names (the tests and the demo use them).
        home = self.region_stacks[self.regions[0]]
        self.home_stack = home
        self.store, self.sfn, self.agent, self.approvals = home.store, home.sfn, home.agent, home.approvals
        self.dynamodb = home.dynamodb  # the client the home region's store calls its replica with
        self.dispatcher, self.turn_arn, self.task_arn = home.dispatcher, home.turn_arn, home.task_arn
        self.openapi, self.rest_api = home.openapi, home.rest_api
        self.rest, self.websocket = home.rest, home.websocket

    def _start_global_endpoint(self) -> None:
        from local.route53.global_endpoint import GlobalEndpoint

        self.endpoint = GlobalEndpoint(
            {r: (s.rest.url, s.websocket.url) for r, s in self.region_stacks.items()},
            self.events,
            host=self.host,
            rest_port=self.api_port,
            ws_port=self.ws_port,
            scale=self.health_check_scale,
            log=self.log,
        ).start()
        self._on_stop(self.endpoint.stop)
        # What a client sees first: the global names.
        self.rest, self.websocket = self.endpoint.rest, self.endpoint.websocket

    def _definition_failed(self, definition: str, error: Exception) -> None:
        name = json.loads(definition).get("Comment", "a state machine")
        self.log({"level": "ERROR", "message": f"{name}: moto cannot run this definition", "error": repr(error)})

    def _on_stop(self, stop: Callable[[], object]) -> None:
        self._started.callback(self._stop_one, stop)

    def _stop_one(self, stop: Callable[[], object]) -> None:
        try:
            stop()
        except Exception as error:  # keep stopping the rest
            self.log({"message": "stop failed", "error": repr(error)})

    def stop(self) -> None:
        self._started.close()

    def banner(self) -> str:
        session = f"s-{uuid.uuid4().hex[:8]}"
        lines = ["agent-infra local stack is up (no AWS account, no Pulumi CLI)"]
        if self.endpoint is None:
            lines += [
                f"  REST API   {self.rest.url}/v1/...   (health: {self.rest.url}/v1/health)",
                f"  WebSocket  {self.websocket.url}/?token=<dev token>",
            ]
        else:
            interval, threshold = self.endpoint.interval, self.endpoint.threshold
            lines += [
                f"  global     {self.rest.url}/v1/...  and  {self.websocket.url}/?token=<dev token>",
                f"             latency routing by the x-client-location header (an AWS region; default"
                f" {self.regions[0]}), health checks every {interval:g} s, {threshold} failures to fail over",
                f"             (Route 53's {self.endpoint.deployed_interval} s on a clock {self.health_check_scale:g}x"
                " faster); which region answers: GET /_route53?location=<region>",
            ]
            for region, stack in self.region_stacks.items():
                lines.append(f"  {region:<14} REST {stack.rest.url}   WebSocket {stack.websocket.url}")
            lines.append(
                f"  table      one global table, a replica in each region, replication lag"
                f" {self.replication_lag_seconds * 1000:g} ms, last writer wins"
            )
        lines += [
            f"  model      {self.model_label}",
            f"  AWS (moto) {self.moto_url or 'in-process only'}   table {self.table_name}",
            f"  dev token  {self.dev_token}",
            f"  API key    {self.api_key}   (x-api-key, as each client of a deployed stack has)",
            throttle_line(*(self.throttle or (self.config.api.rate_limit, self.config.api.burst_limit))),
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


def throttle_line(rate: float, burst: int) -> str:
    """The banner's line of the stage's throttling (the stack file's api.rateLimit and
    burstLimit, as deployed): a client that sends more gets 429."""
    return f"  throttle   {rate:g} requests/s, burst {burst} (api.rateLimit, api.burstLimit); above it: 429"


PORT_ROLES = ("REST API", "WebSocket API", "moto (the AWS endpoint)")


def port_roles(regions: Sequence[str] = ("",)) -> list[str]:
    """What each port from PORT on is for: REST, WebSocket and moto; with several regions the
    first two are the global endpoint's, then each region's REST and WebSocket follow."""
    if len(regions) <= 1:
        return list(PORT_ROLES)
    roles = ["global REST API (latency routing)", "global WebSocket API", PORT_ROLES[2]]
    for region in regions:
        roles += [f"{region} REST API", f"{region} WebSocket API"]
    return roles


def region_ports(port: int, regions: Sequence[str]) -> list[tuple[int, int]]:
    """Each region's (REST, WebSocket) ports after the first three, in ``port_roles`` order."""
    return [(port + 3 + 2 * i, port + 4 + 2 * i) for i in range(len(regions))] if len(regions) > 1 else []


def port_free(host: str, port: int) -> bool:
    """Whether the stack's servers can listen on ``port``: bound as they bind, with SO_REUSEADDR
    (asyncio's create_server sets it on Unix,
    https://docs.python.org/3/library/asyncio-eventloop.html#asyncio.loop.create_server, and
    werkzeug's server is an http.server.HTTPServer, whose allow_reuse_address is true). So the
    connections a stopped stack leaves in TIME_WAIT do not count; a listener does."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def taken_ports(host: str, port: int, regions: Sequence[str] = ("",)) -> list[tuple[int, str]]:
    """Of the stack's ports from PORT on (``port_roles``), those another process listens on."""
    return [
        (port + offset, role) for offset, role in enumerate(port_roles(regions)) if not port_free(host, port + offset)
    ]


def free_port_triple(host: str = "127.0.0.1", regions: Sequence[str] = ("",)) -> int:
    """A PORT whose ports (REST, WebSocket, moto, and each region's with several) are all free
    on ``host`` now: for the tests and benches that start stacks of their own."""
    import socket

    count = len(port_roles(regions))
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if port + count - 1 <= 65535 and not taken_ports(host, port, regions):
            return port
    raise RuntimeError(f"no {count} consecutive free ports on {host}")


def port_message(host: str, port: int, taken: list[tuple[int, str]], regions: Sequence[str] = ("",)) -> str:
    busy = ", ".join(f"{number} ({role})" for number, role in taken)
    listens = (
        f"PORT={port} (REST API), PORT+1 (WebSocket API) and PORT+2 (moto)"
        if len(regions) <= 1
        else f"PORT={port} to PORT+{len(port_roles(regions)) - 1}: the global REST and WebSocket APIs, moto,"
        " then each region's REST and WebSocket APIs"
    )
    return "\n".join(
        [
            f"make dev: port {busy} on {host} is already in use"
            f"{' (another make dev?)' if any(n == port for n, _ in taken) else ''}.",
            f"  The local stack listens on {listens}.",
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


def _running(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def write_state(path: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """Write where `make demo` finds this stack, marked with this process's id; return the
    state it replaces when that stack still runs (a second make dev on other ports)."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = None
    path.write_text(json.dumps({**state, "pid": os.getpid()}))
    return previous if isinstance(previous, dict) and _running(previous.get("pid")) else None


def release_state(path: Path, replaced: dict[str, Any] | None) -> None:
    """On stopping: only the stack the file names removes it (another one that started since
    owns it now), and gives it back to the stack it replaced if that one still runs."""
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(current, dict) or current.get("pid") != os.getpid():
        return
    if replaced is not None and _running(replaced.get("pid")):
        path.write_text(json.dumps(replaced))
    else:
        path.unlink(missing_ok=True)


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
    parser.add_argument(
        "--regions",
        default="",
        help="local regions, comma-separated (make dev REGIONS=us-east-1,eu-west-1); default: the stack's home region",
    )
    parser.add_argument(
        "--replication-lag-ms",
        type=float,
        default=DEFAULT_LAG_SECONDS * 1000,
        help="the global table's replication lag (make dev REPLICATION_LAG_MS=...)",
    )
    parser.add_argument(
        "--health-check-scale",
        type=float,
        default=1.0,
        help="run the global endpoint's health checks this many times faster than Route 53's",
    )
    args = parser.parse_args(argv)
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    if args.replication_lag_ms < 0 or args.health_check_scale <= 0:
        print("make dev: REPLICATION_LAG_MS must be 0 or more, the health-check scale above 0", file=sys.stderr)
        return 2
    throttle = None
    if args.throttle:
        rate, _, burst = args.throttle.partition(",")
        throttle = (float(rate), int(burst or rate))
    from components.config import StackConfigError
    from local.apigateway.gateway import PortInUseError

    stack_file = Path(args.stack_file) if args.stack_file else ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_file.exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
        print(f"make dev: no stack file {stack_file}; stacks: {', '.join(stacks)}", file=sys.stderr)
        return 2
    named = regions or [""]
    taken = taken_ports(args.host, args.port, named)
    if taken:
        print(port_message(args.host, args.port, taken, named), file=sys.stderr)
        return 2
    log_json_lines()
    try:
        stack = LocalStack(
            args.stack,
            args.host,
            args.port,
            args.port + 1,
            args.port + 2,
            throttle=throttle,
            stack_file=stack_file,
            regions=regions or None,
            region_ports=region_ports(args.port, regions),
            replication_lag_seconds=args.replication_lag_ms / 1000,
            health_check_scale=args.health_check_scale,
        ).start()
    except StackConfigError as error:
        print(f"make dev: {error}", file=sys.stderr)
        return 2
    except PortInUseError:  # taken between the check above and the listen
        print(port_message(args.host, args.port, taken_ports(args.host, args.port, named), named), file=sys.stderr)
        return 2
    # What start-up built lives as long as the process: out of the collector's way, so that
    # its full collections look only at what the turns allocate.
    gc.freeze()
    Path(args.state_file).parent.mkdir(parents=True, exist_ok=True)
    # Another process (make demo, or a user with echo) interrupts the next Fargate Spot task
    # by writing this file (local.ecs.tasks.LocalEcs.spot_trigger).
    spot_trigger = Path(args.state_file).with_name("spot-interruption")
    spot_trigger.unlink(missing_ok=True)
    stack.adapter.ecs.spot_trigger = spot_trigger
    replaced = write_state(
        Path(args.state_file),
        {
            "rest": stack.rest.url,
            "websocket": stack.websocket.url,
            "token": stack.dev_token,
            "apiKey": stack.api_key,
            "moto": stack.moto_url,
            "spotInterruption": str(spot_trigger),
        },
    )
    # Ctrl-C stops the stack from the moment the banner says it is up.
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(stack.banner(), flush=True)
    stopped.wait()
    _log_line({"service": "local-stack", "message": "stopping"})
    stack.stop()
    release_state(Path(args.state_file), replaced)
    _log_line({"service": "local-stack", "message": "stopped"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
