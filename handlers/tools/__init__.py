"""The agent's tools: one module per tool, named as the tool.

Adding a tool means one module here, ``handlers/tools/<name>.py``, that defines
``TOOL = ToolDefinition(...)`` and ``handler = TOOL.lambda_handler``, plus one entry in the
stack config's ``tools`` list. The compute component gives it a Lambda, a role and a log
group; the agent-step offers it to the model.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from handlers.shared.tooling import ToolDefinition

PACKAGE_DIR = Path(__file__).parent


def available_tools() -> list[str]:
    """Names of the tool modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)]) if not m.name.startswith("_"))


def load_tool(name: str) -> ToolDefinition:
    """The ToolDefinition of ``handlers/tools/<name>.py``."""
    if name not in available_tools():
        raise LookupError(f"no tool module handlers/tools/{name}.py; tools: {', '.join(available_tools())}")
    module = importlib.import_module(f"handlers.tools.{name}")
    tool = getattr(module, "TOOL", None)
    if not isinstance(tool, ToolDefinition) or tool.name != name:
        raise LookupError(f"handlers/tools/{name}.py must define TOOL = ToolDefinition(name={name!r}, ...)")
    return tool
