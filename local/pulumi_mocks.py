"""Run the real ``__main__.py`` under ``pulumi.runtime.set_mocks`` and record what it creates.

The mocks answer like AWS would: ids, names and ARNs in AWS's own formats, in the region the
resource names (or its provider's region), so ``apply`` chains run as in a deployment.
Used by the infrastructure tests, ``bench/program_regions.py`` and ``make preview``.
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
from collections.abc import Iterator
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
        typ, name = args.typ, args.name
        if typ == "pulumi:providers:aws":
            # Remember the provider's region so its resources without `region=` get it.
            self._provider_regions[name] = inputs.get("region")
            return _stable_uuid(typ, name), state
        if not args.custom:
            return "", state
        long_tool = self._long_tool_answer(typ, name, inputs, state, region or "us-east-1")
        if long_tool is not None:
            return long_tool
        if typ == "random:index/randomPassword:RandomPassword":
            # Stable per name, alphanumeric like `special=False` makes it.
            digest = hashlib.sha256(f"password/{name}".encode()).hexdigest()
            state["result"] = (digest * 4)[: int(inputs.get("length", 16))]
            return _stable_uuid(typ, name), state
        if typ == "aws:kms/key:Key":
            key_id = _stable_uuid(typ, name)
            state.update(keyId=key_id, arn=self._arn("kms", region, f"key/{key_id}"))
            return key_id, state
        if typ == "aws:kms/alias:Alias":
            state.update(arn=self._arn("kms", region, inputs["name"]))
            return inputs["name"], state
        if typ == "aws:s3/bucket:Bucket":
            # A name from bucket_prefix as AWS gives one: the prefix and a unique suffix.
            bucket = inputs.get("bucket") or f"{inputs.get('bucketPrefix', name + '-')}{_suffix(name)}"
            state.update(bucket=bucket, arn=f"arn:{self.partition}:s3:::{bucket}", region=region)
            return bucket, state
        if typ == "aws:dynamodb/table:Table":
            table_name = inputs.get("name") or f"{name}-{_suffix(name)}"
            label = "2026-11-26T00:00:00.000"
            arn = self._arn("dynamodb", region, f"table/{table_name}")
            state.update(
                name=table_name,
                arn=arn,
                streamArn=f"{arn}/stream/{label}",
                streamLabel=label,
                replicas=[
                    {
                        **replica,
                        "arn": self._arn("dynamodb", replica["regionName"], f"table/{table_name}"),
                        "streamArn": self._arn("dynamodb", replica["regionName"], f"table/{table_name}/stream/{label}"),
                        "streamLabel": label,
                    }
                    for replica in inputs.get("replicas", [])
                ],
            )
            return table_name, state
        if typ == "aws:lambda/function:Function":
            function_name = inputs.get("name") or f"{name}-{_suffix(name)}"
            arn = self._arn("lambda", region, f"function:{function_name}")
            version = "1" if inputs.get("publish") else "$LATEST"
            state.update(
                name=function_name,
                arn=arn,
                version=version,
                qualifiedArn=f"{arn}:{version}",
                invokeArn=f"arn:{self.partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations",
            )
            return function_name, state
        if typ == "aws:lambda/alias:Alias":
            function_arn = self._arn("lambda", region, f"function:{inputs['functionName']}")
            state.update(arn=f"{function_arn}:{inputs['name']}", invokeArn=f"{function_arn}:{inputs['name']}")
            return f"{inputs['functionName']}:{inputs['name']}", state
        if typ == "aws:lambda/layerVersion:LayerVersion":
            arn = self._arn("lambda", region, f"layer:{inputs['layerName']}:1")
            state.update(arn=arn, layerArn=arn.rsplit(":", 1)[0], version="1")
            return arn, state
        if typ == "aws:iam/role:Role":
            role_name = inputs.get("name") or f"{name}-{_suffix(name)}"
            state.update(
                name=role_name,
                arn=f"arn:{self.partition}:iam::{ACCOUNT_ID}:role{inputs.get('path') or '/'}{role_name}",
                uniqueId="AROA" + _suffix(name).upper(),
            )
            state.pop("region", None)  # IAM is global
            return role_name, state
        if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = inputs["url"].removeprefix("https://")
            state.update(arn=f"arn:{self.partition}:iam::{ACCOUNT_ID}:oidc-provider/{host}")
            state.pop("region", None)
            return state["arn"], state
        if typ == "aws:iam/policy:Policy":
            policy_name = inputs.get("name") or f"{name}-{_suffix(name)}"
            state.update(name=policy_name, arn=f"arn:{self.partition}:iam::{ACCOUNT_ID}:policy/{policy_name}")
            state.pop("region", None)
            return state["arn"], state
        if typ == "aws:iam/rolePolicy:RolePolicy":
            state.pop("region", None)
            return f"{inputs['role']}:{name}", state
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            group = inputs.get("name") or f"{name}-{_suffix(name)}"
            state.update(name=group, arn=self._arn("logs", region, f"log-group:{group}"))
            return group, state
        if typ == "aws:sqs/queue:Queue":
            queue = inputs.get("name") or f"{name}-{_suffix(name)}"
            state.update(
                name=queue,
                arn=self._arn("sqs", region, queue),
                url=f"https://sqs.{region}.{self.dns_suffix}/{ACCOUNT_ID}/{queue}",
            )
            return state["url"], state
        if typ == "aws:secretsmanager/secret:Secret":
            secret = inputs.get("name") or f"{name}-{_suffix(name)}"
            state.update(name=secret, arn=self._arn("secretsmanager", region, f"secret:{secret}-AbCdEf"))
            return state["arn"], state
        if typ == "aws:cloudwatch/eventConnection:EventConnection":
            # EventBridge keeps a connection's credentials in a secret of its own, named after it.
            suffix = _stable_uuid(typ, name)
            state.update(
                arn=self._arn("events", region, f"connection/{inputs['name']}/{suffix}"),
                secretArn=self._arn(
                    "secretsmanager", region, f"secret:events!connection/{inputs['name']}/{suffix}-AbCdEf"
                ),
            )
            return inputs["name"], state
        if typ == "aws:sfn/stateMachine:StateMachine":
            machine = inputs.get("name") or f"{name}-{_suffix(name)}"
            state.update(name=machine, arn=self._arn("states", region, f"stateMachine:{machine}"))
            return state["arn"], state
        if typ == "aws:acm/certificate:Certificate":
            arn = self._arn("acm", region, f"certificate/{_stable_uuid(typ, name)}")
            domains = [inputs["domainName"], *inputs.get("subjectAlternativeNames", [])]
            state.update(
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
            return arn, state
        if typ == "aws:acm/certificateValidation:CertificateValidation":
            return inputs["certificateArn"], state
        if typ == "aws:budgets/budget:Budget":
            state.pop("region", None)
            return f"{ACCOUNT_ID}:{inputs['name']}", state
        if typ == "aws:sns/topic:Topic":
            state.update(arn=self._arn("sns", region, inputs["name"]))
            return state["arn"], state
        if typ == "aws:route53/healthCheck:HealthCheck":
            check_id = _stable_uuid(typ, name)
            state.pop("region", None)
            return check_id, state
        if typ == "aws:route53/record:Record":
            state.pop("region", None)
            state["fqdn"] = inputs["name"].rstrip(".")
            return f"{inputs['zoneId']}_{inputs['name']}_{inputs['type']}_{inputs.get('setIdentifier', '')}", state
        if typ in ("aws:apigateway/restApi:RestApi", "aws:apigatewayv2/api:Api"):
            api_id = _suffix(name + typ)[:7] + "abc"
            state.update(
                id=api_id,
                rootResourceId="r00tid",
                executionArn=self._arn("execute-api", region, api_id),
                arn=f"arn:{self.partition}:apigateway:{region}::/{'restapis' if 'restApi' in typ else 'apis'}/{api_id}",
                apiEndpoint=f"wss://{api_id}.execute-api.{region}.{self.dns_suffix}",
            )
            return api_id, state
        if typ.startswith(("aws:apigateway/", "aws:apigatewayv2/")):
            resource_id = _suffix(name)
            state.setdefault("id", resource_id)
            if typ.endswith("Stage") or typ.endswith("stage:Stage"):
                state.setdefault(
                    "invokeUrl",
                    f"https://{inputs.get('restApi') or inputs.get('apiId')}.execute-api.{region}.{self.dns_suffix}/{inputs.get('stageName') or inputs.get('name')}",
                )
            if typ == "aws:apigatewayv2/domainName:DomainName" or typ == "aws:apigateway/domainName:DomainName":
                state.update(
                    regionalDomainName=f"d-{resource_id}.execute-api.{region}.{self.dns_suffix}",
                    regionalZoneId="Z1UJRXOUMOOFQ8",
                    domainNameConfiguration={
                        **(inputs.get("domainNameConfiguration") or {}),
                        "targetDomainName": f"d-{resource_id}.execute-api.{region}.{self.dns_suffix}",
                        "hostedZoneId": "Z1UJRXOUMOOFQ8",
                    },
                )
            return resource_id, state
        # Anything else: a physical name from the logical one and a generic ARN.
        physical = inputs.get("name") or f"{name}-{_suffix(name)}"
        service = typ.split(":")[1].split("/")[0]
        state.setdefault("arn", self._arn(service, region or "us-east-1", physical))
        return physical, state

    def _long_tool_answer(self, typ: str, name: str, inputs: dict, state: dict, region: str) -> tuple[str, dict] | None:
        """ECS, ECR and EC2 answers in AWS's own shapes (a long tool's cluster, task
        definition, image repository and network), or None for any other type."""
        if typ == "aws:ecs/cluster:Cluster":
            state.update(arn=self._arn("ecs", region, f"cluster/{inputs['name']}"))
            return state["arn"], state
        if typ == "aws:ecs/taskDefinition:TaskDefinition":
            arn = self._arn("ecs", region, f"task-definition/{inputs['family']}:1")
            state.update(arn=arn, arnWithoutRevision=arn.rsplit(":", 1)[0], revision=1)
            return inputs["family"], state
        if typ == "aws:ecr/repository:Repository":
            state.update(
                arn=self._arn("ecr", region, f"repository/{inputs['name']}"),
                registryId=ACCOUNT_ID,
                repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.{region}.{self.dns_suffix}/{inputs['name']}",
            )
            return inputs["name"], state
        if typ.startswith("aws:ec2/"):
            kind = typ.rsplit(":", 1)[1].lower()
            return f"{kind[:4]}-{hashlib.sha256(name.encode()).hexdigest()[:17]}", state
        return None

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
