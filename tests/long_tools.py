"""A stack shape with one ``fargate-spot`` and one ``continuation`` tool, for the infrastructure
tests.

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

from components.config import tools as config_module
from local.pulumi_mocks import stack_config

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
