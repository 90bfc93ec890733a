"""What the policy pack holds the program to, as plain data and plain functions.

One place for the facts the program, its tests, the bootstrap program and the policy pack
share: the IAM actions AWS defines without a resource type (the only ones that may name
``*``), the Lambda runtimes and when each is deprecated, the cost-allocation tag keys, the
stacks whose state is protected. No Pulumi import: the program imports this module too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

# --- IAM: where "*" may stand for a resource -------------------------------------------------

# The Service Authorization Reference lists no resource type for these actions, so a
# statement can only name them with "Resource": "*".
#   X-Ray: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html
XRAY_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
XRAY_SAMPLING_ACTIONS = ("xray:GetSamplingRules", "xray:GetSamplingTargets")
#   CloudWatch Logs vended delivery (what Step Functions logging needs):
#   https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
#   https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html
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
#   Task-token callbacks name a token, not an ARN:
#   https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html
TASK_TOKEN_ACTIONS = ("states:SendTaskFailure", "states:SendTaskSuccess")
#   FIS finds an experiment's targets by tag through the Resource Groups Tagging API:
#   https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsresourcegroupstaggingapi.html
TAG_LOOKUP_ACTIONS = ("tag:GetResources",)
#   What the bootstrap program's deploy role needs beyond those; each action's row in the
#   reference has an empty resource-type column:
#   sts:GetCallerIdentity: list_awssecuritytokenservice.html
#   kms:CreateKey, kms:ListAliases: list_awskeymanagementservice.html
#   acm:RequestCertificate: list_awscertificatemanager.html
#   route53:CreateHealthCheck, route53:ListHostedZones, route53:ListHostedZonesByName:
#   list_amazonroute53.html
#   states:ValidateStateMachineDefinition: list_awsstepfunctions.html
#   servicequotas:GetAWSDefaultServiceQuota: list_servicequotas.html
#   logs:DescribeLogGroups (above, with log delivery): list_amazoncloudwatchlogs.html
DEPLOY_ACTIONS_WITHOUT_RESOURCE_TYPE = (
    "sts:GetCallerIdentity",
    "kms:CreateKey",
    "kms:ListAliases",
    "acm:RequestCertificate",
    "route53:CreateHealthCheck",
    "route53:ListHostedZones",
    "route53:ListHostedZonesByName",
    "states:ValidateStateMachineDefinition",
    "servicequotas:GetAWSDefaultServiceQuota",
    # The long tools (bootstrap/roles.py LONG_TOOLS_READS_WITHOUT_RESOURCE_TYPES, task
    # definitions): no resource type in the service authorization reference.
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
    "ecs:DeregisterTaskDefinition",
    "ecs:RegisterTaskDefinition",
)
ACTIONS_WITHOUT_RESOURCE_TYPE = frozenset(
    {
        *XRAY_ACTIONS,
        *XRAY_SAMPLING_ACTIONS,
        *LOG_DELIVERY_ACTIONS,
        *TASK_TOKEN_ACTIONS,
        *TAG_LOOKUP_ACTIONS,
        # An ECR registry token names no repository
        # (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html).
        "ecr:GetAuthorizationToken",
        *DEPLOY_ACTIONS_WITHOUT_RESOURCE_TYPE,
    }
)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def policy_document(value: Any) -> dict:
    """A policy document given as JSON text (how Pulumi passes it) or as a dict."""
    return json.loads(value) if isinstance(value, str) else dict(value)


def wildcard_problems(document: Mapping) -> list[str]:
    """Every ``*`` action, every ``NotAction``/``NotResource``, every Allow that names no
    resource, and every ``*`` resource on an action that has a resource type.

    Deny statements may be as wide as they like: they only take permissions away.
    """
    problems = []
    for entry in _as_list(document.get("Statement")):
        sid = entry.get("Sid", "?")
        if entry.get("Effect", "Allow") != "Allow":
            continue
        for element in ("NotAction", "NotResource"):
            if element in entry:
                problems.append(f"{sid}: {element} allows everything it does not name")
        actions = _as_list(entry.get("Action"))
        resources = _as_list(entry.get("Resource"))
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{sid}: action {action}")
        if not resources and "NotResource" not in entry:
            problems.append(f"{sid}: names no resource")
        if "*" in resources and not set(actions) <= ACTIONS_WITHOUT_RESOURCE_TYPE:
            problems.append(f"{sid}: resource * for {actions}")
    return problems


def key_policy_problems(document: Mapping) -> list[str]:
    """A KMS key policy: ``"Resource": "*"`` is how a key policy names its own key
    (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html), so only
    wildcard actions and ``NotAction`` are refused, and ``kms:*`` above all."""
    problems = []
    for entry in _as_list(document.get("Statement")):
        if entry.get("Effect", "Allow") != "Allow":
            continue
        sid = entry.get("Sid", "?")
        if "NotAction" in entry:
            problems.append(f"{sid}: NotAction allows everything it does not name")
        for action in _as_list(entry.get("Action")):
            if action == "*" or action.endswith(":*"):
                problems.append(f"{sid}: action {action}")
    return problems


# --- IAM: who a trust or key policy lets in ---------------------------------------------------

# Condition keys that say whose call it is: the caller's account, organization or ARN, or the
# account a service acts for (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html;
# kms:CallerAccount, https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html).
# A statement open to "*" must constrain one of them, not to "*", with an operator that only
# matches the values named: not a Not... operator, not ...IfExists, which matches when the key
# is absent (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IfExists),
# not ForAllValues:, which "also returns true if there are no context keys in the request"
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html).
CALLER_CONDITION_KEYS = frozenset(
    {
        "aws:principalaccount",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalarn",
        "aws:sourceaccount",
        "aws:sourceorgid",
        "kms:calleraccount",
    }
)
_CONSTRAINING_OPERATOR = re.compile(r"^(ForAnyValue:)?(StringEquals|StringLike|ArnEquals|ArnLike)$")
_ACCOUNT = re.compile(r"^(\d{12})$|^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):")


def _principals(entry: Mapping) -> list[str]:
    """The AWS principals of a statement: ``"*"`` for ``"Principal": "*"``."""
    principal = entry.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return _as_list(principal.get("AWS"))
    return []


def _constrains_the_caller(condition: Mapping | None) -> bool:
    for operator, keys in (condition or {}).items():
        if not _CONSTRAINING_OPERATOR.match(operator):
            continue
        for key, values in keys.items():
            values = _as_list(values)
            if key.lower() in CALLER_CONDITION_KEYS and values and "*" not in values:
                return True
    return False


def principal_problems(document: Mapping) -> list[str]:
    """Who a trust policy or a key policy lets in: ``"*"`` (or ``{"AWS": "*"}``) only with a
    condition that says whose call it is (:data:`CALLER_CONDITION_KEYS`), and ``NotPrincipal``
    never with Allow."""
    problems = []
    for entry in _as_list(document.get("Statement")):
        if entry.get("Effect", "Allow") != "Allow":
            continue
        sid = entry.get("Sid", "?")
        if "NotPrincipal" in entry:
            problems.append(f"{sid}: NotPrincipal with Allow lets in everyone it does not name")
        if "*" in _principals(entry) and not _constrains_the_caller(entry.get("Condition")):
            problems.append(
                f"{sid}: Principal * lets in anyone: no condition on the caller's account, organization or ARN"
            )
    return problems


def account_of(arn: Any) -> str | None:
    """The account in an IAM principal: a bare account id or an ``iam``/``sts`` ARN."""
    match = _ACCOUNT.match(str(arn or ""))
    return (match[1] or match[2]) if match else None


def foreign_account_problems(document: Mapping, own_accounts: Iterable[str]) -> list[str]:
    """A trust or key policy that lets in an account other than ``own_accounts`` does so only
    under a condition (an external id, an organization)."""
    own = set(own_accounts)
    problems = []
    for entry in _as_list(document.get("Statement")):
        if entry.get("Effect", "Allow") != "Allow" or entry.get("Condition"):
            continue
        for principal in _principals(entry):
            account = account_of(principal)
            if account and account not in own:
                problems.append(
                    f"{entry.get('Sid', '?')}: lets in account {account}, not this stack's, with no condition"
                )
    return problems


# --- IAM: managed policies ---------------------------------------------------------------------

# The AWS managed policies the program may attach, each for a documented need: API Gateway's
# account-wide CloudWatch role
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html). Any other
# AWS managed policy (AdministratorAccess, ...FullAccess) is wider than a statement the stack
# writes itself, which the pack checks where the stack creates it.
ALLOWED_AWS_MANAGED_POLICIES = frozenset({"service-role/AmazonAPIGatewayPushToCloudWatchLogs"})
_AWS_MANAGED_POLICY = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?P<name>.+)$")


def managed_policy_problem(policy_arn: Any) -> str | None:
    """An attached policy: an AWS managed one only from :data:`ALLOWED_AWS_MANAGED_POLICIES`."""
    match = _AWS_MANAGED_POLICY.match(str(policy_arn or ""))
    if match and match["name"] not in ALLOWED_AWS_MANAGED_POLICIES:
        return (
            f"attaches the AWS managed policy {match['name']}; allowed: {sorted(ALLOWED_AWS_MANAGED_POLICIES)}"
            " (write the statements the role needs instead)"
        )
    return None


# Condition operators that compare strings, and the condition keys whose values are ARNs:
# an ARN belongs in ArnLike/ArnEquals, which match each of the ARN's six parts on its own
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN).
_STRING_OPERATORS = re.compile(r"^(ForAllValues:|ForAnyValue:)?String(Like|Equals|NotLike|NotEquals)(IfExists)?$")
_ARN_KEYS = re.compile(r"(Arn$|:arn$|^aws:SourceArn$|^aws:PrincipalArn$)", re.IGNORECASE)


def arn_condition_problems(document: Mapping) -> list[str]:
    """Every ARN-valued condition key compared with a String operator."""
    problems = []
    for entry in _as_list(document.get("Statement")):
        for operator, keys in (entry.get("Condition") or {}).items():
            if not _STRING_OPERATORS.match(operator):
                continue
            for key in keys:
                if _ARN_KEYS.search(key):
                    problems.append(f"{entry.get('Sid', '?')}: {operator} on {key}; use ArnLike/ArnEquals")
    return problems


# --- encryption at rest ----------------------------------------------------------------------

_KEY_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/[0-9a-f-]+$")


def customer_key_problem(value: Any, region: str | None, what: str) -> str | None:
    """``value`` must be a customer-managed KMS key ARN in ``region``: not missing, not an
    alias (``alias/aws/...`` is an AWS managed key), not a bare key id."""
    if not value:
        return f"{what} is not encrypted with a customer-managed KMS key (no key set)"
    match = _KEY_ARN.match(str(value))
    if not match:
        return f"{what} names {value!r}, not the ARN of a customer-managed KMS key"
    if region and match["region"] != region:
        return f"{what} is in {region} but its key {value} is in {match['region']}"
    return None


# --- TLS on custom domains -------------------------------------------------------------------

# API Gateway's security policies for custom domains: TLS_1_0 or TLS_1_2
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-custom-domain-tls-version.html).
TLS_SECURITY_POLICIES = frozenset({"TLS_1_2"})


# --- cost allocation -------------------------------------------------------------------------

# The keys the program's provider puts on every resource (default tags, __main__.py); the
# stack's budget filters on "stack", so its value must be the stack's name.
COST_TAG_KEYS = ("project", "stack", "managed-by")


def tag_problems(tags: Mapping[str, str] | None, stack: str) -> list[str]:
    tags = tags or {}
    problems = [f"missing cost-allocation tag {key!r}" for key in COST_TAG_KEYS if not tags.get(key)]
    if tags.get("stack") and tags["stack"] != stack:
        problems.append(f"tag stack={tags['stack']!r} but the resource is in stack {stack!r}")
    return problems


# --- protection ------------------------------------------------------------------------------

# Stacks whose table and keys carry Pulumi `protect` and DynamoDB deletion protection.
PROTECTED_STACKS = frozenset({"prod"})
# A protected key waits the longest KMS allows before it is deleted
# (https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html: 7 to 30 days).
PROTECTED_KEY_DELETION_WINDOW_DAYS = 30


# --- Lambda runtimes -------------------------------------------------------------------------

# Each Lambda-managed runtime and the date Lambda deprecates it, from the "Supported runtimes"
# and "Deprecated runtimes" tables of https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
# (dates ahead are AWS's projections; update this table when the page changes). A runtime
# is refused from its deprecation date on; one missing from the table is refused as unknown.
LAMBDA_RUNTIMES_SOURCE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"
LAMBDA_RUNTIME_DEPRECATION = {
    "nodejs24.x": date(2028, 4, 30),
    "nodejs22.x": date(2027, 4, 30),
    "nodejs20.x": date(2026, 4, 30),
    "nodejs18.x": date(2025, 9, 1),
    "nodejs16.x": date(2024, 6, 12),
    "nodejs14.x": date(2023, 12, 4),
    "nodejs12.x": date(2023, 3, 31),
    "nodejs10.x": date(2021, 7, 30),
    "python3.14": date(2029, 6, 30),
    "python3.13": date(2029, 6, 30),
    "python3.12": date(2028, 10, 31),
    "python3.11": date(2026, 6, 30),
    "python3.10": date(2026, 6, 30),
    "python3.9": date(2025, 12, 15),
    "python3.8": date(2024, 10, 14),
    "python3.7": date(2023, 12, 4),
    "python3.6": date(2022, 7, 18),
    "python2.7": date(2021, 7, 15),
    "java25": date(2029, 6, 30),
    "java21": date(2029, 6, 30),
    "java17": date(2026, 6, 30),
    "java11": date(2026, 6, 30),
    "java8.al2": date(2026, 6, 30),
    "java8": date(2024, 1, 8),
    "dotnet10": date(2028, 11, 14),
    "dotnet8": date(2026, 11, 10),
    "dotnet6": date(2024, 11, 12),
    "ruby3.4": date(2028, 3, 31),
    "ruby3.3": date(2027, 3, 31),
    "ruby3.2": date(2026, 3, 31),
    "ruby2.7": date(2023, 12, 7),
    "provided.al2023": date(2029, 6, 30),
    "provided.al2": date(2026, 6, 30),
    "provided": date(2024, 1, 8),
    "go1.x": date(2024, 1, 8),
}
LAMBDA_ARCHITECTURES = ("arm64",)


def runtime_problem(runtime: str | None, today: date) -> str | None:
    if runtime is None:
        return None  # a container image: no managed runtime
    deprecated_on = LAMBDA_RUNTIME_DEPRECATION.get(runtime)
    if deprecated_on is None:
        return f"runtime {runtime} is not in the table of {LAMBDA_RUNTIMES_SOURCE}; add it with its deprecation date"
    if today >= deprecated_on:
        return f"runtime {runtime} is deprecated since {deprecated_on.isoformat()} ({LAMBDA_RUNTIMES_SOURCE})"
    return None


def architecture_problem(architectures: Iterable[str] | None) -> str | None:
    # No architectures means Lambda's default, x86_64.
    found = list(architectures or ["x86_64"])
    if found != list(LAMBDA_ARCHITECTURES):
        return f"architectures {found}: only {list(LAMBDA_ARCHITECTURES)}"
    return None
