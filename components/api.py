"""The APIs of one region: REST (regional endpoint) and WebSocket.

REST: the whole API is one OpenAPI document (``components.openapi``): JWT authorizer on
every route but health, API keys and a usage plan with a daily quota, request validators
with models generated from the handlers' own structs, and the chat turn as a direct
Step Functions ``StartSyncExecution`` integration. The stage has JSON access logs with the
request id and caller, X-Ray, execution logging at the configured level without data
traces, and throttling from the config; its deployment's triggers hash the document, so
any change to a route, an integration or a model redeploys it.

WebSocket: ``$connect`` (the same JWT code, token in ``?token=``), ``$disconnect``,
``sendMessage`` and ``$default`` on the connection function; stage throttling from the
config; the deployment's triggers hash the routes and integrations.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming, policies
from components.config import ApiConfig, ObservabilityConfig
from components.context import RegionContext
from components.openapi import HEALTH_BURST_LIMIT, HEALTH_RATE_LIMIT, RestApiTargets, rest_api_document

HEALTH_METHOD_PATH = "~1v1~1health/GET"

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "caller": "$context.authorizer.userId",
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "resource": "$context.resourcePath",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "error": "$context.error.message",
        "xrayTraceId": "$context.xrayTraceId",
        "apiKeyId": "$context.identity.apiKeyId",
    },
    separators=(",", ":"),
)
WEBSOCKET_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "connectionId": "$context.connectionId",
        "route": "$context.routeKey",
        "caller": "$context.authorizer.userId",
        "status": "$context.status",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)


def create_websocket_api(name: str, context: RegionContext, opts: pulumi.ResourceOptions) -> aws.apigatewayv2.Api:
    """The WebSocket API alone, created before the functions so the agent-step can be told
    where to stream; its routes come with :class:`AgentApi`."""
    return aws.apigatewayv2.Api(
        f"{name}-websocket",
        region=context.region,
        name=naming.stack_resource_name(context.stack, "ws"),
        protocol_type="WEBSOCKET",
        route_selection_expression="$request.body.action",
        opts=opts,
    )


@dataclass(frozen=True, kw_only=True)
class AgentApiArgs:
    """Inputs of :class:`AgentApi`."""

    context: RegionContext
    functions: Mapping[str, aws.lambda_.Function]
    router_invoke_target: pulumi.Input[str]
    """The router's function or ``live`` alias ARN (what API Gateway invokes)."""
    turn_arn: pulumi.Input[str]
    websocket_api: aws.apigatewayv2.Api
    client_keys: Mapping[str, pulumi.Input[str]]
    """Each API client's key value (the same in every region), by client name."""
    kms_key_arn: pulumi.Input[str]
    """The region's key, which encrypts the access-log groups."""
    api: ApiConfig
    """Throttling, the daily quota, execution logging and whether this stack sets the
    account's CloudWatch role."""
    observability: ObservabilityConfig
    """``logRetentionDays`` of the access-log groups."""


def account_logging(
    name: str, *, partition: str, regions: list[str], opts: pulumi.ResourceOptions
) -> list[aws.apigateway.Account]:
    """API Gateway's account-wide CloudWatch role, set in each of ``regions`` (one
    ``aws.apigateway.Account`` per region, ``<name>-account`` or, for several,
    ``<name>-account-<region>``): the program's stack with ``api.manageAccountLogging``, or
    the bootstrap for every region of its account's stacks (docs/deploy.md, "API Gateway's account
    logging")."""
    role = aws.iam.Role(
        f"{name}-cloudwatch-role",
        description=f"API Gateway execution logs in {', '.join(regions)}",
        assume_role_policy=json.dumps(policies.api_gateway_assume_role_policy()),
        opts=opts,
    )
    # The managed policy AWS documents for this role: API Gateway writes REST execution
    # logs to API-Gateway-Execution-Logs_{api}/{stage}, WebSocket logs to
    # /aws/apigateway/{api}/{stage} and also /aws/apigateway/welcome, creating the groups
    # itself (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html,
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonAPIGatewayPushToCloudWatchLogs.html).
    attachment = aws.iam.RolePolicyAttachment(
        f"{name}-cloudwatch-policy",
        role=role.name,
        policy_arn=naming.api_gateway_logging_policy_arn(partition),
        opts=opts,
    )
    # The account setting checks the role's permissions when it is set: it must wait for
    # the attachment, not only the role (the Terraform provider retries "The role ARN does
    # not have required permissions" for the same reason).
    after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role, attachment]))
    return [
        aws.apigateway.Account(
            f"{name}-account" if len(regions) == 1 else f"{name}-account-{region}",
            region=region,
            cloudwatch_role_arn=role.arn,
            opts=after,
        )
        for region in regions
    ]


class AgentApi(pulumi.ComponentResource):
    """REST and WebSocket APIs of one region."""

    rest_api_id: pulumi.Output[str]
    """Id of the REST API."""
    rest_endpoint: pulumi.Output[str]
    """Base URL of the REST stage on its execute-api host."""
    rest_stage_name: pulumi.Output[str]
    """Name of the REST stage (an Output: what depends on it waits for the stage)."""
    websocket_stage_name: pulumi.Output[str]
    """Name of the WebSocket stage."""
    websocket_endpoint: pulumi.Output[str]
    """wss:// URL of the WebSocket stage."""
    openapi: pulumi.Output[str]
    """The REST API's OpenAPI document, as deployed."""

    def __init__(self, name: str, args: AgentApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:api:AgentApi", name, None, opts)
        self._name, self._args = name, args
        self._child = pulumi.ResourceOptions(parent=self)
        self._create_logging_role()
        self._create_rest_api()
        self._create_websocket_routes()
        self.register_outputs(
            {
                "restApiId": self.rest_api_id,
                "restEndpoint": self.rest_endpoint,
                "websocketEndpoint": self.websocket_endpoint,
            }
        )

    def _create_logging_role(self) -> None:
        """API Gateway writes execution logs through one role per account and region, set
        on the account (``aws.apigateway.Account``). Only a stack with
        ``api.manageAccountLogging`` sets it; see docs/deploy.md for choosing that stack."""
        args, name, child = self._args, self._name, self._child
        context = args.context
        self._logging_ready: list[pulumi.Resource] = []
        if not args.api.manage_account_logging:
            return
        self._logging_ready = account_logging(name, partition=context.partition, regions=[context.region], opts=child)

    # -- REST -------------------------------------------------------------------------------

    def _create_rest_api(self) -> None:
        """The REST API in three parts: the API (its document and who may invoke what), its
        stage (deployment, access logs, throttling), and the usage plan with the clients' keys."""
        context = self._args.context
        rest, body = self._rest_api()
        stage = self._rest_stage(rest, body)
        self._usage_plan(rest, stage)
        self.rest_api_id = rest.id
        self.rest_stage_name = stage.stage_name
        self.rest_endpoint = pulumi.Output.all(rest.id, stage.stage_name).apply(
            lambda v: f"https://{naming.execute_api_host(v[0], context.region, context.partition)}/{v[1]}"
        )
        self.openapi = body

    def _rest_api(self) -> tuple[aws.apigateway.RestApi, pulumi.Output[str]]:
        """The API from its OpenAPI document, the role its turn integration starts the turn
        machine with, and the functions' permissions to be invoked by it."""
        args, name, child = self._args, self._name, self._child
        context = args.context
        fns = args.functions
        turn_role = aws.iam.Role(
            f"{name}-turn-integration-role",
            description=f"API Gateway starts chat turns in {context.region}",
            assume_role_policy=json.dumps(policies.api_gateway_assume_role_policy()),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-turn-integration-policy",
            role=turn_role.id,
            policy=pulumi.Output.from_input(args.turn_arn).apply(
                lambda arn: json.dumps(
                    policies.policy(policies.statement("StartTurns", ["states:StartSyncExecution"], [arn]))
                )
            ),
            opts=child,
        )
        document = pulumi.Output.all(
            router=args.router_invoke_target,
            approval=fns["approval"].arn,
            health=fns["health"].arn,
            authorizer=fns["authorizer"].arn,
            turn=args.turn_arn,
            turn_role=turn_role.arn,
        ).apply(
            lambda v: rest_api_document(
                RestApiTargets(
                    region=context.region,
                    partition=context.partition,
                    router_invoke_arn=naming.lambda_invoke_arn(context.partition, context.region, v["router"]),
                    approval_invoke_arn=naming.lambda_invoke_arn(context.partition, context.region, v["approval"]),
                    health_invoke_arn=naming.lambda_invoke_arn(context.partition, context.region, v["health"]),
                    authorizer_invoke_arn=naming.lambda_invoke_arn(context.partition, context.region, v["authorizer"]),
                    turn_state_machine_arn=v["turn"],
                    turn_role_arn=v["turn_role"],
                ),
                title=naming.rest_api_name(context.stack),
            )
        )
        body = document.apply(lambda d: json.dumps(d, sort_keys=True))
        rest = aws.apigateway.RestApi(
            f"{name}-rest",
            region=context.region,
            name=naming.rest_api_name(context.stack),
            body=body,
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            api_key_source="HEADER",
            opts=child,
        )
        for key, function in (
            ("router", None),
            ("approval", fns["approval"]),
            ("health", fns["health"]),
            ("authorizer", fns["authorizer"]),
        ):
            target = args.router_invoke_target if function is None else function.arn
            source = rest.execution_arn.apply(
                lambda arn, k=key: f"{arn}/authorizers/*" if k == "authorizer" else f"{arn}/*/*/*"
            )
            aws.lambda_.Permission(
                f"{name}-invoke-{key}",
                region=context.region,
                action="lambda:InvokeFunction",
                function=target,
                principal="apigateway.amazonaws.com",
                source_arn=source,
                opts=child,
            )
        return rest, body

    def _rest_stage(self, rest: aws.apigateway.RestApi, body: pulumi.Output[str]) -> aws.apigateway.Stage:
        """A deployment of the document (a new one when it changes), the stage with its access
        logs and X-Ray, and the stage's and the health check's method settings."""
        args, name, child = self._args, self._name, self._child
        context = args.context
        deployment = aws.apigateway.Deployment(
            f"{name}-rest-deployment",
            region=context.region,
            rest_api=rest.id,
            triggers={"document": body.apply(lambda b: hashlib.sha256(b.encode()).hexdigest())},
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(delete_before_replace=False)),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-rest-access-logs",
            region=context.region,
            name=naming.function_log_group(context.stack, "api-access"),
            retention_in_days=args.observability.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        stage = aws.apigateway.Stage(
            f"{name}-rest-stage",
            region=context.region,
            rest_api=rest.id,
            deployment=deployment.id,
            stage_name=naming.STAGE,
            xray_tracing_enabled=True,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn, format=ACCESS_LOG_FORMAT
            ),
            # Logging needs the account's CloudWatch role in place first.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=self._logging_ready)),
        )
        aws.apigateway.MethodSettings(
            f"{name}-rest-method-settings",
            region=context.region,
            rest_api=rest.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                logging_level=args.api.execution_log_level,
                data_trace_enabled=False,
                # Off: detailed metrics are per method, billed as custom metrics (5 a method a
                # region, $31.50 a month in prod: make cost), and nothing reads them; the alarms
                # and dashboards use the API- and stage-level metrics, which are free and sent
                # without them ("Your account is charged for accessing method-level CloudWatch
                # metrics, but not the API-level or stage-level metrics",
                # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-stages.html).
                metrics_enabled=False,
                throttling_rate_limit=args.api.rate_limit,
                throttling_burst_limit=args.api.burst_limit,
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=self._logging_ready)),
        )
        aws.apigateway.MethodSettings(
            f"{name}-rest-health-settings",
            region=context.region,
            rest_api=rest.id,
            stage_name=stage.stage_name,
            # Method settings are keyed by the resource path with every "/" escaped as "~1"
            # (https://docs.aws.amazon.com/apigateway/latest/api/API_UpdateStage.html, patch
            # paths); the provider passes method_path through as given
            # (https://github.com/hashicorp/terraform-provider-aws/issues/9738).
            method_path=HEALTH_METHOD_PATH,
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                logging_level=args.api.execution_log_level,
                data_trace_enabled=False,
                metrics_enabled=False,  # as the stage's: see above
                throttling_rate_limit=HEALTH_RATE_LIMIT,
                throttling_burst_limit=HEALTH_BURST_LIMIT,
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=self._logging_ready)),
        )
        return stage

    def _usage_plan(self, rest: aws.apigateway.RestApi, stage: aws.apigateway.Stage) -> None:
        """The usage plan's throttle and daily quota, and one API key per client in it."""
        args, name, child = self._args, self._name, self._child
        context = args.context
        plan = aws.apigateway.UsagePlan(
            f"{name}-usage-plan",
            region=context.region,
            name=naming.stack_resource_name(context.stack),
            api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=rest.id, stage=stage.stage_name)],
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                rate_limit=args.api.rate_limit, burst_limit=args.api.burst_limit
            ),
            quota_settings=aws.apigateway.UsagePlanQuotaSettingsArgs(limit=args.api.quota_per_day, period="DAY"),
            opts=child,
        )
        for client, value in args.client_keys.items():
            key = aws.apigateway.ApiKey(
                f"{name}-key-{client}",
                region=context.region,
                name=naming.stack_resource_name(context.stack, client),
                description=f"API key of client {client}",
                value=value,
                opts=child,
            )
            aws.apigateway.UsagePlanKey(
                f"{name}-plan-key-{client}",
                region=context.region,
                key_id=key.id,
                key_type="API_KEY",
                usage_plan_id=plan.id,
                opts=child,
            )

    # -- WebSocket -------------------------------------------------------------------------

    def _create_websocket_routes(self) -> None:
        args, name, child = self._args, self._name, self._child
        context = args.context
        api = args.websocket_api
        connection, authorizer_fn = args.functions["connection"], args.functions["authorizer"]
        authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-ws-authorizer",
            region=context.region,
            api_id=api.id,
            authorizer_type="REQUEST",
            authorizer_uri=authorizer_fn.invoke_arn,
            identity_sources=["route.request.querystring.token"],
            name="jwt",
            opts=child,
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-ws-integration",
            region=context.region,
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",  # Lambda is always invoked with POST
            integration_uri=connection.invoke_arn,
            content_handling_strategy="CONVERT_TO_TEXT",
            opts=child,
        )
        routes = []
        for route_key in ("$connect", "$disconnect", "sendMessage", "$default"):
            connect = route_key == "$connect"
            # Messages are two-way: the connection function's answer (accepted, or an error
            # frame naming the field) goes back to the client through a route response
            # (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html).
            two_way = route_key in ("sendMessage", "$default")
            route = aws.apigatewayv2.Route(
                f"{name}-ws-route-{route_key.strip('$').lower()}",
                region=context.region,
                api_id=api.id,
                route_key=route_key,
                target=integration.id.apply(lambda i: f"integrations/{i}"),
                authorization_type="CUSTOM" if connect else "NONE",
                authorizer_id=authorizer.id if connect else None,
                route_response_selection_expression="$default" if two_way else None,
                opts=child,
            )
            routes.append(route)
            if two_way:
                routes.append(
                    aws.apigatewayv2.RouteResponse(
                        f"{name}-ws-route-{route_key.strip('$').lower()}-response",
                        region=context.region,
                        api_id=api.id,
                        route_id=route.id,
                        route_response_key="$default",
                        opts=child,
                    )
                )
        for key, function, source in (
            ("ws-connection", connection, api.execution_arn.apply(lambda arn: f"{arn}/*/*")),
            ("ws-authorizer", authorizer_fn, api.execution_arn.apply(lambda arn: f"{arn}/authorizers/*")),
        ):
            aws.lambda_.Permission(
                f"{name}-invoke-{key}",
                region=context.region,
                action="lambda:InvokeFunction",
                function=function.arn,
                principal="apigateway.amazonaws.com",
                source_arn=source,
                opts=child,
            )
        route_resources = [r for r in routes if isinstance(r, aws.apigatewayv2.Route)]
        fingerprint = pulumi.Output.all(
            integration_uri=integration.integration_uri,
            authorizer_uri=authorizer.authorizer_uri,
            route_keys=[r.route_key for r in route_resources],
            targets=[r.target for r in route_resources],
        ).apply(
            # Hashed as one list in this order, as deployed stacks were: another order would
            # redeploy every stage once for nothing.
            lambda v: hashlib.sha256(
                json.dumps([v["integration_uri"], v["authorizer_uri"], *v["route_keys"], *v["targets"]]).encode()
            ).hexdigest()
        )
        deployment = aws.apigatewayv2.Deployment(
            f"{name}-ws-deployment",
            region=context.region,
            api_id=api.id,
            triggers={"routes": fingerprint},
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=routes)),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-ws-access-logs",
            region=context.region,
            name=naming.function_log_group(context.stack, "ws-access"),
            retention_in_days=args.observability.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        ws_stage = aws.apigatewayv2.Stage(
            f"{name}-ws-stage",
            region=context.region,
            api_id=api.id,
            name=naming.STAGE,
            deployment_id=deployment.id,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_rate_limit=args.api.rate_limit,
                throttling_burst_limit=args.api.burst_limit,
                logging_level=args.api.execution_log_level,
                data_trace_enabled=False,
            ),
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn, format=WEBSOCKET_ACCESS_LOG_FORMAT
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=self._logging_ready)),
        )
        self.websocket_stage_name = ws_stage.name
        self.websocket_endpoint = api.id.apply(
            lambda api_id: f"wss://{naming.execute_api_host(api_id, context.region, context.partition)}/{naming.STAGE}"
        )
