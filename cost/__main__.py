"""python -m cost STACK [--rate N] [--model-wait S]: what STACK costs (make cost).

Prints (1) the monthly fixed cost of the resources the program creates for STACK, run
under the mocks as ``make preview`` runs it; (2) the cost per 1M turns per service for a
direct answer and for one tool call, from what a turn does on the local stack (measured
now) and the price table (cost/prices.json); (3) the model's tokens, turn by turn in sessions
built by the turn's own code (cost/sessions.py), with and without prompt caching; (4) with
--rate, the capacity that rate needs in each region beside AWS's default quotas.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cost.prices import load_prices
from cost.render import render, render_markdown
from cost.report import build_report, load_before
from cost.turn import Assumptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cost", description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--rate", type=float, help="turns per second, all regions together: show the capacity it needs")
    defaults = Assumptions()
    parser.add_argument(
        "--model-wait",
        type=float,
        help="seconds per model call (default: the model's time to first token + output tokens / its output speed)",
    )
    parser.add_argument(
        "--output-tokens", type=int, default=defaults.output_tokens, help="a final answer's tokens (default 300)"
    )
    parser.add_argument("--dynamodb-ms", type=float, default=defaults.dynamodb_ms, help="DynamoDB round trip, ms")
    parser.add_argument("--task-overhead-ms", type=float, default=defaults.task_overhead_ms)
    parser.add_argument("--xray-sampling", type=float, help="fraction of turns traced (0..1), instead of the program's")
    parser.add_argument("--session-turns", type=int, default=10, help="turns per session measured (default 10)")
    parser.add_argument("--turn-interval", type=float, default=90.0, help="seconds between a session's turns")
    parser.add_argument("--message-chars", type=int, default=defaults.message_chars, help="a direct turn's message")
    parser.add_argument(
        "--markdown", metavar="FILE", help="also write a short Markdown summary to FILE (pull requests)"
    )
    args = parser.parse_args(argv)

    from local.pulumi_mocks import ROOT, stack_config

    if not (ROOT / f"Pulumi.{args.stack}.yaml").exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
        print(f"no stack {args.stack!r}; stacks: {', '.join(stacks)}", file=sys.stderr)
        return 2
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if args.model_wait is not None and args.model_wait < 0:
        parser.error("--model-wait is seconds, not negative")
    if args.xray_sampling is not None and not 0 <= args.xray_sampling <= 1:
        parser.error("--xray-sampling is a fraction between 0 and 1")

    import pulumi

    from cost.measure import measure
    from cost.program import stack_facts
    from cost.sessions import SessionShape, model_tokens

    try:
        facts = stack_facts(args.stack)
    except pulumi.RunError as error:
        print(error, file=sys.stderr)
        return 2
    assumptions = Assumptions(
        model_wait_s=args.model_wait,
        output_tokens=args.output_tokens,
        message_chars=args.message_chars,
        dynamodb_ms=args.dynamodb_ms,
        task_overhead_ms=args.task_overhead_ms,
        xray_sampling=args.xray_sampling,
    )
    measured = measure(
        args.stack,
        session_turns=args.session_turns,
        turn_interval_s=args.turn_interval,
        message_chars=assumptions.message_chars,
        reply_chars=assumptions.reply_chars,
    )
    prices = load_prices()
    price = prices.models.get(facts.llm_model)
    configured_tools = stack_config(args.stack).get("agent-infra:tools", [])
    tokens = None
    if price is not None:
        tokens = model_tokens(
            facts.llm_model,
            price,
            SessionShape(
                turns=args.session_turns,
                message_chars=assumptions.message_chars,
                answer_tokens=assumptions.output_tokens,
                turn_interval_s=args.turn_interval,
            ),
            history_tokens=facts.history_tokens,
            max_tokens=facts.max_tokens,
            prompt_caching=facts.prompt_caching,
            tools=[t["name"] for t in configured_tools],
            approval_tools=[t["name"] for t in configured_tools if t.get("requiresApproval")],
        )
    report = build_report(
        facts,
        prices,
        assumptions,
        measured.profiles,
        emf_metrics=measured.emf_metrics,
        rate=args.rate,
        before=load_before(),
        model_tokens=tokens,
    )
    report.authorizer_note = (
        f"authorizer: {measured.authorizer_first_turn} invocation for a token's first turn,"
        f" {measured.authorizer_later_turns} for its later turns within the {facts.authorizer_ttl_s} s cache:"
        f" one per {facts.authorizer_ttl_s} s of a user's turns"
    )
    sys.stdout.write(render(report))
    from cost.long_tools import render_long_tools
    from local.pulumi_mocks import stack_config

    config = stack_config(args.stack)
    sys.stdout.write(render_long_tools(prices, config["agent-infra:regions"], config.get("agent-infra:tools", [])))
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
