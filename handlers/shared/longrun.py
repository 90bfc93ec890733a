"""Long tool steps (runtime ``fargate-spot``): work items done once, checkpoints, a prompt stop.

A long tool's ``run`` is a :class:`LongWork`: ``plan`` lists the step's work items (the same
list for the same input, each with a key unique in the step), ``work`` does one item and
returns its result (small JSON), ``finish`` turns the items' results into the tool's output.
The step's result is then recorded like any tool's (``handlers.shared.tooling``).

Fargate Spot may take the task back at any time: ECS sends SIGTERM, the two-minute warning,
then SIGKILL once the container's ``stopTimeout`` has passed, at most 120 s on Fargate
(https://aws.amazon.com/premiumsupport/knowledge-center/fargate-spot-termination-notice/;
"When AWS needs the capacity back, your tasks are interrupted with a two-minute warning",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html).
So:

* **Items are done once.** Each item's result is written with one conditional PutItem
  (``ITEM#<seq>#<tool>#<itemKey>``, ``handlers.shared.store.long_runs``). An item done before
  an interruption but after the last checkpoint is worked again on resume, but its write
  finds the first one and keeps it: its effect happens once. A tool whose item has an effect
  outside the table keys it on :func:`item_idempotency_key`.
* **Checkpoints** (``CKPT#<seq>#<tool>``: the position in the plan) are saved every
  ``checkpoint_seconds`` and when the step stops (SIGTERM, or an error); a restarted step
  with the same event resumes from the last one, so at most an interval's items are worked
  again. Each save is one small PutItem, conditional on not moving back.
* **A prompt stop.** SIGTERM sets :data:`STOP`; the item in hand finishes, the checkpoint is
  saved and :class:`Interrupted` ends the step (the entrypoint exits 143). An item still
  running :data:`ABANDON_AFTER_SECONDS` after the signal is abandoned (it is redone on
  resume, safely), so the process is gone well within the stop timeout.

The step runs in one region: the task machine's, which starts the ECS task there and records
the result there. The checkpoint and every item are written through that region's replica,
so each condition is checked against every earlier write of its key (a global table checks
a condition only in the replica written to, and settles writes from two regions by last
writer, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html).

``LONGRUN_CHECKPOINTS=off`` runs without checkpoints (every restart begins at the first item;
the items' writes still keep effects single): the baseline ``bench/interruptions.py``
compares against. ``LONGRUN_CHECKPOINT_SECONDS`` overrides the interval.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from handlers.shared.log import get_logger
from handlers.shared.store import Checkpoint
from handlers.shared.tooling import ToolContext

CHECKPOINT_SECONDS = 30.0
"""At most this much work is redone after a SIGKILL; a save costs one small write."""
ABANDON_AFTER_SECONDS = 20.0
"""After SIGTERM, how long the item in hand may still run: well within ECS's default stop
timeout (30 s) and Fargate's maximum (120 s), leaving time to save and exit."""
MAX_ITEMS = 10_000
ENV_CHECKPOINTS = "LONGRUN_CHECKPOINTS"
ENV_CHECKPOINT_SECONDS = "LONGRUN_CHECKPOINT_SECONDS"

_logger = get_logger("longrun")


class WorkItem(msgspec.Struct, frozen=True):
    key: str
    """Unique in the step, no '#', at most 256 characters: part of the item's table key."""
    data: Any = None


class Interrupted(Exception):
    """The step was told to stop and saved its checkpoint; nothing was recorded."""

    def __init__(self, cursor: int, saved: bool) -> None:
        self.cursor = cursor
        self.saved = saved
        super().__init__(f"stopped at item {cursor} ({'checkpoint saved' if saved else 'no checkpoint'})")


class Abandoned(BaseException):
    """Raised into the item in hand when it outlives the stop's grace; a BaseException so a
    tool's ``except Exception`` cannot swallow it."""


class Stop:
    """Whether this process was told to stop. The SIGTERM handler sets it; the item loop
    reads it between items. While an item runs (:meth:`item`), a stop that is not obeyed
    within the grace raises :class:`Abandoned` into it (SIGALRM, main thread only)."""

    def __init__(self) -> None:
        self.requested_at: float | None = None
        self.grace_seconds = ABANDON_AFTER_SECONDS
        self._in_item = False

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def request(self) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()
            if self._in_item and hasattr(signal, "setitimer"):
                signal.setitimer(signal.ITIMER_REAL, self.grace_seconds)

    def install(self, grace_seconds: float = ABANDON_AFTER_SECONDS) -> None:
        """Take SIGTERM (and the grace's SIGALRM) in this process: call from the main thread."""
        self.grace_seconds = grace_seconds
        signal.signal(signal.SIGTERM, lambda _signum, _frame: self.request())
        signal.signal(signal.SIGALRM, self._alarm)

    def _alarm(self, _signum: int, _frame: Any) -> None:
        if self._in_item:
            raise Abandoned(f"the item did not finish within {self.grace_seconds:g} s of the stop")

    def run_item(self, call: Callable[[], Any]) -> Any:
        """``call()`` as the item in hand: abandoned if a stop comes and the grace runs out."""
        self._in_item = True
        try:
            if self.requested and hasattr(signal, "setitimer"):
                signal.setitimer(signal.ITIMER_REAL, max(0.001, self._grace_left()))
            return call()
        finally:
            self._in_item = False
            if hasattr(signal, "setitimer"):
                signal.setitimer(signal.ITIMER_REAL, 0)

    def _grace_left(self) -> float:
        assert self.requested_at is not None
        return self.grace_seconds - (time.monotonic() - self.requested_at)


STOP = Stop()
"""This process's stop: the entrypoint installs its signal handlers."""


class RunSettings(msgspec.Struct, frozen=True):
    checkpoints: bool = True
    checkpoint_seconds: float = CHECKPOINT_SECONDS

    def __post_init__(self) -> None:
        if not self.checkpoint_seconds > 0:
            raise ValueError(f"{ENV_CHECKPOINT_SECONDS} must be a positive number of seconds")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RunSettings:
        env = os.environ if environ is None else environ
        switch = env.get(ENV_CHECKPOINTS, "on").strip().lower()
        if switch not in ("on", "off"):
            raise ValueError(f"{ENV_CHECKPOINTS} must be 'on' or 'off', got {switch!r}")
        raw = env.get(ENV_CHECKPOINT_SECONDS)
        try:
            seconds = float(raw) if raw else CHECKPOINT_SECONDS
        except ValueError:
            raise ValueError(f"{ENV_CHECKPOINT_SECONDS} must be a number of seconds, got {raw!r}") from None
        return cls(checkpoints=switch == "on", checkpoint_seconds=seconds)


def plan_digest(items: Sequence[WorkItem]) -> str:
    """What identifies a plan: its item keys in order."""
    return hashlib.sha256("\0".join(item.key for item in items).encode()).hexdigest()[:32]


def item_idempotency_key(ctx: ToolContext, item: WorkItem) -> str:
    """The same for every attempt at one item of one step: key an effect outside the table on it."""
    return hashlib.sha256(f"{ctx.idempotency_key}:{item.key}".encode()).hexdigest()[:32]


class LongWork:
    """A long tool's ``run``: the step as a plan of items done once each (see the module)."""

    def __init__(
        self,
        plan: Callable[[ToolContext, Any], Sequence[WorkItem]],
        work: Callable[[ToolContext, Any, WorkItem], Any],
        finish: Callable[[ToolContext, Any, Sequence[WorkItem], Sequence[Any]], Any],
        max_items: int = MAX_ITEMS,
    ) -> None:
        self.plan = plan
        self.work = work
        self.finish = finish
        self.max_items = max_items

    def __call__(self, ctx: ToolContext, request: Any) -> Any:
        return self.execute(ctx, request, RunSettings.from_environ(), STOP)

    def execute(
        self,
        ctx: ToolContext,
        request: Any,
        settings: RunSettings,
        stop: Stop,
        clock: Callable[[], float] = time.monotonic,
    ) -> Any:
        if not ctx.tool_name:
            raise ValueError("a long tool's context must name the tool (ToolContext.tool_name)")
        items = self._planned(ctx, request)
        run = _Run(ctx, plan_digest(items), settings, clock)
        start = cursor = run.resume_at(len(items))
        try:
            for cursor in range(start, len(items)):
                if stop.requested:
                    raise Interrupted(cursor, run.save(cursor))
                item = items[cursor]
                result = stop.run_item(lambda item=item: self.work(ctx, request, item))
                written, _ = ctx.store.long_runs.put_item_once(
                    ctx.execution_id, ctx.seq, ctx.tool_name, item.key, result
                )
                _logger.info("work item", extra={"item": item.key, "written": written, "position": cursor})
                run.maybe_save(cursor + 1)
        except Interrupted:
            raise
        except Abandoned:
            raise Interrupted(cursor, run.save(cursor)) from None
        except Exception:
            run.save(cursor)  # a crash resumes here too when the step is retried
            raise
        results = ctx.store.long_runs.items(ctx.execution_id, ctx.seq, ctx.tool_name)
        missing = [item.key for item in items if item.key not in results]
        if missing:
            raise RuntimeError(f"work items {missing[:5]} are not stored although the plan is done")
        return self.finish(ctx, request, items, [results[item.key] for item in items])

    def _planned(self, ctx: ToolContext, request: Any) -> list[WorkItem]:
        items = list(self.plan(ctx, request))
        if len(items) > self.max_items:
            raise ValueError(f"the plan has {len(items)} items, at most {self.max_items}")
        keys = [item.key for item in items]
        if len(set(keys)) != len(keys):
            raise ValueError("work item keys must be unique in a step")
        return items


class _Run:
    """One process's go at a step: where it resumed, and when it last saved."""

    def __init__(self, ctx: ToolContext, plan: str, settings: RunSettings, clock: Callable[[], float]) -> None:
        self.ctx = ctx
        self.plan = plan
        self.settings = settings
        self.clock = clock
        self.saved_at = clock()

    def resume_at(self, size: int) -> int:
        if not self.settings.checkpoints:
            return 0
        found = self.ctx.store.long_runs.checkpoint(self.ctx.execution_id, self.ctx.seq, self.ctx.tool_name)
        if found is None:
            return 0
        if found.plan != self.plan or not 0 <= found.cursor <= size:
            _logger.warning("checkpoint of another plan ignored", extra={"cursor": found.cursor})
            return 0
        _logger.info("resumed from checkpoint", extra={"cursor": found.cursor, "items": size})
        return found.cursor

    def maybe_save(self, cursor: int) -> None:
        if self.settings.checkpoints and self.clock() - self.saved_at >= self.settings.checkpoint_seconds:
            self.save(cursor)

    def save(self, cursor: int) -> bool:
        """Save the position (no-op without checkpoints); a failed save is logged, never
        raised: the items' own writes keep their effects single whatever it holds."""
        if not self.settings.checkpoints:
            return False
        try:
            saved = self.ctx.store.long_runs.save_checkpoint(
                self.ctx.execution_id, self.ctx.seq, self.ctx.tool_name, Checkpoint(cursor=cursor, plan=self.plan)
            )
        except Exception:
            _logger.exception("checkpoint not saved", extra={"cursor": cursor})
            return False
        self.saved_at = self.clock()
        return saved
