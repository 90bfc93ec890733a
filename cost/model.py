"""What the stack costs: pure arithmetic over the program's resources, a measured turn
profile, the price table and named assumptions. No AWS, no Pulumi engine, no clock.

- :func:`facts_from_resources` reads what the program creates (under the mocks, as ``make
  preview`` runs it): regions, every function's memory, provisioned concurrency, alarms,
  dashboards, health checks, keys, secrets, the table's replicas and PITR, the stage's log
  format and throttling, the authorizer's cache TTL, an X-Ray sampling rule if there is one.
- :class:`TurnProfile` is what one turn does, as ``cost.measure`` counts it on the local
  stack (DynamoDB units, Lambda invocations and handler time, states, log bytes).
- :func:`fixed_lines`, :func:`turn_lines`, :func:`capacity_lines` (the model's tokens: ``cost.sessions``)
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
    regions: Mapping[str, Entry] = field(default_factory=dict)
    """A region's own figure where it differs from ``value`` (us-east-1's), each with its source."""
    unsourced_in: tuple[str, ...] = ()
    """Regions for which no figure was found: they are priced at ``value``, and the report says so."""

    def at(self, region: str | None) -> Entry:
        """The figure that applies in ``region``: its own if prices.json has one, else us-east-1's."""
        return self.regions.get(region, self) if region else self


@dataclass(frozen=True)
class ModelPrice:
    """A model's token prices per 1M tokens on one route (global, geographic, in-region, or an
    OpenAI-compatible API), and its output speed, which decides how long a turn waits for it."""

    model_id: str
    name: str
    route: str
    input_per_million: float
    output_per_million: float
    cache_read_per_million: float | None
    """None: the model has no prompt caching."""
    cache_write_per_million: float | None
    """A 5-minute cache write; None: the model has no prompt caching."""
    url: str
    read: str
    confirmed: bool
    evidence: str
    output_tokens_per_second: float | None
    """None: no benchmark found; the model wait is then --model-wait or the fallback."""
    first_token_seconds: float | None
    speed_url: str | None
    speed_confirmed: bool
    speed_evidence: str


MODEL_FIELDS = (
    "name",
    "route",
    "input_per_million",
    "output_per_million",
    "cache_read_per_million",
    "cache_write_per_million",
    "url",
    "read",
    "confirmed",
    "evidence",
    "output_tokens_per_second",
    "first_token_seconds",
    "speed_url",
    "speed_confirmed",
    "speed_evidence",
)
_MODEL_NULLABLE = {
    "cache_read_per_million",
    "cache_write_per_million",
    "output_tokens_per_second",
    "first_token_seconds",
    "speed_url",
}


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[str, Entry]
    quotas: Mapping[str, Entry]
    facts: Mapping[str, Entry]
    models: Mapping[str, ModelPrice]
    region: str
    read: str

    def usd(self, key: str, region: str | None = None) -> float:
        """``key``'s price in ``region`` (us-east-1's where prices.json has no figure of its own)."""
        return self.prices[key].at(region).value

    def quota(self, key: str) -> float:
        return self.quotas[key].value

    def fact(self, key: str) -> float:
        return self.facts[key].value


_ENTRY_FIELDS = {"per", "url", "read", "confirmed", "evidence"}
_REGION_FIELDS = {"url", "read", "confirmed", "evidence"}


def _entry(key: str, raw: Mapping[str, Any], value_key: str, per: str | None = None) -> Entry:
    return Entry(
        key,
        float(raw[value_key]),
        raw.get("per", per or ""),
        raw["url"],
        raw["read"],
        bool(raw["confirmed"]),
        raw["evidence"],
    )


def _entries(section: Mapping[str, Mapping[str, Any]], value_key: str) -> dict[str, Entry]:
    out = {}
    for key, raw in section.items():
        missing = ({value_key} | _ENTRY_FIELDS) - set(raw)
        if missing:
            raise ValueError(f"prices.json: {key} lacks {', '.join(sorted(missing))}")
        regions = {}
        for region, override in (raw.get("regions") or {}).items():
            missing = ({value_key} | _REGION_FIELDS) - set(override)
            if missing:
                raise ValueError(f"prices.json: {key} in {region} lacks {', '.join(sorted(missing))}")
            regions[region] = _entry(key, override, value_key, raw["per"])
        out[key] = dataclasses.replace(
            _entry(key, raw, value_key), regions=regions, unsourced_in=tuple(raw.get("unsourced_in", ()))
        )
    return out


def _model(model_id: str, raw: Mapping[str, Any]) -> ModelPrice:
    """One entry of prices.json "models"; every field must be there (null only where the
    model has no prompt caching or no benchmark was found), so a gap is an error, not a 0."""
    missing = [name for name in MODEL_FIELDS if name not in raw]
    if missing:
        raise ValueError(f"prices.json: model {model_id} lacks {', '.join(missing)}")
    nulls = [name for name in MODEL_FIELDS if raw[name] is None and name not in _MODEL_NULLABLE]
    if nulls:
        raise ValueError(f"prices.json: model {model_id} has no value for {', '.join(nulls)}")

    def number(name: str) -> float | None:
        return None if raw[name] is None else float(raw[name])

    return ModelPrice(
        model_id=model_id,
        name=raw["name"],
        route=raw["route"],
        input_per_million=float(raw["input_per_million"]),
        output_per_million=float(raw["output_per_million"]),
        cache_read_per_million=number("cache_read_per_million"),
        cache_write_per_million=number("cache_write_per_million"),
        url=raw["url"],
        read=raw["read"],
        confirmed=bool(raw["confirmed"]),
        evidence=raw["evidence"],
        output_tokens_per_second=number("output_tokens_per_second"),
        first_token_seconds=number("first_token_seconds"),
        speed_url=raw["speed_url"],
        speed_confirmed=bool(raw["speed_confirmed"]),
        speed_evidence=raw["speed_evidence"],
    )


def load_prices(path: Path = PRICES_PATH) -> PriceTable:
    """The price table; every entry must name its page, the date it was read and whether
    the figure was confirmed there, and so must each region's own figure."""
    raw = json.loads(Path(path).read_text())
    return PriceTable(
        prices=_entries(raw["prices"], "usd"),
        quotas=_entries(raw["quotas"], "value"),
        facts=_entries(raw["facts"], "value"),
        models={model_id: _model(model_id, m) for model_id, m in raw["models"].items()},
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
    kms_rotating_keys: int
    """Keys with automatic rotation: each of a key's first two rotations adds to its price."""
    kms_rotation_days: int
    secrets: int
    event_connections: int
    budgets: int
    table_regions: int
    pitr_regions: tuple[str, ...]
    """The regions whose replica has point-in-time recovery on."""
    table_class: str
    ttl_days: int
    turn_log_level: str
    turn_log_data: bool
    access_log_format: str
    websocket_access_log_format: str
    detailed_metric_methods: int
    """REST methods with detailed (method-level) CloudWatch metrics, all regions together."""
    execution_log_level: str
    stage_rate_limit: float
    stage_burst_limit: float
    quota_per_day: float
    authorizer_ttl_s: int
    llm_provider: str
    llm_model: str
    history_tokens: int
    """``llm.historyTokens``: the most tokens of earlier turns a model call sends."""
    prompt_caching: bool
    max_tokens: int
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


_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "x-amazon-apigateway-any-method")


def _method_path(path: str, method: str) -> str:
    """A method's key in a stage's method settings: the resource path with every "/" as "~1"
    (https://docs.aws.amazon.com/apigateway/latest/api/API_UpdateStage.html, patch paths)."""
    verb = "*" if method == "x-amazon-apigateway-any-method" else method.upper()
    return f"{path.replace('/', '~1')}/{verb}"


def detailed_metric_methods(resources: Sequence[Any]) -> int:
    """REST methods (every region) whose stage settings turn detailed metrics on: a method's
    own settings win over the stage's ``*/*``. Only these emit method-level metrics, the ones
    API Gateway bills for ("Your account is charged for accessing method-level CloudWatch
    metrics, but not the API-level or stage-level metrics",
    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-stages.html)."""
    count = 0
    for api in (r for r in resources if r.typ == "aws:apigateway/restApi:RestApi"):
        region = api.inputs.get("region")
        settings = {
            r.inputs["methodPath"]: bool(r.inputs["settings"].get("metricsEnabled"))
            for r in resources
            if r.typ == "aws:apigateway/methodSettings:MethodSettings" and r.inputs.get("region") == region
        }
        paths = json.loads(api.inputs["body"]).get("paths", {})
        for path, operations in paths.items():
            for method in operations:
                if method.lower() in _HTTP_METHODS:
                    count += settings.get(_method_path(path, method.lower()), settings.get("*/*", False))
    return count


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
    pitr = tuple(
        [table.inputs.get("region")] * bool((table.inputs.get("pointInTimeRecovery") or {}).get("enabled"))
        + [replica["regionName"] for replica in replicas if replica.get("pointInTimeRecovery")]
    )
    keys = [r for r in resources if r.typ == "aws:kms/key:Key"]
    rotating = [k for k in keys if k.inputs.get("enableKeyRotation")]
    ws_stages = [r for r in resources if r.typ == "aws:apigatewayv2/stage:Stage"]
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
        kms_keys=len(keys),
        kms_rotating_keys=len(rotating),
        # Automatic rotation is yearly unless RotationPeriodInDays says otherwise
        # (https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html).
        kms_rotation_days=max((int(k.inputs.get("rotationPeriodInDays") or 365) for k in rotating), default=365),
        secrets=sum(1 for r in resources if r.typ == "aws:secretsmanager/secret:Secret"),
        event_connections=sum(1 for r in resources if r.typ == "aws:cloudwatch/eventConnection:EventConnection"),
        budgets=sum(1 for r in resources if r.typ == "aws:budgets/budget:Budget"),
        table_regions=1 + len(replicas),
        pitr_regions=pitr,
        table_class=table.inputs.get("tableClass") or "STANDARD",
        ttl_days=int(record_env["TTL_DAYS"]),
        turn_log_level=turn.inputs["loggingConfiguration"]["level"],
        turn_log_data=bool(turn.inputs["loggingConfiguration"].get("includeExecutionData")),
        access_log_format=(stage.inputs.get("accessLogSettings") or {}).get("format", ""),
        websocket_access_log_format=(ws_stages[0].inputs.get("accessLogSettings") or {}).get("format", "")
        if ws_stages
        else "",
        detailed_metric_methods=detailed_metric_methods(resources),
        execution_log_level=method.inputs["settings"].get("loggingLevel", "OFF"),
        stage_rate_limit=float(method.inputs["settings"].get("throttlingRateLimit", 0)),
        stage_burst_limit=float(method.inputs["settings"].get("throttlingBurstLimit", 0)),
        quota_per_day=float((plan.inputs.get("quotaSettings") or {}).get("limit", 0)),
        authorizer_ttl_s=int(min(ttls)) if ttls else 0,
        llm_provider=record_env["LLM_PROVIDER"],
        llm_model=record_env["LLM_MODEL"],
        history_tokens=int(record_env["HISTORY_TOKENS"]),
        prompt_caching=record_env["PROMPT_CACHING"] == "true",
        max_tokens=int(record_env["MAX_TOKENS"]),
        xray_sampling=sampling,
        xray_source=source,
    )


# -- assumptions --------------------------------------------------------------------------

TOOL_CALL_TOKENS = 40
"""Output tokens of a model call that only asks for a tool (cost.sessions writes its tool
calls this long)."""


@dataclass(frozen=True)
class Assumptions:
    """Every figure neither measured nor read from the program; printed with the report."""

    model_wait_s: float | None = None
    """Seconds the state machine (or, streaming, the stream function) waits per model call;
    None until :func:`with_model_wait` derives it from the model's speed (or --model-wait)."""
    model_wait_source: str = ""
    tool_call_wait_s: float | None = None
    """Seconds for a call that only asks for tools (``tool_call_tokens`` of output): set with
    ``model_wait_s``; --model-wait sets both."""
    tool_call_tokens: int = TOOL_CALL_TOKENS
    """Output tokens of a call that only asks for tools (a tool use block, its JSON input)."""
    input_tokens: int = 1500
    """Prompt tokens per model call, only where no session was run (no price for the model)."""
    output_tokens: int = 300
    """A final answer's tokens: the sessions' answers are this long, and the model wait
    writes this many."""
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

    @property
    def wait_s(self) -> float:
        if self.model_wait_s is None:
            raise ValueError("the model wait is not set: pass model_wait_s or derive it with with_model_wait()")
        return self.model_wait_s

    @property
    def tool_wait_s(self) -> float:
        return self.wait_s if self.tool_call_wait_s is None else self.tool_call_wait_s

    def lines(self) -> list[str]:
        return [
            f"model wait {self.wait_s:.2f} s per model call: {self.model_wait_source or '--model-wait'}",
            f"  a call that only asks for tools ({self.tool_call_tokens} output tokens): {self.tool_wait_s:.2f} s",
            f"a final answer {self.output_tokens:,} output tokens (--output-tokens); the prompt's tokens are measured (section 3)",
            f"DynamoDB round trip {self.dynamodb_ms:g} ms from Lambda (--dynamodb-ms)",
            f"Task state overhead {self.task_overhead_ms:g} ms in the Express duration (--task-overhead-ms)",
            f"one Lambda vCPU = {self.cpu_per_local_core:g} x one local core; a function gets memory/1,769 MB of a vCPU",
            f"X-Ray: {self.lambda_segments_per_invocation} segments per traced Lambda invocation, 1 for API Gateway, 1 for Step Functions",
            f"stored text: a direct turn's message {self.message_chars:,} characters (--message-chars), every final"
            f" answer {self.reply_chars:,} ({self.output_tokens} output tokens x {self.chars_per_token} characters),"
            " English prose",
        ]


FALLBACK_MODEL_WAIT_S = 3.0


def with_model_wait(assumptions: Assumptions, model: ModelPrice | None, model_id: str) -> Assumptions:
    """The assumptions with the model wait set: --model-wait if given, else the time the model
    takes to write a call's output (time to first token + output tokens / output tokens a
    second, from its entry in prices.json), else a fallback the report names."""
    if assumptions.model_wait_s is not None:
        return dataclasses.replace(
            assumptions,
            model_wait_source=assumptions.model_wait_source or "--model-wait",
            tool_call_wait_s=assumptions.tool_call_wait_s or assumptions.model_wait_s,
        )
    if model is not None and model.output_tokens_per_second and model.first_token_seconds is not None:
        wait = model.first_token_seconds + assumptions.output_tokens / model.output_tokens_per_second
        tool_wait = model.first_token_seconds + assumptions.tool_call_tokens / model.output_tokens_per_second
        source = (
            f"{model.first_token_seconds:g} s to the first token + {assumptions.output_tokens:,} output tokens"
            f" / {model.output_tokens_per_second:g} tokens/s ({model.model_id};"
            f" {'' if model.speed_confirmed else 'third-party benchmark, unconfirmed: '}{model.speed_url});"
            " --model-wait overrides"
        )
        return dataclasses.replace(assumptions, model_wait_s=wait, tool_call_wait_s=tool_wait, model_wait_source=source)
    reason = "no price entry" if model is None else "no output speed"
    return dataclasses.replace(
        assumptions,
        model_wait_s=FALLBACK_MODEL_WAIT_S,
        tool_call_wait_s=FALLBACK_MODEL_WAIT_S,
        model_wait_source=f"assumed: {model_id} has {reason} in cost/prices.json (--model-wait overrides)",
    )


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
        waits += assumptions.wait_s * 1000
    return max(1, math.ceil(work + waits))


def express_billed_ms(profile: TurnProfile, facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> int:
    """The turn's Express duration, rounded up to the next 100 ms: the model waits (the
    state machine's own model calls: the last writes the answer, the others ask for tools),
    every function it runs, and each Task state's overhead."""
    streamed = profile.invocations.get("agent-stream", 0.0)
    own_model_calls = profile.model_calls - streamed
    answers = 0.0 if streamed else min(1.0, own_model_calls)
    ms = (answers * assumptions.wait_s + (own_model_calls - answers) * assumptions.tool_wait_s) * 1000
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
    "$context.connectionId": "L0SM9cOFvHcCIhw=",
    "$context.routeKey": "sendMessage",
}


def access_log_bytes(log_format: str) -> int:
    """One access log line of the stage's format, rendered with AWS-shaped values."""
    line = log_format
    for variable in sorted(ACCESS_LOG_SAMPLE, key=len, reverse=True):
        line = line.replace(variable, ACCESS_LOG_SAMPLE[variable])
    return len(line.encode()) + 1 if log_format else 0


def websocket_access_lines(profile: TurnProfile) -> float:
    """Access log lines of a WebSocket turn: one per route invocation, so the turn's message
    and its session's $connect and $disconnect, shared by the session's turns
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-logging.html).
    The frames the backend posts back are @connections calls, not route invocations."""
    return 1 + 2 / max(1, profile.session_turns)


def log_bytes_per_turn(profile: TurnProfile, facts: StackFacts) -> tuple[float, float, float]:
    """(Lambda application logs, Step Functions logs at the machine's level, access logs)."""
    sfn = profile.sfn_log_bytes.get((facts.turn_log_level, facts.turn_log_data and facts.turn_log_level == "ALL"))
    if sfn is None:
        sfn = profile.sfn_log_bytes.get((facts.turn_log_level, False), 0.0)
    if profile.kind == "websocket":
        access = websocket_access_lines(profile) * access_log_bytes(facts.websocket_access_log_format)
    else:
        access = access_log_bytes(facts.access_log_format)
    return profile.lambda_log_bytes, sfn, float(access)


# DynamoDB prices by table class: Standard-IA trades cheaper storage for dearer requests
# (https://aws.amazon.com/dynamodb/pricing/on-demand/; cost/prices.json).
TABLE_CLASS_PRICES = {
    "STANDARD": ("dynamodb.write_request_unit", "dynamodb.read_request_unit", "dynamodb.storage_gb_month"),
    "STANDARD_INFREQUENT_ACCESS": (
        "dynamodb.ia_write_request_unit",
        "dynamodb.ia_read_request_unit",
        "dynamodb.ia_storage_gb_month",
    ),
}


@dataclass(frozen=True)
class Regional:
    """Where a turn's costs land. Turns split evenly across the stack's regions (the
    assumption the capacity section makes too): a cost billed in the turn's region is the
    mean of the regions' rates; one billed in every replica is the sum of theirs."""

    prices: PriceTable
    regions: tuple[str, ...]

    def turn(self, key: str) -> float:
        """Mean rate over the regions a turn may land in."""
        return sum(self.prices.usd(key, r) for r in self.regions) / len(self.regions)

    def each(self, key: str, regions: Sequence[str] | None = None) -> float:
        """Sum of the rates of ``regions`` (all by default): a cost every one of them bills."""
        return sum(self.prices.usd(key, r) for r in (self.regions if regions is None else regions))

    def others(self, key: str) -> float:
        """What a turn pays in the replicas other than its own: each replica region receives
        the turns of the other regions, (n-1)/n of all turns, at its own rate."""
        n = len(self.regions)
        return self.each(key) * (n - 1) / n if n > 1 else 0.0

    def rates(self, key: str, scale: float = 1.0, regions: Sequence[str] | None = None) -> str:
        """The rates used, region by region, for the line's detail."""
        return "/".join(f"{self.prices.usd(key, r) * scale:g}" for r in (self.regions if regions is None else regions))


def lambda_duration_rate(facts: StackFacts, prices: PriceTable, key: str, region: str) -> float:
    """Invocations served by provisioned concurrency bill the provisioned duration rate
    instead of the on-demand one (https://aws.amazon.com/lambda/pricing/; cost/prices.json).
    Counted so for every invocation of a function with provisioned concurrency in the region:
    true while its environments are enough; above them (4. CAPACITY), the overflow bills the
    on-demand rate, about $0.01 more per 1M turns at prod's 128 MB and ~20 ms."""
    provisioned = any(r == region and k == key and n > 0 for r, k, n in facts.provisioned)
    return prices.usd("lambda.arm_provisioned_duration_gb_second" if provisioned else "lambda.arm_gb_second", region)


def turn_lines(profile: TurnProfile, facts: StackFacts, prices: PriceTable, assumptions: Assumptions) -> list[Line]:
    """Dollars per 1M turns of ``profile``, per part, each at the rates of the regions where
    it is billed."""
    at = Regional(prices, facts.regions)
    replicas = facts.table_regions - 1
    s = "" if replicas == 1 else "s"
    lines: list[Line] = []
    if profile.kind == "websocket":
        messages = 1 + profile.websocket_frames
        lines.append(
            Line(
                "API Gateway",
                "WebSocket messages",
                TURNS * messages * at.turn("apigw.ws_message"),
                f"{messages:g} a turn (1 in, {profile.websocket_frames:g} frames out)",
            )
        )
        minutes = profile.turn_interval_s / 60
        lines.append(
            Line(
                "API Gateway",
                "WebSocket connection minutes",
                TURNS * minutes * at.turn("apigw.ws_connection_minute"),
                f"{minutes:g} min a turn (a connection open for the session)",
            )
        )
    else:
        lines.append(
            Line(
                "API Gateway",
                "REST request",
                TURNS * at.turn("apigw.rest_request"),
                f"1 a turn at ${at.rates('apigw.rest_request', 1e6)} per M",
            )
        )
    billed = express_billed_ms(profile, facts, prices, assumptions)
    lines.append(Line("Step Functions", "Express request", TURNS * at.turn("sfn.express_request"), "1 a turn"))
    lines.append(
        Line(
            "Step Functions",
            "Express duration",
            TURNS * billed / 1000 * EXPRESS_BILLED_MB / 1024 * at.turn("sfn.express_gb_second"),
            f"{billed} ms billed x {EXPRESS_BILLED_MB} MB",
        )
    )
    invocations = dict(profile.invocations)
    if profile.kind != "websocket":
        invocations["authorizer"] = authorizer_calls_per_turn(facts, profile)
    for key, count in sorted(invocations.items()):
        memory = facts.memory_mb(key)
        ms = lambda_billed_ms(profile, key, memory, prices, assumptions)
        duration = sum(lambda_duration_rate(facts, prices, key, r) for r in facts.regions) / len(facts.regions)
        provisioned = [r for r in facts.regions if any(p[:2] == (r, key) and p[2] > 0 for p in facts.provisioned)]
        group = "Lambda (authorizer)" if key == "authorizer" else "Lambda"
        lines.append(
            Line(
                group,
                f"{key} ({memory} MB)",
                TURNS * count * (at.turn("lambda.request") + ms / 1000 * memory / 1024 * duration),
                f"{count:g} x {ms} ms"
                + (
                    f", at the provisioned-concurrency duration rate in {len(provisioned)} regions"
                    if provisioned
                    else ""
                ),
            )
        )
    wru, rru, storage = TABLE_CLASS_PRICES[facts.table_class]
    lines.append(
        Line(
            "DynamoDB writes",
            "writes where they happen",
            TURNS * profile.write_units * at.turn(wru),
            f"{profile.write_units:g} WRU a turn at ${at.rates(wru, 1e6)} per M (the turn's region)",
        )
    )
    lines.append(
        Line(
            "DynamoDB writes",
            f"replicated writes ({replicas} replica{s})",
            TURNS * profile.replica_write_units * at.others(wru),
            f"{profile.replica_write_units:g} rWRU x {replicas}, each in its replica's region",
        )
    )
    lines.append(
        Line(
            "DynamoDB writes",
            f"GSI1 writes ({facts.table_regions} regions)",
            TURNS * profile.gsi_write_units * at.each(wru),
            f"{profile.gsi_write_units:g} WRU in each region",
        )
    )
    ttl_units = profile.ttl_delete_units + profile.gsi_ttl_delete_units
    lines.append(
        Line(
            "DynamoDB writes",
            f"replicated TTL deletes ({replicas} replica{s})",
            TURNS * ttl_units * at.others(wru),
            f"{ttl_units:g} units x {replicas}, each in its replica's region",
        )
    )
    lines.append(
        Line(
            "DynamoDB reads",
            "reads",
            TURNS * profile.read_units * at.turn(rru),
            f"{profile.read_units:g} RRU a turn at ${at.rates(rru, 1e6)} per M",
        )
    )
    months = profile.table_byte_months / GIB
    lines.append(
        Line(
            "DynamoDB storage",
            f"table + GSI1 storage until TTL ({facts.ttl_days} d, {facts.table_regions} regions)",
            TURNS * (months + profile.gsi_byte_months / GIB) * at.each(storage),
            f"{profile.table_byte_months / 1024:,.0f} KB-months a turn at ${at.rates(storage)} per GB-month",
        )
    )
    lines.append(
        Line(
            "DynamoDB storage",
            f"PITR backup until TTL ({len(facts.pitr_regions)} regions)",
            TURNS * months * at.each("dynamodb.pitr_gb_month", facts.pitr_regions),
            f"on the table's size, in {', '.join(facts.pitr_regions) or 'no region'}",
        )
    )
    rate = sampling_rate(facts, assumptions)
    lines.append(
        Line("X-Ray", "traces recorded", TURNS * rate * at.turn("xray.trace_recorded"), f"1 trace a turn x {rate:.0%}")
    )
    function_logs, sfn_logs, access = log_bytes_per_turn(profile, facts)
    total_logs = function_logs + sfn_logs + access
    lines.append(
        Line(
            "CloudWatch Logs",
            "ingestion",
            TURNS * total_logs / GIB * at.turn("logs.ingest_gb"),
            f"{function_logs:,.0f} B functions + {sfn_logs:,.0f} B Step Functions ({facts.turn_log_level})"
            f" + {access:,.0f} B access log, at ${at.rates('logs.ingest_gb')} per GB",
        )
    )
    lines.append(
        Line(
            "transfer",
            "inter-region replication",
            TURNS * profile.written_bytes * replicas / GIB * at.turn("transfer.inter_region_gb"),
            f"{profile.written_bytes:,.0f} B x {replicas}, billed at the source region's ${at.rates('transfer.inter_region_gb')} per GB",
        )
    )
    return lines


def total(lines: Iterable[Line]) -> float:
    return sum(line.usd for line in lines)


# The metrics a REST method with detailed metrics emits (CacheHitCount and CacheMissCount
# too when the stage has a cache; ours has none):
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html
API_METHOD_METRICS = ("Count", "4XXError", "5XXError", "Latency", "IntegrationLatency")


def fixed_lines(
    facts: StackFacts,
    prices: PriceTable,
    assumptions: Assumptions,
    emf_metrics: int = 0,
    health_profile: TurnProfile | None = None,
) -> list[Line]:
    """Dollars a month that do not depend on turns."""
    p = prices.usd
    at = Regional(prices, facts.regions)
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
    if facts.detailed_metric_methods:
        count = facts.detailed_metric_methods * len(API_METHOD_METRICS)
        lines.append(
            Line(
                "CloudWatch",
                "API Gateway method-level metrics",
                count * p("cloudwatch.custom_metric"),
                f"{facts.detailed_metric_methods} methods (all regions) x {len(API_METHOD_METRICS)} metrics",
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
            at.turn("apigw.rest_request")
            + at.turn("lambda.request")
            + assumptions.dynamodb_ms / 1000 * memory / 1024 * at.turn("lambda.arm_gb_second")
            + rate * at.turn("xray.trace_recorded")
            + access / GIB * at.turn("logs.ingest_gb")
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
    if facts.kms_rotating_keys:
        days = facts.kms_rotation_days
        lines.append(
            Line(
                "KMS",
                "key rotation (the first two rotations of each key)",
                facts.kms_rotating_keys * 2 * p("kms.rotation_month"),
                f"{facts.kms_rotating_keys} keys rotated every {days} d: +$1 a key from day {days}, +$2 from day"
                f" {2 * days} on (shown)",
            )
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
                count * memory / 1024 * SECONDS_PER_MONTH * p("lambda.arm_provisioned_gb_second", region),
                f"{count} x {memory} MB x {HOURS_PER_MONTH} h at ${p('lambda.arm_provisioned_gb_second', region):.5g}"
                " per GB-s",
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
    tokens_per_call: float,
) -> list[Capacity]:
    """What ``rate`` turns a second of ``profile`` need in each region (an even split across
    the regions), beside AWS's default quotas and the stack's own limits; a model call is
    ``tokens_per_call`` tokens, prompt and answer."""
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
    tokens = r * profile.model_calls * tokens_per_call * 60
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
    model_tokens: Any = None
    """``cost.sessions.ModelTokens``: the sessions the token figures come from."""
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
    model_tokens: Any = None,
) -> Report:
    """``model_tokens`` (``cost.sessions.model_tokens``): the sessions whose turns price the
    model's tokens by kind of turn; without them (no price for the model) there are none."""
    model = prices.models.get(facts.llm_model)
    assumptions = with_model_wait(assumptions, model, facts.llm_model)
    per_turn = {kind: turn_lines(profile, facts, prices, assumptions) for kind, profile in profiles.items()}
    tokens = (
        {kind: model_tokens.kind_usd(kind) * TURNS for kind in profiles}
        if model is not None and model_tokens is not None
        else {}
    )
    per_call = (
        model_tokens.tokens_per_call()
        if model_tokens is not None
        else assumptions.input_tokens + assumptions.output_tokens
    )
    capacity = {}
    if rate is not None:
        capacity = {
            kind: capacity_lines(rate, profiles[kind], facts, prices, assumptions, per_call)
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
        model_tokens=model_tokens,
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


@dataclass(frozen=True)
class WhatIf:
    label: str
    totals: Mapping[str, float]
    """Total per 1M turns, by kind of turn."""
    work: Mapping[str, float]
    """The turn's work (every part but storage), by kind of turn."""


def _what_if_cases(report: Report) -> list[tuple[str, StackFacts, Assumptions, int | None]]:
    """(label, facts, assumptions, TTL days) of each config lever: X-Ray sampling at 5%, a 30-day
    TTL (``state.ttlDays``), PITR on the home replica only (``point_in_time_recovery`` is a
    setting of each replica of an ``aws.dynamodb.Table``:
    https://www.pulumi.com/registry/packages/aws/api-docs/dynamodb/table/#tablereplica), the
    Standard-IA table class (``table_class``), and the storage levers together."""
    f, a = report.facts, report.assumptions
    sampled = dataclasses.replace(a, xray_sampling=WHAT_IF_SAMPLING)
    home = dataclasses.replace(f, pitr_regions=f.pitr_regions[:1])
    ia = dataclasses.replace(f, table_class="STANDARD_INFREQUENT_ACCESS")
    ttl = WHAT_IF_TTL_DAYS if f.ttl_days > WHAT_IF_TTL_DAYS else None
    return [
        (f"X-Ray sampling rule at {WHAT_IF_SAMPLING:.0%}", f, sampled, None),
        (f"state.ttlDays {WHAT_IF_TTL_DAYS}", f, a, ttl),
        (f"PITR on {f.regions[0]} only", home, a, None),
        ("Standard-IA table class", ia, a, None),
        (f"ttlDays {WHAT_IF_TTL_DAYS} + PITR on {f.regions[0]} only", home, a, ttl),
    ]


def what_if(report: Report) -> tuple[list[WhatIf], list[str]]:
    """Totals per 1M turns with each config lever, and the labels of the levers that change
    nothing on this stack (it is already so): those are not printed as rows."""
    rows, same = [], []
    for label, facts, assumptions, ttl in _what_if_cases(report):
        totals, work = {}, {}
        for kind, profile in report.profiles.items():
            kind_facts = facts
            if ttl is not None:
                profile, kind_facts = with_ttl(profile, facts, ttl)
            lines = turn_lines(profile, kind_facts, report.prices, assumptions)
            totals[kind] = total(lines)
            work[kind] = totals[kind] - kept_cost(lines)
        if all(abs(totals[k] - total(report.per_turn[k])) < 0.005 for k in totals):
            same.append(label)
        else:
            rows.append(WhatIf(label, totals, work))
    return rows, same


def wait_that_meets(report: Report, kind: str, goal: float) -> float | None:
    """The longest model wait a call (in 0.1 s steps) at which the turn's work meets ``goal``,
    recomputed line by line; None if even no wait at all would not."""
    profile, assumptions = report.profiles[kind], report.assumptions
    wait = math.floor(assumptions.wait_s * 10) / 10
    while wait >= 0:
        waited = dataclasses.replace(assumptions, model_wait_s=wait)
        lines = turn_lines(profile, report.facts, report.prices, waited)
        if total(lines) - kept_cost(lines) <= goal:
            return wait
        wait = round(wait - 0.1, 1)
    return None


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


GOALS = {"direct": 15.0, "tool": 30.0}
GOAL_NAMES = {"direct": "direct", "tool": "one tool call"}


def _gap(report: Report, kind: str, goal: float, work: float, levers: Sequence[WhatIf]) -> list[str]:
    """Why the turn's work of ``kind`` is above ``goal``, and what would close it."""
    lines = [line for line in report.per_turn[kind] if line.group not in KEPT_GROUPS]
    biggest = sorted(lines, key=lambda line: line.usd, reverse=True)[:3]
    out = [
        f"    {GOAL_NAMES[kind]} is ${_money(work - goal)} above ${goal:g}; its largest parts: "
        + ", ".join(f"{line.group} / {line.part} ${_money(line.usd)} ({line.detail})" for line in biggest)
    ]
    closing = [w.label for w in levers if w.work.get(kind, math.inf) <= goal]
    out.append(
        "      config levers that close it: "
        + (", ".join(closing) if closing else "none of the what-ifs below")
        + " (they move storage, not the turn's work)" * (not closing)
    )
    a, model = report.assumptions, report.model
    wait = wait_that_meets(report, kind, goal)
    if wait is None:
        out.append("      not even a model wait of 0 s would: the parts without the model are above it")
        return out
    text = f"      what closes it: a model wait of at most {wait:.1f} s a call (now {a.wait_s:.2f} s: {a.model_wait_source})"
    if model is not None and model.output_tokens_per_second and model.first_token_seconds is not None:
        tokens = (wait - model.first_token_seconds) * model.output_tokens_per_second
        text += (
            f"; at this model's speed that is at most {max(0, math.floor(tokens)):,} output tokens a call"
            f" (now {a.output_tokens:,}), or a faster model"
            if tokens > 0
            else "; shorter answers cannot reach it at this model's time to first token: a faster model can"
        )
    out.append(text)
    return out


def goal_lines(report: Report) -> list[str]:
    """prod's goal, read on the turn's work (every part but storage) and with storage, and
    the levers: each what-if that differs from now, and what closes a goal that is not met."""
    f = report.facts
    out = [
        "  goal (prod): direct <= $15, one tool call <= $30 per 1M turns"
        f" (rates of {', '.join(f.regions)}; model wait {report.assumptions.wait_s:.2f} s a call)"
    ]
    kinds = [k for k in GOALS if k in report.per_turn]
    work = {k: total(report.per_turn[k]) - kept_cost(report.per_turn[k]) for k in kinds}
    whole = {k: total(report.per_turn[k]) for k in kinds}

    def verdict(value: float, goal: float) -> str:
        return f"${_money(value)} ({'met' if value <= goal else 'NOT met'})"

    out.append(
        "    the turn's work (every part but storage):  "
        + ", ".join(f"{GOAL_NAMES[k]} {verdict(work[k], GOALS[k])}" for k in kinds)
    )
    months = f.ttl_days / DAYS_PER_MONTH
    out.append(
        f"    with the turn kept {f.ttl_days} days (storage + PITR, {f.table_regions} regions):  "
        + ", ".join(f"{GOAL_NAMES[k]} {verdict(whole[k], GOALS[k])}" for k in kinds)
        + "; keeping costs "
        + " and ".join(f"${_money(kept_cost(report.per_turn[k]) / months)} ({GOAL_NAMES[k]})" for k in kinds)
        + " per 1M turns per month kept (state.ttlDays)"
    )
    levers, same = what_if(report)
    for kind in kinds:
        if work[kind] > GOALS[kind]:
            out += _gap(report, kind, GOALS[kind], work[kind], levers)
    out.append("  what would move it (per 1M turns with a config change, same measurement: total / the turn's work):")
    for w in levers:
        out.append(
            "    " + f"{w.label:<40}" + "  ".join(f"{k} {_money(v)} / {_money(w.work[k])}" for k, v in w.totals.items())
        )
    if same:
        out.append(f"    (the same as now, so not shown: {', '.join(same)})")
    return out


def regional_rates(report: Report) -> list[str]:
    """Which region's rate each price took: a region's own figure where prices.json has one,
    us-east-1's otherwise, and where that is for lack of a figure."""
    prices, regions = report.prices, report.facts.regions
    out = []
    for region in regions:
        own = sorted(k for k, e in prices.prices.items() if region in e.regions)
        missing = sorted(k for k, e in prices.prices.items() if region in e.unsourced_in)
        text = f"  {region}: " + (f"its own rates for {', '.join(own)}" if own else "us-east-1's rates")
        if missing:
            text += f"; no figure found, us-east-1's used: {', '.join(missing)}"
        out.append(text)
    return out


def render(report: Report) -> str:
    f, prices, a = report.facts, report.prices, report.assumptions
    out: list[str] = []
    out.append(
        f"agent-infra cost: stack {f.stack}, {len(f.regions)} regions ({', '.join(f.regions)}); "
        f"list prices of each region where the cost lands (cost/prices.json, read {prices.read}; {prices.region}'s"
        " where a region has no figure of its own)"
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
    if f.stack == "prod" and "direct" in report.per_turn:
        out += goal_lines(report)
    rows = before_after(report)
    if rows:
        out.append("")
        out.append(f"  before (issue 11) and now, $ per 1M turns, stack {f.stack}:")
        out += _table([("part", "before", "now: direct", "now: one tool call"), *rows], right=(2, 3))
    out.append("")
    out += token_section(report, kinds)
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
    out.append(f"  turns split evenly across the {len(f.regions)} regions (each region's rates weigh the same)")
    out.append("REGIONAL RATES used (cost/prices.json 'regions'):")
    out += regional_rates(report)
    unconfirmed = sorted(k for k, e in prices.prices.items() if not e.confirmed)
    regional = sorted(
        f"{k}@{r}" for k, e in prices.prices.items() for r, o in e.regions.items() if r in f.regions and not o.confirmed
    )
    out.append(
        f"PRICES not confirmed on a stored AWS page or Price List figure ({len(unconfirmed)} of {len(prices.prices)};"
        f" evidence in cost/prices.json): {', '.join(unconfirmed)}; regional figures: {', '.join(regional) or 'none'}"
    )
    return "\n".join(out) + "\n"


def token_section(report: Report, kinds: Sequence[str]) -> list[str]:
    """Section 3: the model's tokens per turn from the sessions (``cost.sessions``), with and
    without prompt caching, turn by turn as a session grows, and beside the infrastructure."""
    f, m, mt = report.facts, report.model, report.model_tokens
    if m is None or mt is None:
        return [f"3. MODEL TOKENS: {f.llm_model} has no price in cost/prices.json (add an entry under 'models')"]
    shape = mt.shape
    plain, tools = mt.mix()
    out = [
        f"3. MODEL TOKENS: a session of {shape.turns} turns ({plain} direct, {tools} with one tool call),"
        f" a turn every {shape.turn_interval_s:g} s, answers of {shape.answer_tokens} tokens;",
        f"  each call built by the turn's own prepare (earlier turns cut to llm.historyTokens {mt.history_tokens:,})"
        " and counted by the stand-in's prompt cache (cost/sessions.py)",
    ]

    def rate(value: float | None) -> str:
        return "-" if value is None else f"${value:g}"

    out.append(
        f"  {m.model_id} ({m.name}): {rate(m.input_per_million)} in, {rate(m.output_per_million)} out,"
        f" {rate(m.cache_read_per_million)} cache read, {rate(m.cache_write_per_million)} cache write per 1M tokens"
        f"{'' if m.confirmed else ' (not confirmed on a stored AWS page)'}; {m.url}"
    )
    rows = [
        ("tokens a turn, mean of the session", "calls", "input", "cache read", "cache write", "output", "$/1M turns")
    ]
    for cached, label in ((True, "with prompt caching"), (False, "without")):
        if not cached and not f.prompt_caching:
            continue
        turns = mt.session_turns(cached)
        n = len(turns)
        rows.append(
            (
                label if f.prompt_caching else "prompt caching off (llm.promptCaching)",
                f"{sum(t.calls for t in turns) / n:.1f}",
                f"{sum(t.input for t in turns) / n:,.0f}",
                f"{sum(t.cache_read for t in turns) / n:,.0f}",
                f"{sum(t.cache_write for t in turns) / n:,.0f}",
                f"{sum(t.output for t in turns) / n:,.0f}",
                _money(mt.per_turn_usd(cached) * TURNS),
            )
        )
    out += _table(rows, right=(1, 2, 3, 4, 5, 6))
    out.append(
        "  a checkpoint's minimum tokens counted over the whole prefix before it (Anthropic's rule; an example on"
        " AWS's page reads as 1,024 tokens between checkpoints): the first deployment's usage shows which"
    )
    if f.prompt_caching:
        share = mt.input_share()
        out.append(
            f"  billed input with prompt caching: {share:.0%} of without"
            f" (goal <= 40%: {'met' if share <= 0.4 else 'NOT met'}); the whole turn: "
            f"{mt.per_turn_usd(True) / mt.per_turn_usd(False):.0%}"
        )
    last = len(mt.cached.turns)
    t10, t_last = mt.turn_usd(10), mt.turn_usd(last)
    out.append(
        f"  as the session grows, $ per 1M turns: turn 1 {_money(mt.turn_usd(1) * TURNS)},"
        f" turn 10 {_money(t10 * TURNS)}, turn {last} {_money(t_last * TURNS)}"
        f" ({t_last / t10:.2f}x turn 10; goal <= 1.3x: {'met' if t_last <= 1.3 * t10 else 'NOT met'})"
    )
    late, early = mt.mean_usd(last - 9, last), mt.mean_usd(1, 10)
    out.append(
        f"    turns {last - 9}-{last}: {_money(late * TURNS)} a turn on average, {late / early:.2f}x turns 1-10"
        f" ({mt.tool_turns(last - 9, last)} and {mt.tool_turns(1, 10)} tool turns)"
    )
    recuts = [n for n in mt.recuts() if n > 1]
    if recuts:
        worst = max(mt.turn_usd(n) for n in recuts)
        out.append(
            f"    the history is cut at turns {', '.join(map(str, recuts))} (over llm.historyTokens, down to half):"
            f" such a turn writes its whole prompt to the cache again, up to {worst / t10:.2f}x turn 10"
        )
    out.append(
        "  per kind of turn, $ per 1M turns: "
        + ", ".join(f"{kind} {_money(report.tokens[kind])}" for kind in kinds if kind in report.tokens)
    )
    infra = (plain * total(report.per_turn["direct"]) + tools * total(report.per_turn["tool"])) / shape.turns
    model = mt.per_turn_usd(True) * TURNS
    out.append("  infrastructure and model side by side, the session's mix:")
    out += _table(
        [
            ("", "per 1M turns", f"per 1M sessions ({shape.turns} turns)"),
            ("infrastructure", _money(infra), _money(infra * shape.turns)),
            ("model tokens", _money(model), _money(model * shape.turns)),
            ("total", _money(infra + model), _money((infra + model) * shape.turns)),
        ],
        right=(1, 2),
    )
    return out


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
        "Measured on the local stack with the real handlers and state machine; each region's list prices"
        f" (read {report.prices.read}); model wait {report.assumptions.wait_s:.2f} s per model call."
        f" `make cost STACK={f.stack}` prints how each figure is made.",
    ]
    return "\n".join(out) + "\n"
