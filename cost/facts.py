"""The facts the cost depends on, read from the resources the program creates (under the
mocks, as ``make preview`` runs it): regions, every function's memory, provisioned
concurrency, alarms, dashboards, health checks, keys, secrets, the table's replicas and
PITR, the stage's log format and throttling, the authorizer's cache TTL, an X-Ray sampling
rule if there is one. A function is known by its key, read back from its log group's name
(``components.naming``), the name the program gives it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components import naming


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


def function_key(stack: str, function: Any) -> str:
    """A function's key (``agent-record``, ``tool-calculator``, ...): the last part of the log
    group the program names for it (``naming.function_log_group``)."""
    log_group = function.inputs["loggingConfig"]["logGroup"]
    key = naming.function_key_of_log_group(stack, log_group)
    if key is None:
        raise ValueError(f"function {function.name} logs to {log_group}, not a log group of stack {stack}")
    return key


def facts_from_resources(stack: str, resources: Sequence[Any], config: Mapping[str, Any] | None = None) -> StackFacts:
    """Everything the cost depends on, read from the resources the program created
    (``local.pulumi_mocks.RecordedResource``: ``typ``, ``name``, ``inputs``, ``state``)."""
    config = config or {}
    functions, names, environments = [], {}, {}
    for r in resources:
        if r.typ != "aws:lambda/function:Function":
            continue
        key = function_key(stack, r)
        environments.setdefault(key, (r.inputs.get("environment") or {}).get("variables") or {})
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
    if "agent-record" not in environments:
        raise ValueError("the program creates no function agent-record")
    record_env = environments["agent-record"]
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
