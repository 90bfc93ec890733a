"""The failover drill on AWS: an AWS FIS experiment per region that takes the region out.

Only with ``faultInjection.enabled``. Each region gets an experiment template whose two
actions start together and last ``durationMinutes``:

- ``aws:dynamodb:global-table-pause-replication`` on the region's replica (target key
  ``Tables``, resource type ``aws:dynamodb:global-table``): FIS adds time-limited deny
  statements to the table's (and its stream's) resource policy so the replica neither sends
  nor receives replication; run it in the region whose replica is isolated
  (https://docs.aws.amazon.com/fis/latest/userguide/fis-actions-reference.html#global-table-pause-replication,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/globaltables-CoreConcepts.html#fault-injection-testing).
  A replica left unauthorised for more than 20 hours becomes a single-Region table for good
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/globaltables-security.html):
  the duration is capped at an hour.
- ``aws:lambda:invocation-error`` on every function of the stack in the region (target key
  ``Functions``, by the ``stack`` tag every resource carries), ``preventExecution`` so a
  function fails without running. The Lambda actions need the FIS extension layer on each
  function, its configuration location (an S3 bucket per region) in
  ``AWS_FIS_CONFIGURATION_LOCATION`` and ``AWS_LAMBDA_EXEC_WRAPPER=/opt/aws-fis/bootstrap``
  (https://docs.aws.amazon.com/fis/latest/userguide/use-lambda-actions.html); the layer's
  ARN per region is the public SSM parameter read here
  (https://docs.aws.amazon.com/fis/latest/userguide/actions-lambda-extension-arns.html).

The stop condition is an alarm on ``AgentInfra/Drill`` ``Abort`` in the region: whoever runs
the drill (or the drill's client, when customers are failing longer than the failover
budget) puts a 1 there and FIS stops the experiment, restoring replication and the functions
(https://docs.aws.amazon.com/fis/latest/userguide/stop-conditions.html; FIS's service-linked
role reads the alarm, the experiment role needs nothing for it). The experiment role trusts
``fis.amazonaws.com`` for this account's experiments in this region only (``aws:SourceAccount``,
``aws:SourceArn``) and may do what the two actions and the experiment's log need, on this
stack's table, functions and bucket
(https://docs.aws.amazon.com/fis/latest/userguide/getting-started-iam-service-role.html).

``FaultInjectionSupport`` (the bucket and the layer) comes before the functions, which carry
it; ``RegionFaultExperiment`` (alarm, role, log group, template) after them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming, policies
from components.config import FaultInjectionConfig, ObservabilityConfig
from components.context import RegionContext

FIS_EXTENSION_PARAMETER = "/aws/service/fis/lambda-extension/AWS-FIS-extension-arm64/1.x.x"
"""The FIS Lambda extension for arm64 functions, by region (a public SSM parameter)."""
CONFIG_PREFIX = "FisConfigs/"
EXEC_WRAPPER = "/opt/aws-fis/bootstrap"
ABORT_NAMESPACE = "AgentInfra/Drill"
ABORT_METRIC = "Abort"
PAUSE_REPLICATION = "aws:dynamodb:global-table-pause-replication"
INVOCATION_ERROR = "aws:lambda:invocation-error"


# -- pure builders ---------------------------------------------------------------------------


def function_environment(bucket_arn: str) -> dict[str, str]:
    """What every function of the region carries for the FIS Lambda actions: the location is
    an S3 ARN under the bucket's own (so in the bucket's partition)."""
    return {
        "AWS_FIS_CONFIGURATION_LOCATION": f"{bucket_arn}/{CONFIG_PREFIX}",
        "AWS_LAMBDA_EXEC_WRAPPER": EXEC_WRAPPER,
    }


def function_statements(bucket_arn: str) -> list[dict]:
    """A function's extension reads its configuration under the prefix, nothing else."""
    return [
        policies.statement(
            "ListFisConfiguration",
            ["s3:ListBucket"],
            [bucket_arn],
            {"StringLike": {"s3:prefix": [f"{CONFIG_PREFIX}*"]}},
        ),
        policies.statement("ReadFisConfiguration", ["s3:GetObject"], [f"{bucket_arn}/{CONFIG_PREFIX}*"]),
    ]


def experiment_trust_policy(account_id: str, region: str, partition: str = "aws") -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "fis.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:fis:{region}:{account_id}:experiment/*"},
                },
            }
        ],
    }


def experiment_policy(*, replica_arn: str, function_arn_pattern: str, bucket_arn: str) -> dict:
    """The experiment role: the two actions' permissions as FIS's action reference lists
    them, and its log delivery
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-CWL.html)."""
    return policies.policy(
        # The pause adds deny statements to the table's and its stream's resource policies.
        policies.statement(
            "PauseReplicationOfThisReplica",
            [
                "dynamodb:DeleteResourcePolicy",
                "dynamodb:DescribeTable",
                "dynamodb:GetResourcePolicy",
                "dynamodb:PutResourcePolicy",
            ],
            [replica_arn, f"{replica_arn}/stream/*"],
        ),
        policies.statement("FindTargets", ["tag:GetResources"], ["*"]),
        policies.statement("FindFunctions", ["lambda:GetFunction"], [function_arn_pattern]),
        policies.statement(
            "WriteFunctionFaults", ["s3:DeleteObject", "s3:PutObject"], [f"{bucket_arn}/{CONFIG_PREFIX}*"]
        ),
        policies.statement(
            "DeliverExperimentLogs",
            [
                "logs:CreateLogDelivery",
                "logs:DescribeLogGroups",
                "logs:DescribeResourcePolicies",
                "logs:PutResourcePolicy",
            ],
            ["*"],
        ),
    )


def experiment_actions(duration_minutes: int) -> dict[str, dict]:
    """The template's actions by name: both start at once and last the same time."""
    duration = f"PT{duration_minutes}M"
    return {
        "pause-replication": {
            "action_id": PAUSE_REPLICATION,
            "parameters": {"duration": duration},
            "target": ("Tables", "replica"),
        },
        "fail-functions": {
            "action_id": INVOCATION_ERROR,
            "parameters": {"duration": duration, "invocationPercentage": "100", "preventExecution": "true"},
            "target": ("Functions", "functions"),
        },
    }


# -- components ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FaultInjectionSupportArgs:
    """Inputs of :class:`FaultInjectionSupport`."""

    context: RegionContext


class FaultInjectionSupport(pulumi.ComponentResource):
    """What the region's functions carry so FIS can make them fail: the FIS extension layer and
    a bucket for the faults' configuration."""

    layer_arn: pulumi.Output[str]
    """The FIS extension's layer in this region (arm64)."""
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: FaultInjectionSupportArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:fault_injection:FaultInjectionSupport", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.context.region
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            region=region,
            bucket_prefix=f"{naming.stack_resource_name(args.context.stack, 'fis')}-",
            force_destroy=True,  # it holds nothing but short-lived fault configurations
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-no-public",
            region=region,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            region=region,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    )
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-expiry",
            region=region,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-fault-configurations",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=CONFIG_PREFIX),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=1),
                )
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            region=region,
            bucket=bucket.id,
            policy=bucket.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "TlsOnly",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [arn, f"{arn}/*"],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        layer = aws.ssm.get_parameter_output(
            name=FIS_EXTENSION_PARAMETER, region=region, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.layer_arn = layer.value
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.register_outputs({"layerArn": self.layer_arn, "bucket": self.bucket_name})


@dataclass(frozen=True, kw_only=True)
class RegionFaultExperimentArgs:
    """Inputs of :class:`RegionFaultExperiment`."""

    context: RegionContext
    table_name: pulumi.Input[str]
    support: FaultInjectionSupport
    config: FaultInjectionConfig
    observability: ObservabilityConfig
    kms_key_arn: pulumi.Input[str]
    functions_ready: list[pulumi.Resource]
    """The functions the experiment targets: created first."""


class RegionFaultExperiment(pulumi.ComponentResource):
    """The region's experiment template, its stop condition and its role."""

    template_id: pulumi.Output[str]
    abort_alarm_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RegionFaultExperimentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("agent-infra:fault_injection:RegionFaultExperiment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        context = args.context
        region, stack, partition = context.region, context.stack, context.partition
        alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-abort",
            region=region,
            name=naming.stack_resource_name(stack, "drill-abort", region),
            alarm_description="Put AgentInfra/Drill Abort=1 here to stop the region's failover experiment.",
            namespace=ABORT_NAMESPACE,
            metric_name=ABORT_METRIC,
            dimensions={"Stack": stack},
            statistic="Maximum",
            period=60,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            description=f"agent-infra {stack} failover experiment in {region}",
            assume_role_policy=pulumi.Output.from_input(context.account_id).apply(
                lambda account: json.dumps(experiment_trust_policy(account, region, partition))
            ),
            opts=child,
        )
        replica_arn = pulumi.Output.all(account=context.account_id, table=args.table_name).apply(
            lambda v: naming.table_arn(partition, region, v["account"], v["table"])
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(
                replica=replica_arn, account=context.account_id, bucket=args.support.bucket_arn
            ).apply(
                lambda v: json.dumps(
                    experiment_policy(
                        replica_arn=v["replica"],
                        function_arn_pattern=f"arn:{partition}:lambda:{region}:{v['account']}:function:*",
                        bucket_arn=v["bucket"],
                    )
                )
            ),
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            region=region,
            name=naming.function_log_group(stack, "fis"),
            retention_in_days=args.observability.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        actions = experiment_actions(args.config.duration_minutes)
        template = aws.fis.ExperimentTemplate(
            f"{name}-template",
            region=region,
            description=f"agent-infra {stack}: take {region} out (replication paused, functions failing)",
            role_arn=role.arn,
            actions=[
                aws.fis.ExperimentTemplateActionArgs(
                    name=action_name,
                    action_id=action["action_id"],
                    parameters=[
                        aws.fis.ExperimentTemplateActionParameterArgs(key=k, value=v)
                        for k, v in action["parameters"].items()
                    ],
                    target=aws.fis.ExperimentTemplateActionTargetArgs(
                        key=action["target"][0], value=action["target"][1]
                    ),
                )
                for action_name, action in actions.items()
            ],
            targets=[
                aws.fis.ExperimentTemplateTargetArgs(
                    name="replica",
                    resource_type="aws:dynamodb:global-table",
                    selection_mode="ALL",
                    resource_arns=[replica_arn],
                ),
                aws.fis.ExperimentTemplateTargetArgs(
                    name="functions",
                    resource_type="aws:lambda:function",
                    selection_mode="ALL",
                    # Every resource carries the provider's default tags (__main__.py).
                    resource_tags=[aws.fis.ExperimentTemplateTargetResourceTagArgs(key="stack", value=stack)],
                ),
            ],
            stop_conditions=[
                aws.fis.ExperimentTemplateStopConditionArgs(source="aws:cloudwatch:alarm", value=alarm.arn)
            ],
            experiment_options=aws.fis.ExperimentTemplateExperimentOptionsArgs(
                account_targeting="single-account", empty_target_resolution_mode="fail"
            ),
            # The log group ARN must end in :* (https://docs.aws.amazon.com/fis/latest/userguide/monitoring-logging.html).
            log_configuration=aws.fis.ExperimentTemplateLogConfigurationArgs(
                log_schema_version=2,
                cloudwatch_logs_configuration=aws.fis.ExperimentTemplateLogConfigurationCloudwatchLogsConfigurationArgs(
                    log_group_arn=log_group.arn.apply(lambda arn: f"{arn}:*")
                ),
            ),
            tags={"Name": naming.stack_resource_name(stack, "failover", region)},
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[policy, *args.functions_ready])
            ),
        )
        self.template_id = template.id
        self.abort_alarm_arn = alarm.arn
        self.register_outputs({"templateId": self.template_id, "abortAlarmArn": self.abort_alarm_arn})
