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
