"""``agent-infra:tools``: the agent's tools, each a module of ``handlers/tools/`` found on
disk (never imported), and how its calls run: a Lambda, a continuation Lambda looped by the
task, or a container on Fargate Spot."""

from __future__ import annotations

import keyword
import re
import tokenize
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import ConfigModel, longest_region

_TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _tools_folder() -> Path:
    """``handlers/tools/`` of the project this package is part of."""
    return Path(__file__).resolve().parents[2] / "handlers" / "tools"


# The longest tool name whose derived names (function, role, policy) fit AWS's limits in
# longest_region(); a test keeps it equal to components.naming.longest_tool_name.
MAX_TOOL_NAME = 22


def tool_modules() -> list[str]:
    """Tool modules in handlers/tools/, found on disk (nothing is imported)."""
    folder = _tools_folder()
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


LONG_TOOL_MAX_SECONDS = 86_400
LONG_RUNTIMES = frozenset({"continuation", "fargate-spot"})
"""Runtimes whose calls outlive the Express turn (5 minutes): task-only."""
RUNTIMES = ("lambda", "continuation", "fargate-spot")

LAMBDA_MAX_MB = 10_240
# The task sizes Fargate accepts: CPU units -> the memory (MiB) it pairs with; any other pair
# is refused by RegisterTaskDefinition ("No Fargate configuration exists for given values";
# the table: https://docs.aws.amazon.com/AmazonECS/latest/userguide/task-cpu-memory-error.html).
# 8 and 16 vCPU need Linux platform 1.4.0 or later, which LATEST is.
FARGATE_TASK_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
FARGATE_MAX_MB = FARGATE_TASK_SIZES[16384][-1]


def _memory_choices(values: tuple[int, ...]) -> str:
    """The memory sizes of one CPU size, as a reader wants them: a list, or a range with its step."""
    if len(values) <= 4:
        return ", ".join(str(v) for v in values)
    return f"{values[0]}..{values[-1]} in steps of {values[1] - values[0]}"


def fargate_size_problem(cpu: int | None, memory_mb: int) -> str | None:
    """Why Fargate would refuse ``cpu`` with ``memory_mb``, or None when it accepts the pair."""
    if cpu is None:
        return f"runtime 'fargate-spot' needs cpu, one of {', '.join(str(c) for c in FARGATE_TASK_SIZES)}"
    if cpu not in FARGATE_TASK_SIZES:
        return f"cpu {cpu} is not a Fargate task size; allowed: {', '.join(str(c) for c in FARGATE_TASK_SIZES)}"
    if memory_mb not in FARGATE_TASK_SIZES[cpu]:
        return (
            f"memoryMb {memory_mb} does not pair with cpu {cpu} on Fargate; with cpu {cpu} memoryMb is one of"
            f" {_memory_choices(FARGATE_TASK_SIZES[cpu])}"
        )
    return None


def _string(token: tokenize.TokenInfo) -> str | None:
    """A plain one-line string literal's text ('...' or "..."), else None."""
    text = token.string
    if token.type == tokenize.STRING and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return None


def declared_runtime(module: str) -> str | None:
    """The runtime ``handlers/tools/<module>.py`` declares, read from its source (nothing is
    imported, as :func:`tool_modules` finds modules): a module-level ``RUNTIME = "..."`` or a
    ``runtime="..."`` keyword in its ``TOOL = ...`` statement. None when it says nothing (a
    Lambda tool, as every tool was before runtimes) or cannot be read.

    Read with ``tokenize``, not ``ast``: CPython 3.11 before 3.11.8 fails a parse made while
    another thread builds an AST ("AST constructor recursion depth mismatch",
    https://github.com/python/cpython/issues/106905), and the config is parsed while the
    program's other threads run."""
    path = _tools_folder() / f"{module}.py"
    try:
        with path.open("rb") as source:
            tokens = [
                t
                for t in tokenize.tokenize(source.readline)
                if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT)
            ]
    except (OSError, SyntaxError, tokenize.TokenError):
        return None
    statement: str | None = None  # the module-level name being assigned
    for n, token in enumerate(tokens):
        if token.type == tokenize.NEWLINE:
            statement = None
            continue
        following = tokens[n + 1 : n + 3]
        assigned = (
            token.type == tokenize.NAME
            and len(following) == 2
            and following[0].type == tokenize.OP
            and following[0].string == "="
        )
        if assigned and token.start[1] == 0:
            statement = token.string
            if token.string == "RUNTIME" and _string(following[1]) is not None:
                return _string(following[1])
        elif assigned and statement == "TOOL" and token.string == "runtime" and _string(following[1]) is not None:
            return _string(following[1])
    return None


class ToolConfig(ConfigModel):
    name: str = Field(
        description=f"Tool name: lower-case identifier (`[a-z][a-z0-9_]*`, at most {MAX_TOOL_NAME} characters, so every name AWS derives from it fits in any region), also the module under `handlers/tools/`."
    )
    memory_mb: int = Field(
        128,
        ge=128,
        le=FARGATE_MAX_MB,
        description="Lambda memory in MB (128..10240; see `python -m bench.cold_start`); `fargate-spot`: the task's memory in MiB, one of the sizes Fargate pairs with `cpu`.",
    )
    runtime: Literal["lambda", "continuation", "fargate-spot"] = Field(
        "lambda",
        description="How a call runs: `lambda` (one invocation, within the turn or task), `continuation` (a Lambda that does a slice of the work and hands back a token, looped by the task until done), `fargate-spot` (a container task on Fargate Spot, for work longer than Lambda's 15 minutes). The long ones run in a task only (`POST /v1/tasks`).",
    )
    timeout_seconds: int = Field(
        30,
        ge=1,
        le=LONG_TOOL_MAX_SECONDS,
        description="`lambda`: the Lambda timeout (1..900); `continuation`: one slice's (1..900); `fargate-spot`: each run's, a Spot retry getting its own (up to 86,400).",
    )
    cpu: int | None = Field(
        None,
        description="`fargate-spot` only: the task's CPU units (256, 512, 1024, 2048, 4096, 8192 or 16384), with `memoryMb` one of the sizes Fargate pairs with it.",
    )
    max_slices: int = Field(
        100, ge=1, le=10_000, description="`continuation` only: the most slices one call may take before it fails."
    )
    spot_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="`fargate-spot` only: runs on Fargate Spot (a Spot interruption is retried with backoff) before the last one on on-demand Fargate.",
    )
    requires_approval: bool = Field(False, description="A human approves each call (Standard task only).")
    compensable: bool = Field(False, description="The tool has a compensation that undoes its side effect.")
    reserved_concurrency: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Reserved concurrency of the tool's Lambda; none by default (a new account's quota may leave no room). Checked against the account's quota at preview.",
    )

    @property
    def long(self) -> bool:
        """Its calls may outlive the Express turn: offered in tasks only."""
        return self.runtime in LONG_RUNTIMES

    @model_validator(mode="after")
    def _runtime_limits(self) -> ToolConfig:
        if self.runtime != "fargate-spot" and self.timeout_seconds > 900:
            raise ValueError(
                f"timeoutSeconds {self.timeout_seconds} is over Lambda's 900 s: runtime {self.runtime!r} runs in a"
                " Lambda; for longer work use runtime 'continuation' (slices of up to 900 s) or 'fargate-spot'"
            )
        if self.runtime == "fargate-spot" and self.compensable:
            raise ValueError(
                "compensable is for tools that run in a Lambda: a fargate-spot tool's container has no compensation"
                " to call; make its work items idempotent (handlers/shared/longrun.py) or use runtime 'lambda'"
            )
        if self.long and self.requires_approval:
            raise ValueError(
                f"requiresApproval is for runtime 'lambda': a {self.runtime} tool's calls run without a human's"
                " approval step (an approved call that runs for hours is better split: an approval tool, then the long one)"
            )
        if self.cpu is not None and self.runtime != "fargate-spot":
            raise ValueError("cpu is only for runtime 'fargate-spot' (a Lambda's CPU follows memoryMb)")
        if self.runtime == "fargate-spot":
            problem = fargate_size_problem(self.cpu, self.memory_mb)
            if problem:
                raise ValueError(problem)
        elif self.memory_mb > LAMBDA_MAX_MB:
            raise ValueError(
                f"memoryMb {self.memory_mb} is over Lambda's {LAMBDA_MAX_MB} MB: runtime {self.runtime!r} runs in a Lambda"
            )
        return self

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _TOOL_NAME.fullmatch(value) or keyword.iskeyword(value):
            raise ValueError(
                "must be a lower-case identifier: a letter, then letters, digits or '_', not a Python keyword"
            )
        from components.naming import tool_name_problems

        problems = tool_name_problems(value, longest_region())
        if problems:
            raise ValueError(
                f"is too long ({len(value)} characters, at most {MAX_TOOL_NAME}): in a region named like"
                f" {longest_region()!r}, " + "; ".join(problems)
            )
        return value


def check_tools(value: list[ToolConfig]) -> list[ToolConfig]:
    """The stack's tools together: each named once, each with a module, each run the way its
    module declares."""
    names = [t.name for t in value]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"names tool {', '.join(duplicates)} more than once; tool names must be unique")
    available = tool_modules()
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(
            f"no handler module for {', '.join(missing)} (handlers/tools/<name>.py); tools available: {', '.join(available)}"
        )
    declared = {t.name: declared_runtime(t.name) for t in value}
    mismatched = [
        f"{t.name} has runtime {t.runtime!r} but handlers/tools/{t.name}.py declares"
        f" {repr(declared[t.name]) if declared[t.name] else 'none (a Lambda tool)'}"
        for t in value
        if t.runtime != (declared[t.name] or "lambda")
    ]
    if mismatched:
        raise ValueError(
            "; ".join(mismatched) + ": a tool runs the way its module is written; set runtime to what it declares"
        )
    return value
