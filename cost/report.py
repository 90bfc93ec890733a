"""The report's figures: every line for one stack (:func:`build_report`), the what-ifs a
config lever would give, the model wait that would meet a goal, and the part of a turn's
cost that pays for keeping it. ``cost.render`` prints them.

The goals are data (``cost/goals.json``, by stack), as the before figures are
(``cost/before.json``): a stack with goals is read against them, one without is not.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cost.facts import StackFacts
from cost.lines import TURNS, Capacity, Line, total
from cost.prices import ModelPrice, PriceTable
from cost.services import capacity_lines, fixed_lines, turn_lines
from cost.turn import Assumptions, TurnProfile, with_model_wait

BEFORE_PATH = Path(__file__).with_name("before.json")
GOALS_PATH = Path(__file__).with_name("goals.json")
KEPT_GROUPS = ("DynamoDB storage",)


def load_before(path: Path = BEFORE_PATH) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_goals(stack: str, path: Path = GOALS_PATH) -> dict[str, float]:
    """``stack``'s goals, $ per 1M turns by kind of turn; none for a stack without."""
    return {kind: float(usd) for kind, usd in json.loads(Path(path).read_text())["stacks"].get(stack, {}).items()}


@dataclass
class Report:
    facts: StackFacts
    prices: PriceTable
    assumptions: Assumptions
    profiles: Mapping[str, TurnProfile]
    fixed: list[Line]
    per_turn: Mapping[str, list[Line]]
    model: ModelPrice | None
    tokens: Mapping[str, float]
    rate: float | None = None
    model_tokens: Any = None
    """``cost.sessions.ModelTokens``: the sessions the token figures come from."""
    capacity: Mapping[str, list[Capacity]] = field(default_factory=dict)
    before: Mapping[str, Any] | None = None
    authorizer_note: str = ""
    goals: Mapping[str, float] = field(default_factory=dict)
    """$ per 1M turns a kind of turn's work should stay under (``cost/goals.json``)."""


def build_report(
    facts: StackFacts,
    prices: PriceTable,
    assumptions: Assumptions,
    profiles: Mapping[str, TurnProfile],
    emf_metrics: int = 0,
    rate: float | None = None,
    before: Mapping[str, Any] | None = None,
    model_tokens: Any = None,
    goals: Mapping[str, float] | None = None,
) -> Report:
    """``model_tokens`` (``cost.sessions.model_tokens``): the sessions whose turns price the
    model's tokens by kind of turn; without them (no price for the model) there are none.
    ``goals``: the stack's own (``cost/goals.json``) unless given."""
    model = prices.models.get(facts.llm_model)
    assumptions = with_model_wait(assumptions, model, facts.llm_model)
    per_turn = {kind: turn_lines(profile, facts, prices, assumptions) for kind, profile in profiles.items()}
    tokens = (
        {kind: model_tokens.kind_usd(kind) * TURNS for kind in profiles}
        if model is not None and model_tokens is not None
        else {}
    )
    per_call = (
        model_tokens.tokens_per_call()
        if model_tokens is not None
        else assumptions.input_tokens + assumptions.output_tokens
    )
    capacity = {}
    if rate is not None:
        capacity = {
            kind: capacity_lines(rate, profiles[kind], facts, prices, assumptions, per_call)
            for kind in ("direct", "tool")
            if kind in profiles
        }
    return Report(
        facts=facts,
        prices=prices,
        assumptions=assumptions,
        profiles=profiles,
        fixed=fixed_lines(facts, prices, assumptions, emf_metrics),
        per_turn=per_turn,
        model=model,
        tokens=tokens,
        model_tokens=model_tokens,
        rate=rate,
        capacity=capacity,
        before=before,
        goals=load_goals(facts.stack) if goals is None else goals,
    )


def with_ttl(profile: TurnProfile, facts: StackFacts, ttl_days: int) -> tuple[TurnProfile, StackFacts]:
    """The profile and facts with items kept ``ttl_days`` instead of the stack's TTL: storage
    scales with the time an item is kept; every item is still deleted once."""
    scale = ttl_days / facts.ttl_days
    return (
        dataclasses.replace(
            profile,
            table_byte_months=profile.table_byte_months * scale,
            gsi_byte_months=profile.gsi_byte_months * scale,
        ),
        dataclasses.replace(facts, ttl_days=ttl_days),
    )


WHAT_IF_SAMPLING = 0.05
WHAT_IF_TTL_DAYS = 30


@dataclass(frozen=True)
class WhatIf:
    label: str
    totals: Mapping[str, float]
    """Total per 1M turns, by kind of turn."""
    work: Mapping[str, float]
    """The turn's work (every part but storage), by kind of turn."""


def _what_if_cases(report: Report) -> list[tuple[str, StackFacts, Assumptions, int | None]]:
    """(label, facts, assumptions, TTL days) of each config lever: X-Ray sampling at 5%, a 30-day
    TTL (``state.ttlDays``), PITR on the home replica only (``point_in_time_recovery`` is a
    setting of each replica of an ``aws.dynamodb.Table``:
    https://www.pulumi.com/registry/packages/aws/api-docs/dynamodb/table/#tablereplica), the
    Standard-IA table class (``table_class``), and the storage levers together."""
    f, a = report.facts, report.assumptions
    sampled = dataclasses.replace(a, xray_sampling=WHAT_IF_SAMPLING)
    home = dataclasses.replace(f, pitr_regions=f.pitr_regions[:1])
    ia = dataclasses.replace(f, table_class="STANDARD_INFREQUENT_ACCESS")
    ttl = WHAT_IF_TTL_DAYS if f.ttl_days > WHAT_IF_TTL_DAYS else None
    return [
        (f"X-Ray sampling rule at {WHAT_IF_SAMPLING:.0%}", f, sampled, None),
        (f"state.ttlDays {WHAT_IF_TTL_DAYS}", f, a, ttl),
        (f"PITR on {f.regions[0]} only", home, a, None),
        ("Standard-IA table class", ia, a, None),
        (f"ttlDays {WHAT_IF_TTL_DAYS} + PITR on {f.regions[0]} only", home, a, ttl),
    ]


def what_if(report: Report) -> tuple[list[WhatIf], list[str]]:
    """Totals per 1M turns with each config lever, and the labels of the levers that change
    nothing on this stack (it is already so): those are not printed as rows."""
    rows, same = [], []
    for label, facts, assumptions, ttl in _what_if_cases(report):
        totals, work = {}, {}
        for kind, profile in report.profiles.items():
            kind_facts = facts
            if ttl is not None:
                profile, kind_facts = with_ttl(profile, facts, ttl)
            lines = turn_lines(profile, kind_facts, report.prices, assumptions)
            totals[kind] = total(lines)
            work[kind] = totals[kind] - kept_cost(lines)
        if all(abs(totals[k] - total(report.per_turn[k])) < 0.005 for k in totals):
            same.append(label)
        else:
            rows.append(WhatIf(label, totals, work))
    return rows, same


def wait_that_meets(report: Report, kind: str, goal: float) -> float | None:
    """The longest model wait a call (in 0.1 s steps) at which the turn's work meets ``goal``,
    recomputed line by line; None if even no wait at all would not."""
    profile, assumptions = report.profiles[kind], report.assumptions
    wait = math.floor(assumptions.wait_s * 10) / 10
    while wait >= 0:
        waited = dataclasses.replace(assumptions, model_wait_s=wait)
        lines = turn_lines(profile, report.facts, report.prices, waited)
        if total(lines) - kept_cost(lines) <= goal:
            return wait
        wait = round(wait - 0.1, 1)
    return None


def kept_cost(lines: Iterable[Line]) -> float:
    """The part of a turn's cost that pays for keeping it (storage and PITR until its TTL)."""
    return sum(line.usd for line in lines if line.group in KEPT_GROUPS)


def grouped(lines: Iterable[Line]) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in lines:
        out[line.group] = out.get(line.group, 0.0) + line.usd
    return out
