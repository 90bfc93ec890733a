"""What every tool Lambda shares: the event contract, exactly-once recording, results by reference.

A tool module defines its input as a msgspec Struct, a ``run(ctx, input)`` function and a
:class:`ToolDefinition`; ``handler = TOOL.lambda_handler`` is its Lambda entry point.

Exactly once, as far as the caller can tell: Step Functions (Express: at least once) may
deliver the same step twice. The first thing a delivery does is look for the step's record
(``RUN#<executionId>`` / ``TOOL#<seq>#<name>``); if it is there, the recorded result is
returned and nothing runs. Otherwise the tool runs and its result is recorded with a
conditional write; if another delivery recorded first, that record wins and is returned.
Tools with side effects key them on ``ctx.idempotency_key`` (the same for every delivery of
the step), so even two deliveries racing do the effect once.

Results over ``INLINE_RESULT_BYTES`` travel by reference (the record's key), so no Step
Functions state nears its 256 KB limit; the agent-step reads them back in one BatchGetItem.

A tool may declare its results reusable (:class:`ResultCache`): before running, the step looks
for a fresh result of the same input in the table (``store.tool_cache``); a hit is the step's
output, recorded like any other, so a redelivery returns the same thing. Every lookup is
counted (``cache``: hit, miss or bypass, on the step's log line, and as EMF metrics in
:data:`METRIC_NAMESPACE` by tool), which the dashboard turns into a hit ratio.

A tool says how it runs (``runtime``, which the stack config's must match): ``lambda``, one
invocation; ``fargate-spot``, a container task whose ``run`` is a
``handlers.shared.longrun.LongWork`` (entrypoint ``python -m handlers.longrun``);
``continuation``, a Lambda the task machine invokes again and again, each time with the
token the last slice handed back. A continuation tool's ``run(ctx, input, state)`` does a
slice of the work from ``state`` (None at first) and returns :class:`Continue` with the next
state, or the output. Its handler takes the tool event plus ``"continuation"`` (a token, or
null at first) and returns ``{"done": false, "continuation": <token>}`` or ``{"done": true,
"result": <the result a lambda tool returns>}``. Each slice's outcome is written once
(``SLICE#<seq>#<tool>#<n>``), so a redelivered slice hands back the same token; the next state
stays in the table (the token is ``<n>.<digest of the state>``, small, with no data in it);
the last slice's output is recorded like any tool's. A slice's effects key on
``ctx.idempotency_key`` and ``ctx.slice``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from handlers import init_done
from handlers.shared import table as keys
from handlers.shared.log import emit_metric, get_logger, log_context
from handlers.shared.settings import load_settings
from handlers.shared.store import CachedResult, DuplicateToolExecutionError, SliceOutcome, Store, ToolExecution

# 16 calls a step x 4 KB inline stays far from a state's 256 KB (handlers.shared.turns budgets).
INLINE_RESULT_BYTES = 4_096
PREVIEW_CHARS = 1_000
METRIC_NAMESPACE = "AgentInfra/Tools"
CacheOutcome = Literal["hit", "miss", "bypass"]
Runtime = Literal["lambda", "continuation", "fargate-spot"]
RUNTIMES: tuple[str, ...] = ("lambda", "continuation", "fargate-spot")
_TOKEN = re.compile(r"^([0-9]{1,5})\.([0-9a-f]{16})$")


class ToolInputError(Exception):
    """The model asked for something this tool cannot do; the message goes back to the model."""


class ToolTransientError(Exception):
    """A passing failure (a dependency throttled); Step Functions retries the step."""


class ToolEvent(msgspec.Struct, frozen=True):
    """What the state machine sends a tool Lambda."""

    executionId: str
    seq: int
    name: str
    userId: str
    sessionId: str
    toolUseId: str = ""
    input: dict[str, Any] = {}
    correlationId: str | None = None
    startedAt: str | None = None
    """The run's start ($$.Execution.StartTime): the same on every delivery of its steps."""
    action: Literal["run", "compensate"] = "run"
    continuation: str | None = None
    """A continuation tool's token from its last slice; null (or absent) for the first."""


class Continue(msgspec.Struct, frozen=True):
    """What a continuation tool's slice returns while there is more to do: the state the
    next slice starts from (JSON, kept in the table, at most one item's size)."""

    state: Any


class ToolSettings(msgspec.Struct, frozen=True):
    TABLE_NAME: str
    AWS_REGION: str
    TTL_DAYS: int = 90
    TABLE_REGIONS: list[str] = []
    EVACUATED_REGIONS: list[str] = []
    LOG_LEVEL: str = "INFO"


class ToolContext(msgspec.Struct, frozen=True):
    execution_id: str
    seq: int
    user_id: str
    session_id: str
    correlation_id: str | None
    store: Store
    started_at_ms: int | None = None
    """When the run started: the same on every delivery of its steps."""
    tool_name: str = ""
    slice: int | None = None
    """A continuation step's slice number (0 first), the same on every delivery of the slice."""

    @property
    def idempotency_key(self) -> str:
        """The same for every delivery of this step, unique across steps and runs."""
        return hashlib.sha256(f"{self.execution_id}:{self.seq}".encode()).hexdigest()[:32]


class ResultCache(msgspec.Struct, frozen=True):
    """That a tool's results may be reused, for how long at most, and what identifies one.

    A ``pure`` tool's every successful result is reusable by every user for
    ``max_age_seconds``: its output follows from its input alone, so it carries nothing of
    the user who asked first. Any other tool decides per result: its ``run`` returns
    :class:`Reusable` (how long, and whether for every user); a plain output is not stored.
    ``key`` maps the parsed input to what identifies its result (default: the input as
    given), or to None when the cache may not answer that request (a bypass).
    """

    max_age_seconds: int
    key: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.max_age_seconds < 1:
            raise ValueError(f"max_age_seconds must be at least 1, got {self.max_age_seconds!r}")

    def input_hash(self, parsed: Any) -> str | None:
        """SHA-256 of the canonical JSON of the input's key (sorted keys, no spaces), or None."""
        key = self.key(parsed) if self.key is not None else msgspec.to_builtins(parsed)
        if key is None:
            return None
        canonical = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class Reusable(msgspec.Struct, frozen=True):
    """What a caching tool's ``run`` returns: the output, and for how long and by whom it may
    be reused. ``fresh_for_seconds`` 0 means not at all (``reason`` says why, for the log)."""

    output: Any
    fresh_for_seconds: float = 0.0
    public: bool = False
    """Reusable by every user; otherwise only by the user whose step produced it."""
    reason: str = ""


def started_at_ms(value: str | None) -> int | None:
    """``$$.Execution.StartTime`` (ISO 8601, e.g. 2026-11-28T09:00:00.123Z) in epoch ms."""
    if not value:
        return None
    from datetime import datetime

    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def flat_schema(model: type) -> dict[str, Any]:
    """The JSON schema of a flat msgspec Struct, inlined (no ``$ref``) for the model's tool spec."""
    schema = msgspec.json.schema(model)
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        schema = dict(schema["$defs"][ref.rsplit("/", 1)[1]])
    schema.pop("title", None)
    return schema


class ToolDefinition:
    """A tool: its name (the module name), what the model is told, and what it does.

    ``dynamodb_actions`` are the DynamoDB actions the tool itself needs beyond recording its
    runs (they go into its IAM role). A ``pure`` tool (the same input always gives the same
    output, and nothing else happens) is not recorded: running it again on a redelivery is
    as good as reading a record, and the write is saved. Its result is recorded only when it
    must travel by reference. ``cache``: whether and how its results are reused
    (:class:`ResultCache`); the cache reads and writes with GetItem and PutItem, which every
    tool's role has for its records already. ``runtime``: how it runs (see the module); a long
    one's work is recorded, so it is neither pure nor cached.
    """

    def __init__(
        self,
        name: str,
        description: str,
        input_type: type,
        run: Callable[..., Any],
        compensate: Callable[[ToolContext, ToolExecution], dict[str, Any]] | None = None,
        dynamodb_actions: tuple[str, ...] = (),
        pure: bool = False,
        cache: ResultCache | None = None,
        runtime: Runtime = "lambda",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"tool {name!r}: runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if runtime != "lambda" and (pure or cache is not None):
            raise ValueError(f"tool {name!r}: a {runtime} tool's work is recorded; it cannot be pure or cached")
        if pure and compensate is not None:
            raise ValueError(f"tool {name!r}: a pure tool has no side effect to compensate")
        if cache is not None and compensate is not None:
            raise ValueError(f"tool {name!r}: a result with a side effect to undo cannot be reused")
        self.pure = pure
        self.cache = cache
        self.runtime = runtime
        self.name = name
        self.description = description
        self.input_type = input_type
        self.run = run
        self.compensate = compensate
        self.dynamodb_actions = dynamodb_actions
        self._store: Store | None = None
        self.__post_init__()

    def __post_init__(self) -> None:
        # In Lambda, build the store and its client in the init phase (full CPU, and done
        # before the first request when concurrency is provisioned).
        if "TABLE_NAME" in os.environ:
            self.store()
            init_done()

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "inputSchema": flat_schema(self.input_type)}

    # -- Lambda entry ---------------------------------------------------------------------

    def store(self) -> Store:
        if self._store is None:
            self._store = Store.from_settings(load_settings(ToolSettings))
        return self._store

    def lambda_handler(self, event: dict[str, Any], context: Any = None, store: Store | None = None) -> dict[str, Any]:
        """The Lambda entry (``store``: another store than the function's own, for the local
        stack, where one process runs the tool for several regions)."""
        request = msgspec.convert(event, ToolEvent)
        if request.name != self.name:
            raise ValueError(f"this Lambda runs tool {self.name!r}, not {request.name!r}")
        ctx = ToolContext(
            execution_id=request.executionId,
            seq=request.seq,
            user_id=request.userId,
            session_id=request.sessionId,
            correlation_id=request.correlationId,
            store=store or self.store(),
            started_at_ms=started_at_ms(request.startedAt),
            tool_name=self.name,
        )
        logger = get_logger(f"tool.{self.name}")
        with log_context(
            correlationId=request.correlationId, executionId=request.executionId, seq=request.seq, tool=self.name
        ):
            if request.action == "compensate":
                return self._compensate(ctx, logger)
            if self.runtime == "continuation":
                answer = self._slice(ctx, request)
                logger.info("tool slice done", extra={"done": answer["done"]})
                return answer
            result, cache = self._execute(ctx, request.input, request.toolUseId)
            details: dict[str, Any] = {"status": result["status"], "replayed": result.get("replayed", False)}
            if cache is not None:
                details["cache"] = cache
                emit_metric(
                    METRIC_NAMESPACE,
                    {
                        "CacheHit": int(cache == "hit"),
                        "CacheMiss": int(cache == "miss"),
                        "CacheBypass": int(cache == "bypass"),
                    },
                    dimensions={"Tool": self.name},
                )
            logger.info("tool step done", extra=details)
            return result

    # -- the exactly-once step ------------------------------------------------------------

    def execute(self, ctx: ToolContext, raw_input: dict[str, Any], tool_use_id: str = "") -> dict[str, Any]:
        return self._execute(ctx, raw_input, tool_use_id)[0]

    def _execute(
        self, ctx: ToolContext, raw_input: dict[str, Any], tool_use_id: str
    ) -> tuple[dict[str, Any], CacheOutcome | None]:
        """The step's result, and what the result cache did (None: not consulted)."""
        if not self.pure:
            recorded = ctx.store.tool_runs.get(ctx.execution_id, ctx.seq, self.name)
            if recorded is not None:
                return self._result(recorded, tool_use_id, replayed=True), None
        # Input the tool refuses never reaches the cache: a bypass, like a request it may not answer.
        cache: CacheOutcome | None = "bypass" if self.cache is not None else None
        try:
            parsed = msgspec.convert(raw_input, self.input_type)
            input_hash = self.cache.input_hash(parsed) if self.cache is not None else None
            hit = self._cached(ctx, input_hash) if input_hash is not None else None
            if hit is not None:
                cache, output = "hit", hit.output
            else:
                cache = "miss" if input_hash is not None else cache
                output = self._produce(ctx, parsed, input_hash)
            status = "SUCCEEDED"
        except msgspec.ValidationError as error:
            status, output = "FAILED", {"error": f"invalid input: {error}"}
        except ToolInputError as error:
            status, output = "FAILED", {"error": str(error)}
        # ToolTransientError and anything unexpected propagate: Step Functions retries or
        # catches them, and nothing is recorded, so a retry runs the step afresh.
        if self.pure and len(json.dumps(output, separators=(",", ":")).encode()) <= INLINE_RESULT_BYTES:
            inline = {"toolUseId": tool_use_id, "name": self.name, "seq": ctx.seq, "status": status, "output": output}
            return inline, cache
        return self._record(ctx, raw_input, tool_use_id, status, output), cache

    def _record(self, ctx: ToolContext, raw_input: Any, tool_use_id: str, status: str, output: Any) -> dict[str, Any]:
        """Record the step's result once; a step recorded before returns that record."""
        try:
            record = ctx.store.tool_runs.record(
                ctx.execution_id,
                ctx.seq,
                self.name,
                status=status,
                input=raw_input,
                output=output,
                compensable=self.compensate is not None and status == "SUCCEEDED",
            )
        except DuplicateToolExecutionError as duplicate:
            return self._result(duplicate.existing, tool_use_id, replayed=True)
        return self._result(record, tool_use_id)

    # -- continuation slices --------------------------------------------------------------

    def _slice(self, ctx: ToolContext, request: ToolEvent) -> dict[str, Any]:
        """One slice of a continuation step: the same token in gives the same answer out."""
        number = _slice_number(request.continuation)
        ctx = msgspec.structs.replace(ctx, slice=number)
        runs = ctx.store.long_runs
        done_before = runs.slice(ctx.execution_id, ctx.seq, self.name, number)
        if done_before is not None:
            if done_before.token_in != request.continuation:
                raise ValueError(f"slice {number} of step {ctx.seq} was given another token before")
            return {"done": False, "continuation": done_before.token_out}
        recorded = ctx.store.tool_runs.get(ctx.execution_id, ctx.seq, self.name)
        if recorded is not None:
            return {"done": True, "result": self._result(recorded, request.toolUseId, replayed=True)}
        state = None
        if number > 0:
            previous = runs.slice(ctx.execution_id, ctx.seq, self.name, number - 1)
            if previous is None or previous.token_out != request.continuation:
                raise ValueError(f"continuation token {request.continuation!r} was not handed out by step {ctx.seq}")
            state = previous.state
        try:
            produced = self.run(ctx, msgspec.convert(request.input, self.input_type), state)
            status = "SUCCEEDED"
        except msgspec.ValidationError as error:
            produced, status = {"error": f"invalid input: {error}"}, "FAILED"
        except ToolInputError as error:
            produced, status = {"error": str(error)}, "FAILED"
        if isinstance(produced, Continue):
            token = f"{number + 1}.{_state_digest(produced.state)}"
            kept = runs.put_slice_once(
                ctx.execution_id, ctx.seq, self.name, number, SliceOutcome(request.continuation, token, produced.state)
            )
            return {"done": False, "continuation": kept.token_out}
        return {"done": True, "result": self._record(ctx, request.input, request.toolUseId, status, produced)}

    def _result(self, record: ToolExecution, tool_use_id: str, replayed: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {
            "toolUseId": tool_use_id,
            "name": self.name,
            "seq": record.seq,
            "status": record.status,
        }
        encoded = json.dumps(record.output, separators=(",", ":"))
        if len(encoded.encode()) > INLINE_RESULT_BYTES:
            result["outputRef"] = {"executionId": record.execution_id, "seq": record.seq, "name": self.name}
            result["preview"] = encoded[:PREVIEW_CHARS]
        else:
            result["output"] = record.output
        if replayed:
            result["replayed"] = True
        return result

    def _compensate(self, ctx: ToolContext, logger) -> dict[str, Any]:
        record = ctx.store.tool_runs.get(ctx.execution_id, ctx.seq, self.name)
        if record is None or record.status != "SUCCEEDED" or self.compensate is None:
            return {"name": self.name, "seq": ctx.seq, "compensated": False, "reason": "nothing to undo"}
        detail = self.compensate(ctx, record)
        logger.info("tool step compensated", extra={"detail": detail})
        return {"name": self.name, "seq": ctx.seq, "compensated": True, "detail": detail}

    # -- the result cache -----------------------------------------------------------------

    def _scopes(self, ctx: ToolContext) -> list[str]:
        """Where a result for this step may come from: the user's own entries first, then the
        public ones; a pure tool's are all public."""
        return [keys.PUBLIC_SCOPE] if self.pure else [keys.user_scope(ctx.user_id), keys.PUBLIC_SCOPE]

    def _cached(self, ctx: ToolContext, input_hash: str) -> CachedResult | None:
        """A fresh stored result for this input that this step's user may reuse, or None."""
        for scope in self._scopes(ctx):
            hit = ctx.store.tool_cache.get(self.name, scope, input_hash)
            if hit is not None:
                return hit
        return None

    def _produce(self, ctx: ToolContext, parsed: Any, input_hash: str | None) -> Any:
        """Run the tool; store its output when it may be reused (a ``ToolInputError`` from
        the run is never stored)."""
        produced = self.run(ctx, parsed)
        if self.cache is None or input_hash is None:
            return _output(produced)
        if self.pure:
            produced = Reusable(_output(produced), float(self.cache.max_age_seconds), public=True)
        if isinstance(produced, Reusable):
            fresh_for_ms = int(min(produced.fresh_for_seconds, self.cache.max_age_seconds) * 1000)
            if fresh_for_ms > 0:
                scope = keys.PUBLIC_SCOPE if produced.public else keys.user_scope(ctx.user_id)
                ctx.store.tool_cache.put(self.name, scope, input_hash, produced.output, fresh_for_ms)
        return _output(produced)


def _slice_number(token: str | None) -> int:
    """The slice a token starts: 0 for none; a token this module did not make is refused."""
    if token is None:
        return 0
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise ValueError(f"continuation must be null or a token a slice handed back, got {token!r}")
    return int(match.group(1))


def _state_digest(state: Any) -> str:
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _output(produced: Any) -> Any:
    """A tool's output, whether or not its run said how it may be reused."""
    return produced.output if isinstance(produced, Reusable) else produced
