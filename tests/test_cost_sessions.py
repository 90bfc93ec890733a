"""The model's tokens in ``make cost``: sessions run through the turn's own prepare and record,
usage counted by the stand-in's prompt cache (cost/sessions.py)."""

from __future__ import annotations

import pytest

from cost.prices import load_prices
from cost.sessions import LONG_SESSION_TURNS, SessionShape, TurnTokens, model_tokens, run_session, turn_usd

PROD_MODEL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
PRICES = load_prices()
PROD_TOOLS = ["calculator", "http_fetch", "memory", "create_ticket"]


@pytest.fixture(scope="module")
def prod_tokens():
    return model_tokens(
        PROD_MODEL,
        PRICES.models[PROD_MODEL],
        SessionShape(),
        history_tokens=8_000,
        max_tokens=2_048,
        prompt_caching=True,
    )


def test_a_turns_tokens_by_hand():
    # 100 x $3 + 1,000 x $0.30 + 200 x $3.75 + 300 x $15 = 300 + 300 + 750 + 4,500 = $5,850 per 1M = $0.00585
    turn = TurnTokens(calls=1, input=100, cache_read=1_000, cache_write=200, output=300)
    assert turn_usd(turn, PRICES.models[PROD_MODEL]) == pytest.approx(0.00585)
    assert turn.prompt == 1_300


def test_with_caching_billed_input_is_at_most_40_percent_of_without(prod_tokens):
    assert prod_tokens.input_share() <= 0.40
    assert prod_tokens.per_turn_usd(True) < prod_tokens.per_turn_usd(False)


def test_caching_changes_how_tokens_are_billed_not_how_many(prod_tokens):
    for cached, uncached in zip(prod_tokens.cached.turns, prod_tokens.uncached.turns, strict=True):
        assert cached.prompt == uncached.prompt and cached.output == uncached.output
        assert uncached.cache_read == uncached.cache_write == 0


def test_without_a_budget_the_prompt_grows_with_the_session_and_with_one_it_levels_off(prod_tokens):
    uncached = prod_tokens.uncached.turns
    assert uncached[9].prompt > 5 * uncached[0].prompt / 2, "the history is sent again each turn"
    direct = [t for n, t in enumerate(uncached, 1) if n % 3 and n > 20]
    assert max(t.prompt for t in direct) < 8_000 + 2 * uncached[0].prompt, "bounded by llm.historyTokens"


def test_a_turn_late_in_a_long_session_costs_within_1_3x_of_turn_10(prod_tokens):
    assert len(prod_tokens.cached.turns) == LONG_SESSION_TURNS
    assert prod_tokens.turn_usd(50) <= 1.3 * prod_tokens.turn_usd(10)
    assert prod_tokens.mean_usd(41, 50) <= 1.3 * prod_tokens.mean_usd(1, 10)
    assert prod_tokens.tool_turns(41, 50) == prod_tokens.tool_turns(1, 10)


def test_the_history_is_cut_a_few_times_in_a_long_session_and_each_cut_is_said(prod_tokens):
    recuts = prod_tokens.recuts()
    assert 2 <= len(recuts) <= LONG_SESSION_TURNS // 5, recuts
    for n in recuts:
        assert prod_tokens.cached.turns[n - 1].cache_write > prod_tokens.cached.turns[n - 2].cache_write


def test_tool_turns_make_two_calls_and_cost_more_than_direct_ones(prod_tokens):
    turns = prod_tokens.session_turns(True)
    assert [t.calls for t in turns] == [2 if n % 3 == 0 else 1 for n in range(1, 11)]
    assert prod_tokens.kind_usd("tool") > prod_tokens.kind_usd("direct")
    assert prod_tokens.mix() == (7, 3)


def test_a_model_without_prompt_caching_reads_nothing_from_a_cache():
    session = run_session("gpt-4o-mini", SessionShape(turns=4), prompt_caching=True)
    assert all(t.cache_read == t.cache_write == 0 and t.input > 0 for t in session.turns)


def test_a_session_needs_a_turn():
    with pytest.raises(ValueError, match="at least one turn"):
        run_session(PROD_MODEL, SessionShape(turns=0))
