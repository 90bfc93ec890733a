"""The report as text: the terminal report (:func:`render`: fixed costs, per 1M turns,
model tokens, capacity, and what was measured, read and assumed) and a short Markdown
summary for a pull request (:func:`render_markdown`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cost.lines import DAYS_PER_MONTH, TURNS, total
from cost.report import KEPT_GROUPS, Report, WhatIf, grouped, kept_cost, wait_that_meets, what_if


def _money(value: float) -> str:
    return f"{value:,.2f}"


def before_after(report: Report) -> list[tuple[str, str, str, str]]:
    """(part, before, after direct, after one tool call) rows for the issue's table."""
    if not report.before:
        return []
    direct = grouped(report.per_turn.get("direct", []))
    tool = grouped(report.per_turn.get("tool", []))
    rows = []
    used: set[str] = set()
    for row in report.before["rows"]:
        groups = row["groups"]
        used |= set(groups)
        rows.append(
            (
                row["part"],
                row["before"],
                _money(sum(direct.get(g, 0.0) for g in groups)),
                _money(sum(tool.get(g, 0.0) for g in groups)),
            )
        )
    rest = sorted((set(direct) | set(tool)) - used)
    for group in rest:
        rows.append(
            (f"{group} (not in the before table)", "-", _money(direct.get(group, 0.0)), _money(tool.get(group, 0.0)))
        )
    rows.append(
        (
            "total",
            report.before["total"],
            _money(total(report.per_turn.get("direct", []))),
            _money(total(report.per_turn.get("tool", []))),
        )
    )
    return rows


def _table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i]) for i, c in enumerate(row)]
        out.append("  " + "  ".join(cells).rstrip())
    return out


GOAL_NAMES = {"direct": "direct", "tool": "one tool call"}
"""How the report names a kind of turn that has a goal."""


def _gap(report: Report, kind: str, goal: float, work: float, levers: Sequence[WhatIf]) -> list[str]:
    """Why the turn's work of ``kind`` is above ``goal``, and what would close it."""
    lines = [line for line in report.per_turn[kind] if line.group not in KEPT_GROUPS]
    biggest = sorted(lines, key=lambda line: line.usd, reverse=True)[:3]
    out = [
        f"    {GOAL_NAMES[kind]} is ${_money(work - goal)} above ${goal:g}; its largest parts: "
        + ", ".join(f"{line.group} / {line.part} ${_money(line.usd)} ({line.detail})" for line in biggest)
    ]
    closing = [w.label for w in levers if w.work.get(kind, math.inf) <= goal]
    out.append(
        "      config levers that close it: "
        + (", ".join(closing) if closing else "none of the what-ifs below")
        + " (they move storage, not the turn's work)" * (not closing)
    )
    a, model = report.assumptions, report.model
    wait = wait_that_meets(report, kind, goal)
    if wait is None:
        out.append("      not even a model wait of 0 s would: the parts without the model are above it")
        return out
    text = f"      what closes it: a model wait of at most {wait:.1f} s a call (now {a.wait_s:.2f} s: {a.model_wait_source})"
    if model is not None and model.output_tokens_per_second and model.first_token_seconds is not None:
        tokens = (wait - model.first_token_seconds) * model.output_tokens_per_second
        text += (
            f"; at this model's speed that is at most {max(0, math.floor(tokens)):,} output tokens a call"
            f" (now {a.output_tokens:,}), or a faster model"
            if tokens > 0
            else "; shorter answers cannot reach it at this model's time to first token: a faster model can"
        )
    out.append(text)
    return out


def goal_lines(report: Report) -> list[str]:
    """The stack's goals, read on the turn's work (every part but storage) and with storage, and
    the levers: each what-if that differs from now, and what closes a goal that is not met."""
    f = report.facts
    goals = report.goals
    out = [
        f"  goal ({f.stack}): "
        + ", ".join(f"{GOAL_NAMES.get(k, k)} <= ${goal:g}" for k, goal in goals.items())
        + f" per 1M turns (rates of {', '.join(f.regions)}; model wait {report.assumptions.wait_s:.2f} s a call)"
    ]
    kinds = [k for k in goals if k in report.per_turn]
    work = {k: total(report.per_turn[k]) - kept_cost(report.per_turn[k]) for k in kinds}
    whole = {k: total(report.per_turn[k]) for k in kinds}

    def verdict(value: float, goal: float) -> str:
        return f"${_money(value)} ({'met' if value <= goal else 'NOT met'})"

    out.append(
        "    the turn's work (every part but storage):  "
        + ", ".join(f"{GOAL_NAMES[k]} {verdict(work[k], goals[k])}" for k in kinds)
    )
    months = f.ttl_days / DAYS_PER_MONTH
    out.append(
        f"    with the turn kept {f.ttl_days} days (storage + PITR, {f.table_regions} regions):  "
        + ", ".join(f"{GOAL_NAMES[k]} {verdict(whole[k], goals[k])}" for k in kinds)
        + "; keeping costs "
        + " and ".join(f"${_money(kept_cost(report.per_turn[k]) / months)} ({GOAL_NAMES[k]})" for k in kinds)
        + " per 1M turns per month kept (state.ttlDays)"
    )
    levers, same = what_if(report)
    for kind in kinds:
        if work[kind] > goals[kind]:
            out += _gap(report, kind, goals[kind], work[kind], levers)
    out.append("  what would move it (per 1M turns with a config change, same measurement: total / the turn's work):")
    for w in levers:
        out.append(
            "    " + f"{w.label:<40}" + "  ".join(f"{k} {_money(v)} / {_money(w.work[k])}" for k, v in w.totals.items())
        )
    if same:
        out.append(f"    (the same as now, so not shown: {', '.join(same)})")
    return out


def regional_rates(report: Report) -> list[str]:
    """Which region's rate each price took: a region's own figure where prices.json has one,
    us-east-1's otherwise, and where that is for lack of a figure."""
    prices, regions = report.prices, report.facts.regions
    out = []
    for region in regions:
        own = sorted(k for k, e in prices.prices.items() if region in e.regions)
        missing = sorted(k for k, e in prices.prices.items() if region in e.unsourced_in)
        text = f"  {region}: " + (f"its own rates for {', '.join(own)}" if own else "us-east-1's rates")
        if missing:
            text += f"; no figure found, us-east-1's used: {', '.join(missing)}"
        out.append(text)
    return out


def render(report: Report) -> str:
    f, prices, a = report.facts, report.prices, report.assumptions
    out: list[str] = []
    out.append(
        f"agent-infra cost: stack {f.stack}, {len(f.regions)} regions ({', '.join(f.regions)}); "
        f"list prices of each region where the cost lands (cost/prices.json, read {prices.read}; {prices.region}'s"
        " where a region has no figure of its own)"
    )
    out.append("")
    out.append(f"1. FIXED, per month: from the {f.resources} resources the program creates (run under the mocks)")
    rows = [("service", "item", "quantity", "$/month")]
    rows += [(line.group, line.part, line.detail, _money(line.usd)) for line in report.fixed]
    rows.append(("", "total fixed", "", _money(total(report.fixed))))
    out += _table(rows, right=(3,))
    out.append(
        "  not counted: log storage, DynamoDB's and CloudWatch's free tiers, Route 53 hosted zone (not created here)"
    )
    out.append("")
    kinds = [k for k in ("direct", "tool", "memory", "websocket") if k in report.per_turn]
    out.append("2. PER 1M TURNS, $ (infrastructure; model tokens in 3.)")
    for kind in kinds:
        profile = report.profiles[kind]
        out.append(f"  [{kind}] {profile.description}")
    rows = [("service", "part", *kinds)]
    parts: list[tuple[str, str]] = []
    for kind in kinds:
        for line in report.per_turn[kind]:
            if (line.group, line.part) not in parts:
                parts.append((line.group, line.part))
    for group, part in parts:
        values = []
        for kind in kinds:
            match = [line.usd for line in report.per_turn[kind] if (line.group, line.part) == (group, part)]
            values.append(_money(match[0]) if match else "-")
        rows.append((group, part, *values))
    rows.append(("", "total", *(_money(total(report.per_turn[k])) for k in kinds)))
    out += _table(rows, right=tuple(range(2, 2 + len(kinds))))
    out.append("  how each figure is made (direct answer):")
    for line in report.per_turn.get("direct", []):
        out.append(f"    {line.group} / {line.part}: {line.detail}")
    if "websocket" in report.per_turn:
        profile = report.profiles["websocket"]
        stream = [line for line in report.per_turn["websocket"] if line.part.startswith("agent-stream")]
        if stream:
            out.append(
                f"  WebSocket turns: agent-stream waits for the whole model call in a Lambda: {stream[0].detail},"
                f" ${_money(stream[0].usd)} per 1M turns of the ${_money(total(report.per_turn['websocket']))}"
                f" ({profile.websocket_frames:g} frames out a turn)"
            )
    if report.goals and "direct" in report.per_turn:
        out += goal_lines(report)
    rows = before_after(report)
    if rows:
        out.append("")
        out.append(f"  before (issue 11) and now, $ per 1M turns, stack {f.stack}:")
        out += _table([("part", "before", "now: direct", "now: one tool call"), *rows], right=(2, 3))
    out.append("")
    out += token_section(report, kinds)
    if report.rate is not None:
        out.append("")
        regions = len(f.regions)
        out.append(
            f"4. CAPACITY at {report.rate:,g} turns/s: {report.rate / regions:,.0f} turns/s in each region"
            f" (assumed: an even split across the {regions} regions)"
        )
        for kind, lines in report.capacity.items():
            out.append(f"  [{kind}] {report.profiles[kind].description}")
            rows = [("needs", "per region", "default / limit", "", "source")]
            for c in lines:
                if c.limit is None:
                    flag = ""
                    limit = c.limit_name or "-"
                else:
                    flag = "RAISE" if c.over else "ok"
                    limit = f"{c.limit:,.0f}"
                source = c.url + ("" if c.confirmed else " (unconfirmed)") if c.url else c.limit_name
                rows.append((c.what, f"{c.needed:,.1f}", limit, flag, source))
            out += _table(rows, right=(1, 2))
    out.append("")
    out.append("MEASURED on the local stack (cost/measure.py; the real handlers, state machine and table access):")
    for kind in kinds:
        profile = report.profiles[kind]
        calls = ", ".join(f"{op} {n:g}" for op, n in profile.dynamodb_requests.items())
        functions = ", ".join(f"{k} {n:g}" for k, n in profile.invocations.items())
        out.append(
            f"  {kind}: {profile.states_entered:g} states entered ({profile.task_states:g} Task), "
            f"{profile.model_calls:g} model calls; Lambda: {functions}; DynamoDB a turn: {calls}; "
            f"items written {', '.join(str(s) for s in profile.item_sizes)} B; "
            f"{profile.lambda_log_bytes:,.0f} B of function logs"
        )
    out.append(
        f"  per session of {report.profiles[kinds[0]].session_turns} turns, one every"
        f" {report.profiles[kinds[0]].turn_interval_s:g} s (--session-turns, --turn-interval): the first turn creates"
        " the session (a transaction), a turn 10 minutes after the last refresh moves it in GSI1 (a transaction)"
    )
    if report.authorizer_note:
        out.append(f"  {report.authorizer_note}")
    out.append("READ from the program: regions and replicas, memory of every function, provisioned concurrency,")
    out.append(
        f"  alarms, dashboards, health checks, keys, secrets, PITR, TTL {f.ttl_days} d, Step Functions log level"
        f" {f.turn_log_level}, access log format, authorizer cache {f.authorizer_ttl_s} s, stage throttle"
        f" {f.stage_rate_limit:g}/s, model {f.llm_model}"
    )
    out.append(f"  X-Ray sampling: {f.xray_source}")
    if f.xray_sampling is None and a.xray_sampling is None:
        default = prices.facts["xray.default_rule"]
        out.append(
            f"    (without a rule of ours AWS's default rule applies: {default.per}; at this volume about"
            f" {default.value:.0%}, i.e. ${TURNS * default.value * prices.usd('xray.trace_recorded'):,.2f} per 1M turns;"
            f" {default.url})"
        )
    out.append("ASSUMED:")
    out += [f"  {line}" for line in a.lines()]
    out.append(f"  turns split evenly across the {len(f.regions)} regions (each region's rates weigh the same)")
    out.append("REGIONAL RATES used (cost/prices.json 'regions'):")
    out += regional_rates(report)
    unconfirmed = sorted(k for k, e in prices.prices.items() if not e.confirmed)
    regional = sorted(
        f"{k}@{r}" for k, e in prices.prices.items() for r, o in e.regions.items() if r in f.regions and not o.confirmed
    )
    out.append(
        f"PRICES not confirmed on a stored AWS page or Price List figure ({len(unconfirmed)} of {len(prices.prices)};"
        f" evidence in cost/prices.json): {', '.join(unconfirmed)}; regional figures: {', '.join(regional) or 'none'}"
    )
    return "\n".join(out) + "\n"


def token_section(report: Report, kinds: Sequence[str]) -> list[str]:
    """Section 3: the model's tokens per turn from the sessions (``cost.sessions``), with and
    without prompt caching, turn by turn as a session grows, and beside the infrastructure."""
    f, m, mt = report.facts, report.model, report.model_tokens
    if m is None or mt is None:
        return [f"3. MODEL TOKENS: {f.llm_model} has no price in cost/prices.json (add an entry under 'models')"]
    shape = mt.shape
    plain, tools = mt.mix()
    out = [
        f"3. MODEL TOKENS: a session of {shape.turns} turns ({plain} direct, {tools} with one tool call),"
        f" a turn every {shape.turn_interval_s:g} s, answers of {shape.answer_tokens} tokens;",
        f"  each call built by the turn's own prepare (earlier turns cut to llm.historyTokens {mt.history_tokens:,})"
        " and counted by the stand-in's prompt cache (cost/sessions.py)",
    ]

    def rate(value: float | None) -> str:
        return "-" if value is None else f"${value:g}"

    out.append(
        f"  {m.model_id} ({m.name}): {rate(m.input_per_million)} in, {rate(m.output_per_million)} out,"
        f" {rate(m.cache_read_per_million)} cache read, {rate(m.cache_write_per_million)} cache write per 1M tokens"
        f"{'' if m.confirmed else ' (not confirmed on a stored AWS page)'}; {m.url}"
    )
    rows = [
        ("tokens a turn, mean of the session", "calls", "input", "cache read", "cache write", "output", "$/1M turns")
    ]
    for cached, label in ((True, "with prompt caching"), (False, "without")):
        if not cached and not f.prompt_caching:
            continue
        turns = mt.session_turns(cached)
        n = len(turns)
        rows.append(
            (
                label if f.prompt_caching else "prompt caching off (llm.promptCaching)",
                f"{sum(t.calls for t in turns) / n:.1f}",
                f"{sum(t.input for t in turns) / n:,.0f}",
                f"{sum(t.cache_read for t in turns) / n:,.0f}",
                f"{sum(t.cache_write for t in turns) / n:,.0f}",
                f"{sum(t.output for t in turns) / n:,.0f}",
                _money(mt.per_turn_usd(cached) * TURNS),
            )
        )
    out += _table(rows, right=(1, 2, 3, 4, 5, 6))
    out.append(
        "  a checkpoint's minimum tokens counted over the whole prefix before it (Anthropic's rule; an example on"
        " AWS's page reads as 1,024 tokens between checkpoints): the first deployment's usage shows which"
    )
    if f.prompt_caching:
        share = mt.input_share()
        out.append(
            f"  billed input with prompt caching: {share:.0%} of without"
            f" (goal <= 40%: {'met' if share <= 0.4 else 'NOT met'}); the whole turn: "
            f"{mt.per_turn_usd(True) / mt.per_turn_usd(False):.0%}"
        )
    last = len(mt.cached.turns)
    t10, t_last = mt.turn_usd(10), mt.turn_usd(last)
    out.append(
        f"  as the session grows, $ per 1M turns: turn 1 {_money(mt.turn_usd(1) * TURNS)},"
        f" turn 10 {_money(t10 * TURNS)}, turn {last} {_money(t_last * TURNS)}"
        f" ({t_last / t10:.2f}x turn 10; goal <= 1.3x: {'met' if t_last <= 1.3 * t10 else 'NOT met'})"
    )
    late, early = mt.mean_usd(last - 9, last), mt.mean_usd(1, 10)
    out.append(
        f"    turns {last - 9}-{last}: {_money(late * TURNS)} a turn on average, {late / early:.2f}x turns 1-10"
        f" ({mt.tool_turns(last - 9, last)} and {mt.tool_turns(1, 10)} tool turns)"
    )
    recuts = [n for n in mt.recuts() if n > 1]
    if recuts:
        worst = max(mt.turn_usd(n) for n in recuts)
        out.append(
            f"    the history is cut at turns {', '.join(map(str, recuts))} (over llm.historyTokens, down to half):"
            f" such a turn writes its whole prompt to the cache again, up to {worst / t10:.2f}x turn 10"
        )
    out.append(
        "  per kind of turn, $ per 1M turns: "
        + ", ".join(f"{kind} {_money(report.tokens[kind])}" for kind in kinds if kind in report.tokens)
    )
    infra = (plain * total(report.per_turn["direct"]) + tools * total(report.per_turn["tool"])) / shape.turns
    model = mt.per_turn_usd(True) * TURNS
    out.append("  infrastructure and model side by side, the session's mix:")
    out += _table(
        [
            ("", "per 1M turns", f"per 1M sessions ({shape.turns} turns)"),
            ("infrastructure", _money(infra), _money(infra * shape.turns)),
            ("model tokens", _money(model), _money(model * shape.turns)),
            ("total", _money(infra + model), _money((infra + model) * shape.turns)),
        ],
        right=(1, 2),
    )
    return out


def render_markdown(report: Report) -> str:
    """A short summary for a pull request: fixed a month, per 1M turns by kind, tokens apart."""
    f = report.facts
    kinds = [k for k in ("direct", "tool", "memory", "websocket") if k in report.per_turn]
    out = [
        f"#### make cost: {f.stack} ({len(f.regions)} regions)",
        "",
        f"Fixed: **${_money(total(report.fixed))} a month** ({f.resources} resources).",
        "",
        "| $ per 1M turns | " + " | ".join(kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]
    groups: list[str] = []
    for kind in kinds:
        groups += [g for g in grouped(report.per_turn[kind]) if g not in groups]
    for group in groups:
        values = [grouped(report.per_turn[k]).get(group) for k in kinds]
        out.append(f"| {group} | " + " | ".join("-" if v is None else _money(v) for v in values) + " |")
    out.append("| **infrastructure** | " + " | ".join(f"**{_money(total(report.per_turn[k]))}**" for k in kinds) + " |")
    if report.model is not None:
        out.append(
            f"| model tokens ({report.model.name}) | " + " | ".join(_money(report.tokens[k]) for k in kinds) + " |"
        )
    out += [
        "",
        "Measured on the local stack with the real handlers and state machine; each region's list prices"
        f" (read {report.prices.read}); model wait {report.assumptions.wait_s:.2f} s per model call."
        f" `make cost STACK={f.stack}` prints how each figure is made.",
    ]
    return "\n".join(out) + "\n"
