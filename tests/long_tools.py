"""A stack shape with one ``fargate-spot`` and one ``continuation`` tool, for the infrastructure
tests, and the mock answers its program needs beyond ``local/pulumi_mocks.py``'s.

The tools are the example modules of ``handlers/tools/`` that declare those runtimes (the
long-running tools' own modules). Where no module declares one yet, a Lambda tool module stands
in (``http_fetch`` as the container tool, ``memory`` as the continuation tool) and
:func:`declared_as` makes the config read it as declaring that runtime: the infrastructure
does not depend on what the tool does, only on what the config and the module say.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import pulumi

from components import config as config_module
from local.pulumi_mocks import ACCOUNT_ID, AwsMocks, stack_config

STAND_INS = {"fargate-spot": "http_fetch", "continuation": "memory"}
ZONES = ("a", "b", "c")


def example_tools() -> dict[str, str]:
    """runtime -> the tool module used for it (a module declaring it, or the stand-in)."""
    declared = {module: config_module.declared_runtime(module) for module in config_module.tool_modules()}
    return {
        runtime: next((m for m, r in sorted(declared.items()) if r == runtime), stand_in)
        for runtime, stand_in in STAND_INS.items()
    }


@contextlib.contextmanager
def declared_as(runtimes: dict[str, str]) -> Iterator[None]:
    """The config reads each stand-in module as declaring its runtime (modules declaring it
    themselves are read as they are)."""
    real = config_module.declared_runtime
    wanted = {module: runtime for runtime, module in runtimes.items()}

    def declared(module: str) -> str | None:
        return real(module) or wanted.get(module)

    with mock.patch.object(config_module, "declared_runtime", declared):
        yield


def long_tools_config(stack: str = "dev") -> dict:
    """``stack``'s config with a fargate-spot tool (1 vCPU, 2 GB) and a continuation tool added."""
    config = stack_config(stack)
    tools = example_tools()
    existing = [t for t in config["agent-infra:tools"] if t["name"] not in tools.values()]
    config["agent-infra:tools"] = [
        *existing,
        {
            "name": tools["fargate-spot"],
            "runtime": "fargate-spot",
            "cpu": 1024,
            "memoryMb": 2048,
            "timeoutSeconds": 4 * 3600,
            "spotAttempts": 3,
        },
        {"name": tools["continuation"], "runtime": "continuation", "timeoutSeconds": 300, "maxSlices": 50},
    ]
    return config


class LongToolMocks(AwsMocks):
    """AwsMocks with the answers ECR, ECS and EC2 give for the long tools' resources and reads."""

    def _answer(self, args, inputs: dict, state: dict, region: str | None) -> tuple[str, dict]:
        typ, name = args.typ, args.name
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
                repositoryUrl=f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{inputs['name']}",
            )
            return inputs["name"], state
        if typ.startswith("aws:ec2/"):
            kind = typ.rsplit(":", 1)[1].lower()
            return f"{kind[:4]}-{name.encode().hex()[:17]}", state
        return super()._answer(args, inputs, state, region)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            self.calls.append((args.token, dict(args.args)))
            region = args.args.get("region") or "us-east-1"
            return {
                "authorizationToken": "QVdTOnN0YW5kLWlu",
                "expiresAt": "2026-12-31T00:00:00Z",
                "id": region,
                "password": "stand-in",
                "proxyEndpoint": f"https://{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com",
                "userName": "AWS",
                "region": region,
            }, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            self.calls.append((args.token, dict(args.args)))
            region = args.args.get("region") or "us-east-1"
            names = [f"{region}{z}" for z in ZONES]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(len(names))], "id": region}, []
        return super().call(args)
