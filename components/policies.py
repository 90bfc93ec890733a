"""IAM and KMS policy documents as plain data. No Pulumi import: tests read them directly."""

from __future__ import annotations

from collections.abc import Sequence

from components import naming

# The actions that may name "*" and the check every document passes live with the policy
# pack, so the program, its tests and the pack hold one list.
from policy.rules import (
    ACTIONS_WITHOUT_RESOURCE_TYPE,
    LOG_DELIVERY_ACTIONS,
    TASK_TOKEN_ACTIONS,
    XRAY_ACTIONS,
    XRAY_SAMPLING_ACTIONS,
    wildcard_problems,
)

__all__ = [
    "ACTIONS_WITHOUT_RESOURCE_TYPE",
    "LOG_DELIVERY_ACTIONS",
    "TASK_TOKEN_ACTIONS",
    "XRAY_ACTIONS",
    "XRAY_SAMPLING_ACTIONS",
    "wildcard_problems",
]

# What the account's administrators may do with the key: manage it, never use it for data.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)

# What DynamoDB needs, on behalf of a principal of this account, to encrypt a table and its
# replica with a customer-managed key.
KEY_USE_ACTIONS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
)


# Services that use the key for a principal of this account, besides DynamoDB: Lambda
# (environment variables), SQS (the failure queues) and Secrets Manager (the LLM API key).
# Their use goes through IAM: the key policy lets IAM policies grant it only through these
# services, and each role's policy names the key.
KEY_SERVICES = ("lambda", "sqs", "secretsmanager")
KEY_SERVICE_USE_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")

# CloudWatch Logs encrypts a log group with the key when the key policy lets the regional
# logs service principal use it for that log group's ARN, named in the encryption context
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
LOGS_KEY_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")
# CloudWatch alarms publish to an encrypted SNS topic only if the key policy lets
# cloudwatch.amazonaws.com decrypt and generate data keys
# (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html, "Enable compatibility
# between event sources from AWS services and encrypted topics").
ALARM_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")


def log_group_arn_patterns(partition: str, region: str, account_id: str, prefixes: Sequence[str]) -> list[str]:
    """ARN patterns of the log groups whose names start with ``prefixes`` (ArnLike)."""
    return [f"arn:{partition}:logs:{region}:{account_id}:log-group:{prefix}*" for prefix in prefixes]


def table_key_policy(
    account_id: str, region: str, partition: str = "aws", log_group_prefixes: Sequence[str] = ()
) -> dict:
    """Key policy of the stack's customer-managed key in ``region``.

    The account's IAM principals administer the key; its data operations are allowed only
    when a service in that same region makes them for a principal of this account
    (``kms:ViaService`` + ``kms:CallerAccount``), so nobody can decrypt with it directly:
    DynamoDB for anyone DynamoDB lets at the table; Lambda, SQS and Secrets Manager for the
    principals whose IAM policy names the key. Grants are allowed only for AWS resources,
    which is how DynamoDB, its replication role and Lambda (environment variables) use the
    key. CloudWatch Logs may use it for the log groups under ``log_group_prefixes`` only,
    and CloudWatch alarms to publish to the stack's encrypted alarm topics.
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    via_dynamodb = {
        "StringEquals": {
            "kms:ViaService": naming.service_endpoint("dynamodb", region, partition),
            "kms:CallerAccount": account_id,
        }
    }
    via_services = {
        "StringEquals": {
            "kms:ViaService": [naming.service_endpoint(service, region, partition) for service in KEY_SERVICES],
            "kms:CallerAccount": account_id,
        }
    }
    statements = [
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": list(KEY_ADMIN_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "UseThroughDynamoDBOnly",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [a for a in KEY_USE_ACTIONS if a != "kms:CreateGrant"],
            "Resource": "*",
            "Condition": via_dynamodb,
        },
        {
            "Sid": "GrantsForDynamoDBOnly",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                **via_dynamodb,
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        },
        {
            # Principal root: the permission still has to come from the caller's IAM policy.
            "Sid": "IamGrantedUseThroughLambdaSqsSecretsManager",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": list(KEY_SERVICE_USE_ACTIONS),
            "Resource": "*",
            "Condition": via_services,
        },
        {
            # Lambda creates a grant for the function's role when a function with encrypted
            # environment variables is created or updated
            # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html).
            "Sid": "IamGrantedGrantsThroughLambdaOnly",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": naming.service_endpoint("lambda", region, partition),
                    "kms:CallerAccount": account_id,
                },
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        },
        {
            "Sid": "AlarmsPublishToEncryptedTopics",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": list(ALARM_KEY_ACTIONS),
            "Resource": "*",
        },
    ]
    if log_group_prefixes:
        statements.append(
            {
                "Sid": "LogsForTheStacksLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": naming.service_endpoint("logs", region, partition)},
                "Action": list(LOGS_KEY_ACTIONS),
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": log_group_arn_patterns(
                            partition, region, account_id, log_group_prefixes
                        )
                    }
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


# --- Lambda execution roles ---------------------------------------------------------------

# Converse needs InvokeModel; ConverseStream (WebSocket turns) InvokeModelWithResponseStream.
BEDROCK_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")

# Inference-profile ids start with a geography: they route to several regions.
INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.", "us-gov.")


def assume_role_policy(service: str, account_id: str) -> dict:
    """Trust policy: ``service`` (e.g. ``lambda.amazonaws.com``), for this account only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def lambda_assume_role_policy(account_id: str) -> dict:
    return assume_role_policy("lambda.amazonaws.com", account_id)


def api_gateway_assume_role_policy() -> dict:
    """Trust policy of a role API Gateway assumes (integration credentials, the account's
    CloudWatch role): the service principal with no condition, as AWS documents it
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html,
    https://docs.aws.amazon.com/step-functions/latest/dg/tutorial-api-gateway.html). API
    Gateway does not set ``aws:SourceAccount`` when it assumes integration credentials, so
    that condition would refuse every call (reported in
    https://github.com/aws-solutions-library-samples/accelerated-intelligent-document-processing-on-aws/pull/479).
    The role's permissions are what is scoped: one action on one resource."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def state_machine_policy(function_arns: list[str], model: list[dict] | tuple[dict, ...] = ()) -> dict:
    """A state machine's role: invoke exactly the functions of its definition, call the
    model (``model``: Bedrock, or the HTTP Task's connection), write its logs through
    CloudWatch Logs delivery (its log group is named in the machine's logging configuration;
    the delivery actions take no resource), and send X-Ray traces."""
    return policy(
        statement("InvokeOwnFunctions", ["lambda:InvokeFunction"], sorted(function_arns)),
        *model,
        statement("LogDelivery", LOG_DELIVERY_ACTIONS, ["*"]),
        statement("XRay", [*XRAY_ACTIONS, *XRAY_SAMPLING_ACTIONS], ["*"]),
    )


# ECR actions of an image pull: the registry token (no resource type) and the image's layers
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html).
ECR_AUTH_ACTIONS = ("ecr:GetAuthorizationToken",)
ECR_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
# The EventBridge rule Step Functions manages in the account to learn that a task stopped
# (https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html).
ECS_SYNC_RULE = "StepFunctionsGetEventsForECSTaskRule"


def task_execution_policy(repository_arn: str, log_group_arns: Sequence[str]) -> dict:
    """A task execution role: pull the image from the one repository, write the tasks' logs."""
    return policy(
        statement("RegistryToken", ECR_AUTH_ACTIONS, ["*"]),
        statement("PullImage", ECR_PULL_ACTIONS, [repository_arn]),
        statement("WriteTaskLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{a}:*" for a in log_group_arns]),
    )


def ecs_run_task_statements(
    partition: str,
    region: str,
    account_id: str,
    cluster_arn: str,
    task_definition_arns: Sequence[str],
    role_arns: Sequence[str],
) -> list[dict]:
    """What ``arn:aws:states:::ecs:runTask.sync`` needs (Step Functions, "IAM policies for
    Amazon ECS/AWS Fargate", https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html):
    RunTask on the task definitions, StopTask and DescribeTasks on the tasks it starts, the
    managed rule through which it learns that a task stopped, and PassRole on the roles the task
    definitions name, to ECS tasks only. AWS's example leaves StopTask and DescribeTasks on
    ``*``; here they are held to the cluster's tasks (task ARNs name their cluster:
    ``task/<cluster>/<id>``, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-account-settings.html#ecs-resource-ids),
    and RunTask to the cluster (``ecs:cluster``,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html)."""
    cluster_name = cluster_arn.rsplit("/", 1)[-1]
    return [
        statement(
            "RunToolTasks",
            ["ecs:RunTask"],
            sorted(task_definition_arns),
            {"ArnEquals": {"ecs:cluster": cluster_arn}},
        ),
        statement(
            "WatchToolTasks",
            ["ecs:DescribeTasks", "ecs:StopTask"],
            [f"arn:{partition}:ecs:{region}:{account_id}:task/{cluster_name}/*"],
        ),
        statement(
            "TaskStoppedEvents",
            ["events:DescribeRule", "events:PutRule", "events:PutTargets"],
            [f"arn:{partition}:events:{region}:{account_id}:rule/{ECS_SYNC_RULE}"],
        ),
        statement(
            "PassToolTaskRoles",
            ["iam:PassRole"],
            sorted(set(role_arns)),
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
    ]


def http_task_statements(
    machine_arns: list[str], connection_arn: str, secret_arn: str, key_arn: str | None, urls: list[str]
) -> list[dict]:
    """What an HTTP Task needs: call the endpoint (only these URLs, only POST), read its
    EventBridge connection's credentials and the secret EventBridge keeps them in, encrypted
    with the region's key
    (https://docs.aws.amazon.com/step-functions/latest/dg/call-https-apis.html#connect-http-task-permissions)."""
    statements = [
        statement(
            "InvokeModelEndpoints",
            ["states:InvokeHTTPEndpoint"],
            sorted(machine_arns),
            {"StringEquals": {"states:HTTPMethod": "POST"}, "StringLike": {"states:HTTPEndpoint": sorted(urls)}},
        ),
        statement("ConnectionCredentials", ["events:RetrieveConnectionCredentials"], [connection_arn]),
        statement("ConnectionSecret", ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], [secret_arn]),
    ]
    if key_arn:
        statements.append(statement("ConnectionSecretKey", ["kms:Decrypt"], [key_arn]))
    return statements


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": [s for s in statements if s]}


def statement(
    sid: str, actions: list[str] | tuple[str, ...], resources: list[str], condition: dict | None = None
) -> dict:
    out = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)), "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


def function_basics(log_group_arn: str, dlq_arn: str, key_arn: str) -> list[dict]:
    """What every function needs: its own log group, X-Ray, its failure queue, and the
    region's key: Decrypt for its environment variables
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html) and,
    with GenerateDataKey, to send to the encrypted queue
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html)."""
    return [
        statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
        statement("XRayTraces", XRAY_ACTIONS, ["*"]),
        statement("SendFailuresToDlq", ["sqs:SendMessage"], [dlq_arn]),
        statement("UseRegionKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
    ]


def table_access(
    table_arn: str, actions: list[str] | tuple[str, ...], index_actions: list[str] | tuple[str, ...] = ()
) -> list[dict]:
    """DynamoDB actions on this region's replica of the table (and, if asked, its GSI1)."""
    out = [statement("StateTable", actions, [table_arn])]
    if index_actions:
        out.append(statement("StateTableGsi1", index_actions, [f"{table_arn}/index/GSI1"]))
    return out


def replica_access(replica_arns: Sequence[str], actions: Sequence[str]) -> dict:
    """DynamoDB actions on every replica of the table: for the functions that read and write a
    key in its home replica, whichever region that is. A transaction needs the action of each
    of its parts, ``dynamodb:ConditionCheckItem`` for a ConditionCheck
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html)."""
    return statement("TableReplicas", sorted(actions), list(replica_arns))


def bedrock_invoke(model: str, regions: list[str], account_id: str, partition: str = "aws") -> list[dict]:
    """Converse on ``model`` in the endpoint regions only.

    A foundation-model id is allowed in each endpoint region. An inference-profile id
    (``us.``, ``eu.``, ``global.``, ...) is allowed on the profile in each endpoint region,
    and on the underlying foundation model in any region but only through that profile:
    the profile picks the destination region at run time.
    """
    if model.startswith(INFERENCE_PROFILE_PREFIXES):
        base = model.split(".", 1)[1]
        profiles = [f"arn:{partition}:bedrock:{r}:{account_id}:inference-profile/{model}" for r in regions]
        return [
            statement("InvokeThroughProfile", BEDROCK_ACTIONS, profiles),
            statement(
                "InvokeProfileDestinations",
                BEDROCK_ACTIONS,
                [f"arn:{partition}:bedrock:*::foundation-model/{base}"],
                # An ARN-valued key: ArnLike, not StringLike
                # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN).
                {
                    "ArnLike": {
                        "bedrock:InferenceProfileArn": f"arn:{partition}:bedrock:*:{account_id}:inference-profile/{model}"
                    }
                },
            ),
        ]
    return [
        statement(
            "InvokeModel",
            BEDROCK_ACTIONS,
            [f"arn:{partition}:bedrock:{r}::foundation-model/{model}" for r in regions],
        )
    ]
