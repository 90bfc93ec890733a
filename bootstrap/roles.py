"""The pipeline's AWS roles as plain data: who may assume them, and what they may do.

Per stack of the agent-infra program, two roles in that stack's account:

- ``agent-infra-<stack>-deploy`` runs ``pulumi up``. It is trusted for one GitHub OIDC
  subject: the stack's GitHub environment (``repo:<owner>/<repo>:environment:<stack>``; the
  workflows deploy dev in ``dev`` and prod in ``prod``, each limited to the main branch and
  holding that stack's write token), or the main branch itself for a stack without one
  (``repo:<owner>/<repo>:ref:refs/heads/main``).
- ``agent-infra-<stack>-preview`` runs ``pulumi preview --refresh`` for pull requests
  (``repo:<owner>/<repo>:pull_request``). A pull request's workflow is whatever its branch
  says, so this role must be harmless in anyone's hands who can push a branch: it reads
  the configuration of this stack's resources and nothing else, no table items, no log
  events, no queue messages, no secret values.

Subject formats: GitHub, "Example subject claims"
(https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect#example-subject-claims);
a job with ``environment:`` gets the environment form, a pull_request run the pull_request
form, any other run on a branch the ref form. AWS, "Configuring a role for GitHub OIDC
identity provider" (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-idp_oidc.html#idp_oidc_Create_GitHub):
condition on ``token.actions.githubusercontent.com:aud`` = ``sts.amazonaws.com`` and on the
``:sub`` key; StringEquals on an exact subject, so no other repository, branch or
environment matches.

Scope: resources are named by this stack's fixed names where the program fixes them
(state machines, log groups, topics, alarms, dashboards, budget, layer, key alias), and by
the ``stack`` tag the provider puts on every resource where names are generated
(``aws:ResourceTag/stack`` to use one, ``aws:RequestTag/stack`` to create one); regional
calls only in the stack's regions (``aws:RequestedRegion``). Where neither works, the
statement says why in its Sid and the comment beside it.

One module on purpose: the deploy, preview and boundary documents are built from the same
per-service builders and scope, and tests/test_bootstrap.py checks them against each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.naming import (
    api_gateway_logging_policy_arn,
    boundary_arn,
    log_group_prefixes,
    role_path,
    service_endpoint,
    stack_resource_name,
)
from policy.rules import LOG_DELIVERY_ACTIONS, TASK_TOKEN_ACTIONS, XRAY_ACTIONS, XRAY_SAMPLING_ACTIONS

OIDC_HOST = "token.actions.githubusercontent.com"
OIDC_URL = f"https://{OIDC_HOST}"
OIDC_AUDIENCE = "sts.amazonaws.com"
ROLE_KINDS = ("deploy", "preview")
# How long a role's session may last (IAM allows 1 to 12 hours,
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_update-role-settings.html#id_roles_update-session-duration):
# a first prod deploy creates a table with replicas in three regions (each replica is built
# while the table already serves), certificates that wait for DNS validation and every
# function, and must not lose its credentials half way; a preview only reads.
SESSION_SECONDS = {"deploy": 4 * 3600, "preview": 3600}
# IAM's limit on a managed policy document, whitespace excluded
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
MANAGED_POLICY_MAX_CHARS = 6144


SERVICE_LINKED_ROLES = {
    "apidestinations.events.amazonaws.com": "AWSServiceRoleForAmazonEventBridgeApiDestinations",
    "ops.apigateway.amazonaws.com": "AWSServiceRoleForAPIGateway",
}
"""Service-linked roles a first deploy may create, by service principal."""


def role_name(stack: str, kind: str) -> str:
    """``agent-infra-<stack>-deploy`` / ``-preview``: the names the workflows assume."""
    if kind not in ROLE_KINDS:
        raise ValueError(f"kind must be one of {ROLE_KINDS}")
    return stack_resource_name(stack, kind)


@dataclass(frozen=True, kw_only=True)
class StackSettings:
    """What the bootstrap needs to know of one stack of the program."""

    regions: Sequence[str]
    environment: str | None = None
    """The GitHub environment its deploy job runs in; None: deployed from the main branch."""
    hosted_zone_id: str | None = None
    """Route 53 zone of ``agent-infra:domain``, when the stack has one."""
    fault_injection: bool = False
    """``agent-infra:faultInjection.enabled``: the failover experiments (components/fault_injection.py)."""
    long_tools: bool = False
    """A tool of runtime ``fargate-spot``: its cluster, network, image and task definitions
    (components/long_tools.py)."""


def subject(repository: str, *, environment: str | None = None, branch: str | None = None) -> str:
    """The exact ``sub`` claim of a GitHub job: environment, branch, or pull request."""
    owner_repo = repository.strip()
    if owner_repo.count("/") != 1 or any(c in owner_repo for c in "*?: "):
        raise ValueError(f"repository must be <owner>/<repo> without wildcards, got {repository!r}")
    if environment is not None:
        return f"repo:{owner_repo}:environment:{environment}"
    if branch is not None:
        return f"repo:{owner_repo}:ref:refs/heads/{branch}"
    return f"repo:{owner_repo}:pull_request"


def trust_policy(provider_arn: str, sub: str) -> dict:
    """Only GitHub's OIDC tokens for this audience and exactly this subject."""
    if any(c in sub for c in "*?"):
        raise ValueError(f"the subject is matched exactly; no wildcards: {sub!r}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GitHubActionsOidc",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{OIDC_HOST}:aud": OIDC_AUDIENCE, f"{OIDC_HOST}:sub": sub}},
            }
        ],
    }


def _statement(sid: str, actions: Sequence[str], resources: Sequence[str], condition: Mapping | None = None) -> dict:
    out = {"Sid": sid, "Effect": "Allow", "Action": sorted(set(actions)), "Resource": list(resources)}
    if condition:
        out["Condition"] = dict(condition)
    return out


@dataclass(frozen=True)
class _Scope:
    partition: str
    account: str
    stack: str
    regions: Sequence[str]

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{'*' if regional else ''}:{self.account}:{resource}"

    def in_regions(self, **more: str | Sequence[str]) -> dict:
        return {"StringEquals": {"aws:RequestedRegion": list(self.regions), **more}}

    def tagged(self, **more: str | Sequence[str]) -> dict:
        return self.in_regions(**{"aws:ResourceTag/stack": self.stack, **more})

    def tagging(self) -> dict:
        """Tagging with this stack's tag: a new resource (no tag yet), or one already this
        stack's. ``aws:RequestTag`` alone would let the role retag another stack's resource
        as its own and then manage it; ``aws:ResourceTag`` with ``IfExists`` refuses a
        resource whose ``stack`` tag is another's, and still lets a create tag the resource
        it makes (which has no tags when the tagging is authorized)
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_tags.html#access_tags_control-resources,
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IfExists)."""
        return {
            **self.in_regions(**{"aws:RequestTag/stack": self.stack}),
            "StringEqualsIfExists": {"aws:ResourceTag/stack": self.stack},
        }

    @property
    def prefix(self) -> str:
        """``agent-infra-<stack>-``: what every named resource of the stack starts with."""
        return stack_resource_name(self.stack, "")


def _read_statements(s: _Scope, hosted_zone_id: str | None) -> list[dict]:
    """Reading the configuration of this stack's resources, what a refresh needs."""
    p, a = s.partition, s.account
    statements = [
        _statement("WhoAmI", ["sts:GetCallerIdentity"], ["*"]),
        _statement("ListKeyAliases", ["kms:ListAliases"], ["*"]),
        _statement(
            "ReadStackKeys",
            ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"],
            [s.arn("kms", "key/*")],
            s.tagged(),
        ),
        # Lambda returns a function's environment only to callers who may decrypt it.
        _statement(
            "ReadEncryptedFunctionEnvironments",
            ["kms:Decrypt"],
            [s.arn("kms", "key/*")],
            s.tagged(**{"kms:ViaService": [service_endpoint("lambda", r, s.partition) for r in s.regions]}),
        ),
        _statement(
            "ReadStackTable",
            [
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:DescribeKinesisStreamingDestination",
                "dynamodb:DescribeTable",
                "dynamodb:DescribeTimeToLive",
                "dynamodb:ListTagsOfResource",
            ],
            [s.arn("dynamodb", "table/*")],
            s.tagged(),
        ),
        _statement(
            "ReadStackRoles",
            ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"],
            [_roles_arn(s)],
        ),
        _statement(
            "ReadStackFunctions",
            [
                "lambda:GetAlias",
                "lambda:GetFunction",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionConcurrency",
                "lambda:GetFunctionConfiguration",
                "lambda:GetFunctionEventInvokeConfig",
                "lambda:GetFunctionRecursionConfig",
                "lambda:GetPolicy",
                "lambda:GetProvisionedConcurrencyConfig",
                "lambda:GetRuntimeManagementConfig",
                "lambda:ListTags",
                "lambda:ListVersionsByFunction",
            ],
            [s.arn("lambda", "function:*")],
            s.tagged(),
        ),
        _statement("ReadStackLayer", ["lambda:GetLayerVersion"], [s.arn("lambda", f"layer:{s.prefix}deps:*")]),
        _statement(
            "ReadStackQueues",
            ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListQueueTags"],
            [s.arn("sqs", "*")],
            s.tagged(),
        ),
        _statement(
            "ReadStackSecretsMetadata",
            ["secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"],
            [s.arn("secretsmanager", "secret:*")],
            s.tagged(),
        ),
        _statement(
            "ReadStackTopics",
            [
                "sns:GetDataProtectionPolicy",
                "sns:GetSubscriptionAttributes",
                "sns:GetTopicAttributes",
                "sns:ListTagsForResource",
            ],
            [s.arn("sns", f"{s.prefix}alarms"), s.arn("sns", f"{s.prefix}alarms:*")],
            s.in_regions(),
        ),
        _statement(
            "ReadStackLogGroups",
            ["logs:ListTagsForResource", "logs:ListTagsLogGroup"],
            _log_group_arns(s),
            s.in_regions(),
        ),
        _statement(
            "ReadStackStateMachines",
            ["states:DescribeStateMachine", "states:ListStateMachineVersions", "states:ListTagsForResource"],
            [s.arn("states", f"stateMachine:{s.prefix}*")],
            s.in_regions(),
        ),
        # The provider validates a changed definition while it plans (preview included); the
        # action checks a document and takes no resource
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html).
        _statement("ValidateDefinitions", ["states:ValidateStateMachineDefinition"], ["*"], s.in_regions()),
        _statement(
            "ReadStackSamplingRules",
            ["xray:ListTagsForResource"],
            [s.arn("xray", f"sampling-rule/{s.prefix}*"), s.arn("xray", "sampling-rule/ai-*")],
            s.in_regions(),
        ),
        # The provider reads a sampling rule by listing them (GetSamplingRules), an action
        # that takes no resource (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html).
        _statement("ListSamplingRulesWithoutResourceTypes", ["xray:GetSamplingRules"], ["*"], s.in_regions()),
        # The provider reads a log group by listing them by name prefix (DescribeLogGroups):
        # its names and settings only, never log events; the action is granted on "*" as
        # AWS's own examples do (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-identity-based-access-control-cwl.html).
        _statement("ListLogGroupsWithoutResourceTypes", ["logs:DescribeLogGroups"], ["*"], s.in_regions()),
        # The program reads the account's Lambda concurrency quota at preview: the data source
        # asks for AWS's default first, an action without a resource type
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_servicequotas.html).
        _statement(
            "ReadLambdaConcurrencyQuota",
            ["servicequotas:GetServiceQuota"],
            [s.arn("servicequotas", "lambda/L-B99A9384")],
            s.in_regions(),
        ),
        _statement(
            "ReadDefaultQuotasWithoutResourceTypes", ["servicequotas:GetAWSDefaultServiceQuota"], ["*"], s.in_regions()
        ),
        _statement(
            "ReadStackConnections",
            ["events:DescribeConnection"],
            [s.arn("events", f"connection/{s.prefix}*")],
            s.in_regions(),
        ),
        _statement(
            "ReadStackAlarmsAndDashboards",
            ["cloudwatch:DescribeAlarms", "cloudwatch:GetDashboard", "cloudwatch:ListTagsForResource"],
            [s.arn("cloudwatch", f"alarm:{s.prefix}*"), f"arn:{p}:cloudwatch::{a}:dashboard/{s.prefix}*"],
            s.in_regions(),
        ),
        _statement(
            "ReadStackBudget",
            ["budgets:ListTagsForResource", "budgets:ViewBudget"],
            [f"arn:{p}:budgets::{a}:budget/{stack_resource_name(s.stack)}"],
        ),
        # API Gateway names APIs, keys and plans by generated ids: the scope is this
        # account's API Gateway in the stack's regions, reads only
        # (https://docs.aws.amazon.com/apigateway/latest/developerguide/arn-format-reference.html).
        # /account: the account's CloudWatch role for API Gateway logs, which the Account
        # resource reads (https://docs.aws.amazon.com/apigateway/latest/api/API_GetAccount.html).
        _statement(
            "ReadApiGatewayInStackRegions",
            ["apigateway:GET"],
            [*_apigateway_arns(s), f"arn:{p}:apigateway:*::/account"],
            s.in_regions(),
        ),
        _statement(
            "ReadStackCertificates",
            ["acm:DescribeCertificate", "acm:ListTagsForCertificate"],
            [s.arn("acm", "certificate/*")],
            s.tagged(),
        ),
    ]
    if hosted_zone_id:
        statements += [
            _statement("ListZones", ["route53:ListHostedZones", "route53:ListHostedZonesByName"], ["*"]),
            _statement(
                "ReadStackZone",
                ["route53:GetHostedZone", "route53:ListResourceRecordSets", "route53:ListTagsForResource"],
                [f"arn:{p}:route53:::hostedzone/{hosted_zone_id}"],
            ),
            # Health checks are named by generated ids and take no tag conditions
            # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonroute53.html).
            _statement(
                "ReadHealthChecksByIdOnly",
                ["route53:GetHealthCheck", "route53:ListTagsForResource"],
                [f"arn:{p}:route53:::healthcheck/*"],
            ),
        ]
    return statements


def _roles_arn(s: _Scope) -> str:
    return f"arn:{s.partition}:iam::{s.account}:role{role_path(s.stack)}*"


def _log_group_arns(s: _Scope) -> list[str]:
    return [s.arn("logs", f"log-group:{prefix}*") for prefix in log_group_prefixes(s.stack)]


def _apigateway_arns(s: _Scope) -> list[str]:
    paths = ("/restapis*", "/apis*", "/apikeys*", "/usageplans*", "/domainnames*", "/tags*")
    return [f"arn:{s.partition}:apigateway:*::{path}" for path in paths]


def _write_statements(s: _Scope, hosted_zone_id: str | None) -> list[dict]:
    """Creating, changing and deleting this stack's resources: one builder per AWS service,
    in a fixed order (the statements fill the role's managed policies in this order)."""
    return [
        *_kms_writes(s),
        *_dynamodb_writes(s),
        *_iam_writes(s, hosted_zone_id),
        *_lambda_writes(s),
        *_sqs_writes(s),
        *_xray_writes(s),
        *_events_writes(s),
        *_secretsmanager_writes(s),
        *_sns_writes(s),
        *_logs_writes(s),
        *_states_writes(s),
        *_cloudwatch_writes(s),
        *_budgets_writes(s),
        *_apigateway_writes(s),
        *_acm_writes(s),
        *_route53_writes(s, hosted_zone_id),
    ]


def _kms_writes(s: _Scope) -> list[dict]:
    """KMS: the stack's keys and their aliases, and their use through the services that encrypt with them."""
    key = [s.arn("kms", "key/*")]
    return [
        _statement("CreateStackKeys", ["kms:CreateKey"], ["*"], s.tagging()),
        _statement("TagNewStackKeys", ["kms:TagResource"], key, s.tagging()),
        _statement(
            "ManageStackKeys",
            [
                "kms:CreateAlias",
                "kms:DeleteAlias",
                "kms:DisableKeyRotation",
                "kms:EnableKeyRotation",
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:UpdateAlias",
                "kms:UpdateKeyDescription",
            ],
            key,
            s.tagged(),
        ),
        _statement(
            "StackKeyAliases",
            ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
            [s.arn("kms", f"alias/{s.prefix}*")],
            s.in_regions(),
        ),
        # Lambda (environment variables), SQS, Secrets Manager and DynamoDB (a table and its
        # replicas under the region's key: CreateGrant and DescribeKey as the caller,
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html)
        # use the key for the deployer through the key policy's IAM-granted statements.
        _statement(
            "UseStackKeysThroughServices",
            ["kms:CreateGrant", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            key,
            s.tagged(
                **{
                    "kms:ViaService": [
                        service_endpoint(service, r, s.partition)
                        for service in ("lambda", "sqs", "secretsmanager", "dynamodb")
                        for r in s.regions
                    ]
                }
            ),
        ),
    ]


def _dynamodb_writes(s: _Scope) -> list[dict]:
    """DynamoDB: the stack's table, its replicas and the replication's service-linked role."""
    p, a = s.partition, s.account
    return [
        _statement(
            "CreateStackTable",
            ["dynamodb:CreateTable", "dynamodb:TagResource"],
            [s.arn("dynamodb", "table/*")],
            s.tagging(),
        ),
        # Adding a replica needs these item actions on the table besides the replica
        # actions (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_reqs_bestpractices.html).
        _statement(
            "ManageStackTable",
            [
                "dynamodb:BatchWriteItem",
                "dynamodb:CreateTableReplica",
                "dynamodb:DeleteItem",
                "dynamodb:DeleteTable",
                "dynamodb:DeleteTableReplica",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:TagResource",
                "dynamodb:UntagResource",
                "dynamodb:UpdateContinuousBackups",
                "dynamodb:UpdateItem",
                "dynamodb:UpdateTable",
                "dynamodb:UpdateTimeToLive",
            ],
            [s.arn("dynamodb", "table/*")],
            s.tagged(),
        ),
        _statement(
            "DynamoDBReplicationServiceRole",
            ["iam:CreateServiceLinkedRole"],
            [
                f"arn:{p}:iam::{a}:role/aws-service-role/replication.dynamodb.amazonaws.com/"
                "AWSServiceRoleForDynamoDBReplication"
            ],
            {"StringEquals": {"iam:AWSServiceName": "replication.dynamodb.amazonaws.com"}},
        ),
    ]


def _iam_writes(s: _Scope, hosted_zone_id: str | None) -> list[dict]:
    """IAM: the service-linked roles of the services the stack uses, and the stack's own roles."""
    p, a = s.partition, s.account
    return [
        # A service creates its service-linked role the first time it is used in the account,
        # as the caller: EventBridge for the openai provider's connection
        # (https://docs.aws.amazon.com/eventbridge/latest/userguide/using-service-linked-roles-service-action-1.html),
        # API Gateway for a custom domain
        # (https://docs.aws.amazon.com/apigateway/latest/developerguide/using-service-linked-roles.html).
        _statement(
            "ServiceLinkedRolesOfUsedServices",
            ["iam:CreateServiceLinkedRole"],
            [
                f"arn:{p}:iam::{a}:role/aws-service-role/{service}/{role}"
                for service, role in SERVICE_LINKED_ROLES.items()
                if hosted_zone_id or service != "ops.apigateway.amazonaws.com"
            ],
            {
                "StringEquals": {
                    "iam:AWSServiceName": [
                        service
                        for service in SERVICE_LINKED_ROLES
                        if hosted_zone_id or service != "ops.apigateway.amazonaws.com"
                    ]
                }
            },
        ),
        # The program puts its roles under /agent-infra/<stack>/ with the stack's
        # permissions boundary (__main__.py): the path names them, so this role cannot touch
        # a role anywhere else, itself included; and it may create a role or write its
        # policy only with that boundary on it, so no role it makes can do more than the
        # boundary allows (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
        _statement(
            "ManageStackRolesWithinTheBoundary",
            ["iam:CreateRole", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"],
            [_roles_arn(s)],
            {"StringEquals": {"iam:PermissionsBoundary": boundary_arn(p, a, s.stack)}},
        ),
        # The one managed policy a stack attaches (api.manageAccountLogging: API Gateway's
        # CloudWatch role, https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html):
        # to the stack's roles only, which carry the stack's boundary, and no other policy
        # (iam:PolicyARN, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_policyarn;
        # iam:PermissionsBoundary on attach and detach as in AWS's delegation example,
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
        _statement(
            "AttachOnlyApiGatewayLoggingPolicy",
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            [_roles_arn(s)],
            {
                "ArnEquals": {"iam:PolicyARN": api_gateway_logging_policy_arn(p)},
                "StringEquals": {"iam:PermissionsBoundary": boundary_arn(p, a, s.stack)},
            },
        ),
        _statement(
            "ManageStackRoles",
            [
                "iam:DeleteRole",
                "iam:ListInstanceProfilesForRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
            ],
            [_roles_arn(s)],
        ),
        _statement(
            "PassStackRolesToTheirServices",
            ["iam:PassRole"],
            [_roles_arn(s)],
            {
                "StringEquals": {
                    "iam:PassedToService": ["apigateway.amazonaws.com", "lambda.amazonaws.com", "states.amazonaws.com"],
                }
            },
        ),
    ]


def _lambda_writes(s: _Scope) -> list[dict]:
    """Lambda: the stack's functions and its dependencies layer."""
    return [
        _statement(
            "CreateStackFunctions",
            ["lambda:CreateFunction", "lambda:TagResource"],
            [s.arn("lambda", "function:*")],
            s.tagging(),
        ),
        _statement(
            "ManageStackFunctions",
            [
                "lambda:AddPermission",
                "lambda:CreateAlias",
                "lambda:DeleteAlias",
                "lambda:DeleteFunction",
                "lambda:DeleteFunctionConcurrency",
                "lambda:DeleteFunctionEventInvokeConfig",
                "lambda:DeleteProvisionedConcurrencyConfig",
                "lambda:PublishVersion",
                "lambda:PutFunctionConcurrency",
                "lambda:PutFunctionEventInvokeConfig",
                "lambda:PutProvisionedConcurrencyConfig",
                "lambda:RemovePermission",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:UpdateAlias",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:UpdateFunctionEventInvokeConfig",
            ],
            [s.arn("lambda", "function:*")],
            s.tagged(),
        ),
        _statement(
            "ManageStackLayer",
            ["lambda:DeleteLayerVersion", "lambda:PublishLayerVersion"],
            [s.arn("lambda", f"layer:{s.prefix}deps"), s.arn("lambda", f"layer:{s.prefix}deps:*")],
            s.in_regions(),
        ),
    ]


def _sqs_writes(s: _Scope) -> list[dict]:
    """SQS: the stack's failure queues."""
    return [
        _statement("CreateStackQueues", ["sqs:CreateQueue", "sqs:TagQueue"], [s.arn("sqs", "*")], s.tagging()),
        _statement(
            "ManageStackQueues",
            ["sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"],
            [s.arn("sqs", "*")],
            s.tagged(),
        ),
    ]


def _xray_writes(s: _Scope) -> list[dict]:
    """X-Ray: the stack's sampling rules."""
    return [
        # X-Ray sampling rules of the stack (names: components.observability.sampling_rule_name).
        _statement(
            "ManageStackSamplingRules",
            [
                "xray:CreateSamplingRule",
                "xray:DeleteSamplingRule",
                "xray:TagResource",
                "xray:UntagResource",
                "xray:UpdateSamplingRule",
            ],
            [s.arn("xray", f"sampling-rule/{s.prefix}*"), s.arn("xray", "sampling-rule/ai-*")],
            # A shortened name (ai-...) could be another stack's: its stack tag decides
            # (sampling rules take aws:ResourceTag,
            # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html).
            {**s.in_regions(), "StringEqualsIfExists": {"aws:ResourceTag/stack": s.stack}},
        ),
    ]


def _events_writes(s: _Scope) -> list[dict]:
    """EventBridge: the openai provider's connections and the secrets EventBridge keeps for them."""
    return [
        # The openai provider's HTTP Task authenticates through an EventBridge connection;
        # EventBridge keeps its credentials in a secret named events!connection/<name>/...,
        # managed with the caller's permissions
        # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-target-connection.html).
        _statement(
            "ManageStackConnections",
            ["events:CreateConnection", "events:DeleteConnection", "events:UpdateConnection"],
            [s.arn("events", f"connection/{s.prefix}*")],
            s.in_regions(),
        ),
        _statement(
            "ManageStackConnectionSecrets",
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecret",
            ],
            [s.arn("secretsmanager", f"secret:events!connection/{s.prefix}*")],
            s.in_regions(),
        ),
    ]


def _secretsmanager_writes(s: _Scope) -> list[dict]:
    """Secrets Manager: the stack's secrets (the LLM API key)."""
    return [
        _statement(
            "CreateStackSecrets",
            ["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
            [s.arn("secretsmanager", "secret:*")],
            s.tagging(),
        ),
        # The provider reads a secret version back to refresh it: the deployer reads the
        # secret it writes (the preview role does not).
        _statement(
            "ManageStackSecrets",
            [
                "secretsmanager:DeleteSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
                "secretsmanager:UpdateSecret",
            ],
            [s.arn("secretsmanager", "secret:*")],
            s.tagged(),
        ),
    ]


def _sns_writes(s: _Scope) -> list[dict]:
    """SNS: the stack's alarm topic."""
    return [
        _statement(
            "ManageStackTopics",
            [
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:SetSubscriptionAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:TagResource",
                "sns:Unsubscribe",
                "sns:UntagResource",
            ],
            [s.arn("sns", f"{s.prefix}alarms"), s.arn("sns", f"{s.prefix}alarms:*")],
            s.in_regions(),
        ),
    ]


def _logs_writes(s: _Scope) -> list[dict]:
    """CloudWatch Logs: the stack's log groups and the log delivery its state machines and stages set up."""
    return [
        _statement(
            "ManageStackLogGroups",
            [
                "logs:AssociateKmsKey",
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:DeleteRetentionPolicy",
                "logs:DisassociateKmsKey",
                "logs:PutRetentionPolicy",
                "logs:TagLogGroup",
                "logs:TagResource",
                "logs:UntagLogGroup",
                "logs:UntagResource",
            ],
            _log_group_arns(s),
            s.in_regions(),
        ),
        # A state machine or a stage that logs is created only by a caller who may set up
        # CloudWatch Logs delivery; those actions take no resource
        # (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).
        _statement("LogDeliveryForStackLogging", LOG_DELIVERY_ACTIONS, ["*"]),
    ]


def _states_writes(s: _Scope) -> list[dict]:
    """Step Functions: the stack's state machines."""
    return [
        _statement(
            "ManageStackStateMachines",
            [
                "states:CreateStateMachine",
                "states:DeleteStateMachine",
                "states:TagResource",
                "states:UntagResource",
                "states:UpdateStateMachine",
            ],
            [s.arn("states", f"stateMachine:{s.prefix}*")],
            s.in_regions(),
        ),
    ]


def _cloudwatch_writes(s: _Scope) -> list[dict]:
    """CloudWatch: the stack's alarms and dashboards."""
    p, a = s.partition, s.account
    return [
        _statement(
            "ManageStackAlarmsAndDashboards",
            [
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DeleteDashboards",
                "cloudwatch:PutDashboard",
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
            ],
            [s.arn("cloudwatch", f"alarm:{s.prefix}*"), f"arn:{p}:cloudwatch::{a}:dashboard/{s.prefix}*"],
            s.in_regions(),
        ),
    ]


def _budgets_writes(s: _Scope) -> list[dict]:
    """Budgets: the stack's budget."""
    p, a = s.partition, s.account
    return [
        _statement(
            "ManageStackBudget",
            ["budgets:ModifyBudget", "budgets:TagResource", "budgets:UntagResource"],
            [f"arn:{p}:budgets::{a}:budget/{stack_resource_name(s.stack)}"],
        ),
    ]


def _apigateway_writes(s: _Scope) -> list[dict]:
    """API Gateway: the stack's APIs, keys, usage plans, domains, and the account's logging role setting."""
    p = s.partition
    return [
        # Generated ids (see the read statement); /account is API Gateway's one CloudWatch
        # role per account and region, which has no narrower ARN
        # (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html).
        _statement(
            "ManageApiGatewayInStackRegions",
            ["apigateway:DELETE", "apigateway:PATCH", "apigateway:POST", "apigateway:PUT"],
            [*_apigateway_arns(s), f"arn:{p}:apigateway:*::/account"],
            s.in_regions(),
        ),
    ]


def _acm_writes(s: _Scope) -> list[dict]:
    """ACM: the stack's certificates."""
    return [
        _statement("RequestStackCertificates", ["acm:RequestCertificate"], ["*"], s.tagging()),
        _statement(
            "TagNewStackCertificates", ["acm:AddTagsToCertificate"], [s.arn("acm", "certificate/*")], s.tagging()
        ),
        _statement(
            "ManageStackCertificates",
            ["acm:AddTagsToCertificate", "acm:DeleteCertificate", "acm:RemoveTagsFromCertificate"],
            [s.arn("acm", "certificate/*")],
            s.tagged(),
        ),
    ]


def _route53_writes(s: _Scope, hosted_zone_id: str | None) -> list[dict]:
    """Route 53 (only with a custom domain): health checks and the records of the stack's zone."""
    if not hosted_zone_id:
        return []
    p = s.partition
    return [
        _statement("CreateHealthChecks", ["route53:CreateHealthCheck"], ["*"]),
        _statement(
            "ManageStackZoneRecords",
            ["route53:ChangeResourceRecordSets"],
            [f"arn:{p}:route53:::hostedzone/{hosted_zone_id}"],
        ),
        _statement("WaitForZoneChanges", ["route53:GetChange"], [f"arn:{p}:route53:::change/*"]),
        _statement(
            "ManageHealthChecksByIdOnly",
            ["route53:ChangeTagsForResource", "route53:DeleteHealthCheck", "route53:UpdateHealthCheck"],
            [f"arn:{p}:route53:::healthcheck/*"],
        ),
    ]


def _fis_bucket_arns(s: _Scope) -> list[str]:
    """The stack's buckets for the FIS Lambda actions (``bucket_prefix`` agent-infra-<stack>-fis-)."""
    bucket = f"arn:{s.partition}:s3:::{s.prefix}fis-*"
    return [bucket, f"{bucket}/*"]


def _fault_injection_read_statements(s: _Scope) -> list[dict]:
    """What refreshing the failover experiments reads (``faultInjection.enabled``)."""
    p = s.partition
    return [
        _statement(
            "ReadStackExperimentTemplates",
            ["fis:GetExperimentTemplate", "fis:ListTagsForResource"],
            [s.arn("fis", "experiment-template/*")],
            s.tagged(),
        ),
        # The bucket's configuration, never its objects.
        _statement("ReadStackFisBucketConfiguration", FIS_BUCKET_READ_ACTIONS, _fis_bucket_arns(s)[:1]),
        # The FIS extension's layer ARN per region: AWS's public parameter.
        _statement(
            "ReadFisExtensionParameter",
            ["ssm:GetParameter"],
            [f"arn:{p}:ssm:{r}::parameter/aws/service/fis/lambda-extension/*" for r in s.regions],
        ),
    ]


FIS_BUCKET_READ_ACTIONS = (
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:ListBucket",
)


def _fault_injection_write_statements(s: _Scope) -> list[dict]:
    """What deploying the failover experiments needs (``faultInjection.enabled``)."""
    return [
        # Templates have generated ids: the stack tag scopes them (FIS takes aws:RequestTag and
        # aws:ResourceTag, https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsfaultinjectionservice.html);
        # creating or updating one also names the actions it uses.
        _statement(
            "CreateStackExperimentTemplates",
            ["fis:CreateExperimentTemplate", "fis:TagResource"],
            [s.arn("fis", "experiment-template/*"), s.arn("fis", "action/*")],
            s.tagging(),
        ),
        _statement(
            "ManageStackExperimentTemplates",
            [
                "fis:DeleteExperimentTemplate",
                "fis:GetExperimentTemplate",
                "fis:ListTagsForResource",
                "fis:TagResource",
                "fis:UntagResource",
                "fis:UpdateExperimentTemplate",
            ],
            [s.arn("fis", "experiment-template/*")],
            s.tagged(),
        ),
        _statement("UseFisActions", ["fis:UpdateExperimentTemplate"], [s.arn("fis", "action/*")], s.in_regions()),
        _statement(
            "PassExperimentRoles",
            ["iam:PassRole"],
            [_roles_arn(s)],
            {"StringEquals": {"iam:PassedToService": "fis.amazonaws.com"}},
        ),
        _statement(
            "ManageStackFisBuckets",
            [
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:DeleteBucketPolicy",
                "s3:DeleteObject",
                "s3:PutBucketPolicy",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutBucketTagging",
                "s3:PutEncryptionConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
            _fis_bucket_arns(s),
        ),
    ]


# -- long tools (components/long_tools.py) -----------------------------------------------------------

# EC2's network resources the long tools create; their ids are generated, the stack tag
# scopes them (EC2 takes aws:RequestTag on create and aws:ResourceTag after,
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
EC2_NETWORK_RESOURCES = ("vpc", "subnet", "internet-gateway", "route-table", "security-group", "vpc-endpoint")
# Describe calls of EC2 and ECS take no resource type
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html,
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html).
LONG_TOOLS_READS_WITHOUT_RESOURCE_TYPES = (
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribePrefixLists",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
    "ecs:DescribeTaskDefinition",
    "ecr:GetAuthorizationToken",
)
# Pushing an image: what `docker push` calls on the repository
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html).
ECR_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)


def _tools_repository(s: _Scope) -> str:
    return s.arn("ecr", f"repository/{s.prefix}tools")


def _tools_cluster(s: _Scope) -> str:
    return s.arn("ecs", f"cluster/{s.prefix}tools")


def _ec2_network_arns(s: _Scope) -> list[str]:
    return [s.arn("ec2", f"{kind}/*") for kind in EC2_NETWORK_RESOURCES]


def _long_tools_read_statements(s: _Scope) -> list[dict]:
    """What refreshing the long tools reads: the network, the repository, the cluster and the
    task definitions' configuration. The registry token (a data source the preview runs too)
    authorizes nothing by itself: what a caller may do with it is its own IAM policy, which
    here has no image action (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html)."""
    return [
        _statement("DescribeWithoutResourceTypes", LONG_TOOLS_READS_WITHOUT_RESOURCE_TYPES, ["*"], s.in_regions()),
        _statement(
            "ReadStackToolsRepository",
            ["ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:ListTagsForResource"],
            [_tools_repository(s)],
            s.in_regions(),
        ),
        _statement("ReadStackToolsCluster", ["ecs:DescribeClusters"], [_tools_cluster(s)], s.in_regions()),
    ]


def _long_tools_write_statements(s: _Scope) -> list[dict]:
    """What deploying the long tools needs: the network (stack-tagged), the repository and the
    cluster (named), the task definitions, and the image's push."""
    p, a = s.partition, s.account
    return [
        _statement(
            "CreateStackNetwork",
            [
                "ec2:CreateInternetGateway",
                "ec2:CreateRouteTable",
                "ec2:CreateSecurityGroup",
                "ec2:CreateSubnet",
                "ec2:CreateTags",
                "ec2:CreateVpc",
                "ec2:CreateVpcEndpoint",
            ],
            _ec2_network_arns(s),
            s.tagging(),
        ),
        _statement(
            "ManageStackNetwork",
            [
                "ec2:AssociateRouteTable",
                "ec2:AttachInternetGateway",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:CreateRoute",
                "ec2:DeleteInternetGateway",
                "ec2:DeleteRoute",
                "ec2:DeleteRouteTable",
                "ec2:DeleteSecurityGroup",
                "ec2:DeleteSubnet",
                "ec2:DeleteTags",
                "ec2:DeleteVpc",
                "ec2:DeleteVpcEndpoints",
                "ec2:DetachInternetGateway",
                "ec2:DisassociateRouteTable",
                "ec2:ModifySubnetAttribute",
                "ec2:ModifyVpcAttribute",
                "ec2:ModifyVpcEndpoint",
                "ec2:ReplaceRoute",
                "ec2:ReplaceRouteTableAssociation",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
            ],
            _ec2_network_arns(s),
            s.tagged(),
        ),
        _statement(
            "ManageStackToolsRepository",
            [
                "ecr:CreateRepository",
                "ecr:DeleteLifecyclePolicy",
                "ecr:DeleteRepository",
                "ecr:PutImageScanningConfiguration",
                "ecr:PutImageTagMutability",
                "ecr:PutLifecyclePolicy",
                "ecr:TagResource",
                "ecr:UntagResource",
                *ECR_PUSH_ACTIONS,
            ],
            [_tools_repository(s)],
            s.in_regions(),
        ),
        _statement(
            "ManageStackToolsCluster",
            [
                "ecs:CreateCluster",
                "ecs:DeleteCluster",
                "ecs:PutClusterCapacityProviders",
                "ecs:TagResource",
                "ecs:UntagResource",
                "ecs:UpdateCluster",
            ],
            [_tools_cluster(s)],
            s.in_regions(),
        ),
        # Registering a task definition takes no resource type; the request's tags scope it.
        _statement(
            "RegisterStackTaskDefinitions",
            ["ecs:DeregisterTaskDefinition", "ecs:RegisterTaskDefinition"],
            ["*"],
            s.in_regions(),
        ),
        _statement(
            "TagStackTaskDefinitions",
            ["ecs:TagResource", "ecs:UntagResource"],
            [s.arn("ecs", f"task-definition/{s.prefix}*")],
            s.in_regions(),
        ),
        # ECS creates its service-linked role with the account's first cluster
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html).
        _statement(
            "EcsServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [f"arn:{p}:iam::{a}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"],
            {"StringEquals": {"iam:AWSServiceName": "ecs.amazonaws.com"}},
        ),
        _statement(
            "PassTaskRolesToEcs",
            ["iam:PassRole"],
            [_roles_arn(s)],
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
    ]


def _long_tools_boundary_statements(s: _Scope) -> list[dict]:
    """What the long tools' roles may do at most: pull the stack's image (execution role); run,
    watch and stop the stack's tasks and pass their roles (the task machine)."""
    return [
        _statement(
            "PullStackToolsImage",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [_tools_repository(s)],
        ),
        _statement("RunStackTasks", ["ecs:RunTask"], [s.arn("ecs", f"task-definition/{s.prefix}*")]),
        _statement("WatchStackTasks", ["ecs:DescribeTasks", "ecs:StopTask"], [s.arn("ecs", f"task/{s.prefix}tools/*")]),
        _statement(
            "TaskStoppedEvents",
            ["events:DescribeRule", "events:PutRule", "events:PutTargets"],
            [s.arn("events", "rule/StepFunctionsGetEventsForECSTaskRule")],
        ),
        _statement(
            "PassStackTaskRoles",
            ["iam:PassRole"],
            [_roles_arn(s)],
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
        _statement("RegistryToken", ["ecr:GetAuthorizationToken"], ["*"]),
    ]


def _fault_injection_boundary_statements(s: _Scope) -> list[dict]:
    """What the failover experiments' roles may do at most, and the functions' extension."""
    return [
        _statement(
            "ExperimentsPauseReplication",
            [
                "dynamodb:DeleteResourcePolicy",
                "dynamodb:DescribeTable",
                "dynamodb:GetResourcePolicy",
                "dynamodb:PutResourcePolicy",
            ],
            [s.arn("dynamodb", "table/*"), s.arn("dynamodb", "table/*/stream/*")],
            s.in_regions(),
        ),
        _statement("ExperimentsFindFunctions", ["lambda:GetFunction"], [s.arn("lambda", "function:*")], s.in_regions()),
        _statement(
            "FisConfigurations",
            ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"],
            _fis_bucket_arns(s),
        ),
        _statement(
            "ExperimentsWithoutResourceTypes",
            [
                "logs:CreateLogDelivery",
                "logs:DescribeLogGroups",
                "logs:DescribeResourcePolicies",
                "logs:PutResourcePolicy",
                "tag:GetResources",
            ],
            ["*"],
        ),
    ]


def boundary_document(
    *,
    partition: str,
    account: str,
    stack: str,
    regions: Sequence[str],
    fault_injection: bool = False,
    long_tools: bool = False,
) -> dict:
    """The most any role of the stack may do, whatever its own policy says: the actions the
    program's roles use, on this account's resources of those kinds. Each role's own policy
    stays the narrow grant; this caps what a role created by the deploy role could get."""
    s = _Scope(partition, account, stack, list(regions))
    p, a = partition, account
    statements = [
        # Table names are generated; the roles' own policies name the table and its index,
        # and the stack tag keeps every role of this stack off other stacks' tables (an index
        # inherits its table's tags:
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/attribute-based-access-control.html).
        _statement(
            "StackTables",
            [
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem",
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ],
            [s.arn("dynamodb", "table/*"), s.arn("dynamodb", "table/*/index/*")],
            s.tagged(),
        ),
        _statement(
            "StackStateMachines",
            [
                "states:DescribeExecution",
                "states:DescribeStateMachine",
                "states:InvokeHTTPEndpoint",
                "states:StartExecution",
                "states:StartSyncExecution",
            ],
            [s.arn("states", f"stateMachine:{s.prefix}*"), s.arn("states", f"execution:{s.prefix}*")],
        ),
        # The HTTP Task reads its connection's credentials (openai provider).
        _statement(
            "StackConnections", ["events:RetrieveConnectionCredentials"], [s.arn("events", f"connection/{s.prefix}*")]
        ),
        _statement(
            "StackConnectionSecrets",
            ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            [s.arn("secretsmanager", f"secret:events!connection/{s.prefix}*")],
        ),
        _statement("StackFunctions", ["lambda:InvokeFunction"], [s.arn("lambda", "function:*")], s.tagged()),
        _statement("StackQueues", ["sqs:SendMessage"], [s.arn("sqs", "*")], s.tagged()),
        _statement("StackKeys", ["kms:Decrypt", "kms:GenerateDataKey"], [s.arn("kms", "key/*")], s.tagged()),
        _statement(
            "StackSecrets", ["secretsmanager:GetSecretValue"], [s.arn("secretsmanager", "secret:*")], s.tagged()
        ),
        _statement(
            "StackLogGroups",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{arn}:*" for arn in _log_group_arns(s)],
        ),
        # API Gateway's CloudWatch role writes the execution logs it names itself.
        _statement(
            "ApiGatewayExecutionLogs",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogGroups",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            [
                s.arn("logs", "log-group:API-Gateway-Execution-Logs_*"),
                s.arn("logs", "log-group:API-Gateway-Execution-Logs_*:*"),
            ],
        ),
        _statement(
            "StreamToOwnWebSockets",
            ["execute-api:ManageConnections"],
            [s.arn("execute-api", "*/*/POST/@connections/*")],
        ),
        # Inference profiles route to any region: the model, not the region, is the scope.
        _statement(
            "InvokeModels",
            ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
            [f"arn:{p}:bedrock:*::foundation-model/*", f"arn:{p}:bedrock:*:{a}:inference-profile/*"],
        ),
        _statement(
            "WithoutResourceTypes",
            [*XRAY_ACTIONS, *XRAY_SAMPLING_ACTIONS, *LOG_DELIVERY_ACTIONS, *TASK_TOKEN_ACTIONS],
            ["*"],
        ),
    ]
    if fault_injection:
        statements += _fault_injection_boundary_statements(s)
    if long_tools:
        statements += _long_tools_boundary_statements(s)
    return {"Version": "2012-10-17", "Statement": statements}


def _documents(statements: list[dict]) -> list[dict]:
    """Statements packed into as few managed policies as IAM's size limit allows."""

    documents: list[dict] = []
    for entry in statements:
        if documents:
            candidate = {**documents[-1], "Statement": [*documents[-1]["Statement"], entry]}
            if len(json.dumps(candidate, separators=(",", ":"))) <= MANAGED_POLICY_MAX_CHARS:
                documents[-1] = candidate
                continue
        documents.append({"Version": "2012-10-17", "Statement": [entry]})
    return documents


def permission_documents(kind: str, *, partition: str, account: str, stack: str, settings: StackSettings) -> list[dict]:
    """The managed policy documents of ``kind`` (deploy: read and write; preview: read)."""
    scope = _Scope(partition, account, stack, list(settings.regions))
    statements = _read_statements(scope, settings.hosted_zone_id)
    if settings.fault_injection:
        statements += _fault_injection_read_statements(scope)
    if settings.long_tools:
        statements += _long_tools_read_statements(scope)
    if kind == "deploy":
        statements += _write_statements(scope, settings.hosted_zone_id)
        if settings.fault_injection:
            statements += _fault_injection_write_statements(scope)
        if settings.long_tools:
            statements += _long_tools_write_statements(scope)
    elif kind != "preview":
        raise ValueError(f"kind must be one of {ROLE_KINDS}")
    return _documents(statements)
