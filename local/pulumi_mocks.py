"""Run the real ``__main__.py`` under ``pulumi.runtime.set_mocks`` and record what it creates.

The mocks answer like AWS would: ids, names and ARNs in AWS's own formats, in the region the
resource names (or its provider's region), so ``apply`` chains run as in a deployment.
Used by the infrastructure tests, ``bench/program_regions.py`` and ``make preview``.

One module on purpose: it is the whole of the Pulumi engine's stand-in (the answer table by
resource type, the invokes, the run helpers); a reader looking for what a mock answers finds
every answer here.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import hashlib
import json
import runpy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings as pulumi_settings

from components import naming

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_ID = naming.STAND_IN_ACCOUNT_ID
PROJECT = "agent-infra"
GET_CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
GET_PARTITION = "aws:index/getPartition:getPartition"
GET_SERVICE_QUOTA = "aws:servicequotas/getServiceQuota:getServiceQuota"


@dataclass
class RecordedResource:
    typ: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    provider: str | None
    custom: bool
    resource_id: str

    @property
    def region(self) -> str | None:
        return self.state.get("region")


def provider_name(reference: str) -> str:
    """The logical name in a provider reference ``<urn>::<id>`` (``default_…`` for a default provider)."""
    return reference.split("::")[-2]


def _stable_uuid(*parts: str) -> str:
    return str(uuid.UUID(hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]))


def _suffix(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:7]


class AwsMocks(pulumi.runtime.Mocks):
    """Mock provider answers in AWS's formats; records every resource registered."""

    def __init__(self, partition: str = "aws", lambda_concurrency: dict[str, float] | None = None) -> None:
        self.partition = partition
        self.dns_suffix = naming.dns_suffix(partition)
        # The account's Lambda "Concurrent executions" quota per region (default: AWS's 1,000).
        self.lambda_concurrency = lambda_concurrency or {}
        self.resources: list[RecordedResource] = []
        self.calls: list[tuple[str, dict]] = []
        self._provider_regions: dict[str, str] = {}

    def _arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{region}:{ACCOUNT_ID}:{resource}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = copy.deepcopy(args.inputs)
        state = dict(inputs)
        provider_region = None
        if args.provider:
            provider_region = self._provider_regions.get(provider_name(args.provider))
        region = inputs.get("region") or provider_region
        if args.typ.startswith("aws:") and region:
            state["region"] = region
        resource_id, state = self._answer(args, inputs, state, region)
        self.resources.append(
            RecordedResource(
                typ=args.typ,
                name=args.name,
                inputs=inputs,
                state=state,
                provider=args.provider,
                custom=bool(args.custom),
                resource_id=resource_id,
            )
        )
        return resource_id, state

    def _answer(self, args, inputs: dict, state: dict, region: str | None) -> tuple[str, dict]:
        """The resource's id and state: by its type from :data:`ANSWERS` (or a prefix of it
        from :data:`ANSWERS_BY_PREFIX`), else a physical name from the logical one and a
        generic ARN."""
        typ, name = args.typ, args.name
        if typ == "pulumi:providers:aws":
            # Remember the provider's region so its resources without `region=` get it.
            self._provider_regions[name] = inputs.get("region")
            return _stable_uuid(typ, name), state
        if not args.custom:
            return "", state
        ask = Ask(self, typ, name, inputs, state, region)
        answer = ANSWERS.get(typ) or next((a for p, a in ANSWERS_BY_PREFIX.items() if typ.startswith(p)), None)
        if answer is not None:
            return answer(ask)
        physical = inputs.get("name") or f"{name}-{_suffix(name)}"
        service = typ.split(":")[1].split("/")[0]
        state.setdefault("arn", self._arn(service, region or "us-east-1", physical))
        return physical, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        function = args.token  # an invoke's name, e.g. aws:index/getPartition:getPartition
        self.calls.append((function, dict(args.args)))
        if function == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            region = args.args.get("region") or "us-east-1"
            return {
                "authorizationToken": "QVdTOnN0YW5kLWlu",
                "expiresAt": "2026-12-31T00:00:00Z",
                "id": region,
                "password": "stand-in",
                "proxyEndpoint": f"https://{ACCOUNT_ID}.dkr.ecr.{region}.{self.dns_suffix}",
                "userName": "AWS",
                "region": region,
            }, []
        if function == "aws:index/getAvailabilityZones:getAvailabilityZones":
            region = args.args.get("region") or "us-east-1"
            names = [f"{region}{zone}" for zone in ("a", "b", "c")]
            return {"names": names, "zoneIds": [f"{region}-az{i}" for i in range(1, 4)], "id": region}, []
        if function == GET_CALLER_IDENTITY:
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:{self.partition}:iam::{ACCOUNT_ID}:user/ci",
                "userId": "AIDACKCEVSQ6C2EXAMPLE",
                "id": ACCOUNT_ID,
            }, []
        if function == "aws:route53/getZone:getZone":
            zone = args.args["name"].rstrip(".")
            return {
                "zoneId": "Z0123456789ABCDEFGHIJ",
                "name": zone,
                "id": "Z0123456789ABCDEFGHIJ",
                "privateZone": False,
            }, []
        if function == GET_SERVICE_QUOTA:
            region = args.args.get("region") or "us-east-1"
            value = float(self.lambda_concurrency.get(region, 1000))
            return {
                "serviceCode": args.args["serviceCode"],
                "quotaCode": args.args["quotaCode"],
                "quotaName": "Concurrent executions",
                "value": value,
                "defaultValue": 1000.0,
                "adjustable": True,
                "globalQuota": False,
                "region": region,
                "id": f"{args.args['serviceCode']}/{args.args['quotaCode']}",
            }, []
        if function == "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider":
            host = args.args["url"].removeprefix("https://")
            arn = f"arn:{self.partition}:iam::{ACCOUNT_ID}:oidc-provider/{host}"
            return {"arn": arn, "url": host, "clientIdLists": ["sts.amazonaws.com"], "id": arn}, []
        if function == "aws:ssm/getParameter:getParameter":
            name, region = args.args["name"], args.args.get("region") or "us-east-1"
            if name.startswith("/aws/service/fis/lambda-extension/AWS-FIS-extension-arm64/"):
                # The public parameter's value: the extension's layer version in that region.
                value = f"arn:{self.partition}:lambda:{region}:211125607513:layer:aws-fis-extension-arm64:9"
                return {"name": name, "type": "String", "value": value, "version": 9, "id": name}, []
            raise NotImplementedError(f"the mocks know no SSM parameter {name}")
        if function == GET_PARTITION:
            return {"partition": self.partition, "dnsSuffix": self.dns_suffix, "id": self.partition}, []
        raise NotImplementedError(f"the mocks do not answer {function}; add it to local/pulumi_mocks.py")


@dataclass(frozen=True)
class Ask:
    """One resource the program registers, as an answer in :data:`ANSWERS` sees it; an
    answer updates ``state`` and returns the resource's id with it."""

    mocks: AwsMocks
    typ: str
    name: str
    inputs: dict
    state: dict
    region: str | None

    def arn(self, service: str, resource: str, region: str | None = None) -> str:
        return self.mocks._arn(service, region or self.region, resource)

    def physical(self) -> str:
        """The resource's name, or one AWS would generate from the logical name."""
        return self.inputs.get("name") or f"{self.name}-{_suffix(self.name)}"

    def global_(self, resource_id: str) -> tuple[str, dict]:
        """An answer for a global resource (IAM, Route 53, Budgets): no region in its state."""
        self.state.pop("region", None)
        return resource_id, self.state


Answer = Callable[[Ask], tuple[str, dict]]


def _random_password(a: Ask) -> tuple[str, dict]:
    # Stable per name, alphanumeric like `special=False` makes it.
    digest = hashlib.sha256(f"password/{a.name}".encode()).hexdigest()
    a.state["result"] = (digest * 4)[: int(a.inputs.get("length", 16))]
    return _stable_uuid(a.typ, a.name), a.state


def _kms_key(a: Ask) -> tuple[str, dict]:
    key_id = _stable_uuid(a.typ, a.name)
    a.state.update(keyId=key_id, arn=a.arn("kms", f"key/{key_id}"))
    return key_id, a.state


def _kms_alias(a: Ask) -> tuple[str, dict]:
    a.state.update(arn=a.arn("kms", a.inputs["name"]))
    return a.inputs["name"], a.state


def _s3_bucket(a: Ask) -> tuple[str, dict]:
    # A name from bucket_prefix as AWS gives one: the prefix and a unique suffix.
    bucket = a.inputs.get("bucket") or f"{a.inputs.get('bucketPrefix', a.name + '-')}{_suffix(a.name)}"
    a.state.update(bucket=bucket, arn=f"arn:{a.mocks.partition}:s3:::{bucket}", region=a.region)
    return bucket, a.state


def _dynamodb_table(a: Ask) -> tuple[str, dict]:
    table_name = a.physical()
    label = "2026-11-26T00:00:00.000"
    arn = a.arn("dynamodb", f"table/{table_name}")
    a.state.update(
        name=table_name,
        arn=arn,
        streamArn=f"{arn}/stream/{label}",
        streamLabel=label,
        replicas=[
            {
                **replica,
                "arn": a.arn("dynamodb", f"table/{table_name}", replica["regionName"]),
                "streamArn": a.arn("dynamodb", f"table/{table_name}/stream/{label}", replica["regionName"]),
                "streamLabel": label,
            }
            for replica in a.inputs.get("replicas", [])
        ],
    )
    return table_name, a.state


def _lambda_function(a: Ask) -> tuple[str, dict]:
    function_name = a.physical()
    arn = a.arn("lambda", f"function:{function_name}")
    version = "1" if a.inputs.get("publish") else "$LATEST"
    a.state.update(
        name=function_name,
        arn=arn,
        version=version,
        qualifiedArn=f"{arn}:{version}",
        invokeArn=f"arn:{a.mocks.partition}:apigateway:{a.region}:lambda:path/2015-03-31/functions/{arn}/invocations",
    )
    return function_name, a.state


def _lambda_alias(a: Ask) -> tuple[str, dict]:
    function_arn = a.arn("lambda", f"function:{a.inputs['functionName']}")
    a.state.update(arn=f"{function_arn}:{a.inputs['name']}", invokeArn=f"{function_arn}:{a.inputs['name']}")
    return f"{a.inputs['functionName']}:{a.inputs['name']}", a.state


def _lambda_layer_version(a: Ask) -> tuple[str, dict]:
    arn = a.arn("lambda", f"layer:{a.inputs['layerName']}:1")
    a.state.update(arn=arn, layerArn=arn.rsplit(":", 1)[0], version="1")
    return arn, a.state


def _iam_role(a: Ask) -> tuple[str, dict]:
    role_name = a.physical()
    a.state.update(
        name=role_name,
        arn=f"arn:{a.mocks.partition}:iam::{ACCOUNT_ID}:role{a.inputs.get('path') or '/'}{role_name}",
        uniqueId="AROA" + _suffix(a.name).upper(),
    )
    return a.global_(role_name)


def _iam_oidc_provider(a: Ask) -> tuple[str, dict]:
    host = a.inputs["url"].removeprefix("https://")
    a.state.update(arn=f"arn:{a.mocks.partition}:iam::{ACCOUNT_ID}:oidc-provider/{host}")
    return a.global_(a.state["arn"])


def _iam_policy(a: Ask) -> tuple[str, dict]:
    policy_name = a.physical()
    a.state.update(name=policy_name, arn=f"arn:{a.mocks.partition}:iam::{ACCOUNT_ID}:policy/{policy_name}")
    return a.global_(a.state["arn"])


def _iam_role_policy(a: Ask) -> tuple[str, dict]:
    return a.global_(f"{a.inputs['role']}:{a.name}")


def _log_group(a: Ask) -> tuple[str, dict]:
    group = a.physical()
    a.state.update(name=group, arn=a.arn("logs", f"log-group:{group}"))
    return group, a.state


def _sqs_queue(a: Ask) -> tuple[str, dict]:
    queue = a.physical()
    a.state.update(
        name=queue,
        arn=a.arn("sqs", queue),
        url=f"https://sqs.{a.region}.{a.mocks.dns_suffix}/{ACCOUNT_ID}/{queue}",
    )
    return a.state["url"], a.state


def _secret(a: Ask) -> tuple[str, dict]:
    secret = a.physical()
    a.state.update(name=secret, arn=a.arn("secretsmanager", f"secret:{secret}-AbCdEf"))
    return a.state["arn"], a.state


def _event_connection(a: Ask) -> tuple[str, dict]:
    # EventBridge keeps a connection's credentials in a secret of its own, named after it.
    suffix = _stable_uuid(a.typ, a.name)
    a.state.update(
        arn=a.arn("events", f"connection/{a.inputs['name']}/{suffix}"),
        secretArn=a.arn("secretsmanager", f"secret:events!connection/{a.inputs['name']}/{suffix}-AbCdEf"),
    )
    return a.inputs["name"], a.state


def _state_machine(a: Ask) -> tuple[str, dict]:
    machine = a.physical()
    a.state.update(name=machine, arn=a.arn("states", f"stateMachine:{machine}"))
    return a.state["arn"], a.state


def _certificate(a: Ask) -> tuple[str, dict]:
    arn = a.arn("acm", f"certificate/{_stable_uuid(a.typ, a.name)}")
    domains = [a.inputs["domainName"], *a.inputs.get("subjectAlternativeNames", [])]
    a.state.update(
        arn=arn,
        domainValidationOptions=[
            {
                "domainName": d,
                "resourceRecordName": f"_{_suffix(d)}.{d}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{_suffix(d + 'v')}.acm-validations.aws.",
            }
            for d in domains
        ],
    )
    return arn, a.state


def _certificate_validation(a: Ask) -> tuple[str, dict]:
    return a.inputs["certificateArn"], a.state


def _budget(a: Ask) -> tuple[str, dict]:
    return a.global_(f"{ACCOUNT_ID}:{a.inputs['name']}")


def _sns_topic(a: Ask) -> tuple[str, dict]:
    a.state.update(arn=a.arn("sns", a.inputs["name"]))
    return a.state["arn"], a.state


def _health_check(a: Ask) -> tuple[str, dict]:
    return a.global_(_stable_uuid(a.typ, a.name))


def _route53_record(a: Ask) -> tuple[str, dict]:
    a.state["fqdn"] = a.inputs["name"].rstrip(".")
    return a.global_(f"{a.inputs['zoneId']}_{a.inputs['name']}_{a.inputs['type']}_{a.inputs.get('setIdentifier', '')}")


def _api(a: Ask) -> tuple[str, dict]:
    api_id = _suffix(a.name + a.typ)[:7] + "abc"
    a.state.update(
        id=api_id,
        rootResourceId="r00tid",
        executionArn=a.arn("execute-api", api_id),
        arn=f"arn:{a.mocks.partition}:apigateway:{a.region}::/{'restapis' if 'restApi' in a.typ else 'apis'}/{api_id}",
        apiEndpoint=f"wss://{api_id}.execute-api.{a.region}.{a.mocks.dns_suffix}",
    )
    return api_id, a.state


def _api_part(a: Ask) -> tuple[str, dict]:
    """Any other API Gateway resource: an id; a stage's invoke URL, a domain's target."""
    resource_id = _suffix(a.name)
    a.state.setdefault("id", resource_id)
    host_of = f"execute-api.{a.region}.{a.mocks.dns_suffix}"
    if a.typ.endswith("Stage") or a.typ.endswith("stage:Stage"):
        api = a.inputs.get("restApi") or a.inputs.get("apiId")
        a.state.setdefault("invokeUrl", f"https://{api}.{host_of}/{a.inputs.get('stageName') or a.inputs.get('name')}")
    if a.typ in ("aws:apigatewayv2/domainName:DomainName", "aws:apigateway/domainName:DomainName"):
        a.state.update(
            regionalDomainName=f"d-{resource_id}.{host_of}",
            regionalZoneId="Z1UJRXOUMOOFQ8",
            domainNameConfiguration={
                **(a.inputs.get("domainNameConfiguration") or {}),
                "targetDomainName": f"d-{resource_id}.{host_of}",
                "hostedZoneId": "Z1UJRXOUMOOFQ8",
            },
        )
    return resource_id, a.state


# A long tool's cluster, task definition, image repository and network, in AWS's own shapes.


def _ecs_cluster(a: Ask) -> tuple[str, dict]:
    a.state.update(arn=a.arn("ecs", f"cluster/{a.inputs['name']}", a.region or "us-east-1"))
    return a.state["arn"], a.state


def _ecs_task_definition(a: Ask) -> tuple[str, dict]:
    arn = a.arn("ecs", f"task-definition/{a.inputs['family']}:1", a.region or "us-east-1")
    a.state.update(arn=arn, arnWithoutRevision=arn.rsplit(":", 1)[0], revision=1)
    return a.inputs["family"], a.state


def _ecr_repository(a: Ask) -> tuple[str, dict]:
    region = a.region or "us-east-1"
    a.state.update(
        arn=a.arn("ecr", f"repository/{a.inputs['name']}", region),
        registryId=ACCOUNT_ID,
        repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.{region}.{a.mocks.dns_suffix}/{a.inputs['name']}",
    )
    return a.inputs["name"], a.state


def _ec2(a: Ask) -> tuple[str, dict]:
    kind = a.typ.rsplit(":", 1)[1].lower()
    return f"{kind[:4]}-{hashlib.sha256(a.name.encode()).hexdigest()[:17]}", a.state


ANSWERS: dict[str, Answer] = {
    "random:index/randomPassword:RandomPassword": _random_password,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:s3/bucket:Bucket": _s3_bucket,
    "aws:dynamodb/table:Table": _dynamodb_table,
    "aws:lambda/function:Function": _lambda_function,
    "aws:lambda/alias:Alias": _lambda_alias,
    "aws:lambda/layerVersion:LayerVersion": _lambda_layer_version,
    "aws:iam/role:Role": _iam_role,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _iam_oidc_provider,
    "aws:iam/policy:Policy": _iam_policy,
    "aws:iam/rolePolicy:RolePolicy": _iam_role_policy,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:sqs/queue:Queue": _sqs_queue,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:cloudwatch/eventConnection:EventConnection": _event_connection,
    "aws:sfn/stateMachine:StateMachine": _state_machine,
    "aws:acm/certificate:Certificate": _certificate,
    "aws:acm/certificateValidation:CertificateValidation": _certificate_validation,
    "aws:budgets/budget:Budget": _budget,
    "aws:sns/topic:Topic": _sns_topic,
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:route53/record:Record": _route53_record,
    "aws:apigateway/restApi:RestApi": _api,
    "aws:apigatewayv2/api:Api": _api,
    "aws:ecs/cluster:Cluster": _ecs_cluster,
    "aws:ecs/taskDefinition:TaskDefinition": _ecs_task_definition,
    "aws:ecr/repository:Repository": _ecr_repository,
}
"""What the mocks answer for a resource, by its type (pulumi/examples' mocks answer the same way:
a physical id and the outputs AWS would add, in AWS's formats)."""
ANSWERS_BY_PREFIX: dict[str, Answer] = {
    "aws:ec2/": _ec2,
    "aws:apigateway/": _api_part,
    "aws:apigatewayv2/": _api_part,
}


@dataclass
class ProgramRun:
    """What one run of the program created and exported."""

    resources: list[RecordedResource]
    outputs: dict[str, Any]
    calls: list[tuple[str, dict]] = field(default_factory=list)
    protected: dict[str, bool] = field(default_factory=dict)
    """``protect`` option of every resource, by logical name."""
    depends_on: dict[str, list[str]] = field(default_factory=dict)
    """Logical names each resource's ``depends_on`` option names, by logical name."""
    secret_outputs: set[str] = field(default_factory=set)
    """Names of the stack outputs Pulumi stores as secrets."""

    def of_type(self, typ: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> RecordedResource:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]


def stack_config(stack: str) -> dict[str, Any]:
    """The ``config:`` map of ``Pulumi.<stack>.yaml``."""
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


_event_loop: asyncio.AbstractEventLoop | None = None


def _set_event_loop() -> None:
    """Give this thread a current event loop, explicitly.

    The Pulumi SDK runs on the thread's current loop and ``set_mocks`` creates a future at
    once; without a loop set, asyncio makes one implicitly, which Python 3.12 deprecates (a
    DeprecationWarning in every test run) and 3.14 refuses. Pulumi's own launcher sets one
    before running a program; this does the same, reusing one loop for every run.
    """
    global _event_loop
    if _event_loop is None or _event_loop.is_closed():
        _event_loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_event_loop)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one run, as it was after.

    A run makes next to no cyclic garbage (its resources, outputs and futures live until it
    ends), yet each full collection during it rescans every live object: with 6 regions,
    4 full collections took about 2 of the run's 3 seconds, and a bigger stack means a
    bigger heap to rescan each time, so the cost grew faster than the resources. Reference
    counting still frees everything as usual; what cycles there are wait for the next
    collection after the run.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_program(
    config: dict[str, Any],
    stack: str = "test",
    mocks: AwsMocks | None = None,
    *,
    program: Path = ROOT / "__main__.py",
    project: str = PROJECT,
) -> ProgramRun:
    """Run ``program`` (the agent-infra program unless told otherwise) with ``config``
    (``namespace:key`` → value) and collect the result.

    Raises whatever the program raises (a bad config raises ``pulumi.RunError``).
    """
    mocks = mocks or AwsMocks()
    _set_event_loop()
    pulumi_settings.ROOT.set(None)  # a fresh stack per run, as `pulumi up` would have
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    )
    outputs: dict[str, Any] = {}
    protected: dict[str, bool] = {}
    depends_on: dict[str, list[str]] = {}

    def record_options(args: pulumi.ResourceTransformationArgs) -> None:
        # Resource options never reach the mock monitor; a stack transformation sees them.
        protected[args.name] = bool(args.opts.protect) if args.opts else False
        dependencies = (args.opts.depends_on if args.opts else None) or []
        if not isinstance(dependencies, list):
            dependencies = [dependencies]
        depends_on[args.name] = [getattr(d, "_name", repr(d)) for d in dependencies]

    pulumi.runtime.register_stack_transformation(record_options)

    program_path = str(program)

    @pulumi.runtime.test
    def program():
        runpy.run_path(program_path, run_name="__main__")
        stack_resource = pulumi_settings.get_root_resource()
        exported = dict(stack_resource.outputs)
        names = list(exported)
        flags = [
            pulumi.Output.from_input(value.is_secret()) if isinstance(value, pulumi.Output) else False
            for value in exported.values()
        ]
        secrecy = pulumi.Output.all(*flags).apply(
            lambda values: secret_outputs.update(n for n, flag in zip(names, values, strict=True) if flag)
        )
        return pulumi.Output.all(secrecy, *exported.values()).apply(
            lambda values: outputs.update(zip(names, values[1:], strict=True))
        )

    secret_outputs: set[str] = set()
    with _collector_paused():
        program()
    return ProgramRun(
        resources=mocks.resources,
        outputs=outputs,
        calls=mocks.calls,
        protected=protected,
        depends_on=depends_on,
        secret_outputs=secret_outputs,
    )
