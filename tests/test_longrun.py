"""Long tool steps in process, on moto: items done once, checkpoints, stops, and the example tool."""

from __future__ import annotations

import signal
import time

import pytest

from handlers.shared import table as keys
from handlers.shared.longrun import (
    Interrupted,
    LongWork,
    RunSettings,
    Stop,
    WorkItem,
    plan_digest,
)
from handlers.shared.store import MAX_CHECKPOINT_BYTES, Checkpoint
from handlers.shared.tooling import ToolContext, ToolDefinition
from handlers.tools import http_fetch, summarize_documents
from handlers.tools.summarize_documents import readable_text, summarize

ON = RunSettings(checkpoints=True, checkpoint_seconds=3600)
OFF = RunSettings(checkpoints=False)


def context(store, tool: str = "counter", execution: str = "exec-1") -> ToolContext:
    return ToolContext(
        execution_id=execution,
        seq=4,
        user_id="alice",
        session_id="s1",
        correlation_id="c",
        store=store,
        tool_name=tool,
    )


class Counter:
    """A long tool of ``size`` items whose work is counted; ``on_item`` runs inside an item."""

    def __init__(self, size: int = 6, on_item=None) -> None:
        self.size = size
        self.worked: list[str] = []
        self.on_item = on_item

    def plan(self, ctx, request):
        return [WorkItem(key=f"{i:03d}", data=i) for i in range(self.size)]

    def work(self, ctx, request, item):
        self.worked.append(item.key)
        if self.on_item is not None:
            self.on_item(item)
        return {"square": item.data * item.data, "attempt": len(self.worked)}

    def finish(self, ctx, request, items, results):
        return {"squares": [r["square"] for r in results], "attempts": [r["attempt"] for r in results]}

    def long_work(self) -> LongWork:
        return LongWork(self.plan, self.work, self.finish)


def stop_after(stop: Stop, key: str):
    """An ``on_item`` that asks to stop while item ``key`` is worked (as SIGTERM would)."""

    def on_item(item):
        if item.key == key:
            stop.request()

    return on_item


def test_a_plan_runs_through_and_each_item_is_written_once(store):
    counter = Counter()
    out = counter.long_work().execute(context(store), None, ON, Stop())
    assert out == {"squares": [0, 1, 4, 9, 16, 25], "attempts": [1, 2, 3, 4, 5, 6]}
    stored = store.long_runs.items("exec-1", 4, "counter")
    assert sorted(stored) == ["000", "001", "002", "003", "004", "005"]


def test_a_stop_finishes_the_item_in_hand_saves_and_resumes_there(store):
    stop = Stop()
    counter = Counter(on_item=stop_after(stop, "002"))
    with pytest.raises(Interrupted) as stopped:
        counter.long_work().execute(context(store), None, ON, stop)
    assert stopped.value.cursor == 3 and stopped.value.saved
    assert counter.worked == ["000", "001", "002"]
    checkpoint = store.long_runs.checkpoint("exec-1", 4, "counter")
    assert checkpoint.cursor == 3 and checkpoint.plan == plan_digest(counter.plan(None, None))

    counter.on_item = None
    out = counter.long_work().execute(context(store), None, ON, Stop())
    assert counter.worked == ["000", "001", "002", "003", "004", "005"], "resumed at the checkpoint"
    assert out["squares"] == [0, 1, 4, 9, 16, 25]


def test_without_checkpoints_work_is_redone_but_the_first_write_of_each_item_stays(store):
    stop = Stop()
    counter = Counter(on_item=stop_after(stop, "002"))
    with pytest.raises(Interrupted) as stopped:
        counter.long_work().execute(context(store), None, OFF, stop)
    assert not stopped.value.saved and store.long_runs.checkpoint("exec-1", 4, "counter") is None

    counter.on_item = None
    out = counter.long_work().execute(context(store), None, OFF, Stop())
    assert counter.worked == ["000", "001", "002", "000", "001", "002", "003", "004", "005"]
    # Items 0-2 were worked twice; their results are the first attempt's (1, 2, 3), not 4-6.
    assert out["attempts"] == [1, 2, 3, 7, 8, 9]


def test_a_crash_saves_where_it_stopped_and_a_retry_resumes_there(store):
    def crash(item):
        if item.key == "004":
            raise RuntimeError("dependency down")

    counter = Counter(on_item=crash)
    with pytest.raises(RuntimeError):
        counter.long_work().execute(context(store), None, ON, Stop())
    assert store.long_runs.checkpoint("exec-1", 4, "counter").cursor == 4
    counter.on_item = None
    counter.long_work().execute(context(store), None, ON, Stop())
    assert counter.worked[-3:] == ["004", "004", "005"]


def test_checkpoints_are_saved_at_intervals_so_a_kill_loses_at_most_one(store):
    """SIGKILL saves nothing (simulated by a BaseException no handler catches): what is left
    is the last interval's checkpoint."""
    ticks = iter(range(10_000))

    def kill(item):
        if item.key == "005":
            raise KeyboardInterrupt

    counter = Counter(size=8, on_item=kill)
    with pytest.raises(KeyboardInterrupt):
        counter.long_work().execute(
            context(store), None, RunSettings(checkpoint_seconds=2), Stop(), clock=lambda: next(ticks)
        )
    # The clock moves 1 per reading: saves after items 1 and 3 (cursor 2 and 4), none since.
    assert store.long_runs.checkpoint("exec-1", 4, "counter").cursor == 4


def test_an_item_that_outlives_the_grace_is_abandoned_and_redone(store):
    stop = Stop()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGALRM)}
    stop.install(grace_seconds=0.2)
    try:
        returned = []

        def hang(item):
            if item.key == "001":
                stop.request()
                time.sleep(5)  # a fetch that does not return
                returned.append(item.key)

        counter = Counter(on_item=hang)
        with pytest.raises(Interrupted) as stopped:
            counter.long_work().execute(context(store), None, ON, stop)
        assert returned == [], "the hung item was abandoned at the grace's end, not waited for"
        assert stopped.value.cursor == 1, "the abandoned item is not done"
        assert store.long_runs.checkpoint("exec-1", 4, "counter").cursor == 1
        assert sorted(store.long_runs.items("exec-1", 4, "counter")) == ["000"]
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def test_a_checkpoint_of_another_plan_is_not_resumed_from(store):
    store.long_runs.save_checkpoint("exec-1", 4, "counter", Checkpoint(cursor=5, plan="another plan"))
    counter = Counter()
    counter.long_work().execute(context(store), None, ON, Stop())
    assert counter.worked[0] == "000"


def test_a_checkpoint_never_moves_back_and_stays_small(store):
    runs = store.long_runs
    assert runs.save_checkpoint("e", 1, "t", Checkpoint(cursor=5, plan="p"))
    assert not runs.save_checkpoint("e", 1, "t", Checkpoint(cursor=3, plan="p"))
    assert runs.checkpoint("e", 1, "t").cursor == 5
    assert runs.save_checkpoint("e", 1, "t", Checkpoint(cursor=5, plan="p", state={"again": True}))
    with pytest.raises(ValueError, match="keep results in work items"):
        runs.save_checkpoint("e", 1, "t", Checkpoint(cursor=6, plan="p", state="x" * MAX_CHECKPOINT_BYTES))


def test_keys_of_a_long_step_live_under_its_run():
    assert keys.checkpoint_sk(7, "summarize_documents") == "CKPT#00007#summarize_documents"
    assert keys.work_item_sk(7, "t", "0003") == "ITEM#00007#t#0003"
    assert keys.slice_sk(7, "t", 12) == "SLICE#00007#t#00012"
    with pytest.raises(ValueError, match="must not contain '#'"):
        keys.work_item_sk(7, "t", "a#b")


def test_a_plan_with_repeated_keys_is_refused(store):
    work = LongWork(lambda c, r: [WorkItem("a"), WorkItem("a")], lambda c, r, i: 1, lambda c, r, i, x: x)
    with pytest.raises(ValueError, match="unique"):
        work.execute(context(store), None, ON, Stop())


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LONGRUN_CHECKPOINTS": "maybe"}, "must be 'on' or 'off'"),
        ({"LONGRUN_CHECKPOINT_SECONDS": "soon"}, "must be a number of seconds"),
        ({"LONGRUN_CHECKPOINT_SECONDS": "0"}, "must be a positive number"),
    ],
)
def test_run_settings_name_what_is_wrong(environ, message):
    with pytest.raises(ValueError, match=message):
        RunSettings.from_environ(environ)


def test_run_settings_default_to_checkpoints_every_thirty_seconds():
    assert RunSettings.from_environ({}) == RunSettings(checkpoints=True, checkpoint_seconds=30.0)
    assert RunSettings.from_environ({"LONGRUN_CHECKPOINTS": "off"}).checkpoints is False


def test_a_long_runtime_cannot_be_pure_or_cached():
    with pytest.raises(ValueError, match="cannot be pure or cached"):
        ToolDefinition("x", "x", dict, run=lambda c, r: r, pure=True, runtime="fargate-spot")
    with pytest.raises(ValueError, match="runtime must be one of"):
        ToolDefinition("x", "x", dict, run=lambda c, r: r, runtime="ec2")


# -- the example: summarize_documents -------------------------------------------------------------

PUBLIC = "93.184.216.34"
ARTICLE = (
    "<html><head><title>Spot tasks</title><style>p {color: red}</style></head><body>"
    "<p>Fargate Spot runs tasks on spare capacity at a discount.</p>"
    "<p>When the capacity is needed back, the task gets a warning and then it stops.</p>"
    "<script>var ignored = 'capacity capacity capacity';</script>"
    "<p>A task that saves checkpoints resumes where it stopped when capacity returns.</p>"
    "<p>The weather was nice today.</p></body></html>"
)


class Pages:
    """The network edges of the fetcher: a resolver and an opener serving pages by path."""

    def __init__(self, pages: dict[str, tuple[int, str, str]]) -> None:
        self.pages = pages
        self.opened: list[str] = []

    def resolve(self, host: str, port: int) -> list[str]:
        return {"example.com": [PUBLIC], "internal.example": ["10.0.0.5"]}[host]

    def open(self, ip, hostname, path, headers, timeout):
        self.opened.append(path)
        status, content_type, body = self.pages[path]
        return status, {"content-type": content_type}, body.encode()


@pytest.fixture
def pages(monkeypatch):
    served = Pages(
        {
            "/a": (200, "text/html; charset=utf-8", ARTICLE),
            "/b": (200, "text/plain", "Plain text documents are summarised as they are. They keep their words."),
            "/down": (503, "text/plain", "busy"),
        }
    )
    monkeypatch.setattr(summarize_documents, "FETCHER", http_fetch.Fetcher(resolve=served.resolve, open=served.open))
    monkeypatch.setattr(summarize_documents, "RETRY_SECONDS", 0)
    return served


def event(urls: list[str], seq: int = 3) -> dict:
    return {
        "executionId": "exec-9",
        "startedAt": "2026-12-01T09:00:00.000Z",
        "seq": seq,
        "name": "summarize_documents",
        "toolUseId": "tu-1",
        "input": {"urls": urls, "sentences": 2},
        "userId": "alice",
        "sessionId": "s1",
        "correlationId": "c",
    }


def test_summarize_documents_fetches_under_http_fetch_rules_and_records_like_any_tool(store, pages):
    urls = [
        "https://example.com/a",
        "https://example.com/b",
        "http://example.com/a",
        "https://internal.example/x",
        "https://example.com/down",
    ]
    result = summarize_documents.TOOL.lambda_handler(event(urls), store=store)
    assert result["status"] == "SUCCEEDED" and result["name"] == "summarize_documents" and result["seq"] == 3
    output = result["output"]
    first, second, plain_http, internal, down = output["documents"]
    assert first["title"] == "Spot tasks" and len(first["summary"]) == 2
    assert all("capacity" in s for s in first["summary"]), "the sentences that carry the page's words"
    assert "weather" not in " ".join(first["summary"]) and "ignored" not in " ".join(first["summary"])
    assert second["summary"] == ["Plain text documents are summarised as they are.", "They keep their words."]
    assert "https" in plain_http["error"]
    assert "private address" in internal["error"]
    assert down["error"].startswith("unavailable after 3 attempts")
    assert output["summarized"] == 2 and output["failed"] == 3
    assert pages.opened == ["/a", "/b", "/down", "/down", "/down"], "refused URLs never connect"
    recorded = store.tool_runs.get("exec-9", 3, "summarize_documents")
    assert recorded.status == "SUCCEEDED" and recorded.output == output
    again = summarize_documents.TOOL.lambda_handler(event(urls), store=store)
    assert again["replayed"] is True and len(pages.opened) == 5, "a recorded step does no work"


def test_summarize_documents_refuses_too_many_documents(store, pages):
    urls = [f"https://example.com/{i}" for i in range(summarize_documents.MAX_DOCUMENTS + 1)]
    result = summarize_documents.TOOL.lambda_handler(event(urls), store=store)
    assert result["status"] == "FAILED" and "invalid input" in result["output"]["error"] and pages.opened == []


def test_summaries_are_bounded_and_text_is_what_a_reader_sees():
    text, title = readable_text(ARTICLE, "text/html")
    assert title == "Spot tasks" and "ignored" not in text and "color" not in text
    long = " ".join(["Capacity comes back " + "and again " * 100 + "now."] * 3)
    assert all(len(s) <= summarize_documents.MAX_SENTENCE_CHARS for s in summarize(long, 3))
    assert summarize("too short", 3) == []
