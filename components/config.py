"""The stack configuration (namespace ``agent-infra``): one pydantic model, read once.

Pure: no Pulumi import. ``__main__.py`` hands :func:`load_stack_config` a function that reads
one key (``pulumi.Config().get_object``) and the names of every key of the stack; the local
stack and the tests hand it a dict's ``get``. A bad value raises :class:`StackConfigError`
whose message names the key, the value and what is allowed, one line per problem. A key the
program does not read is never silently ignored (:func:`check_config_keys`): in the
``agent-infra`` namespace it is an error with a "did you mean", in another namespace a warning.

The field descriptions here are the config reference: ``python -m components.config``
prints it as the Markdown table the README carries (a test keeps the two in step).
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.policies import INFERENCE_PROFILE_PREFIXES

NAMESPACE = "agent-infra"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

# Multi-Region strong consistency runs on exactly three regions of one of these sets
# (DynamoDB developer guide, "Consistency modes", 2025).
STRONG_CONSISTENCY_REGION_SETS = (
    frozenset({"us-east-1", "us-east-2", "us-west-2"}),
    frozenset({"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"}),
    frozenset({"ap-northeast-1", "ap-northeast-2", "ap-northeast-3"}),
)

# Step Functions' HTTP Task (the openai provider's model call) gets its answer within 60 s or
# fails, whatever the state's TimeoutSeconds says: "HTTP Task duration — time to send an HTTP
# request and receive a response: 60 seconds (Hard quota)"
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html; the HTTP Task:
# https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html).
HTTP_TASK_TIMEOUT_SECONDS = 60

# API Gateway waits for a REST integration 29 s at most ("Integration timeout: 50 milliseconds
# - 29 seconds for all integration types",
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html);
# past it the caller gets API Gateway's own 504 while the integration goes on.
REST_INTEGRATION_TIMEOUT_SECONDS = 29

_TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class StackConfigError(ValueError):
    """The stack config is invalid; the message lists every bad key, its value and what is allowed."""


@cache
def regions_by_partition() -> dict[str, tuple[str, ...]]:
    """The regions DynamoDB runs in, per AWS partition, from the endpoint data botocore ships."""
    import boto3  # boto3's session knows the partitions; imported here to keep module import light

    session = boto3.session.Session()
    return {
        partition: tuple(session.get_available_regions("dynamodb", partition_name=partition))
        for partition in session.get_available_partitions()
    }


def longest_region() -> str:
    """The longest region name botocore knows, in any partition: tool-derived names must fit it."""
    return max((r for regions in regions_by_partition().values() for r in regions), key=len)


# The longest tool name whose derived names (function, role, policy) fit AWS's limits in
# longest_region(); a test keeps it equal to components.naming.longest_tool_name.
MAX_TOOL_NAME = 22


def tool_modules() -> list[str]:
    """Tool modules in handlers/tools/, found on disk (nothing is imported)."""
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "handlers" / "tools"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def partition_of(region: str) -> str | None:
    for partition, regions in regions_by_partition().items():
        if region in regions:
            return partition
    return None


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
    )


def _https_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.hostname:
        raise ValueError("must be an https:// URL with a host")
    return value


HISTORY_TOKENS = 8_000
# A model request is cut to 100 KB (handlers.shared.turns.REQUEST_BYTES), ~25,000 tokens.
HISTORY_TOKENS_MAX = 24_000


class LlmConfig(_Model):
    provider: Literal["bedrock", "openai"] = Field(
        "bedrock",
        description="`bedrock` (Converse API, IAM auth) or `openai` (any OpenAI-compatible HTTPS chat-completions API).",
    )
    model: str = Field(
        min_length=1,
        description="Model id: a Bedrock model or inference-profile id, or the model name of the OpenAI-compatible API.",
    )
    endpoints: list[str] = Field(
        default_factory=list,
        description="Where the model is served: regions (`bedrock`) or `https://` URLs (`openai`). Empty with `bedrock` means each region's own Bedrock.",
    )
    endpoint_regions: dict[str, str] = Field(
        default_factory=dict,
        description="`openai` only: the AWS region each endpoint URL runs in; orders them nearest first and, with a domain, makes `llm.<zone>` latency records.",
    )
    health_path: str = Field(
        "/health", description="Path the Route 53 health checks of `llm.<zone>` probe on each endpoint."
    )
    api_key: SecretStr | None = Field(
        None,
        description="API key of the OpenAI-compatible API. Set it with `pulumi config set --secret --path llm.apiKey`; never logged.",
    )
    history_tokens: int = Field(
        HISTORY_TOKENS,
        ge=500,
        le=HISTORY_TOKENS_MAX,
        description="Most tokens of earlier turns a model call sends (estimated at 4 characters a token). Over it, the oldest whole turns are dropped, down to half of it, so the cached prefix stays the same for the turns after.",
    )
    prompt_caching: bool = Field(
        True,
        description="`bedrock`: mark the prompt's stable prefix for Bedrock's prompt cache, on the models that cache (README: prompt caching). OpenAI-compatible APIs cache by themselves.",
    )

    @model_validator(mode="after")
    def _endpoints_match_provider(self) -> LlmConfig:
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError(f"endpoints lists a value twice: {self.endpoints}")
        if self.provider == "bedrock":
            if self.endpoint_regions:
                raise ValueError("endpointRegions is only for provider openai (bedrock endpoints are regions)")
            unknown = [e for e in self.endpoints if partition_of(e) is None]
            if unknown:
                raise ValueError(f"bedrock endpoints must be AWS regions; not regions: {unknown}")
            if self.api_key is not None:
                raise ValueError("apiKey is only for provider openai; bedrock authenticates with IAM")
        else:
            if not self.endpoints:
                raise ValueError("provider openai needs at least one https:// endpoint")
            if self.api_key is None:
                # The HTTP Task authenticates through an EventBridge connection, which needs one.
                raise ValueError("provider openai needs apiKey (pulumi config set --secret --path llm.apiKey ...)")
            stray = sorted(set(self.endpoint_regions) - set(self.endpoints))
            if stray:
                raise ValueError(f"endpointRegions names URLs that are not endpoints: {stray}")
            unknown = sorted(r for r in self.endpoint_regions.values() if partition_of(r) is None)
            if unknown:
                raise ValueError(f"endpointRegions: not AWS regions: {unknown}")
            for endpoint in self.endpoints:
                try:
                    _https_url(endpoint)
                except ValueError:
                    raise ValueError(f"openai endpoint {endpoint!r} must be an https:// URL with a host") from None
        return self


LONG_TOOL_MAX_SECONDS = 86_400
LONG_RUNTIMES = frozenset({"continuation", "fargate-spot"})
"""Runtimes whose calls outlive the Express turn (5 minutes): task-only."""
RUNTIMES = ("lambda", "continuation", "fargate-spot")

LAMBDA_MAX_MB = 10_240
# The task sizes Fargate accepts: CPU units -> the memory (MiB) it pairs with; any other pair
# is refused by RegisterTaskDefinition ("No Fargate configuration exists for given values";
# the table: https://docs.aws.amazon.com/AmazonECS/latest/userguide/task-cpu-memory-error.html).
# 8 and 16 vCPU need Linux platform 1.4.0 or later, which LATEST is.
FARGATE_TASK_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
FARGATE_MAX_MB = FARGATE_TASK_SIZES[16384][-1]


def _memory_choices(values: tuple[int, ...]) -> str:
    """The memory sizes of one CPU size, as a reader wants them: a list, or a range with its step."""
    if len(values) <= 4:
        return ", ".join(str(v) for v in values)
    return f"{values[0]}..{values[-1]} in steps of {values[1] - values[0]}"


def fargate_size_problem(cpu: int | None, memory_mb: int) -> str | None:
    """Why Fargate would refuse ``cpu`` with ``memory_mb``, or None when it accepts the pair."""
    if cpu is None:
        return f"runtime 'fargate-spot' needs cpu, one of {', '.join(str(c) for c in FARGATE_TASK_SIZES)}"
    if cpu not in FARGATE_TASK_SIZES:
        return f"cpu {cpu} is not a Fargate task size; allowed: {', '.join(str(c) for c in FARGATE_TASK_SIZES)}"
    if memory_mb not in FARGATE_TASK_SIZES[cpu]:
        return (
            f"memoryMb {memory_mb} does not pair with cpu {cpu} on Fargate; with cpu {cpu} memoryMb is one of"
            f" {_memory_choices(FARGATE_TASK_SIZES[cpu])}"
        )
    return None


def declared_runtime(module: str) -> str | None:
    """The runtime ``handlers/tools/<module>.py`` declares, read from its source (nothing is
    imported, as :func:`tool_modules` finds modules): a module-level ``RUNTIME = "..."`` or a
    ``runtime="..."`` keyword of a call in its ``TOOL = ...`` assignment. None when it says
    nothing (a Lambda tool, as every tool was before runtimes) or cannot be read."""
    import ast
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "handlers" / "tools" / f"{module}.py"
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = {t.id for t in targets if isinstance(t, ast.Name)}
        if "RUNTIME" in names and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return node.value.value
        if "TOOL" in names:
            for call in ast.walk(node.value):
                if isinstance(call, ast.Call):
                    for keyword in call.keywords:
                        if (
                            keyword.arg == "runtime"
                            and isinstance(keyword.value, ast.Constant)
                            and isinstance(keyword.value.value, str)
                        ):
                            return keyword.value.value
    return None


class ToolConfig(_Model):
    name: str = Field(
        description=f"Tool name: lower-case identifier (`[a-z][a-z0-9_]*`, at most {MAX_TOOL_NAME} characters, so every name AWS derives from it fits in any region), also the module under `handlers/tools/`."
    )
    memory_mb: int = Field(
        128,
        ge=128,
        le=FARGATE_MAX_MB,
        description="Lambda memory in MB (128..10240; see `python -m bench.cold_start`); `fargate-spot`: the task's memory in MiB, one of the sizes Fargate pairs with `cpu`.",
    )
    runtime: Literal["lambda", "continuation", "fargate-spot"] = Field(
        "lambda",
        description="How a call runs: `lambda` (one invocation, within the turn or task), `continuation` (a Lambda that does a slice of the work and hands back a token, looped by the task until done), `fargate-spot` (a container task on Fargate Spot, for work longer than Lambda's 15 minutes). The long ones run in a task only (`POST /v1/tasks`).",
    )
    timeout_seconds: int = Field(
        30,
        ge=1,
        le=LONG_TOOL_MAX_SECONDS,
        description="`lambda`: the Lambda timeout (1..900); `continuation`: one slice's (1..900); `fargate-spot`: each run's, a Spot retry getting its own (up to 86,400).",
    )
    cpu: int | None = Field(
        None,
        description="`fargate-spot` only: the task's CPU units (256, 512, 1024, 2048, 4096, 8192 or 16384), with `memoryMb` one of the sizes Fargate pairs with it.",
    )
    max_slices: int = Field(
        100, ge=1, le=10_000, description="`continuation` only: the most slices one call may take before it fails."
    )
    spot_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="`fargate-spot` only: runs on Fargate Spot (a Spot interruption is retried with backoff) before the last one on on-demand Fargate.",
    )
    requires_approval: bool = Field(False, description="A human approves each call (Standard task only).")
    compensable: bool = Field(False, description="The tool has a compensation that undoes its side effect.")
    reserved_concurrency: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Reserved concurrency of the tool's Lambda; none by default (a new account's quota may leave no room). Checked against the account's quota at preview.",
    )

    @property
    def long(self) -> bool:
        """Its calls may outlive the Express turn: offered in tasks only."""
        return self.runtime in LONG_RUNTIMES

    @model_validator(mode="after")
    def _runtime_limits(self) -> ToolConfig:
        if self.runtime != "fargate-spot" and self.timeout_seconds > 900:
            raise ValueError(
                f"timeoutSeconds {self.timeout_seconds} is over Lambda's 900 s: runtime {self.runtime!r} runs in a"
                " Lambda; for longer work use runtime 'continuation' (slices of up to 900 s) or 'fargate-spot'"
            )
        if self.runtime == "fargate-spot" and self.compensable:
            raise ValueError(
                "compensable is for tools that run in a Lambda: a fargate-spot tool's container has no compensation"
                " to call; make its work items idempotent (handlers/shared/longrun.py) or use runtime 'lambda'"
            )
        if self.long and self.requires_approval:
            raise ValueError(
                f"requiresApproval is for runtime 'lambda': a {self.runtime} tool's calls run without a human's"
                " approval step (an approved call that runs for hours is better split: an approval tool, then the long one)"
            )
        if self.cpu is not None and self.runtime != "fargate-spot":
            raise ValueError("cpu is only for runtime 'fargate-spot' (a Lambda's CPU follows memoryMb)")
        if self.runtime == "fargate-spot":
            problem = fargate_size_problem(self.cpu, self.memory_mb)
            if problem:
                raise ValueError(problem)
        elif self.memory_mb > LAMBDA_MAX_MB:
            raise ValueError(
                f"memoryMb {self.memory_mb} is over Lambda's {LAMBDA_MAX_MB} MB: runtime {self.runtime!r} runs in a Lambda"
            )
        return self

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _TOOL_NAME.fullmatch(value) or keyword.iskeyword(value):
            raise ValueError(
                "must be a lower-case identifier: a letter, then letters, digits or '_', not a Python keyword"
            )
        from components.naming import tool_name_problems

        problems = tool_name_problems(value, longest_region())
        if problems:
            raise ValueError(
                f"is too long ({len(value)} characters, at most {MAX_TOOL_NAME}): in a region named like"
                f" {longest_region()!r}, " + "; ".join(problems)
            )
        return value


class AuthConfig(_Model):
    issuer: str = Field(description="OIDC issuer URL (`https://`) whose JWKS signs the callers' JWTs.")
    audience: str = Field(min_length=1, description="Expected `aud` claim of the JWTs.")

    @field_validator("issuer")
    @classmethod
    def _issuer_https(cls, value: str) -> str:
        return _https_url(value)


class ApiConfig(_Model):
    rate_limit: float = Field(50, gt=0, le=10_000, description="Stage steady-state requests per second.")
    burst_limit: int = Field(100, gt=0, le=5_000, description="Stage burst, requests.")
    quota_per_day: int = Field(10_000, gt=0, description="Requests per API key per day (usage plan).")
    max_body_kb: int = Field(64, gt=0, le=10_240, description="Largest request body accepted, KB.")
    auth: AuthConfig = Field(description="JWT issuer and audience.")
    clients: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")]] = Field(
        default_factory=lambda: ["default"],
        min_length=1,
        description="API clients: one API key each in the usage plan.",
    )
    execution_log_level: Literal["ERROR", "INFO", "OFF"] = Field(
        "ERROR", description="API Gateway execution logging (never with data traces)."
    )
    manage_account_logging: bool = Field(
        False,
        description="Set API Gateway's account-wide CloudWatch role in each region of the stack. The account's bootstrap sets it; only in an account without it, exactly one stack sets it (README, \"API Gateway's account logging\"); stage logs need it.",
    )

    @model_validator(mode="after")
    def _burst_covers_rate(self) -> ApiConfig:
        if self.burst_limit < self.rate_limit:
            raise ValueError(
                f"burstLimit {self.burst_limit} is below rateLimit {self.rate_limit}: the burst must hold at least one second of traffic"
            )
        return self


class DomainConfig(_Model):
    zone: str = Field(description="Route 53 hosted zone name, e.g. `agents.example.com`.")
    api_host: str = Field("api", description="Host label of the REST API under the zone.")
    ws_host: str = Field("ws", description="Host label of the WebSocket API.")
    llm_host: str = Field("llm", description="Host label of the LLM gateway records (provider `openai`).")

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        labels = value.rstrip(".").lower().split(".")
        if len(labels) < 2 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError("must be a DNS zone name such as agents.example.com")
        return ".".join(labels)

    @field_validator("api_host", "ws_host", "llm_host")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _HOST_LABEL.fullmatch(value):
            raise ValueError("must be one DNS label: letters, digits and '-', at most 63")
        return value


# Functions whose concurrency can be provisioned (tools add "tool-<name>").
PROVISIONABLE = ("router", "agent-prepare", "agent-record", "agent-stream")


class ComputeConfig(_Model):
    router_memory_mb: int = Field(128, ge=128, le=10240, description="Router Lambda memory in MB.")
    router_timeout_seconds: int = Field(
        10,
        ge=1,
        le=REST_INTEGRATION_TIMEOUT_SECONDS,
        description=f"Router timeout (API Gateway waits {REST_INTEGRATION_TIMEOUT_SECONDS} s at most).",
    )
    agent_step_memory_mb: int = Field(
        128,
        ge=128,
        le=10240,
        description="Memory in MB of the agent loop's prepare and record functions (the model call is the state machine's own).",
    )
    agent_step_timeout_seconds: int = Field(
        10, ge=3, le=900, description="Timeout of prepare and record: one Query, one write, no model call."
    )
    stream_memory_mb: int = Field(
        128, ge=128, le=10240, description="Memory in MB of the function that streams a WebSocket turn's model call."
    )
    stream_timeout_seconds: int = Field(
        120, ge=5, le=900, description="Timeout of a streamed model call, failover included."
    )
    llm_timeout_seconds: float = Field(
        20,
        gt=0,
        le=600,
        description=f"Timeout of one model request (the state machines' model call, a stream's request); at most {HTTP_TASK_TIMEOUT_SECONDS} with provider `openai` (the HTTP Task's limit). A turn's call also ends with the turn (`workflow.expressTimeoutSeconds`).",
    )
    max_tokens: int = Field(
        2048,
        ge=1,
        le=8192,
        description="Largest reply the model may write per step (at most 8,192: a reply travels in the state machine's 256 KB state).",
    )
    provisioned_concurrency: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=dict,
        description="Provisioned concurrency by function: `router`, `agent-prepare`, `agent-record`, `agent-stream` or `tool-<name>`. Each gets a `live` alias its callers invoke.",
    )

    @model_validator(mode="after")
    def _llm_fits_in_stream(self) -> ComputeConfig:
        if self.llm_timeout_seconds >= self.stream_timeout_seconds:
            raise ValueError(
                f"llmTimeoutSeconds {self.llm_timeout_seconds:g} must be below streamTimeoutSeconds "
                f"{self.stream_timeout_seconds}, or no failover can happen within one streamed call"
            )
        return self


class WorkflowConfig(_Model):
    max_steps: int = Field(8, ge=1, le=50, description="Model calls per turn or task before it stops with an error.")
    express_timeout_seconds: int = Field(
        25,
        ge=1,
        le=300,
        description=(
            f"Timeout of the Express turn, REST and WebSocket alike: below {REST_INTEGRATION_TIMEOUT_SECONDS}"
            " (a REST turn is answered synchronously, and API Gateway waits that long at most; the Express limit"
            " is 300). Longer work belongs in a task."
        ),
    )
    approval_timeout_hours: int = Field(
        24, ge=1, le=8760, description="How long a tool call waits for a human decision."
    )
    task_timeout_hours: int = Field(168, ge=1, le=8760, description="Timeout of a whole Standard task.")
    log_level: Literal["ALL", "ERROR", "FATAL", "OFF"] = Field("ERROR", description="Step Functions log level.")
    log_execution_data: bool = Field(
        False, description="Include inputs and outputs in Step Functions logs (keep it off in prod)."
    )

    @field_validator("express_timeout_seconds")
    @classmethod
    def _rest_turn_answers_in_time(cls, value: int) -> int:
        # API Gateway calls StartSyncExecution on this machine for a REST turn: a turn that
        # outlived the integration's wait would get API Gateway's own 504 while it went on; one
        # that times out before it gets the turn template's 504 and stops.
        if value >= REST_INTEGRATION_TIMEOUT_SECONDS:
            raise ValueError(
                f"must be below {REST_INTEGRATION_TIMEOUT_SECONDS}: a REST turn runs synchronously on the Express"
                f" turn (StartSyncExecution) and API Gateway waits {REST_INTEGRATION_TIMEOUT_SECONDS} s at most for a"
                " REST integration; past that the caller gets API Gateway's own 504 while the turn goes on. Longer"
                " work belongs in a task (POST /v1/tasks)"
            )
        return value

    @model_validator(mode="after")
    def _approval_fits_in_task(self) -> WorkflowConfig:
        if self.approval_timeout_hours >= self.task_timeout_hours:
            raise ValueError(
                f"approvalTimeoutHours {self.approval_timeout_hours} must be below taskTimeoutHours {self.task_timeout_hours}"
            )
        return self


class StateConfig(_Model):
    ttl_days: int = Field(90, ge=1, le=3650, description="Items expire this many days after their last write.")
    deletion_protection: bool = Field(
        True, description="DynamoDB deletion protection and Pulumi `protect` on the table."
    )
    pitr_recovery_days: int = Field(
        35, ge=1, le=35, description="Point-in-time recovery window in days (1..35); PITR is always on."
    )
    kms_deletion_window_days: int = Field(
        30, ge=7, le=30, description="Waiting period before a deleted KMS key is destroyed (7..30)."
    )
    strong_consistency: bool = Field(
        False,
        description=(
            "Multi-Region strong consistency: exactly 3 regions of one region set. Refused for now: MRSC supports"
            " neither TTL nor transactions, which this store's writes use (README: When a region fails)."
        ),
    )
    evacuated_regions: list[str] = Field(
        default_factory=list,
        description=(
            "Regions taken out of every session's homes on purpose (a planned evacuation): their sessions are"
            " read and written in their next region until the list no longer names them."
        ),
    )


class FaultInjectionConfig(_Model):
    enabled: bool = Field(
        False,
        description=(
            "An AWS FIS experiment template per region that pauses the table's replication there and makes its"
            " functions fail (the failover drill on AWS; README: When a region fails). Adds the FIS extension"
            " layer to every function."
        ),
    )
    duration_minutes: int = Field(
        10, ge=1, le=60, description="How long an experiment's faults last (replication resumes after it)."
    )


class ObservabilityConfig(_Model):
    alarm_email: EmailStr | None = Field(None, description="Address subscribed to the alarm topic.")
    trace_sample_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of requests X-Ray traces, edge to tools (sampling rules; X-Ray bills each trace recorded).",
    )
    log_retention_days: int = Field(30, description="CloudWatch Logs retention; one of the values CloudWatch accepts.")

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value


Percent = Annotated[int, Field(ge=1, le=100)]


class BudgetConfig(_Model):
    monthly_usd: float = Field(100, gt=0, description="Monthly cost budget in USD.")
    thresholds: list[Percent] = Field(
        default_factory=lambda: [50, 80], min_length=1, description="Alert at these percents of the budget (1..100)."
    )

    @field_validator("thresholds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("lists a threshold twice")
        return sorted(value)


class StackConfig(_Model):
    """Every ``agent-infra:*`` key of a stack."""

    regions: list[str] = Field(
        min_length=1, description="AWS regions to deploy to; the first is the home region of the global table."
    )
    llm: LlmConfig = Field(description="The model and where it is served.")
    tools: list[ToolConfig] = Field(default_factory=list, description="The agent's tools, one Lambda each.")
    api: ApiConfig = Field(description="Throttling, quotas, body limit and JWT auth of the APIs.")
    domain: DomainConfig | None = Field(
        None, description="Custom domain; enables certificates, latency routing and health checks."
    )
    compute: ComputeConfig = Field(
        default_factory=ComputeConfig, description="Sizes and limits of the router and agent-step Lambdas."
    )
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig, description="Limits of the agent loop.")
    state: StateConfig = Field(default_factory=StateConfig, description="The DynamoDB global table.")
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig, description="Alarms and logs.")
    fault_injection: FaultInjectionConfig = Field(
        default_factory=FaultInjectionConfig, description="The failover drill's experiments on AWS (off by default)."
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="The monthly budget and its alerts.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra cost-allocation tags on every resource.")

    @field_validator("regions")
    @classmethod
    def _known_distinct_regions(cls, value: list[str]) -> list[str]:
        duplicates = sorted({r for r in value if value.count(r) > 1})
        if duplicates:
            raise ValueError(f"lists {', '.join(duplicates)} more than once; each region may appear once")
        unknown = [r for r in value if partition_of(r) is None]
        if unknown:
            known = ", ".join(regions_by_partition()["aws"])
            raise ValueError(
                f"{', '.join(unknown)} is not an AWS region DynamoDB runs in; regions of the aws partition: {known}"
            )
        partitions = {partition_of(r) for r in value}
        if len(partitions) > 1:
            raise ValueError(f"spans partitions {sorted(partitions)}; a global table stays within one partition")
        return value

    @field_validator("tools")
    @classmethod
    def _distinct_tools(cls, value: list[ToolConfig]) -> list[ToolConfig]:
        names = [t.name for t in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names tool {', '.join(duplicates)} more than once; tool names must be unique")
        available = tool_modules()
        missing = [n for n in names if n not in available]
        if missing:
            raise ValueError(
                f"no handler module for {', '.join(missing)} (handlers/tools/<name>.py); tools available: {', '.join(available)}"
            )
        declared = {t.name: declared_runtime(t.name) for t in value}
        mismatched = [
            f"{t.name} has runtime {t.runtime!r} but handlers/tools/{t.name}.py declares"
            f" {repr(declared[t.name]) if declared[t.name] else 'none (a Lambda tool)'}"
            for t in value
            if t.runtime != (declared[t.name] or "lambda")
        ]
        if mismatched:
            raise ValueError(
                "; ".join(mismatched) + ": a tool runs the way its module is written; set runtime to what it declares"
            )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        from components.naming import function_key

        known = {*PROVISIONABLE, *(function_key(t.name) for t in self.tools)}
        unknown = sorted(set(self.compute.provisioned_concurrency) - known)
        if unknown:
            raise ValueError(
                f"compute.provisionedConcurrency names no function of this stack: {unknown}; functions: {sorted(known)}"
            )
        if self.llm.provider == "openai" and self.compute.llm_timeout_seconds > HTTP_TASK_TIMEOUT_SECONDS:
            raise ValueError(
                f"compute.llmTimeoutSeconds {self.compute.llm_timeout_seconds:g} is over {HTTP_TASK_TIMEOUT_SECONDS}:"
                " with llm.provider openai the state machines call the model with Step Functions' HTTP Task, which"
                f" gives up after {HTTP_TASK_TIMEOUT_SECONDS} s whatever the definition says; set it to at most"
                f" {HTTP_TASK_TIMEOUT_SECONDS}"
            )
        if self.llm.provider == "bedrock" and not self.llm.model.startswith(INFERENCE_PROFILE_PREFIXES):
            # The state machine calls Converse in its own region.
            served = set(self.llm.endpoints) or set(self.regions)
            missing = [r for r in self.regions if r not in served]
            if missing:
                raise ValueError(
                    f"llm.model {self.llm.model!r} is a foundation model, and each region's state machine calls"
                    f" Bedrock in its own region; {missing} are not in llm.endpoints. Use a cross-region inference"
                    " profile id (us., eu., apac., global.) or serve the model in every region."
                )
        if self.state.strong_consistency:
            chosen = set(self.regions)
            if len(chosen) != 3 or not any(chosen <= s for s in STRONG_CONSISTENCY_REGION_SETS):
                sets = "; ".join(", ".join(sorted(s)) for s in STRONG_CONSISTENCY_REGION_SETS)
                raise ValueError(
                    f"state.strongConsistency needs exactly 3 regions from one region set ({sets}); got {self.regions}"
                )
            # "Time to Live (TTL) is not supported for MRSC global tables" and MRSC tables "do not
            # support transaction operations"
            # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html).
            raise ValueError(
                "state.strongConsistency (MRSC) is not supported by this store yet: MRSC global tables support"
                " neither TTL (every item here expires) nor TransactWriteItems (a session's first step, an"
                " Idempotency-Key claim and an approval decision are transactions); see the README's"
                " 'When a region fails' for what MRSC would change"
            )
        unknown = sorted(set(self.state.evacuated_regions) - set(self.regions))
        if unknown:
            raise ValueError(f"state.evacuatedRegions names regions that are not in regions: {unknown}")
        if self.state.evacuated_regions and set(self.state.evacuated_regions) >= set(self.regions):
            raise ValueError("state.evacuatedRegions names every region: at least one must serve the sessions")
        return self

    @property
    def home_region(self) -> str:
        """The first region: where the global table is created and owned."""
        return self.regions[0]

    @property
    def partition(self) -> str:
        return partition_of(self.home_region) or "aws"

    def tool(self, name: str) -> ToolConfig:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(name)


def _key_path(loc: tuple) -> str:
    path = f"{NAMESPACE}:"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before"):  # pydantic wrapper locations
            continue
        else:
            path += part if path.endswith(":") else f".{part}"
    return path


_SECRET_FIELD = "apiKey"  # noqa: S105 - the name of the field, not a secret


def _redact(value: Any) -> Any:
    """The value as shown in an error: secrets inside it replaced, at any depth."""
    if isinstance(value, dict):
        return {k: "[secret]" if k == _SECRET_FIELD else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _keys_of(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, as they are written in the stack config (camelCase)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model whose keys are allowed at ``loc`` (a pydantic error location), if any."""
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue  # an element of a list keeps the list's model
        fields = {info.alias or name: info for name, info in model.model_fields.items()}
        if part not in fields:
            return None
        model = _nested_model(fields[part].annotation)
        if model is None:
            return None
    return model


def _did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, list(candidates), n=1)
    return found[0] if found else None


def _unknown_key(loc: tuple) -> str:
    """The message for a key no model has: the closest allowed key, or the keys allowed."""
    parent = _model_at(loc[:-1])
    allowed = _keys_of(parent) if parent is not None else []
    guess = _did_you_mean(str(loc[-1]), allowed)
    if guess is not None:
        return f"unknown key; did you mean {_key_path((*loc[:-1], guess))}?"
    where = f"the keys of {_key_path(loc[:-1])} are" if loc[:-1] else f"the {NAMESPACE} keys are"
    if allowed:
        return f'unknown key; {where} {", ".join(allowed)} (README, "Stack configuration")'
    return "unknown key; see the config reference in the README for the keys allowed"


def _describe(error: dict, loc: tuple) -> str:
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if error["type"] == "extra_forbidden":
        message = _unknown_key(loc)
    elif error["type"] == "missing":
        message = "is required"
    return message


def _error_lines(error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors():
        loc = tuple(p for p in problem["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _key_path(loc)
        if problem["type"] == "missing":
            lines.append(f"{key}: {_describe(problem, loc)}")
            continue
        value = problem.get("input")
        shown = "'[secret]'" if key.endswith(f".{_SECRET_FIELD}") else repr(_redact(value))
        lines.append(f"{key} = {shown}: {_describe(problem, loc)}")
    return lines


def _message(lines: Iterable[str]) -> str:
    return "invalid stack config:\n  " + "\n  ".join(lines)


def format_errors(error: ValidationError) -> str:
    return _message(_error_lines(error))


# Namespaces whose keys the Pulumi engine reads itself (pulumi:disable-default-providers,
# pulumi:tags, ...): never the program's business.
ENGINE_NAMESPACES = frozenset({"pulumi"})

# A namespace this close to ours (edits, case aside) is taken for a typo of it.
_NAMESPACE_TYPO_DISTANCE = 2


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, with a swap of two neighbouring characters counting as one edit."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


@dataclass(frozen=True)
class ConfigKeyCheck:
    """What :func:`check_config_keys` found: errors stop the program, warnings are logged."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def _other_namespace_warning(key: str, namespace: str, name: str) -> str:
    ignored = f"{key}: ignored: this program reads no {namespace}:* config"
    if namespace == "aws":
        ignored = f"{key}: ignored: this program's AWS provider is explicit and reads no aws:* stack config"
        if name == "region":
            return f"{ignored}; the regions come from {NAMESPACE}:regions (the first is the home region)"
        if name in ("profile", "accessKey", "secretKey", "token", "sharedCredentialsFiles"):
            return f"{ignored}; credentials come from the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...)"
        return ignored
    if _edit_distance(namespace.lower(), NAMESPACE) <= _NAMESPACE_TYPO_DISTANCE:
        guess = _did_you_mean(name, _keys_of(StackConfig)) or name
        return f"{ignored}; did you mean {NAMESPACE}:{guess}?"
    return ignored


def check_config_keys(keys: Iterable[str]) -> ConfigKeyCheck:
    """Every key of a stack (``namespace:name``, all namespaces) checked against what the program reads.

    An unknown ``agent-infra:*`` key is an error (with the closest key as a suggestion): a
    misspelled key would otherwise leave its setting at the default without a word. A key of
    another namespace is a warning, since other tools may share the stack file: the engine's
    own ``pulumi:*`` keys are fine, a namespace a typo away from ``agent-infra`` suggests the key
    meant, ``aws:*`` says that the program's explicit provider never reads it.
    """
    known = _keys_of(StackConfig)
    errors, warnings = [], []
    for key in sorted(set(keys)):
        namespace, colon, name = key.partition(":")
        if not colon:
            warnings.append(f"{key}: ignored: a key without a namespace; this program reads {NAMESPACE}:* keys")
        elif namespace == NAMESPACE:
            if name in known:
                continue
            head = re.split(r"[.\[]", name, maxsplit=1)[0]
            if head != name and head in known:
                errors.append(
                    f"{key}: unknown key; a key path is not a key: nest the value under {NAMESPACE}:{head}"
                    f" (`pulumi config set --path '{key}' <value>` does)"
                )
            else:
                guess = _did_you_mean(name, known)
                errors.append(
                    f"{key}: unknown key; did you mean {NAMESPACE}:{guess}?"
                    if guess
                    else f"{key}: unknown key; the {NAMESPACE} keys are {', '.join(known)}"
                    ' (README, "Stack configuration")'
                )
        elif namespace not in ENGINE_NAMESPACES:
            warnings.append(_other_namespace_warning(key, namespace, name))
    return ConfigKeyCheck(errors=tuple(errors), warnings=tuple(warnings))


def parse_stack_config(raw: dict[str, Any], key_errors: Iterable[str] = ()) -> StackConfig:
    """Validate a dict of ``agent-infra:*`` values (keys without the namespace).

    ``key_errors`` (from :func:`check_config_keys`) go into the same message as the values'
    problems, so one run names everything wrong.
    """
    lines = list(key_errors)
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as error:
        lines.extend(_error_lines(error))
    if lines:
        raise StackConfigError(_message(lines)) from None
    return config


def load_stack_config(read: Callable[[str], Any], keys: Iterable[str] | None = None) -> StackConfig:
    """Read every key of the model with ``read`` (e.g. ``pulumi.Config().get_object``) and validate.

    ``keys``, every key of the stack in every namespace, makes an unknown ``agent-infra:*`` key
    an error too (see :func:`check_config_keys`; its warnings are the caller's to log).
    """
    raw = {}
    for name, info in StackConfig.model_fields.items():
        key = info.alias or name
        value = read(key)
        if value is not None:
            raw[key] = value
    key_errors = check_config_keys(keys).errors if keys is not None else ()
    return parse_stack_config(raw, key_errors)


def _reference_rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        annotation = info.annotation
        nested = _nested_model(annotation)
        if info.is_required():
            default = "required"
        elif info.default_factory is not None:
            made = info.default_factory()
            default = "—" if isinstance(made, BaseModel) else f"`{made!r}`".replace("'", '"')
        else:
            default = (
                "—"
                if info.default is None
                else f"`{info.default!r}`".replace("'", '"').replace("True", "true").replace("False", "false")
            )
        rows.append(f"| `{key}` | {default} | {info.description or ''} |")
        if nested is not None:
            child_prefix = f"{key}[]." if _is_list(annotation) else f"{key}."
            rows.extend(_reference_rows(nested, child_prefix))
    return rows


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def config_reference_markdown() -> str:
    """The config reference table, generated from the model (the README embeds it)."""
    header = ["| key (`agent-infra:` …) | default | meaning |", "|---|---|---|"]
    return "\n".join(header + _reference_rows(StackConfig, "")) + "\n"


README_START = "<!-- config-reference:start (generated by `make config-reference`) -->"
README_END = "<!-- config-reference:end -->"


def with_reference(readme: str) -> str:
    """``readme`` with the text between the reference markers replaced by the current table."""
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    return readme[:start] + "\n" + config_reference_markdown() + readme[end:]


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:2] == ["--write-readme"]:
        path = Path(sys.argv[2])
        path.write_text(with_reference(path.read_text()))
    else:
        print(config_reference_markdown(), end="")
