"""What the Terraform AWS provider (which pulumi-aws wraps) calls for each resource type the
program creates and each data source it reads: the IAM actions of create, read, update and
delete, with the provider source file each row was read from
(https://github.com/hashicorp/terraform-provider-aws, ``internal/service/<service>/``; the
resource's Create/Read/Update/Delete functions, the finders and waiters they call, and the
service's generated tagging). Operations are given as the IAM actions that authorize them
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).

``tests/test_bootstrap.py`` runs the real program in every shape (dev, prod, prod with a
domain, the openai provider, the failover experiments) and requires a row for each type and
data source it meets, every action of a row in the deploy role and every read in the preview
role (but for ``PREVIEW_SKIPS``): a new resource type without its row fails the test, and so
does a grant taken away. Rows list the calls made for the attributes this program sets; the
note says what else the provider can call and why it is left out.

One module on purpose: it is a data table, one row per resource type and data source with
its cited provider source, checked whole by tests/test_bootstrap.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderCalls:
    source: str
    """The Terraform AWS provider file the row was read from."""
    create: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    note: str = ""

    @property
    def writes(self) -> frozenset[str]:
        return frozenset(self.create + self.update + self.delete)


RESOURCES: dict[str, ProviderCalls] = {
    "aws:acm/certificate:Certificate": ProviderCalls(
        source="internal/service/acm/certificate.go",
        create=("acm:RequestCertificate", "acm:AddTagsToCertificate", "acm:DescribeCertificate"),
        read=("acm:DescribeCertificate", "acm:ListTagsForCertificate"),
        update=(
            "acm:AddTagsToCertificate",
            "acm:RemoveTagsFromCertificate",
            "acm:DescribeCertificate",
            "acm:ListTagsForCertificate",
        ),
        delete=("acm:DeleteCertificate",),
    ),
    "aws:acm/certificateValidation:CertificateValidation": ProviderCalls(
        source="internal/service/acm/certificate_validation.go",
        create=("acm:DescribeCertificate",),
        read=("acm:DescribeCertificate",),
    ),
    "aws:apigateway/account:Account": ProviderCalls(
        source="internal/service/apigateway/account.go",
        create=("apigateway:PATCH", "iam:PassRole"),
        read=("apigateway:GET",),
        update=("apigateway:PATCH",),
        delete=("apigateway:PATCH",),
        note="Delete resets the account's CloudWatch role in that region (v6 dropped reset_on_delete): the owner is torn down last.",
    ),
    "aws:apigateway/apiKey:ApiKey": ProviderCalls(
        source="internal/service/apigateway/api_key.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:PUT", "apigateway:DELETE", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigateway/basePathMapping:BasePathMapping": ProviderCalls(
        source="internal/service/apigateway/base_path_mapping.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigateway/deployment:Deployment": ProviderCalls(
        source="internal/service/apigateway/deployment.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigateway/domainName:DomainName": ProviderCalls(
        source="internal/service/apigateway/domain_name.go",
        create=("apigateway:POST", "iam:CreateServiceLinkedRole"),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET", "apigateway:PUT", "apigateway:DELETE"),
        delete=("apigateway:DELETE",),
        note="The first custom domain of an account creates API Gateway's service-linked role (https://docs.aws.amazon.com/apigateway/latest/developerguide/using-service-linked-roles.html).",
    ),
    "aws:apigateway/methodSettings:MethodSettings": ProviderCalls(
        source="internal/service/apigateway/method_settings.go",
        create=("apigateway:PATCH",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET"),
        delete=("apigateway:PATCH",),
    ),
    "aws:apigateway/restApi:RestApi": ProviderCalls(
        source="internal/service/apigateway/rest_api.go",
        create=("apigateway:POST", "apigateway:PUT", "apigateway:PATCH"),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:PUT", "apigateway:DELETE", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigateway/stage:Stage": ProviderCalls(
        source="internal/service/apigateway/stage.go",
        create=("apigateway:POST", "apigateway:PATCH"),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET", "apigateway:PUT", "apigateway:DELETE"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigateway/usagePlan:UsagePlan": ProviderCalls(
        source="internal/service/apigateway/usage_plan.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET", "apigateway:PUT", "apigateway:DELETE"),
        delete=("apigateway:PATCH", "apigateway:DELETE"),
    ),
    "aws:apigateway/usagePlanKey:UsagePlanKey": ProviderCalls(
        source="internal/service/apigateway/usage_plan_key.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigatewayv2/api:Api": ProviderCalls(
        source="internal/service/apigatewayv2/api.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:DELETE", "apigateway:PUT", "apigateway:POST", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigatewayv2/apiMapping:ApiMapping": ProviderCalls(
        source="internal/service/apigatewayv2/api_mapping.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigatewayv2/authorizer:Authorizer": ProviderCalls(
        source="internal/service/apigatewayv2/authorizer.go",
        create=("apigateway:GET", "apigateway:POST"),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigatewayv2/deployment:Deployment": ProviderCalls(
        source="internal/service/apigatewayv2/deployment.go",
        create=("apigateway:POST", "apigateway:GET"),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigatewayv2/domainName:DomainName": ProviderCalls(
        source="internal/service/apigatewayv2/domain_name.go",
        create=("apigateway:POST", "apigateway:GET", "iam:CreateServiceLinkedRole"),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET", "apigateway:POST", "apigateway:DELETE"),
        delete=("apigateway:DELETE",),
        note="The first custom domain of an account creates API Gateway's service-linked role (https://docs.aws.amazon.com/apigateway/latest/developerguide/using-service-linked-roles.html).",
    ),
    "aws:apigatewayv2/integration:Integration": ProviderCalls(
        source="internal/service/apigatewayv2/integration.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigatewayv2/route:Route": ProviderCalls(
        source="internal/service/apigatewayv2/route.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:DELETE", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigatewayv2/routeResponse:RouteResponse": ProviderCalls(
        source="internal/service/apigatewayv2/route_response.go",
        create=("apigateway:POST",),
        read=("apigateway:GET",),
        update=("apigateway:PATCH", "apigateway:GET"),
        delete=("apigateway:DELETE",),
    ),
    "aws:apigatewayv2/stage:Stage": ProviderCalls(
        source="internal/service/apigatewayv2/stage.go",
        create=("apigateway:GET", "apigateway:POST"),
        read=("apigateway:GET",),
        update=("apigateway:GET", "apigateway:PATCH", "apigateway:DELETE", "apigateway:POST"),
        delete=("apigateway:DELETE",),
    ),
    "aws:budgets/budget:Budget": ProviderCalls(
        source="internal/service/budgets/budget.go",
        create=("budgets:ModifyBudget", "budgets:TagResource", "budgets:ViewBudget"),
        read=("budgets:ViewBudget", "budgets:ListTagsForResource"),
        update=(
            "budgets:ModifyBudget",
            "budgets:TagResource",
            "budgets:UntagResource",
            "budgets:ViewBudget",
            "budgets:ListTagsForResource",
        ),
        delete=("budgets:ModifyBudget",),
    ),
    "aws:cloudwatch/dashboard:Dashboard": ProviderCalls(
        source="internal/service/cloudwatch/dashboard.go",
        create=("cloudwatch:PutDashboard",),
        read=("cloudwatch:GetDashboard",),
        update=("cloudwatch:PutDashboard",),
        delete=("cloudwatch:DeleteDashboards",),
    ),
    "aws:cloudwatch/eventConnection:EventConnection": ProviderCalls(
        source="internal/service/events/connection.go",
        create=("events:CreateConnection", "events:DescribeConnection", "iam:CreateServiceLinkedRole"),
        read=("events:DescribeConnection",),
        update=("events:UpdateConnection", "events:DescribeConnection"),
        delete=("events:DeleteConnection", "events:DescribeConnection"),
        note="EventBridge keeps the key in a secret through its service-linked role, created with the account's first connection (https://docs.aws.amazon.com/eventbridge/latest/userguide/using-service-linked-roles-service-action-1.html); the region's key must carry EventBridgeApiDestinations=true.",
    ),
    "aws:cloudwatch/logGroup:LogGroup": ProviderCalls(
        source="internal/service/logs/group.go",
        create=("logs:CreateLogGroup", "logs:TagResource", "logs:PutRetentionPolicy"),
        read=("logs:DescribeLogGroups", "logs:ListTagsForResource"),
        update=(
            "logs:PutRetentionPolicy",
            "logs:DeleteRetentionPolicy",
            "logs:AssociateKmsKey",
            "logs:DisassociateKmsKey",
            "logs:TagResource",
            "logs:UntagResource",
        ),
        delete=("logs:DeleteLogGroup",),
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ProviderCalls(
        source="internal/service/cloudwatch/metric_alarm.go",
        create=("cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"),
        read=("cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"),
        update=("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource", "cloudwatch:UntagResource"),
        delete=("cloudwatch:DeleteAlarms",),
    ),
    "aws:dynamodb/table:Table": ProviderCalls(
        source="internal/service/dynamodb/table.go",
        create=(
            "dynamodb:CreateTable",
            "dynamodb:TagResource",
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateContinuousBackups",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:UpdateTable",
            "dynamodb:CreateTableReplica",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ListTagsOfResource",
            "iam:CreateServiceLinkedRole",
            "kms:DescribeKey",
            "kms:CreateGrant",
        ),
        read=(
            "dynamodb:DescribeTable",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:ListTagsOfResource",
        ),
        update=(
            "dynamodb:UpdateTable",
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateContinuousBackups",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:CreateTableReplica",
            "dynamodb:DeleteTableReplica",
            "dynamodb:CreateTable",
            "dynamodb:DeleteTable",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:TagResource",
            "dynamodb:UntagResource",
            "dynamodb:ListTagsOfResource",
            "kms:DescribeKey",
            "kms:CreateGrant",
        ),
        delete=(
            "dynamodb:UpdateTable",
            "dynamodb:DeleteTableReplica",
            "dynamodb:DeleteTable",
            "dynamodb:DescribeTable",
        ),
        note="Not listed: the read's kms:DescribeKey of alias/aws/dynamodb per replica, whose failure the provider ignores.",
    ),
    "aws:fis/experimentTemplate:ExperimentTemplate": ProviderCalls(
        source="internal/service/fis/experiment_template.go",
        create=("fis:CreateExperimentTemplate", "fis:TagResource", "iam:PassRole"),
        read=("fis:GetExperimentTemplate",),
        update=("fis:UpdateExperimentTemplate", "iam:PassRole"),
        delete=("fis:DeleteExperimentTemplate",),
    ),
    "aws:iam/role:Role": ProviderCalls(
        source="internal/service/iam/role.go",
        create=("iam:CreateRole", "iam:TagRole", "iam:GetRole"),
        read=("iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies"),
        update=(
            "iam:UpdateAssumeRolePolicy",
            "iam:UpdateRoleDescription",
            "iam:UpdateRole",
            "iam:PutRolePermissionsBoundary",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:TagRole",
            "iam:UntagRole",
        ),
        delete=(
            "iam:ListInstanceProfilesForRole",
            "iam:ListAttachedRolePolicies",
            "iam:DetachRolePolicy",
            "iam:ListRolePolicies",
            "iam:DeleteRolePolicy",
            "iam:DeleteRole",
        ),
        note="Not granted, never called here: DeleteRolePermissionsBoundary (the boundary is never removed), RemoveRoleFromInstanceProfile (no instance profiles).",
    ),
    "aws:iam/rolePolicy:RolePolicy": ProviderCalls(
        source="internal/service/iam/role_policy.go",
        create=("iam:PutRolePolicy", "iam:GetRolePolicy"),
        read=("iam:GetRolePolicy",),
        update=("iam:PutRolePolicy",),
        delete=("iam:DeleteRolePolicy",),
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ProviderCalls(
        source="internal/service/iam/role_policy_attachment.go",
        create=("iam:AttachRolePolicy",),
        read=("iam:ListAttachedRolePolicies",),
        delete=("iam:DetachRolePolicy",),
    ),
    "aws:kms/alias:Alias": ProviderCalls(
        source="internal/service/kms/alias.go",
        create=("kms:CreateAlias",),
        read=("kms:ListAliases",),
        update=("kms:UpdateAlias",),
        delete=("kms:DeleteAlias",),
    ),
    "aws:kms/key:Key": ProviderCalls(
        source="internal/service/kms/key.go",
        create=(
            "kms:CreateKey",
            "kms:TagResource",
            "kms:EnableKeyRotation",
            "kms:GetKeyRotationStatus",
            "kms:GetKeyPolicy",
            "kms:ListResourceTags",
        ),
        read=("kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"),
        update=(
            "kms:DescribeKey",
            "kms:EnableKeyRotation",
            "kms:DisableKeyRotation",
            "kms:GetKeyRotationStatus",
            "kms:UpdateKeyDescription",
            "kms:PutKeyPolicy",
            "kms:GetKeyPolicy",
            "kms:TagResource",
            "kms:UntagResource",
            "kms:ListResourceTags",
        ),
        delete=("kms:ScheduleKeyDeletion", "kms:DescribeKey"),
        note="Not listed: EnableKey/DisableKey (is_enabled never changes).",
    ),
    "aws:lambda/alias:Alias": ProviderCalls(
        source="internal/service/lambda/alias.go",
        create=("lambda:CreateAlias",),
        read=("lambda:GetAlias",),
        update=("lambda:UpdateAlias", "lambda:GetAlias"),
        delete=("lambda:DeleteAlias",),
    ),
    "aws:lambda/function:Function": ProviderCalls(
        source="internal/service/lambda/function.go",
        create=(
            "lambda:CreateFunction",
            "lambda:TagResource",
            "iam:PassRole",
            "lambda:GetLayerVersion",
            "kms:Encrypt",
            "kms:CreateGrant",
            "lambda:GetFunction",
            "lambda:PutFunctionConcurrency",
        ),
        read=(
            "lambda:GetFunction",
            "lambda:ListVersionsByFunction",
            "lambda:GetFunctionCodeSigningConfig",
            "kms:Decrypt",
        ),
        update=(
            "lambda:UpdateFunctionConfiguration",
            "lambda:UpdateFunctionCode",
            "lambda:GetFunction",
            "iam:PassRole",
            "lambda:GetLayerVersion",
            "kms:Encrypt",
            "kms:CreateGrant",
            "lambda:PutFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency",
            "lambda:PublishVersion",
            "lambda:GetFunctionConfiguration",
            "lambda:TagResource",
            "lambda:UntagResource",
        ),
        delete=("lambda:DeleteFunction",),
        note="Not listed: code-signing calls (no code signing config).",
    ),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": ProviderCalls(
        source="internal/service/lambda/function_event_invoke_config.go",
        create=("lambda:PutFunctionEventInvokeConfig",),
        read=("lambda:GetFunctionEventInvokeConfig",),
        update=("lambda:PutFunctionEventInvokeConfig",),
        delete=("lambda:DeleteFunctionEventInvokeConfig",),
    ),
    "aws:lambda/layerVersion:LayerVersion": ProviderCalls(
        source="internal/service/lambda/layer_version.go",
        create=("lambda:PublishLayerVersion",),
        read=("lambda:GetLayerVersion",),
        delete=("lambda:DeleteLayerVersion",),
    ),
    "aws:lambda/permission:Permission": ProviderCalls(
        source="internal/service/lambda/permission.go",
        create=("lambda:AddPermission", "lambda:GetPolicy"),
        read=("lambda:GetPolicy",),
        delete=("lambda:RemovePermission", "lambda:GetPolicy"),
    ),
    "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": ProviderCalls(
        source="internal/service/lambda/provisioned_concurrency_config.go",
        create=("lambda:PutProvisionedConcurrencyConfig", "lambda:GetProvisionedConcurrencyConfig"),
        read=("lambda:GetProvisionedConcurrencyConfig",),
        update=("lambda:PutProvisionedConcurrencyConfig", "lambda:GetProvisionedConcurrencyConfig"),
        delete=("lambda:DeleteProvisionedConcurrencyConfig",),
    ),
    "aws:route53/healthCheck:HealthCheck": ProviderCalls(
        source="internal/service/route53/health_check.go",
        create=("route53:CreateHealthCheck", "route53:ChangeTagsForResource"),
        read=("route53:GetHealthCheck", "route53:ListTagsForResource"),
        update=(
            "route53:UpdateHealthCheck",
            "route53:ChangeTagsForResource",
            "route53:GetHealthCheck",
            "route53:ListTagsForResource",
        ),
        delete=("route53:DeleteHealthCheck",),
    ),
    "aws:route53/record:Record": ProviderCalls(
        source="internal/service/route53/record.go",
        create=("route53:GetHostedZone", "route53:ChangeResourceRecordSets", "route53:GetChange"),
        read=("route53:GetHostedZone", "route53:ListResourceRecordSets"),
        update=(
            "route53:GetHostedZone",
            "route53:ChangeResourceRecordSets",
            "route53:GetChange",
            "route53:ListResourceRecordSets",
        ),
        delete=(
            "route53:GetHostedZone",
            "route53:ListResourceRecordSets",
            "route53:ChangeResourceRecordSets",
            "route53:GetChange",
        ),
    ),
    "aws:s3/bucket:Bucket": ProviderCalls(
        source="internal/service/s3/bucket.go",
        create=("s3:CreateBucket", "s3:ListBucket", "s3:GetBucketTagging", "s3:PutBucketTagging"),
        read=(
            "s3:ListBucket",
            "s3:GetBucketPolicy",
            "s3:GetBucketAcl",
            "s3:GetBucketCORS",
            "s3:GetBucketWebsite",
            "s3:GetBucketVersioning",
            "s3:GetAccelerateConfiguration",
            "s3:GetBucketRequestPayment",
            "s3:GetBucketLogging",
            "s3:GetLifecycleConfiguration",
            "s3:GetReplicationConfiguration",
            "s3:GetEncryptionConfiguration",
            "s3:GetBucketObjectLockConfiguration",
            "s3:GetBucketTagging",
        ),
        update=("s3:GetBucketTagging", "s3:PutBucketTagging"),
        delete=("s3:DeleteBucket", "s3:ListBucket", "s3:DeleteObject"),
        note="Not listed: version listing and deletion on delete (only with force_destroy, not set).",
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ProviderCalls(
        source="internal/service/s3/bucket_lifecycle_configuration.go",
        create=("s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
        read=("s3:GetLifecycleConfiguration",),
        update=("s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
        delete=("s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
    ),
    "aws:s3/bucketPolicy:BucketPolicy": ProviderCalls(
        source="internal/service/s3/bucket_policy.go",
        create=("s3:PutBucketPolicy", "s3:GetBucketPolicy"),
        read=("s3:GetBucketPolicy",),
        update=("s3:PutBucketPolicy",),
        delete=("s3:DeleteBucketPolicy", "s3:GetBucketPolicy"),
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ProviderCalls(
        source="internal/service/s3/bucket_public_access_block.go",
        create=("s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
        read=("s3:GetBucketPublicAccessBlock",),
        update=("s3:PutBucketPublicAccessBlock",),
        delete=("s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ProviderCalls(
        source="internal/service/s3/bucket_server_side_encryption_configuration.go",
        create=("s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration"),
        read=("s3:GetEncryptionConfiguration",),
        update=("s3:PutEncryptionConfiguration",),
        delete=("s3:PutEncryptionConfiguration",),
    ),
    "aws:secretsmanager/secret:Secret": ProviderCalls(
        source="internal/service/secretsmanager/secret.go",
        create=("secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:DescribeSecret"),
        read=("secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"),
        update=(
            "secretsmanager:UpdateSecret",
            "secretsmanager:TagResource",
            "secretsmanager:UntagResource",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetResourcePolicy",
        ),
        delete=("secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret"),
    ),
    "aws:secretsmanager/secretVersion:SecretVersion": ProviderCalls(
        source="internal/service/secretsmanager/secret_version.go",
        create=("secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue", "kms:GenerateDataKey", "kms:Decrypt"),
        read=("secretsmanager:GetSecretValue", "kms:Decrypt"),
        update=("secretsmanager:GetSecretValue", "kms:Decrypt"),
        delete=("secretsmanager:GetSecretValue", "kms:Decrypt"),
        note="Not listed: version-stage calls (version_stages never set).",
    ),
    "aws:sfn/stateMachine:StateMachine": ProviderCalls(
        source="internal/service/sfn/state_machine.go",
        create=(
            "states:ValidateStateMachineDefinition",
            "states:CreateStateMachine",
            "states:TagResource",
            "iam:PassRole",
        ),
        read=("states:DescribeStateMachine", "states:ListStateMachineVersions", "states:ListTagsForResource"),
        update=(
            "states:ValidateStateMachineDefinition",
            "states:UpdateStateMachine",
            "states:DescribeStateMachine",
            "iam:PassRole",
            "states:TagResource",
            "states:UntagResource",
        ),
        delete=("states:DeleteStateMachine", "states:DescribeStateMachine"),
    ),
    "aws:sns/topic:Topic": ProviderCalls(
        source="internal/service/sns/topic.go",
        create=("sns:CreateTopic", "sns:TagResource", "sns:SetTopicAttributes"),
        read=("sns:GetTopicAttributes", "sns:ListTagsForResource"),
        update=("sns:SetTopicAttributes", "sns:TagResource", "sns:UntagResource"),
        delete=("sns:DeleteTopic",),
    ),
    "aws:sns/topicSubscription:TopicSubscription": ProviderCalls(
        source="internal/service/sns/topic_subscription.go",
        create=("sns:Subscribe", "sns:GetSubscriptionAttributes"),
        read=("sns:GetSubscriptionAttributes",),
        update=("sns:SetSubscriptionAttributes",),
        delete=("sns:Unsubscribe", "sns:GetSubscriptionAttributes"),
    ),
    "aws:sqs/queue:Queue": ProviderCalls(
        source="internal/service/sqs/queue.go",
        create=("sqs:CreateQueue", "sqs:TagQueue", "sqs:GetQueueAttributes"),
        read=("sqs:GetQueueAttributes", "sqs:ListQueueTags"),
        update=("sqs:SetQueueAttributes", "sqs:GetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"),
        delete=("sqs:DeleteQueue", "sqs:GetQueueAttributes"),
    ),
    "aws:xray/samplingRule:SamplingRule": ProviderCalls(
        source="internal/service/xray/sampling_rule.go",
        create=("xray:CreateSamplingRule", "xray:TagResource"),
        read=("xray:GetSamplingRules", "xray:ListTagsForResource"),
        update=("xray:UpdateSamplingRule", "xray:TagResource", "xray:UntagResource"),
        delete=("xray:DeleteSamplingRule",),
    ),
    "aws:ec2/internetGateway:InternetGateway": ProviderCalls(
        source="internal/service/ec2/vpc_internet_gateway.go",
        create=(
            "ec2:CreateInternetGateway",
            "ec2:CreateTags",
            "ec2:AttachInternetGateway",
            "ec2:DescribeInternetGateways",
        ),
        read=("ec2:DescribeInternetGateways",),
        update=(
            "ec2:AttachInternetGateway",
            "ec2:DetachInternetGateway",
            "ec2:DescribeInternetGateways",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ),
        delete=("ec2:DetachInternetGateway", "ec2:DeleteInternetGateway", "ec2:DescribeInternetGateways"),
        note="Attach and detach wait on DescribeInternetGateways (attachInternetGateway, detachInternetGateway).",
    ),
    "aws:ec2/routeTable:RouteTable": ProviderCalls(
        source="internal/service/ec2/vpc_route_table.go",
        create=("ec2:CreateRouteTable", "ec2:CreateTags", "ec2:CreateRoute", "ec2:DescribeRouteTables"),
        read=("ec2:DescribeRouteTables",),
        update=(
            "ec2:CreateRoute",
            "ec2:ReplaceRoute",
            "ec2:DeleteRoute",
            "ec2:DescribeRouteTables",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ),
        delete=("ec2:DisassociateRouteTable", "ec2:DeleteRouteTable", "ec2:DescribeRouteTables"),
        note=(
            "Each route change waits on DescribeRouteTables (waitRouteReady, waitRouteDeleted). The gateway"
            " endpoint's route is the endpoint's own (vpc_endpoint.go): flattenRoutes skips vpce- routes, and"
            " calls DescribeNetworkInterfaces only for routes to a network interface, which this table has none of."
        ),
    ),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ProviderCalls(
        source="internal/service/ec2/vpc_route_table_association.go",
        create=("ec2:AssociateRouteTable", "ec2:DescribeRouteTables"),
        read=("ec2:DescribeRouteTables",),
        update=("ec2:ReplaceRouteTableAssociation", "ec2:AssociateRouteTable", "ec2:DescribeRouteTables"),
        delete=("ec2:DisassociateRouteTable", "ec2:DescribeRouteTables"),
        note="Update associates afresh when the old association is gone; every change waits on DescribeRouteTables.",
    ),
    "aws:ec2/securityGroup:SecurityGroup": ProviderCalls(
        source="internal/service/ec2/vpc_security_group.go",
        create=(
            "ec2:CreateSecurityGroup",
            "ec2:CreateTags",
            "ec2:DescribeSecurityGroups",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupEgress",
        ),
        read=("ec2:DescribeSecurityGroups",),
        update=(
            "ec2:DescribeSecurityGroups",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ),
        delete=("ec2:DeleteSecurityGroup", "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"),
        note=(
            "Create revokes the default allow-all egress rules, then adds the program's through the update"
            " (which reads the group first). Delete lists the group's network interfaces (deleteLingeringENIs,"
            " which removes only Lambda, Comprehend and DMS ones) and retries DeleteSecurityGroup while a"
            " task's interface still holds it; revoke_rules_on_delete is off, so no DescribeSecurityGroupRules."
        ),
    ),
    "aws:ec2/subnet:Subnet": ProviderCalls(
        source="internal/service/ec2/vpc_subnet.go",
        create=("ec2:CreateSubnet", "ec2:CreateTags", "ec2:DescribeSubnets"),
        read=("ec2:DescribeSubnets",),
        update=("ec2:ModifySubnetAttribute", "ec2:DescribeSubnets", "ec2:CreateTags", "ec2:DeleteTags"),
        delete=("ec2:DescribeNetworkInterfaces", "ec2:DeleteSubnet"),
        note=(
            "map_public_ip_on_launch=False is a new subnet's own value, so modifySubnetAttributesOnCreate"
            " sends no ModifySubnetAttribute; a change of it does, then waits on DescribeSubnets. Delete lists"
            " the subnet's network interfaces (deleteLingeringENIs) and retries DeleteSubnet on DependencyViolation."
        ),
    ),
    "aws:ec2/vpc:Vpc": ProviderCalls(
        source="internal/service/ec2/vpc_.go",
        create=(
            "ec2:CreateVpc",
            "ec2:CreateTags",
            "ec2:DescribeVpcs",
            "ec2:ModifyVpcAttribute",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeNetworkAcls",
        ),
        read=(
            "ec2:DescribeVpcs",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeNetworkAcls",
        ),
        update=(
            "ec2:ModifyVpcAttribute",
            "ec2:DescribeVpcAttribute",
            "ec2:CreateTags",
            "ec2:DeleteTags",
            "ec2:DescribeVpcs",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeNetworkAcls",
        ),
        delete=("ec2:DeleteVpc", "ec2:DescribeVpcs"),
        note=(
            "enable_dns_hostnames=True differs from a new VPC's value: create sends ModifyVpcAttribute and"
            " waits on DescribeVpcAttribute (modifyVPCDNSHostnames); enable_dns_support=True is the default."
            " The read (which create and update end in) finds the VPC's main route table, default security"
            " group and default network ACL."
        ),
    ),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ProviderCalls(
        source="internal/service/ec2/vpc_endpoint.go",
        create=("ec2:CreateVpcEndpoint", "ec2:CreateTags", "ec2:DescribeVpcEndpoints", "ec2:DescribePrefixLists"),
        read=("ec2:DescribeVpcEndpoints", "ec2:DescribePrefixLists"),
        update=(
            "ec2:ModifyVpcEndpoint",
            "ec2:CreateTags",
            "ec2:DeleteTags",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribePrefixLists",
        ),
        delete=("ec2:DeleteVpcEndpoints", "ec2:DescribeVpcEndpoints"),
        note=(
            "A gateway endpoint's read looks up its service's prefix list (cidr_blocks); it has no network"
            " interfaces, so findSubnetConfigurationsByNetworkInterfaceIDs makes no DescribeNetworkInterfaces."
        ),
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": ProviderCalls(
        source="internal/service/ecr/lifecycle_policy.go",
        create=("ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy"),
        read=("ecr:GetLifecyclePolicy",),
        delete=("ecr:DeleteLifecyclePolicy",),
        note="No update: policy and repository are ForceNew, so a change replaces the policy.",
    ),
    "aws:ecr/repository:Repository": ProviderCalls(
        source="internal/service/ecr/repository.go",
        create=("ecr:CreateRepository", "ecr:TagResource", "ecr:DescribeRepositories", "ecr:ListTagsForResource"),
        read=("ecr:DescribeRepositories", "ecr:ListTagsForResource"),
        update=(
            "ecr:PutImageTagMutability",
            "ecr:PutImageScanningConfiguration",
            "ecr:TagResource",
            "ecr:UntagResource",
            "ecr:DescribeRepositories",
            "ecr:ListTagsForResource",
        ),
        delete=("ecr:DeleteRepository", "ecr:DescribeRepositories"),
        note="force_delete: DeleteRepository with force removes the images itself. The image's push (docker-build) is not a provider call: the deploy role's ManageStackToolsRepository grants it (ECR_PUSH_ACTIONS).",
    ),
    "aws:ecs/cluster:Cluster": ProviderCalls(
        source="internal/service/ecs/cluster.go",
        create=("ecs:CreateCluster", "ecs:TagResource", "ecs:DescribeClusters", "iam:CreateServiceLinkedRole"),
        read=("ecs:DescribeClusters",),
        update=("ecs:UpdateCluster", "ecs:DescribeClusters", "ecs:TagResource", "ecs:UntagResource"),
        delete=("ecs:DeleteCluster", "ecs:DescribeClusters"),
        note=(
            "CreateCluster creates ECS's service-linked role in an account that has none"
            " (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html)."
            " A settings change is UpdateCluster with settings, then waitClusterAvailable; the provider never"
            " calls UpdateClusterSettings. Tags come back in DescribeClusters (include TAGS), so no ListTagsForResource."
        ),
    ),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": ProviderCalls(
        source="internal/service/ecs/cluster_capacity_providers.go",
        create=("ecs:PutClusterCapacityProviders", "ecs:DescribeClusters"),
        read=("ecs:DescribeClusters",),
        update=("ecs:PutClusterCapacityProviders", "ecs:DescribeClusters"),
        delete=("ecs:PutClusterCapacityProviders", "ecs:DescribeClusters"),
    ),
    "aws:ecs/taskDefinition:TaskDefinition": ProviderCalls(
        source="internal/service/ecs/task_definition.go",
        create=("ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole", "ecs:DescribeTaskDefinition"),
        read=("ecs:DescribeTaskDefinition",),
        update=("ecs:TagResource", "ecs:UntagResource", "ecs:DescribeTaskDefinition"),
        delete=("ecs:DeregisterTaskDefinition",),
        note=(
            "Update is tags only; any other change registers a new revision (replace) and the old one is"
            " deregistered. Tags come back in DescribeTaskDefinition (include TAGS)."
        ),
    ),
}

DATA_SOURCES: dict[str, ProviderCalls] = {
    "aws:index/getCallerIdentity:getCallerIdentity": ProviderCalls(
        source="internal/service/sts/caller_identity_data_source.go", read=("sts:GetCallerIdentity",)
    ),
    "aws:route53/getZone:getZone": ProviderCalls(
        source="internal/service/route53/zone_data_source.go",
        read=("route53:ListHostedZones", "route53:GetHostedZone", "route53:ListTagsForResource"),
    ),
    "aws:servicequotas/getServiceQuota:getServiceQuota": ProviderCalls(
        source="internal/service/servicequotas/service_quota_data_source.go",
        read=("servicequotas:GetAWSDefaultServiceQuota", "servicequotas:GetServiceQuota"),
    ),
    "aws:ssm/getParameter:getParameter": ProviderCalls(
        source="internal/service/ssm/parameter_data_source.go", read=("ssm:GetParameter",)
    ),
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": ProviderCalls(
        source="internal/service/ecr/authorization_token_data_source.go", read=("ecr:GetAuthorizationToken",)
    ),
    "aws:index/getAvailabilityZones:getAvailabilityZones": ProviderCalls(
        source="internal/service/ec2/ec2_availability_zones_data_source.go", read=("ec2:DescribeAvailabilityZones",)
    ),
}

PREVIEW_SKIPS: dict[str, str] = {
    "aws:secretsmanager/secretVersion:SecretVersion": (
        "Reading a secret version back is GetSecretValue: the preview role never reads a secret"
        " value, so pull-request previews leave secret versions out (`--exclude`, docs/deploy.md,"
        ' "What a pull request\'s preview reads").'
    ),
    "aws:cloudwatch/eventConnection:EventConnection": (
        "It holds the LLM key, which a pull request never gets: its preview would show the stand-in key as a change."
    ),
}
"""Resource types the pull-request preview leaves out (refresh and preview), and why."""
