"""Continuation tools: slices handed a token, the same token out for the same token in."""

from __future__ import annotations

import pytest

from handlers.tools import memory_search
from handlers.tools.memory import MemoryStore


def event(query: str = "spot", continuation: str | None = None, seq: int = 5, limit: int = 20) -> dict:
    return {
        "executionId": "exec-c",
        "startedAt": "2026-12-01T09:00:00.000Z",
        "seq": seq,
        "name": "memory_search",
        "toolUseId": "tu-5",
        "input": {"query": query, "limit": limit},
        "userId": "alice",
        "sessionId": "s1",
        "correlationId": "c",
        "continuation": continuation,
    }


@pytest.fixture
def memories(store, monkeypatch):
    """45 memories over three topics, every ninth about Spot; pages of 5, 2 pages a slice."""
    monkeypatch.setattr(memory_search, "PAGE_SIZE", 5)
    monkeypatch.setattr(memory_search, "PAGES_PER_SLICE", 2)
    remembered = MemoryStore(store.table)
    for i in range(45):
        text = f"note {i} about Spot capacity" if i % 9 == 0 else f"note {i} about lunch"
        remembered.remember("alice", ("travel", "work", "food")[i % 3], text, f"{1_000 + i:013d}-00001-k{i}")
    return remembered


def slices(store, **kwargs) -> tuple[list[dict], dict]:
    """Invoke as the task machine does until done: the answers, and the last."""
    answers, token = [], None
    while True:
        answer = memory_search.TOOL.lambda_handler(event(continuation=token, **kwargs), store=store)
        answers.append(answer)
        if answer["done"]:
            return answers, answer
        token = answer["continuation"]


def test_a_search_runs_in_slices_and_ends_with_a_lambda_tools_result(store, memories):
    answers, last = slices(store)
    assert len(answers) == 5, "45 memories, 10 a slice, and the last slice finds the end"
    assert all(set(a) == {"done", "continuation"} and not a["done"] for a in answers[:-1])
    result = last["result"]
    assert set(result) == {"toolUseId", "name", "seq", "status", "output"}
    assert result["status"] == "SUCCEEDED" and result["name"] == "memory_search" and result["seq"] == 5
    assert sorted(m["text"] for m in result["output"]["matches"]) == sorted(
        f"note {i} about Spot capacity" for i in range(0, 45, 9)
    )
    assert result["output"]["scanned"] == 45
    recorded = store.tool_runs.get("exec-c", 5, "memory_search")
    assert recorded.output == result["output"], "the last slice's result is recorded like any tool's"


def test_a_redelivered_slice_hands_back_the_same_token_even_after_the_data_changed(store, memories):
    first = memory_search.TOOL.lambda_handler(event(), store=store)
    second = memory_search.TOOL.lambda_handler(event(continuation=first["continuation"]), store=store)
    memories.remember("alice", "aaa", "a new Spot note at the front", "0000000000001-00001-new")
    assert memory_search.TOOL.lambda_handler(event(), store=store) == first
    again = memory_search.TOOL.lambda_handler(event(continuation=first["continuation"]), store=store)
    assert again == second
    assert first["continuation"].startswith("1.") and second["continuation"].startswith("2.")


def test_a_redelivered_last_slice_returns_the_recorded_result(store, memories):
    answers, last = slices(store)
    token = answers[-2]["continuation"]
    replay = memory_search.TOOL.lambda_handler(event(continuation=token), store=store)
    assert replay["done"] and replay["result"]["output"] == last["result"]["output"]
    assert replay["result"]["replayed"] is True


def test_the_search_stops_early_once_it_has_enough(store, memories):
    answers, last = slices(store, limit=1)
    # Memories sort by topic: 15 of food (3 pages) come before the first about Spot (travel).
    assert len(answers) == 2 and len(last["result"]["output"]["matches"]) == 1
    assert last["result"]["output"]["scanned"] == 20, "the rest is never read"


@pytest.mark.parametrize("token", ["not-a-token", "7.0123456789abcdef", "1.0123456789abcdef"])
def test_a_token_no_slice_handed_out_is_refused(store, memories, token):
    memory_search.TOOL.lambda_handler(event(), store=store)
    with pytest.raises(ValueError, match="continuation"):
        memory_search.TOOL.lambda_handler(event(continuation=token), store=store)


def test_a_query_the_tool_refuses_is_a_recorded_failure(store, memories):
    answer = memory_search.TOOL.lambda_handler(event(query="!!!"), store=store)
    assert answer["done"] and answer["result"]["status"] == "FAILED"
    assert answer["result"]["output"] == {"error": "the query has no words to search for"}
    bad = memory_search.TOOL.lambda_handler(event(query="", seq=6), store=store)
    assert bad["result"]["status"] == "FAILED" and "invalid input" in bad["result"]["output"]["error"]
