"""Observability: per-region alarms and a dashboard, and the stack's monthly budget.

Per region (:class:`RegionObservability`): an SNS topic for alarms (alarms publish to a
topic in their own region), an email subscription when ``observability.alarmEmail`` is
set, alarms on the errors of the router and of every function a turn runs (each named
``<function>-errors`` for the function it watches), on failed turns and tasks, on the REST
API's 5xx responses and on anything in the failure queue, and a dashboard of the same
metrics. Once per stack (:class:`StackBudget`): a monthly cost budget with an alert
at each of ``budget.thresholds`` percent (actual spend), plus a forecast alert at 100%.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming
from components.config import BudgetConfig, ObservabilityConfig
from components.context import RegionContext
from handlers.shared.tooling import METRIC_NAMESPACE as TOOLS_NAMESPACE

# X-Ray traces a request when the service in front decides to, by the account's sampling
# rules: API Gateway for the REST API
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-configuring-xray-sampling-rules.html:
# service name "{api-name}/{stage}", type AWS::ApiGateway::Stage) and Step Functions for an
# execution it starts itself (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-xray-tracing.html).
# Functions trace in PassThrough mode: they follow the caller's decision, so one rate governs
# a turn from edge to tools. X-Ray bills traces recorded (https://aws.amazon.com/xray/pricing/).
RULE_PRIORITY = 1000
RULE_NAME_MAX = 32


def sampling_rule_name(stack: str, kind: str) -> str:
    """``agent-infra-<stack>-<kind>``, shortened with a hash past X-Ray's 32 characters."""
    import hashlib

    name = naming.stack_resource_name(stack, kind)
    if len(name) <= RULE_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"ai-{stack[: RULE_NAME_MAX - len(kind) - 12]}-{digest}-{kind}"


@dataclass(frozen=True, kw_only=True)
class RegionObservabilityArgs:
    """Inputs of :class:`RegionObservability`."""

    context: RegionContext
    observability: ObservabilityConfig
    """``alarmEmail`` (subscribed to the topic) and ``traceSampleRate``."""
    router_name: pulumi.Input[str]
    turn_function_names: Mapping[str, pulumi.Input[str]]
    """Every function a turn runs, by function key (``agent-prepare``, ``tool-calculator``,
    ...): each gets an errors alarm named for it."""
    turn_arn: pulumi.Input[str]
    task_arn: pulumi.Input[str]
    rest_stage: pulumi.Input[str]
    dlq_name: pulumi.Input[str]
    llm_model: str
    """The model id: the dimension of the LLM token metrics (``handlers.shared.llm.record_usage``)."""
    kms_key_arn: pulumi.Input[str]
    """The region's key, which encrypts the alarm topic (its key policy lets CloudWatch
    alarms publish)."""
    cached_tools: Sequence[str] = ()
    """Tools whose results are reused (``TOOL.cache``): the dashboard shows their hit ratio."""


class RegionObservability(pulumi.ComponentResource):
    """Alarms and a dashboard for one region."""

    topic_arn: pulumi.Output[str]
    """The region's alarm topic."""
    dashboard_url: str
    """The region's dashboard in the CloudWatch console."""
    alarm_names: list[pulumi.Output[str]]
    """Every alarm of the region."""

    def __init__(self, name: str, args: RegionObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:observability:RegionObservability", name, None, opts)
        context = args.context
        child = pulumi.ResourceOptions(parent=self)
        rest_api_name = naming.rest_api_name(context.stack)
        alarm_email = args.observability.alarm_email
        topic = aws.sns.Topic(
            f"{name}-alarms",
            region=context.region,
            name=naming.stack_resource_name(context.stack, "alarms"),
            kms_master_key_id=args.kms_key_arn,
            opts=child,
        )
        if alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarm-email",
                region=context.region,
                topic=topic.arn,
                protocol="email",
                endpoint=alarm_email,
                opts=child,
            )
        functions = {"router": args.router_name, **args.turn_function_names}
        alarms = [
            *(
                (f"{key}-errors", "AWS/Lambda", "Errors", {"FunctionName": fn}, 5, "Sum")
                for key, fn in functions.items()
            ),
            ("turns-failed", "AWS/States", "ExecutionsFailed", {"StateMachineArn": args.turn_arn}, 5, "Sum"),
            ("tasks-failed", "AWS/States", "ExecutionsFailed", {"StateMachineArn": args.task_arn}, 1, "Sum"),
            (
                "api-5xx",
                "AWS/ApiGateway",
                "5XXError",
                {"ApiName": rest_api_name, "Stage": args.rest_stage},
                10,
                "Sum",
            ),
            (
                "dlq-not-empty",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": args.dlq_name},
                0,
                "Maximum",
            ),
        ]
        self.alarm_names = []
        for key, namespace, metric, dimensions, threshold, statistic in alarms:
            alarm = aws.cloudwatch.MetricAlarm(
                f"{name}-{key}",
                region=context.region,
                name=naming.stack_resource_name(context.stack, key),
                namespace=namespace,
                metric_name=metric,
                dimensions=dimensions,
                statistic=statistic,
                period=300,
                evaluation_periods=1,
                threshold=threshold,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[topic.arn],
                ok_actions=[topic.arn],
                opts=child,
            )
            self.alarm_names.append(alarm.name)
        body = pulumi.Output.all(
            functions=list(functions.values()),
            turn=args.turn_arn,
            task=args.task_arn,
            stage=args.rest_stage,
            dlq=args.dlq_name,
        ).apply(
            lambda v: json.dumps(
                _with_tool_cache_widget(
                    _dashboard(context.region, rest_api_name, args.llm_model, **v), context.region, args.cached_tools
                )
            )
        )
        aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            region=context.region,
            dashboard_name=naming.stack_resource_name(context.stack, context.region),
            dashboard_body=body,
            opts=child,
        )
        self._create_sampling_rules(name, args, child)
        self.topic_arn = topic.arn
        self.dashboard_url = (
            f"https://{context.region}.console.aws.amazon.com/cloudwatch/home?region={context.region}"
            f"#dashboards/dashboard/{naming.stack_resource_name(context.stack, context.region)}"
        )
        self.register_outputs({"topicArn": self.topic_arn})

    @staticmethod
    def _create_sampling_rules(name: str, args: RegionObservabilityArgs, child: pulumi.ResourceOptions) -> None:
        """One X-Ray sampling rule for the REST API and one for the state machines, at the configured rate."""
        context = args.context
        for kind, service_type, service_name in (
            ("api", "AWS::ApiGateway::Stage", f"{naming.rest_api_name(context.stack)}/*"),
            ("states", "AWS::StepFunctions::StateMachine", naming.stack_resource_name(context.stack, "*")),
        ):
            aws.xray.SamplingRule(
                f"{name}-sampling-{kind}",
                region=context.region,
                rule_name=sampling_rule_name(context.stack, kind),
                priority=RULE_PRIORITY,
                version=1,
                # No reservoir: the rate alone decides, so the bill follows it (a reservoir of 1
                # a second would trace 86,400 requests a day per region whatever the rate).
                reservoir_size=0,
                fixed_rate=args.observability.trace_sample_rate,
                host="*",
                http_method="*",
                url_path="*",
                resource_arn="*",
                service_name=service_name,
                service_type=service_type,
                opts=child,
            )


def _dashboard(
    region: str, api: str, model: str, functions: list[str], turn: str, task: str, stage: str, dlq: str
) -> dict:
    def widget(title: str, metrics: list[list], x: int, y: int, **extra: object) -> dict:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": region, "metrics": metrics, "stat": "Sum", "period": 60, **extra},
        }

    def llm(metric: str, **options: object) -> list:
        # A metric is its namespace, name and every dimension it was written with: the
        # token metrics carry the model (EMF Dimensions [["Model"]]).
        return ["AgentInfra/LLM", metric, "Model", model, *([options] if options else [])]

    return {
        "widgets": [
            widget(
                "Chat turns and tasks",
                [
                    ["AWS/States", m, "StateMachineArn", arn]
                    for arn in (turn, task)
                    for m in ("ExecutionsSucceeded", "ExecutionsFailed")
                ],
                0,
                0,
            ),
            widget(
                "API",
                [["AWS/ApiGateway", m, "ApiName", api, "Stage", stage] for m in ("Count", "4XXError", "5XXError")],
                12,
                0,
            ),
            widget(
                "Functions",
                [
                    ["AWS/Lambda", m, "FunctionName", f]
                    for f in functions
                    for m in ("Invocations", "Errors", "Throttles")
                ],
                0,
                6,
            ),
            widget(
                "LLM tokens and failed async invocations",
                [
                    llm("InputTokens"),
                    llm("CacheReadInputTokens"),
                    llm("CacheWriteInputTokens"),
                    llm("OutputTokens"),
                    ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq],
                ],
                12,
                6,
            ),
            # Metric math: the share of the prompt read from the cache. An expression and the
            # hidden metrics it reads, by id
            # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).
            widget(
                "Prompt cache hit ratio (% of input tokens read from the cache)",
                [
                    [{"expression": "100 * r / (r + w + i)", "label": "hit %", "id": "ratio"}],
                    llm("CacheReadInputTokens", id="r", visible=False),
                    llm("CacheWriteInputTokens", id="w", visible=False),
                    llm("InputTokens", id="i", visible=False),
                ],
                0,
                12,
                yAxis={"left": {"min": 0, "max": 100}},
            ),
        ]
    }


def _with_tool_cache_widget(dashboard: dict, region: str, tools: Sequence[str]) -> dict:
    """The dashboard with, below its widgets, the result cache's hit ratio of each tool that
    caches: hits / (hits + misses), in percent, by metric math over the EMF counts (bypasses
    are requests the cache may not answer, left out of the ratio). A dashboard's metric
    array takes ``{"expression", "id"}`` entries and hides the inputs with
    ``{"visible": false}``
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html)."""
    if not tools:
        return dashboard
    metrics: list[list] = []
    for index, tool in enumerate(tools):
        for name, prefix in (("CacheHit", "h"), ("CacheMiss", "m")):
            metrics.append([TOOLS_NAMESPACE, name, "Tool", tool, {"id": f"{prefix}{index}", "visible": False}])
        metrics.append([{"expression": f"100 * h{index} / (h{index} + m{index})", "label": tool, "id": f"r{index}"}])
    bottom = max((w["y"] + w["height"] for w in dashboard["widgets"]), default=0)
    widget = {
        "type": "metric",
        "x": 0,
        "y": bottom,
        "width": 12,
        "height": 6,
        "properties": {
            "title": "Tool result cache hit ratio (%)",
            "region": region,
            "metrics": metrics,
            "stat": "Sum",
            "period": 300,
            "yAxis": {"left": {"min": 0, "max": 100}},
        },
    }
    return {**dashboard, "widgets": [*dashboard["widgets"], widget]}


@dataclass(frozen=True, kw_only=True)
class StackBudgetArgs:
    """Inputs of :class:`StackBudget`."""

    stack: str
    budget: BudgetConfig
    observability: ObservabilityConfig
    """``alarmEmail``: the alerts' subscriber."""


class StackBudget(pulumi.ComponentResource):
    """The stack's monthly cost budget (Budgets is global)."""

    budget_name: pulumi.Output[str]
    """Name of the budget."""

    def __init__(self, name: str, args: StackBudgetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:observability:StackBudget", name, None, opts)
        alarm_email = args.observability.alarm_email
        subscribers = [alarm_email] if alarm_email else []
        notifications = [
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                threshold=percent,
                threshold_type="PERCENTAGE",
                notification_type="ACTUAL",
                subscriber_email_addresses=subscribers,
            )
            for percent in args.budget.thresholds
        ]
        notifications.append(
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                threshold=100,
                threshold_type="PERCENTAGE",
                notification_type="FORECASTED",
                subscriber_email_addresses=subscribers,
            )
        )
        budget = aws.budgets.Budget(
            f"{name}-monthly",
            name=naming.stack_resource_name(args.stack),
            budget_type="COST",
            limit_amount=f"{args.budget.monthly_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            # The provider tags every resource with stack=<stack>; activate it as a cost
            # allocation tag for the filter to count.
            cost_filters=[aws.budgets.BudgetCostFilterArgs(name="TagKeyValue", values=[f"user:stack${args.stack}"])],
            notifications=notifications if subscribers else [],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.budget_name = budget.name
        self.register_outputs({"budgetName": self.budget_name})
