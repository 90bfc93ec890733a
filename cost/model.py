"""What the stack costs: pure arithmetic over the program's resources, a measured turn
profile, the price table and named assumptions. No AWS, no Pulumi engine, no clock.

- :func:`facts_from_resources` reads what the program creates (under the mocks, as ``make
  preview`` runs it): regions, every function's memory, provisioned concurrency, alarms,
  dashboards, health checks, keys, secrets, the table's replicas and PITR, the stage's log
  format and throttling, the authorizer's cache TTL, an X-Ray sampling rule if there is one.
- :class:`TurnProfile` is what one turn does, as ``cost.measure`` counts it on the local
  stack (DynamoDB units, Lambda invocations and handler time, states, log bytes).
- :func:`fixed_lines`, :func:`turn_lines`, :func:`token_cost`, :func:`capacity_lines`
  turn those into dollars a month, dollars per 1M turns, and the capacity a rate needs
  beside AWS's default quotas. :func:`render` prints them.

Every price comes from ``cost/prices.json`` (us-east-1 list prices, each with its page and
the date it was read); every figure that is neither measured nor read from the program is
a field of :class:`Assumptions`, printed with the report.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).with_name("prices.json")
BEFORE_PATH = Path(__file__).with_name("before.json")
HOURS_PER_MONTH = 730  # AWS's pricing examples use 730 hours a month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GIB = 1024**3
EXPRESS_BILLED_MB = 64  # the smallest chunk; a turn's state is far below it (README, prices.json)
TURNS = 1_000_000


# -- the price table ----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One price, quota or fact of ``prices.json`` with where it comes from."""

    key: str
    value: float
    per: str
    url: str
    read: str
    confirmed: bool
    evidence: str


@dataclass(frozen=True)
class ModelPrice:
    model_id: str
    name: str
    input_per_million: float
    output_per_million: float
    url: str
    read: str
    confirmed: bool
    evidence: str


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[str, Entry]
    quotas: Mapping[str, Entry]
    facts: Mapping[str, Entry]
    models: Mapping[str, ModelPrice]
    region: str
    read: str

    def usd(self, key: str) -> float:
        return self.prices[key].value

    def quota(self, key: str) -> float:
        return self.quotas[key].value

    def fact(self, key: str) -> float:
        return self.facts[key].value


def _entries(section: Mapping[str, Mapping[str, Any]], value_key: str) -> dict[str, Entry]:
    out = {}
    for key, raw in section.items():
        missing = {value_key, "per", "url", "read", "confirmed", "evidence"} - set(raw)
        if missing:
            raise ValueError(f"prices.json: {key} lacks {', '.join(sorted(missing))}")
        out[key] = Entry(
            key, float(raw[value_key]), raw["per"], raw["url"], raw["read"], bool(raw["confirmed"]), raw["evidence"]
        )
    return out


def load_prices(path: Path = PRICES_PATH) -> PriceTable:
    """The price table; every entry must name its page, the date it was read and whether
    the figure was confirmed there."""
    raw = json.loads(Path(path).read_text())
    models = {}
    for model_id, m in raw["models"].items():
        models[model_id] = ModelPrice(
            model_id,
            m["name"],
            float(m["input_per_million"]),
            float(m["output_per_million"]),
            m["url"],
            m["read"],
            bool(m["confirmed"]),
            m["evidence"],
        )
    return PriceTable(
        prices=_entries(raw["prices"], "usd"),
        quotas=_entries(raw["quotas"], "value"),
        facts=_entries(raw["facts"], "value"),
        models=models,
        region=raw["_about"]["region"],
        read=raw["_about"]["read"],
    )


def load_before(path: Path = BEFORE_PATH) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


# -- DynamoDB's units ---------------------------------------------------------------------


def ceil_units(size: float, unit: int) -> int:
    """Units of ``unit`` bytes a request of ``size`` bytes consumes: at least one."""
    return max(1, math.ceil(size / unit))


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Size of one attribute value in DynamoDB's typed JSON, by DynamoDB's rules
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
    strings and binary by their bytes, numbers 1 byte per two significant digits plus 1,
    booleans and nulls 1 byte, lists and maps 3 bytes plus 1 per element plus the elements."""
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "N":
        return _number_size(raw)
    if kind == "B":
        return len(raw) if isinstance(raw, bytes | bytearray) else len(str(raw).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(_number_size(n) for n in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size: every attribute's name plus its value."""
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


# -- Step Functions logs ------------------------------------------------------------------

_ERROR_EVENTS = ("Failed", "TimedOut", "Aborted")
_FATAL_EVENTS = ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")


def sfn_log_bytes(histories: Sequence[Mapping[str, Any]], level: str, include_data: bool) -> float:
    """Bytes the executions' events would log at ``level`` (ALL, ERROR, FATAL, OFF), with or
    without execution data: each event as one JSON record (its id, type, details, previous
    event id, timestamp and the execution ARN, as Step Functions writes them to CloudWatch
    Logs; https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html), the
    inputs and outputs left out without data."""
    if level == "OFF":
        return 0.0
    total = 0
    for history in histories:
        for event in history["events"]:
            kind = str(getattr(event["type"], "value", event["type"]))
            if level == "ERROR" and not kind.endswith(_ERROR_EVENTS):
                continue
            if level == "FATAL" and kind not in _FATAL_EVENTS:
                continue
            details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
            if not include_data:
                details = {
                    k: {
                        f: x
                        for f, x in v.items()
                        if f not in ("input", "output", "inputDetails", "outputDetails", "parameters")
                    }
                    for k, v in details.items()
                }
            record = {
                "id": str(event.get("id")),
                "type": kind,
                "details": details,
                "previous_event_id": str(event.get("previousEventId", 0)),
                "event_timestamp": "1795859026914",
                "execution_arn": "arn:aws:states:us-east-1:123456789012:express:agent-infra-prod-turn:"
                "00000000-0000-0000-0000-000000000000:00000000-0000-0000-0000-000000000000",
            }
            total += len(json.dumps(record, default=str, separators=(",", ":")).encode()) + 1
    return float(total)


# -- what a turn does (measured) ----------------------------------------------------------


@dataclass(frozen=True)
class TurnProfile:
    """What one turn does on average, as measured on the local stack (``cost.measure``)."""

    kind: str
    description: str
    turns: int
    session_turns: int
    turn_interval_s: float
    states_entered: float
    task_states: float
    model_calls: float
    invocations: Mapping[str, float]
    """Lambda invocations per turn, by function key (``agent-prepare``, ``tool-calculator``, ...)."""
    handler_ms: Mapping[str, float]
    """Median time in each function's handler, DynamoDB calls taken out, in ms (local CPU)."""
    dynamodb_calls: Mapping[str, float]
    """DynamoDB requests per invocation, by function."""
    dynamodb_requests: Mapping[str, float]
    """DynamoDB requests per turn, by operation."""
    write_units: float
    """Write units in the region that takes the write (transactional writes count twice)."""
    replica_write_units: float
    """Replicated write units each other replica receives (1 per KB of each item written)."""
    gsi_write_units: float
    """GSI1 write units in each region (an item moved in the index counts twice)."""
    read_units: float
    new_items: float
    ttl_delete_units: float
    """Units of the items this turn creates, which TTL deletes later (free where the item
    lives... and a replicated write in every other replica)."""
    gsi_ttl_delete_units: float
    table_byte_months: float
    """Bytes (item + 100 bytes overhead) x months each new item is kept (until its TTL)."""
    gsi_byte_months: float
    written_bytes: float
    item_sizes: tuple[int, ...]
    lambda_log_bytes: float
    sfn_log_bytes: Mapping[tuple[str, bool], float]
    websocket_frames: float = 0.0


# -- what the program creates -------------------------------------------------------------


@dataclass(frozen=True)
class FunctionFacts:
    key: str
    region: str
    memory_mb: int
    reserved: int | None
    system_log_level: str


@dataclass(frozen=True)
class HealthCheckFacts:
    name: str
    kind: str
    fqdn: str
    request_interval: int
    measure_latency: bool
    string_matching: bool
    aws_endpoint: bool
    probes_rest_api: bool


@dataclass(frozen=True)
class StackFacts:
    stack: str
    resources: int
    regions: tuple[str, ...]
    functions: tuple[FunctionFacts, ...]
    provisioned: tuple[tuple[str, str, int], ...]
    """(region, function key, provisioned concurrent executions)."""
    alarms: tuple[tuple[str, int], ...]
    """(name, period in seconds) of every metric alarm."""
    dashboards: int
    health_checks: tuple[HealthCheckFacts, ...]
    kms_keys: int
    secrets: int
    event_connections: int
    budgets: int
    table_regions: int
    pitr_regions: int
    ttl_days: int
    turn_log_level: str
    turn_log_data: bool
    access_log_format: str
    execution_log_level: str
    stage_rate_limit: float
    stage_burst_limit: float
    quota_per_day: float
    authorizer_ttl_s: int
    llm_provider: str
    llm_model: str
    xray_sampling: float | None
    xray_source: str

    def memory_mb(self, key: str) -> int:
        for function in self.functions:
            if function.key == key:
                return function.memory_mb
        raise KeyError(f"the program creates no function {key!r}")

    def reserved(self, key: str) -> int | None:
        return next((f.reserved for f in self.functions if f.key == key), None)


def _one(resources: Sequence[Any], typ: str) -> Any:
    found = [r for r in resources if r.typ == typ]
    if not found:
        raise ValueError(f"the program creates no {typ}")
    return found[0]


def _sampling_from_config(config: Mapping[str, Any]) -> float | None:
    observability = config.get("agent-infra:observability") or {}
    if isinstance(observability, str):
        observability = json.loads(observability)
    for key, value in observability.items():
        if "sampl" in key.lower() and isinstance(value, int | float):
            return float(value) / 100 if value > 1 else float(value)
    return None


def facts_from_resources(stack: str, resources: Sequence[Any], config: Mapping[str, Any] | None = None) -> StackFacts:
    """Everything the cost depends on, read from the resources the program created
    (``local.pulumi_mocks.RecordedResource``: ``typ``, ``name``, ``inputs``, ``state``)."""
    config = config or {}
    functions, names = [], {}
    for r in resources:
        if r.typ != "aws:lambda/function:Function":
            continue
        key = r.inputs["loggingConfig"]["logGroup"].rsplit("/", 1)[-1]
        region = r.state.get("region") or r.inputs.get("region")
        names[r.state.get("name") or r.name] = key
        reserved = r.inputs.get("reservedConcurrentExecutions")
        functions.append(
            FunctionFacts(
                key=key,
                region=region,
                memory_mb=int(r.inputs["memorySize"]),
                reserved=int(reserved) if reserved is not None else None,
                system_log_level=r.inputs["loggingConfig"].get("systemLogLevel", "INFO"),
            )
        )
    # Sorted by function, then region: the program registers these as Outputs resolve, in
    # no fixed order, and the report is compared run to run.
    provisioned = tuple(
        sorted(
            (
                (
                    r.inputs.get("region"),
                    names.get(r.inputs["functionName"], r.inputs["functionName"]),
                    int(r.inputs["provisionedConcurrentExecutions"]),
                )
                for r in resources
                if r.typ == "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
            ),
            key=lambda entry: (entry[1], entry[0]),
        )
    )
    table = _one(resources, "aws:dynamodb/table:Table")
    replicas = table.inputs.get("replicas") or []
    pitr = int(bool((table.inputs.get("pointInTimeRecovery") or {}).get("enabled"))) + sum(
        1 for replica in replicas if replica.get("pointInTimeRecovery")
    )
    record_env = next(
        r.inputs["environment"]["variables"]
        for r in resources
        if r.typ == "aws:lambda/function:Function" and r.inputs["loggingConfig"]["logGroup"].endswith("/agent-record")
    )
    turn = next(
        r for r in resources if r.typ == "aws:sfn/stateMachine:StateMachine" and r.inputs.get("type") == "EXPRESS"
    )
    stage = _one(resources, "aws:apigateway/stage:Stage")
    method = next(
        r
        for r in resources
        if r.typ == "aws:apigateway/methodSettings:MethodSettings" and r.inputs.get("methodPath") == "*/*"
    )
    plan = _one(resources, "aws:apigateway/usagePlan:UsagePlan")
    body = json.loads(_one(resources, "aws:apigateway/restApi:RestApi").inputs["body"])
    ttls = [
        scheme["x-amazon-apigateway-authorizer"].get("authorizerResultTtlInSeconds", 300)
        for scheme in body.get("components", {}).get("securitySchemes", {}).values()
        if "x-amazon-apigateway-authorizer" in scheme
    ]
    rules = [r for r in resources if r.typ == "aws:xray/samplingRule:SamplingRule"]
    if rules:
        # The rule that matches a turn: the lowest priority number among rules for every URL.
        rule = min(rules, key=lambda r: float(r.inputs.get("priority", 10_000)))
        sampling, source = float(rule.inputs["fixedRate"]), f"the program's X-Ray sampling rule {rule.name}"
    else:
        sampling = _sampling_from_config(config)
        source = (
            "config agent-infra:observability"
            if sampling is not None
            else "none in the program or the config: assumed 100% (every turn traced)"
        )
    health_checks = tuple(
        HealthCheckFacts(
            name=r.name,
            kind=r.inputs.get("type", "HTTP"),
            fqdn=r.inputs.get("fqdn", ""),
            request_interval=int(r.inputs.get("requestInterval", 30)),
            measure_latency=bool(r.inputs.get("measureLatency")),
            string_matching=bool(r.inputs.get("searchString")),
            aws_endpoint=r.inputs.get("fqdn", "").endswith(".amazonaws.com"),
            probes_rest_api=".execute-api." in r.inputs.get("fqdn", ""),
        )
        for r in resources
        if r.typ == "aws:route53/healthCheck:HealthCheck"
    )
    return StackFacts(
        stack=stack,
        resources=len(resources),
        regions=(table.inputs.get("region"), *(replica["regionName"] for replica in replicas)),
        functions=tuple(functions),
        provisioned=provisioned,
        alarms=tuple(
            (r.name, int(r.inputs.get("period", 60)))
            for r in resources
            if r.typ == "aws:cloudwatch/metricAlarm:MetricAlarm"
        ),
        dashboards=sum(1 for r in resources if r.typ == "aws:cloudwatch/dashboard:Dashboard"),
        health_checks=health_checks,
        kms_keys=sum(1 for r in resources if r.typ == "aws:kms/key:Key"),
        secrets=sum(1 for r in resources if r.typ == "aws:secretsmanager/secret:Secret"),
        event_connections=sum(1 for r in resources if r.typ == "aws:cloudwatch/eventConnection:EventConnection"),
        budgets=sum(1 for r in resources if r.typ == "aws:budgets/budget:Budget"),
        table_regions=1 + len(replicas),
        pitr_regions=pitr,
        ttl_days=int(record_env["TTL_DAYS"]),
        turn_log_level=turn.inputs["loggingConfiguration"]["level"],
        turn_log_data=bool(turn.inputs["loggingConfiguration"].get("includeExecutionData")),
        access_log_format=(stage.inputs.get("accessLogSettings") or {}).get("format", ""),
        execution_log_level=method.inputs["settings"].get("loggingLevel", "OFF"),
        stage_rate_limit=float(method.inputs["settings"].get("throttlingRateLimit", 0)),
        stage_burst_limit=float(method.inputs["settings"].get("throttlingBurstLimit", 0)),
        quota_per_day=float((plan.inputs.get("quotaSettings") or {}).get("limit", 0)),
        authorizer_ttl_s=int(min(ttls)) if ttls else 0,
        llm_provider=record_env["LLM_PROVIDER"],
        llm_model=record_env["LLM_MODEL"],
        xray_sampling=sampling,
        xray_source=source,
    )


# -- assumptions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Assumptions:
    """Every figure neither measured nor read from the program; printed with the report."""

    model_wait_s: float = 3.0
    """Seconds the state machine (or, streaming, the stream function) waits per model call."""
    input_tokens: int = 1500
    output_tokens: int = 300
    dynamodb_ms: float = 10.0
    """One DynamoDB round trip from a Lambda in the same region (SDK, TLS reused)."""
    task_overhead_ms: float = 25.0
    """What a Task state adds to the Express duration beyond the work it waits for (the
    Lambda invoke or SDK call round trip)."""
    cpu_per_local_core: float = 1.0
    """A Lambda vCPU against one core of the machine that measured the handlers."""
    xray_sampling: float | None = None
    """Override of the sampling rate (None: the program's rule, else config, else 100%)."""
    lambda_segments_per_invocation: int = 2
    """X-Ray segments an actively traced invocation sends (the Lambda service's and the function's)."""
    message_chars: int = 400
    """A direct turn's user message, in characters (measured turns send one this long)."""
    chars_per_token: int = 4
    """Characters of English per output token: every final answer of a measured turn is
    ``output_tokens x chars_per_token`` characters long, so items are sized like real ones."""

    @property
    def reply_chars(self) -> int:
        return self.output_tokens * self.chars_per_token

    def lines(self) -> list[str]:
        return [
            f"model wait {self.model_wait_s:g} s per model call (--model-wait)",
            f"tokens {self.input_tokens:,} in / {self.output_tokens:,} out per model call (--input-tokens, --output-tokens)",
            f"DynamoDB round trip {self.dynamodb_ms:g} ms from Lambda (--dynamodb-ms)",
            f"Task state overhead {self.task_overhead_ms:g} ms in the Express duration (--task-overhead-ms)",
            f"one Lambda vCPU = {self.cpu_per_local_core:g} x one local core; a function gets memory/1,769 MB of a vCPU",
            f"X-Ray: {self.lambda_segments_per_invocation} segments per traced Lambda invocation, 1 for API Gateway, 1 for Step Functions",
            f"stored text: a direct turn's message {self.message_chars:,} characters (--message-chars), every final"
            f" answer {self.reply_chars:,} ({self.output_tokens} output tokens x {self.chars_per_token} characters),"
            " English prose",
        ]


# -- the arithmetic -----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    group: str
    part: str
    usd: float
    detail: str = ""


def sampling_rate(facts: StackFacts, assumptions: Assumptions) -> float:
    if assumptions.xray_sampling is not None:
        return assumptions.xray_sampling
    return 1.0 if facts.xray_sampling is None else facts.xray_sampling


def lambda_billed_ms(
    profile: TurnProfile, key: str, memory_mb: int, prices: PriceTable, assumptions: Assumptions
) -> int:
    """Billed duration of one invocation: the handler's measured local time scaled to the
    function's CPU share, plus its DynamoDB round trips, plus the model wait for the stream
    function; Lambda bills per 1 ms."""
    share = min(1.0, memory_mb / prices.fact("lambda.mb_per_vcpu")) * assumptions.cpu_per_local_core
    work = profile.handler_ms.get(key, 0.0) / share
    waits = profile.dynamodb_calls.get(key, 0.0) * assumptions.dynamodb_ms
    if key == "agent-stream":
        waits += assumptions.model_wait_s * 1000
    return max(1, math.ceil(work + waits))


def express_billed_ms(profile: TurnProfile, facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> int:
    """The turn's Express duration, rounded up to the next 100 ms: the model waits (the
    state machine's own model calls), every function it runs, and each Task state's overhead."""
    own_model_calls = profile.model_calls - profile.invocations.get("agent-stream", 0.0)
    ms = own_model_calls * assumptions.model_wait_s * 1000
    for key, count in profile.invocations.items():
        if key in ("authorizer", "connection"):
            continue  # API Gateway calls these, outside the execution
        ms += count * lambda_billed_ms(profile, key, facts.memory_mb(key), prices, assumptions)
    ms += profile.task_states * assumptions.task_overhead_ms
    return max(100, math.ceil(ms / 100) * 100)


def authorizer_calls_per_turn(facts: StackFacts, profile: TurnProfile) -> float:
    """A TOKEN authorizer's answer is cached per token for the TTL the program sets: a user
    who sends a turn every ``turn_interval_s`` seconds costs one invocation per TTL."""
    if facts.authorizer_ttl_s <= 0:
        return 1.0
    return min(1.0, profile.turn_interval_s / facts.authorizer_ttl_s)


ACCESS_LOG_SAMPLE = {
    # AWS-shaped values for each $context variable of the stage's access log format.
    "$context.requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
    "$context.extendedRequestId": "Abc12EFgIAMFz1A=",
    "$context.authorizer.userId": "auth0|64f1c0ffee0123456789abcd",
    "$context.identity.sourceIp": "203.0.113.10",
    "$context.httpMethod": "POST",
    "$context.resourcePath": "/v1/sessions/{sessionId}/messages",
    "$context.status": "200",
    "$context.responseLatency": "3150",
    "$context.integrationLatency": "3120",
    "$context.error.message": "-",
    "$context.xrayTraceId": "1-5e1b4151-43a7e7a1e2f5b1c7d3e9f0a1",
    "$context.identity.apiKeyId": "a1b2c3d4e5",
}


def access_log_bytes(log_format: str) -> int:
    """One access log line of the stage's format, rendered with AWS-shaped values."""
    line = log_format
    for variable in sorted(ACCESS_LOG_SAMPLE, key=len, reverse=True):
        line = line.replace(variable, ACCESS_LOG_SAMPLE[variable])
    return len(line.encode()) + 1 if log_format else 0


def log_bytes_per_turn(profile: TurnProfile, facts: StackFacts) -> tuple[float, float, float]:
    """(Lambda application logs, Step Functions logs at the machine's level, access logs)."""
    sfn = profile.sfn_log_bytes.get((facts.turn_log_level, facts.turn_log_data and facts.turn_log_level == "ALL"))
    if sfn is None:
        sfn = profile.sfn_log_bytes.get((facts.turn_log_level, False), 0.0)
    access = access_log_bytes(facts.access_log_format) if profile.kind != "websocket" else 0
    return profile.lambda_log_bytes, sfn, float(access)


def turn_lines(profile: TurnProfile, facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> list[Line]:
    """Dollars per 1M turns of ``profile``, per part."""
    p = prices.usd
    regions = len(facts.regions)
    replicas = facts.table_regions - 1
    lines: list[Line] = []
    if profile.kind == "websocket":
        messages = 1 + profile.websocket_frames
        lines.append(
            Line(
                "API Gateway",
                "WebSocket messages",
                TURNS * messages * p("apigw.ws_message"),
                f"{messages:g} a turn (1 in, {profile.websocket_frames:g} frames out)",
            )
        )
        minutes = profile.turn_interval_s / 60
        lines.append(
            Line(
                "API Gateway",
                "WebSocket connection minutes",
                TURNS * minutes * p("apigw.ws_connection_minute"),
                f"{minutes:g} min a turn (a connection open for the session)",
            )
        )
    else:
        lines.append(Line("API Gateway", "REST request", TURNS * p("apigw.rest_request"), "1 a turn"))
    billed = express_billed_ms(profile, facts, prices, assumptions)
    lines.append(Line("Step Functions", "Express request", TURNS * p("sfn.express_request"), "1 a turn"))
    lines.append(
        Line(
            "Step Functions",
            "Express duration",
            TURNS * billed / 1000 * EXPRESS_BILLED_MB / 1024 * p("sfn.express_gb_second"),
            f"{billed} ms billed x {EXPRESS_BILLED_MB} MB",
        )
    )
    invocations = dict(profile.invocations)
    if profile.kind != "websocket":
        invocations["authorizer"] = authorizer_calls_per_turn(facts, profile)
    for key, count in sorted(invocations.items()):
        memory = facts.memory_mb(key)
        ms = lambda_billed_ms(profile, key, memory, prices, assumptions)
        group = "Lambda (authorizer)" if key == "authorizer" else "Lambda"
        lines.append(
            Line(
                group,
                f"{key} ({memory} MB)",
                TURNS * count * (p("lambda.request") + ms / 1000 * memory / 1024 * p("lambda.arm_gb_second")),
                f"{count:g} x {ms} ms",
            )
        )
    wru = p("dynamodb.write_request_unit")
    lines.append(
        Line(
            "DynamoDB writes",
            "writes where they happen",
            TURNS * profile.write_units * wru,
            f"{profile.write_units:g} rWRU a turn",
        )
    )
    lines.append(
        Line(
            "DynamoDB writes",
            f"replicated writes ({replicas} replica{'' if replicas == 1 else 's'})",
            TURNS * profile.replica_write_units * replicas * wru,
            f"{profile.replica_write_units:g} rWRU x {replicas}",
        )
    )
    lines.append(
        Line(
            "DynamoDB writes",
            f"GSI1 writes ({facts.table_regions} regions)",
            TURNS * profile.gsi_write_units * facts.table_regions * wru,
            f"{profile.gsi_write_units:g} WRU x {facts.table_regions}",
        )
    )
    ttl_units = profile.ttl_delete_units + profile.gsi_ttl_delete_units
    lines.append(
        Line(
            "DynamoDB writes",
            f"replicated TTL deletes ({replicas} replica{'' if replicas == 1 else 's'})",
            TURNS * ttl_units * replicas * wru,
            f"{ttl_units:g} units x {replicas}",
        )
    )
    lines.append(
        Line(
            "DynamoDB reads",
            "reads",
            TURNS * profile.read_units * p("dynamodb.read_request_unit"),
            f"{profile.read_units:g} RRU a turn",
        )
    )
    months = profile.table_byte_months / GIB
    lines.append(
        Line(
            "DynamoDB storage",
            f"table + GSI1 storage until TTL ({facts.ttl_days} d, {facts.table_regions} regions)",
            TURNS * (months + profile.gsi_byte_months / GIB) * facts.table_regions * p("dynamodb.storage_gb_month"),
            f"{profile.table_byte_months / 1024:,.0f} KB-months a turn",
        )
    )
    lines.append(
        Line(
            "DynamoDB storage",
            f"PITR backup until TTL ({facts.pitr_regions} regions)",
            TURNS * months * facts.pitr_regions * p("dynamodb.pitr_gb_month"),
            "on the table's size",
        )
    )
    rate = sampling_rate(facts, assumptions)
    lines.append(
        Line("X-Ray", "traces recorded", TURNS * rate * p("xray.trace_recorded"), f"1 trace a turn x {rate:.0%}")
    )
    function_logs, sfn_logs, access = log_bytes_per_turn(profile, facts)
    total_logs = function_logs + sfn_logs + access
    lines.append(
        Line(
            "CloudWatch Logs",
            "ingestion",
            TURNS * total_logs / GIB * p("logs.ingest_gb"),
            f"{function_logs:,.0f} B functions + {sfn_logs:,.0f} B Step Functions ({facts.turn_log_level})"
            f" + {access:,.0f} B access log",
        )
    )
    lines.append(
        Line(
            "transfer",
            "inter-region replication",
            TURNS * profile.written_bytes * replicas / GIB * p("transfer.inter_region_gb"),
            f"{profile.written_bytes:,.0f} B x {replicas}",
        )
    )
    del regions
    return lines


def total(lines: Iterable[Line]) -> float:
    return sum(line.usd for line in lines)


def token_cost(model_calls: float, model: ModelPrice, assumptions: Assumptions) -> float:
    """Dollars per 1M turns for the model's tokens."""
    per_call = (
        assumptions.input_tokens * model.input_per_million + assumptions.output_tokens * model.output_per_million
    ) / 1_000_000
    return TURNS * model_calls * per_call


def fixed_lines(
    facts: StackFacts,
    prices: PriceTable,
    assumptions: Assumptions,
    emf_metrics: int = 0,
    health_profile: TurnProfile | None = None,
) -> list[Line]:
    """Dollars a month that do not depend on turns."""
    p = prices.usd
    lines: list[Line] = []
    standard = sum(1 for _, period in facts.alarms if period >= 60)
    high = len(facts.alarms) - standard
    if standard:
        lines.append(
            Line("CloudWatch", "alarms (standard)", standard * p("cloudwatch.alarm_standard"), f"{standard} alarms")
        )
    if high:
        lines.append(
            Line(
                "CloudWatch",
                "alarms (high resolution)",
                high * p("cloudwatch.alarm_high_resolution"),
                f"{high} alarms",
            )
        )
    if facts.dashboards:
        lines.append(
            Line(
                "CloudWatch",
                "dashboards",
                facts.dashboards * p("cloudwatch.dashboard"),
                f"{facts.dashboards} (the account's first 3 are free)",
            )
        )
    if emf_metrics:
        count = emf_metrics * len(facts.regions)
        lines.append(
            Line(
                "CloudWatch",
                "custom metrics (EMF, one model)",
                count * p("cloudwatch.custom_metric"),
                f"{emf_metrics} metrics x {len(facts.regions)} regions",
            )
        )
    for check in facts.health_checks:
        base = p("route53.health_check_aws" if check.aws_endpoint else "route53.health_check_other")
        feature = p("route53.health_check_feature_aws" if check.aws_endpoint else "route53.health_check_feature_other")
        features = [
            name
            for name, on in (
                ("HTTPS", check.kind.startswith("HTTPS")),
                ("latency measurement", check.measure_latency),
                ("string matching", check.string_matching),
                ("fast interval", check.request_interval < 30),
            )
            if on
        ]
        lines.append(
            Line(
                "Route 53",
                f"health check {check.name}",
                base + feature * len(features),
                ", ".join(features) or "basic",
            )
        )
    probing = [c for c in facts.health_checks if c.probes_rest_api]
    if probing:
        per_second = sum(
            prices.fact("route53.health_check_requests_per_second") * 30 / c.request_interval for c in probing
        )
        requests = per_second * SECONDS_PER_MONTH
        memory = facts.memory_mb("health")
        rate = sampling_rate(facts, assumptions)
        access = access_log_bytes(facts.access_log_format)
        each = (
            p("apigw.rest_request")
            + p("lambda.request")
            + assumptions.dynamodb_ms / 1000 * memory / 1024 * p("lambda.arm_gb_second")
            + rate * p("xray.trace_recorded")
            + access / GIB * p("logs.ingest_gb")
        )
        lines.append(
            Line(
                "Route 53",
                "health checks' requests to /v1/health",
                requests * each,
                f"{requests / 1e6:,.2f} M requests a month: API Gateway, health Lambda, X-Ray {rate:.0%}, access log",
            )
        )
    if facts.kms_keys:
        lines.append(
            Line("KMS", "customer managed keys", facts.kms_keys * p("kms.key_month"), f"{facts.kms_keys} keys")
        )
    secrets = facts.secrets + facts.event_connections
    if secrets:
        lines.append(
            Line(
                "Secrets Manager",
                "secrets (incl. EventBridge connections')",
                secrets * p("secretsmanager.secret_month"),
                f"{secrets} secrets",
            )
        )
    for region, key, count in facts.provisioned:
        memory = next(f.memory_mb for f in facts.functions if f.key == key and f.region == region)
        lines.append(
            Line(
                "Lambda",
                f"provisioned concurrency {key} {region}",
                count * memory / 1024 * SECONDS_PER_MONTH * p("lambda.arm_provisioned_gb_second"),
                f"{count} x {memory} MB x {HOURS_PER_MONTH} h",
            )
        )
    if facts.budgets:
        lines.append(Line("Budgets", "budgets (no actions)", facts.budgets * p("budgets.budget_month"), "free"))
    return lines


# -- capacity -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    what: str
    needed: float
    limit: float | None
    limit_name: str
    url: str
    confirmed: bool

    @property
    def over(self) -> bool:
        return self.limit is not None and self.needed > self.limit


def capacity_lines(
    rate: float,
    profile: TurnProfile,
    facts: StackFacts,
    prices: PriceTable,
    assumptions: Assumptions,
) -> list[Capacity]:
    """What ``rate`` turns a second of ``profile`` need in each region (an even split across
    the regions), beside AWS's default quotas and the stack's own limits."""
    regions = len(facts.regions)
    r = rate / regions
    q = prices.quotas
    out: list[Capacity] = []

    def quota(what: str, needed: float, key: str) -> None:
        entry = q[key]
        out.append(Capacity(what, needed, entry.value, entry.per, entry.url, entry.confirmed))

    invocations = {**profile.invocations, "authorizer": authorizer_calls_per_turn(facts, profile)}
    concurrency = {}
    for key, count in sorted(invocations.items()):
        ms = lambda_billed_ms(profile, key, facts.memory_mb(key), prices, assumptions)
        concurrency[key] = r * count * ms / 1000
        reserved = facts.reserved(key)
        out.append(
            Capacity(
                f"Lambda concurrency {key}",
                concurrency[key],
                float(reserved) if reserved is not None else None,
                "reserved concurrency (stack config)" if reserved is not None else "",
                "",
                True,
            )
        )
    quota("Lambda concurrency, all functions", sum(concurrency.values()), "lambda.concurrent_executions")
    quota("Express starts per second (StartSyncExecution)", r, "sfn.express_start_rate")
    express_s = express_billed_ms(profile, facts, prices, assumptions) / 1000
    out.append(Capacity("Express executions open at once", r * express_s, None, "no quota for Express", "", True))
    replicas = facts.table_regions - 1
    writes = (
        r * profile.write_units
        + (rate - r) * profile.replica_write_units
        + rate * profile.gsi_write_units
        + (rate - r) * (profile.ttl_delete_units + profile.gsi_ttl_delete_units)
    )
    if replicas == 0:
        writes = r * (profile.write_units + profile.gsi_write_units)
    quota(
        "DynamoDB write units per second, each replica (TTL deletes included)",
        writes,
        "dynamodb.table_write_units_per_second",
    )
    quota("DynamoDB write units per second, a new table at once", writes, "dynamodb.new_table_write_units_per_second")
    quota(
        "DynamoDB read units per second, each replica", r * profile.read_units, "dynamodb.table_read_units_per_second"
    )
    api = r if profile.kind != "websocket" else r * (1 + profile.websocket_frames)
    quota("API Gateway requests per second (account)", api, "apigw.account_rps")
    out.append(
        Capacity(
            "API Gateway requests per second (stage throttle)",
            api,
            facts.stage_rate_limit,
            "api.rateLimit (stack config)",
            "",
            True,
        )
    )
    out.append(
        Capacity(
            "API Gateway requests per day per API key (usage plan)",
            api * 86400,
            facts.quota_per_day,
            "api.quotaPerDay (stack config), one client",
            "",
            True,
        )
    )
    tokens = r * profile.model_calls * (assumptions.input_tokens + assumptions.output_tokens) * 60
    out.append(
        Capacity(
            "model tokens per minute (Bedrock)",
            tokens,
            None,
            "the model's quota: Service Quotas (bedrock), not checked here",
            "",
            True,
        )
    )
    rate_traced = sampling_rate(facts, assumptions)
    lambda_invocations = sum(invocations.values())
    segments = 2 + assumptions.lambda_segments_per_invocation * lambda_invocations
    quota("X-Ray segments per second", r * rate_traced * segments, "xray.segments_per_second")
    return out


# -- the report ---------------------------------------------------------------------------


@dataclass
class Report:
    facts: StackFacts
    prices: PriceTable
    assumptions: Assumptions
    profiles: Mapping[str, TurnProfile]
    fixed: list[Line]
    per_turn: Mapping[str, list[Line]]
    model: ModelPrice | None
    tokens: Mapping[str, float]
    rate: float | None = None
    capacity: Mapping[str, list[Capacity]] = field(default_factory=dict)
    before: Mapping[str, Any] | None = None
    measured_note: str = ""
    authorizer_note: str = ""


def build_report(
    facts: StackFacts,
    prices: PriceTable,
    assumptions: Assumptions,
    profiles: Mapping[str, TurnProfile],
    emf_metrics: int = 0,
    rate: float | None = None,
    before: Mapping[str, Any] | None = None,
) -> Report:
    per_turn = {kind: turn_lines(profile, facts, prices, assumptions) for kind, profile in profiles.items()}
    model = prices.models.get(facts.llm_model)
    tokens = (
        {kind: token_cost(profile.model_calls, model, assumptions) for kind, profile in profiles.items()}
        if model
        else {}
    )
    capacity = {}
    if rate is not None:
        capacity = {
            kind: capacity_lines(rate, profiles[kind], facts, prices, assumptions)
            for kind in ("direct", "tool")
            if kind in profiles
        }
    return Report(
        facts=facts,
        prices=prices,
        assumptions=assumptions,
        profiles=profiles,
        fixed=fixed_lines(facts, prices, assumptions, emf_metrics),
        per_turn=per_turn,
        model=model,
        tokens=tokens,
        rate=rate,
        capacity=capacity,
        before=before,
    )


def with_ttl(profile: TurnProfile, facts: StackFacts, ttl_days: int) -> tuple[TurnProfile, StackFacts]:
    """The profile and facts with items kept ``ttl_days`` instead of the stack's TTL: storage
    scales with the time an item is kept; every item is still deleted once."""
    scale = ttl_days / facts.ttl_days
    return (
        dataclasses.replace(
            profile,
            table_byte_months=profile.table_byte_months * scale,
            gsi_byte_months=profile.gsi_byte_months * scale,
        ),
        dataclasses.replace(facts, ttl_days=ttl_days),
    )


WHAT_IF_SAMPLING = 0.05
WHAT_IF_TTL_DAYS = 30


def what_if(report: Report) -> list[tuple[str, dict[str, float]]]:
    """Totals per 1M turns with the two config levers that move the most: an X-Ray sampling
    rule at 5% and a 30-day TTL (``state.ttlDays``), each alone and both."""
    rows = []
    sampled = dataclasses.replace(report.assumptions, xray_sampling=WHAT_IF_SAMPLING)
    cases = [
        (f"X-Ray sampling rule at {WHAT_IF_SAMPLING:.0%}", False, sampled),
        (f"state.ttlDays {WHAT_IF_TTL_DAYS}", True, report.assumptions),
        ("both", True, sampled),
    ]
    for label, short_ttl, assumptions in cases:
        totals = {}
        for kind, profile in report.profiles.items():
            facts = report.facts
            if short_ttl and facts.ttl_days > WHAT_IF_TTL_DAYS:
                profile, facts = with_ttl(profile, facts, WHAT_IF_TTL_DAYS)
            totals[kind] = total(turn_lines(profile, facts, report.prices, assumptions))
        rows.append((label, totals))
    return rows


DAYS_PER_MONTH = 30.4375  # 365.25 / 12, the month cost.measure counts storage in
KEPT_GROUPS = ("DynamoDB storage",)


def kept_cost(lines: Iterable[Line]) -> float:
    """The part of a turn's cost that pays for keeping it (storage and PITR until its TTL)."""
    return sum(line.usd for line in lines if line.group in KEPT_GROUPS)


def _money(value: float) -> str:
    return f"{value:,.2f}"


def grouped(lines: Iterable[Line]) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in lines:
        out[line.group] = out.get(line.group, 0.0) + line.usd
    return out


def before_after(report: Report) -> list[tuple[str, str, str, str]]:
    """(part, before, after direct, after one tool call) rows for the issue's table."""
    if not report.before:
        return []
    direct = grouped(report.per_turn.get("direct", []))
    tool = grouped(report.per_turn.get("tool", []))
    rows = []
    used: set[str] = set()
    for row in report.before["rows"]:
        groups = row["groups"]
        used |= set(groups)
        rows.append(
            (
                row["part"],
                row["before"],
                _money(sum(direct.get(g, 0.0) for g in groups)),
                _money(sum(tool.get(g, 0.0) for g in groups)),
            )
        )
    rest = sorted((set(direct) | set(tool)) - used)
    for group in rest:
        rows.append(
            (f"{group} (not in the before table)", "-", _money(direct.get(group, 0.0)), _money(tool.get(group, 0.0)))
        )
    rows.append(
        (
            "total",
            report.before["total"],
            _money(total(report.per_turn.get("direct", []))),
            _money(total(report.per_turn.get("tool", []))),
        )
    )
    return rows


def _table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i]) for i, c in enumerate(row)]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def render(report: Report) -> str:
    f, prices, a = report.facts, report.prices, report.assumptions
    out: list[str] = []
    out.append(
        f"agent-infra cost: stack {f.stack}, {len(f.regions)} regions ({', '.join(f.regions)}); "
        f"{prices.region} list prices read {prices.read} (cost/prices.json)"
    )
    out.append("")
    out.append(f"1. FIXED, per month: from the {f.resources} resources the program creates (run under the mocks)")
    rows = [("service", "item", "quantity", "$/month")]
    rows += [(line.group, line.part, line.detail, _money(line.usd)) for line in report.fixed]
    rows.append(("", "total fixed", "", _money(total(report.fixed))))
    out += _table(rows, right=(3,))
    out.append(
        "  not counted: log storage, DynamoDB's and CloudWatch's free tiers, Route 53 hosted zone (not created here)"
    )
    out.append("")
    kinds = [k for k in ("direct", "tool", "memory", "websocket") if k in report.per_turn]
    out.append("2. PER 1M TURNS, $ (infrastructure; model tokens in 3.)")
    for kind in kinds:
        profile = report.profiles[kind]
        out.append(f"  [{kind}] {profile.description}")
    rows = [("service", "part", *kinds)]
    parts: list[tuple[str, str]] = []
    for kind in kinds:
        for line in report.per_turn[kind]:
            if (line.group, line.part) not in parts:
                parts.append((line.group, line.part))
    for group, part in parts:
        values = []
        for kind in kinds:
            match = [line.usd for line in report.per_turn[kind] if (line.group, line.part) == (group, part)]
            values.append(_money(match[0]) if match else "-")
        rows.append((group, part, *values))
    rows.append(("", "total", *(_money(total(report.per_turn[k])) for k in kinds)))
    out += _table(rows, right=tuple(range(2, 2 + len(kinds))))
    out.append("  how each figure is made (direct answer):")
    for line in report.per_turn.get("direct", []):
        out.append(f"    {line.group} / {line.part}: {line.detail}")
    if "websocket" in report.per_turn:
        profile = report.profiles["websocket"]
        stream = [line for line in report.per_turn["websocket"] if line.part.startswith("agent-stream")]
        if stream:
            out.append(
                f"  WebSocket turns: agent-stream waits for the whole model call in a Lambda: {stream[0].detail},"
                f" ${_money(stream[0].usd)} per 1M turns of the ${_money(total(report.per_turn['websocket']))}"
                f" ({profile.websocket_frames:g} frames out a turn)"
            )
    goal_direct, goal_tool = 15.0, 30.0
    if f.stack == "prod" and "direct" in report.per_turn:
        direct, tool = report.per_turn["direct"], report.per_turn.get("tool", [])
        d, t = total(direct), total(tool)
        dw, tw = d - kept_cost(direct), t - kept_cost(tool)
        months = f.ttl_days / DAYS_PER_MONTH

        def verdict(value: float, goal: float) -> str:
            return f"${_money(value)} ({'met' if value <= goal else 'NOT met'})"

        out.append(f"  goal (prod): direct <= ${goal_direct:g}, one tool call <= ${goal_tool:g} per 1M turns")
        out.append(
            f"    the turn's work (every part but storage):  direct {verdict(dw, goal_direct)},"
            f" one tool call {verdict(tw, goal_tool)}"
        )
        out.append(
            f"    with the turn kept {f.ttl_days} days (storage + PITR, {f.table_regions} regions):"
            f"  direct {verdict(d, goal_direct)}, one tool call {verdict(t, goal_tool)};"
            f" keeping costs ${_money(kept_cost(direct) / months)} (direct) and"
            f" ${_money(kept_cost(tool) / months)} (one tool call) per 1M turns per month kept (state.ttlDays)"
        )
    if f.stack == "prod" and "direct" in report.per_turn:
        out.append("  what would move it (totals per 1M turns with a config change, same measurement):")
        for label, totals in what_if(report):
            out.append("    " + f"{label:<30}" + "  ".join(f"{k} {_money(v)}" for k, v in totals.items()))
    rows = before_after(report)
    if rows:
        out.append("")
        out.append(f"  before (issue 11) and now, $ per 1M turns, stack {f.stack}:")
        out += _table([("part", "before", "now: direct", "now: one tool call"), *rows], right=(2, 3))
    out.append("")
    out.append(f"3. MODEL TOKENS per 1M turns ({a.input_tokens:,} in / {a.output_tokens:,} out per model call)")
    if report.model is None:
        out.append(f"  {f.llm_model}: no price in cost/prices.json (add an entry under 'models')")
    else:
        m = report.model
        out.append(
            f"  {m.model_id} ({m.name}): ${m.input_per_million:g} / ${m.output_per_million:g} per 1M tokens"
            f" in / out{'' if m.confirmed else ' (not confirmed on a stored AWS page)'}; {m.url}"
        )
        for kind in kinds:
            out.append(
                f"  {kind:<10} {report.profiles[kind].model_calls:g} model calls: ${_money(report.tokens[kind])}"
            )
    if report.rate is not None:
        out.append("")
        regions = len(f.regions)
        out.append(
            f"4. CAPACITY at {report.rate:,g} turns/s: {report.rate / regions:,.0f} turns/s in each region"
            f" (assumed: an even split across the {regions} regions)"
        )
        for kind, lines in report.capacity.items():
            out.append(f"  [{kind}] {report.profiles[kind].description}")
            rows = [("needs", "per region", "default / limit", "", "source")]
            for c in lines:
                if c.limit is None:
                    flag = ""
                    limit = c.limit_name or "-"
                else:
                    flag = "RAISE" if c.over else "ok"
                    limit = f"{c.limit:,.0f}"
                source = c.url + ("" if c.confirmed else " (unconfirmed)") if c.url else c.limit_name
                rows.append((c.what, f"{c.needed:,.1f}", limit, flag, source))
            out += _table(rows, right=(1, 2))
    out.append("")
    out.append("MEASURED on the local stack (cost/measure.py; the real handlers, state machine and table access):")
    for kind in kinds:
        profile = report.profiles[kind]
        calls = ", ".join(f"{op} {n:g}" for op, n in profile.dynamodb_requests.items())
        functions = ", ".join(f"{k} {n:g}" for k, n in profile.invocations.items())
        out.append(
            f"  {kind}: {profile.states_entered:g} states entered ({profile.task_states:g} Task), "
            f"{profile.model_calls:g} model calls; Lambda: {functions}; DynamoDB a turn: {calls}; "
            f"items written {', '.join(str(s) for s in profile.item_sizes)} B; "
            f"{profile.lambda_log_bytes:,.0f} B of function logs"
        )
    out.append(
        f"  per session of {report.profiles[kinds[0]].session_turns} turns, one every"
        f" {report.profiles[kinds[0]].turn_interval_s:g} s (--session-turns, --turn-interval): the first turn creates"
        " the session (a transaction), a turn 10 minutes after the last refresh moves it in GSI1 (a transaction)"
    )
    if report.authorizer_note:
        out.append(f"  {report.authorizer_note}")
    out.append("READ from the program: regions and replicas, memory of every function, provisioned concurrency,")
    out.append(
        f"  alarms, dashboards, health checks, keys, secrets, PITR, TTL {f.ttl_days} d, Step Functions log level"
        f" {f.turn_log_level}, access log format, authorizer cache {f.authorizer_ttl_s} s, stage throttle"
        f" {f.stage_rate_limit:g}/s, model {f.llm_model}"
    )
    out.append(f"  X-Ray sampling: {f.xray_source}")
    if f.xray_sampling is None and a.xray_sampling is None:
        default = prices.facts["xray.default_rule"]
        out.append(
            f"    (without a rule of ours AWS's default rule applies: {default.per}; at this volume about"
            f" {default.value:.0%}, i.e. ${TURNS * default.value * prices.usd('xray.trace_recorded'):,.2f} per 1M turns;"
            f" {default.url})"
        )
    out.append("ASSUMED:")
    out += [f"  {line}" for line in a.lines()]
    unconfirmed = sorted(k for k, e in prices.prices.items() if not e.confirmed)
    out.append(
        f"PRICES not confirmed on a stored AWS page ({len(unconfirmed)} of {len(prices.prices)}; evidence in"
        f" cost/prices.json): {', '.join(unconfirmed)}"
    )
    return "\n".join(out) + "\n"


def render_markdown(report: Report) -> str:
    """A short summary for a pull request: fixed a month, per 1M turns by kind, tokens apart."""
    f = report.facts
    kinds = [k for k in ("direct", "tool", "memory", "websocket") if k in report.per_turn]
    out = [
        f"#### make cost: {f.stack} ({len(f.regions)} regions)",
        "",
        f"Fixed: **${_money(total(report.fixed))} a month** ({f.resources} resources).",
        "",
        "| $ per 1M turns | " + " | ".join(kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]
    groups: list[str] = []
    for kind in kinds:
        groups += [g for g in grouped(report.per_turn[kind]) if g not in groups]
    for group in groups:
        values = [grouped(report.per_turn[k]).get(group) for k in kinds]
        out.append(f"| {group} | " + " | ".join("-" if v is None else _money(v) for v in values) + " |")
    out.append("| **infrastructure** | " + " | ".join(f"**{_money(total(report.per_turn[k]))}**" for k in kinds) + " |")
    if report.model is not None:
        out.append(
            f"| model tokens ({report.model.name}) | " + " | ".join(_money(report.tokens[k]) for k in kinds) + " |"
        )
    out += [
        "",
        f"Measured on the local stack with the real handlers and state machine; {report.prices.region} list"
        f" prices read {report.prices.read}; assumed: {report.assumptions.model_wait_s:g} s per model call."
        f" `make cost STACK={f.stack}` prints how each figure is made.",
    ]
    return "\n".join(out) + "\n"
