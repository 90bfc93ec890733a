"""IAM and KMS policy documents as plain data. No Pulumi import: tests read them directly."""

from __future__ import annotations

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


# Service endpoints end in this suffix per partition (botocore's endpoint data).
_DNS_SUFFIX = {"aws-cn": "amazonaws.com.cn"}


def table_key_policy(account_id: str, region: str, partition: str = "aws") -> dict:
    """Key policy of the table's customer-managed key in ``region``.

    The account's IAM principals administer the key; its data operations are allowed only
    when DynamoDB in that same region makes them for a principal of this account
    (``kms:ViaService`` + ``kms:CallerAccount``), so nobody can decrypt with it directly.
    Grants are allowed only for AWS resources, which is how DynamoDB and its replication
    role use the key.
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    via_dynamodb = {
        "StringEquals": {
            "kms:ViaService": f"dynamodb.{region}.{_DNS_SUFFIX.get(partition, 'amazonaws.com')}",
            "kms:CallerAccount": account_id,
        }
    }
    return {
        "Version": "2012-10-17",
        "Statement": [
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
        ],
    }


# --- Lambda execution roles ---------------------------------------------------------------

# Only these actions are allowed on "*": the Service Authorization Reference lists no
# resource type for them (X-Ray's writes and sampling reads, the CloudWatch Logs delivery
# actions Step Functions logging needs, and the task-token callbacks, which name a token,
# not an ARN).
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
XRAY_SAMPLING_ACTIONS = ("xray:GetSamplingRules", "xray:GetSamplingTargets")
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)
TASK_TOKEN_ACTIONS = ("states:SendTaskFailure", "states:SendTaskSuccess")
ACTIONS_WITHOUT_RESOURCE_LEVEL = frozenset(
    {*XRAY_ACTIONS, *XRAY_SAMPLING_ACTIONS, *LOG_DELIVERY_ACTIONS, *TASK_TOKEN_ACTIONS}
)

# Converse needs InvokeModel; ConverseStream (WebSocket turns) InvokeModelWithResponseStream.
BEDROCK_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")

# Inference-profile ids start with a geography: they route to several regions.
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.", "us-gov.")


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


def state_machine_policy(function_arns: list[str]) -> dict:
    """A state machine's role: invoke exactly the functions of its definition, write its
    logs through CloudWatch Logs delivery (its log group is named in the machine's logging
    configuration; the delivery actions take no resource), and send X-Ray traces."""
    return policy(
        statement("InvokeOwnFunctions", ["lambda:InvokeFunction"], sorted(function_arns)),
        statement("LogDelivery", LOG_DELIVERY_ACTIONS, ["*"]),
        statement("XRay", [*XRAY_ACTIONS, *XRAY_SAMPLING_ACTIONS], ["*"]),
    )


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": [s for s in statements if s]}


def statement(
    sid: str, actions: list[str] | tuple[str, ...], resources: list[str], condition: dict | None = None
) -> dict:
    out = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)), "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


def function_basics(log_group_arn: str, dlq_arn: str) -> list[dict]:
    """What every function needs: its own log group, X-Ray, its failure queue."""
    return [
        statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
        statement("XRayTraces", XRAY_ACTIONS, ["*"]),
        statement("SendFailuresToDlq", ["sqs:SendMessage"], [dlq_arn]),
    ]


def table_access(
    table_arn: str, actions: list[str] | tuple[str, ...], index_actions: list[str] | tuple[str, ...] = ()
) -> list[dict]:
    """DynamoDB actions on this region's replica of the table (and, if asked, its GSI1)."""
    out = [statement("StateTable", actions, [table_arn])]
    if index_actions:
        out.append(statement("StateTableGsi1", index_actions, [f"{table_arn}/index/GSI1"]))
    return out


def bedrock_invoke(model: str, regions: list[str], account_id: str, partition: str = "aws") -> list[dict]:
    """Converse on ``model`` in the endpoint regions only.

    A foundation-model id is allowed in each endpoint region. An inference-profile id
    (``us.``, ``eu.``, ``global.``, ...) is allowed on the profile in each endpoint region,
    and on the underlying foundation model in any region but only through that profile:
    the profile picks the destination region at run time.
    """
    if model.startswith(_PROFILE_PREFIXES):
        base = model.split(".", 1)[1]
        profiles = [f"arn:{partition}:bedrock:{r}:{account_id}:inference-profile/{model}" for r in regions]
        return [
            statement("InvokeThroughProfile", BEDROCK_ACTIONS, profiles),
            statement(
                "InvokeProfileDestinations",
                BEDROCK_ACTIONS,
                [f"arn:{partition}:bedrock:*::foundation-model/{base}"],
                {
                    "StringLike": {
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


def wildcard_problems(document: dict) -> list[str]:
    """Every ``*`` action, and every ``*`` resource on an action that supports resource ARNs."""
    problems = []
    for entry in document.get("Statement", []):
        actions = entry.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = entry.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{entry.get('Sid', '?')}: action {action}")
        if "*" in resources and not set(actions) <= ACTIONS_WITHOUT_RESOURCE_LEVEL:
            problems.append(f"{entry.get('Sid', '?')}: resource * for {actions}")
    return problems
