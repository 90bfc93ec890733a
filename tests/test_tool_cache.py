"""The tool result cache: what is reused, for how long, by whom, and across regions (moto)."""

from __future__ import annotations

import itertools
import json
from email.utils import formatdate
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.shared import table as keys
from handlers.shared.store import Store
from handlers.shared.tooling import ResultCache, ToolContext, ToolDefinition, ToolInputError
from handlers.tools import calculator, http_fetch
from handlers.tools.http_fetch import Exchange, Fetcher, HttpFetchInput, freshness, joined_headers
from tests.conftest import REGION, TABLE_NAME
from tests.regions import A, B, global_table
from tests.test_tool_http_fetch import FakeOpener, FakeResolver, response

NOW = 1_800_000_000.0


class Clock:
    """Epoch seconds that only move when a test says so: the store's and the fetcher's."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cached_store(dynamodb, clock) -> Store:
    return Store(TABLE_NAME, REGION, ttl_days=30, client=dynamodb, clock=clock)


_steps = itertools.count(1)


def step(store: Store, user: str = "alice", execution: str | None = None, seq: int | None = None) -> ToolContext:
    """A new step of a run (or the same one again, for a redelivery)."""
    number = next(_steps)
    return ToolContext(execution or f"exec-{number}", seq if seq is not None else 1, user, "s1", None, store)


def event(name: str, tool_input: dict, user: str = "alice", seq: int = 1) -> dict:
    number = next(_steps)
    return {
        "executionId": f"exec-{number}",
        "seq": seq,
        "name": name,
        "userId": user,
        "sessionId": "s1",
        "input": tool_input,
    }


def log_lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


# -- a pure tool: reused by anyone --------------------------------------------------------------


class SquareInput(msgspec.Struct, frozen=True):
    n: int


RUNS: list[int] = []


def _square(ctx, request: SquareInput) -> dict:
    RUNS.append(request.n)
    if request.n < 0:
        raise ToolInputError("n must not be negative")
    return {"n": request.n, "square": request.n * request.n}


# A pure tool whose work is worth a look-up (the calculator's is not: see its module).
SQUARE = ToolDefinition(
    name="square",
    description="Square a number.",
    input_type=SquareInput,
    run=_square,
    pure=True,
    cache=ResultCache(max_age_seconds=86_400),
)


def test_a_pure_tools_result_is_reused_by_anyone_without_running_again(cached_store, capsys):
    RUNS.clear()
    first = SQUARE.lambda_handler(event("square", {"n": 7}), store=cached_store)
    again = SQUARE.lambda_handler(event("square", {"n": 7}, user="bob"), store=cached_store)
    other = SQUARE.lambda_handler(event("square", {"n": 8}), store=cached_store)
    assert RUNS == [7, 8], "the second 7 was answered from the cache"
    assert first["output"] == again["output"] == {"n": 7, "square": 49}
    assert other["output"]["square"] == 64
    lines = log_lines(capsys.readouterr().out)
    assert [line["cache"] for line in lines if line.get("message") == "tool step done"] == ["miss", "hit", "miss"]
    metrics = [line for line in lines if "_aws" in line]
    assert [(m["CacheHit"], m["CacheMiss"], m["CacheBypass"]) for m in metrics] == [(0, 1, 0), (1, 0, 0), (0, 1, 0)]
    directive = metrics[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "AgentInfra/Tools" and directive["Dimensions"] == [["Tool"]]
    assert metrics[0]["Tool"] == "square"


def test_a_failed_result_is_not_stored(cached_store, dynamodb):
    result = SQUARE.execute(step(cached_store), {"n": -1})
    assert result["status"] == "FAILED"
    assert dynamodb.scan(TableName=TABLE_NAME)["Items"] == []


def test_a_pure_entry_lives_its_max_age_and_its_ttl_says_so(cached_store, dynamodb, clock):
    SQUARE.execute(step(cached_store), {"n": 2})
    (item,) = dynamodb.scan(TableName=TABLE_NAME)["Items"]
    assert item["PK"]["S"].startswith("CACHE#square#public#")
    assert int(item["expiresAt"]["N"]) == int(NOW) + 86_400
    assert int(item["freshUntil"]["N"]) == int(NOW * 1000) + 86_400_000


def test_the_calculator_does_not_look_up_a_cache(cached_store, dynamodb, capsys):
    """Its answer is cheaper than a look-up (handlers/tools/calculator.py): no read, no write."""
    assert calculator.TOOL.cache is None
    out = calculator.TOOL.lambda_handler(event("calculator", {"expression": "6 * 7"}), store=cached_store)
    assert out["output"]["result"] == 42
    assert dynamodb.scan(TableName=TABLE_NAME)["Items"] == []


# -- http_fetch: the RFC 9111 rules ---------------------------------------------------------------


def exchange(*, method: str = "GET", request_headers: dict | None = None, status: int = 200, **headers: str):
    all_headers = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return Exchange(method, request_headers or {"Host": "example.com"}, status, all_headers, NOW, NOW)


HTTP_DATE = formatdate(NOW, usegmt=True)


@pytest.mark.parametrize(
    ("fetched", "reason"),
    [
        (exchange(cache_control="no-store, max-age=60"), "Cache-Control: no-store"),
        (exchange(cache_control="private, max-age=60"), "Cache-Control: private"),
        (exchange(cache_control='private="set-cookie", max-age=60'), "Cache-Control: private"),
        (exchange(cache_control="no-cache, max-age=60"), "Cache-Control: no-cache"),
        (exchange(cache_control="max-age=0"), "stale when received"),
        (exchange(cache_control="max-age=60, max-age=120"), "repeats max-age"),
        (exchange(cache_control="max-age=soon"), "max-age is not a number of seconds"),
        (exchange(method="POST", cache_control="public, max-age=60"), "POST responses are not reused"),
        (
            exchange(request_headers={"Authorization": "Bearer t"}, cache_control="public, max-age=60"),
            "a request with credentials",
        ),
        (exchange(request_headers={"Cookie": "id=1"}, cache_control="max-age=60"), "a request with credentials"),
        (exchange(cache_control="max-age=60", vary="Accept, *"), "Vary: *"),
        (exchange(date=HTTP_DATE), "no explicit freshness"),
        (exchange(cache_control="public"), "no explicit freshness"),
        (exchange(expires="0", date=HTTP_DATE), "stale when received"),
        (exchange(expires=formatdate(NOW - 10, usegmt=True), date=HTTP_DATE), "stale when received"),
        (exchange(cache_control="max-age=60", age="60"), "stale when received"),
        (exchange(status=101, cache_control="max-age=60"), "not a final response"),
    ],
)
def test_responses_http_caching_forbids_are_not_reused(fetched, reason):
    verdict = freshness(fetched, NOW)
    assert verdict.seconds == 0 and reason in verdict.reason


@pytest.mark.parametrize(
    ("fetched", "seconds", "public"),
    [
        (exchange(cache_control="max-age=60"), 60, False),
        (exchange(cache_control="public, max-age=60"), 60, True),
        (exchange(cache_control="max-age=600, s-maxage=30"), 30, False),
        (exchange(cache_control="s-maxage=30, max-age=600, public"), 30, True),
        (exchange(expires=formatdate(NOW + 120, usegmt=True), date=HTTP_DATE), 120, False),
        # Expires without Date: dated on arrival (RFC 9110 section 6.6.1).
        (exchange(expires=formatdate(NOW + 90, usegmt=True)), 90, False),
        (exchange(cache_control="max-age=60", expires=formatdate(NOW + 999, usegmt=True)), 60, False),
        (exchange(cache_control="max-age=60", age="45"), 15, False),
        # The Date says it is 20 s old already (apparent age).
        (exchange(cache_control="max-age=60", date=formatdate(NOW - 20, usegmt=True)), 40, False),
        (exchange(cache_control="public, max-age=60", set_cookie="id=1"), 60, False),
        (exchange(status=404, cache_control="max-age=60"), 60, False),
    ],
)
def test_explicit_freshness_is_honoured(fetched, seconds, public):
    verdict = freshness(fetched, NOW)
    assert (verdict.seconds, verdict.public) == (pytest.approx(seconds), public), verdict.reason


def test_the_time_since_the_response_counts_against_its_freshness():
    assert freshness(exchange(cache_control="max-age=60"), NOW + 25).seconds == pytest.approx(35)


def test_a_repeated_cache_control_line_is_kept_whole():
    headers = joined_headers([("Cache-Control", "public, max-age=60"), ("cache-control", "no-store")])
    assert headers == {"cache-control": "public, max-age=60, no-store"}
    assert freshness(Exchange("GET", {}, 200, headers, NOW, NOW), NOW).reason == "Cache-Control: no-store"


# -- http_fetch: the step ------------------------------------------------------------------------


@pytest.fixture
def opener(monkeypatch, clock) -> FakeOpener:
    served = FakeOpener()
    monkeypatch.setattr(http_fetch, "FETCHER", Fetcher(resolve=FakeResolver(), open=served, wall_clock=clock))
    return served


def page(body: str, cache_control: str | None = "max-age=60", **headers: str):
    if cache_control is not None:
        headers["cache_control"] = cache_control
    return response(200, body.encode(), "text/plain", **headers)


def fetch(store: Store, url: str = "https://example.com/a", user: str = "alice", **fields: Any) -> dict:
    return http_fetch.TOOL.execute(step(store, user), {"url": url, **fields})


def test_a_fresh_response_is_reused_for_its_user_only(cached_store, opener):
    opener.responses += [page("for alice"), page("for bob")]
    assert fetch(cached_store)["output"]["body"] == "for alice"
    assert fetch(cached_store, url="https://EXAMPLE.com:443/a")["output"]["body"] == "for alice"
    assert fetch(cached_store, user="bob")["output"]["body"] == "for bob", "not shared without public"
    assert len(opener.calls) == 2


def test_a_public_response_is_shared_between_users(cached_store, opener):
    opener.responses += [page("everyone's", "public, max-age=60")]
    assert fetch(cached_store)["output"]["body"] == "everyone's"
    assert fetch(cached_store, user="bob")["output"]["body"] == "everyone's"
    assert len(opener.calls) == 1


def test_a_different_byte_limit_is_a_different_result(cached_store, opener):
    opener.responses += [page("0123456789"), page("0123456789")]
    assert fetch(cached_store, maxBytes=4)["output"]["body"] == "0123"
    assert fetch(cached_store)["output"]["body"] == "0123456789"


@pytest.mark.parametrize("cache_control", ["no-store", "private, max-age=60", "no-cache", "max-age=0", None])
def test_a_response_that_may_not_be_reused_is_fetched_again(cached_store, opener, cache_control):
    opener.responses += [page("one", cache_control), page("two", cache_control)]
    assert [fetch(cached_store)["output"]["body"] for _ in range(2)] == ["one", "two"]


def test_max_age_and_expires_end_reuse(cached_store, opener, clock):
    opener.responses += [page("first", "max-age=60"), page("second", None, expires=formatdate(NOW + 180, usegmt=True))]
    fetch(cached_store)
    clock.now = NOW + 59
    assert fetch(cached_store)["output"]["body"] == "first"
    clock.now = NOW + 61
    assert fetch(cached_store)["output"]["body"] == "second"
    clock.now = NOW + 179
    assert fetch(cached_store)["output"]["body"] == "second"
    assert len(opener.calls) == 2


def test_an_expired_entry_not_yet_deleted_is_a_miss(cached_store, opener, clock, dynamodb):
    opener.responses += [page("old", "max-age=60"), page("new", "max-age=60")]
    fetch(cached_store)
    clock.now = NOW + 3600  # long past its TTL; moto, like DynamoDB for up to days, still has it
    (item,) = [i for i in dynamodb.scan(TableName=TABLE_NAME)["Items"] if i["PK"]["S"].startswith("CACHE#")]
    assert int(item["expiresAt"]["N"]) < clock.now
    assert fetch(cached_store)["output"]["body"] == "new"


def test_a_redirect_that_may_not_be_reused_keeps_the_result_out(cached_store, opener):
    redirect = response(301, b"", None, location="/b")
    opener.responses += [redirect, page("via redirect"), response(301, b"", None, location="/b"), page("again")]
    assert fetch(cached_store)["output"]["body"] == "via redirect"
    assert fetch(cached_store)["output"]["body"] == "again"


def test_a_cache_hit_is_recorded_so_a_redelivery_returns_it(cached_store, opener, clock):
    opener.responses += [page("cached", "max-age=60")]
    fetch(cached_store)
    ctx = step(cached_store, execution="run-9", seq=3)
    hit = http_fetch.TOOL.execute(ctx, {"url": "https://example.com/a"}, "tu-3")
    record = cached_store.tool_runs.get("run-9", 3, "http_fetch")
    assert record is not None and record.output == hit["output"] and hit["output"]["body"] == "cached"
    clock.now = NOW + 3600  # the entry has expired: the redelivery still answers what the step did
    again = http_fetch.TOOL.execute(ctx, {"url": "https://example.com/a"}, "tu-3")
    assert again["replayed"] is True and again["output"] == hit["output"]
    assert len(opener.calls) == 1


def test_a_url_with_credentials_bypasses_the_cache(cached_store, opener, capsys, dynamodb):
    http_fetch.TOOL.lambda_handler(event("http_fetch", {"url": "https://user:pw@example.com/"}), store=cached_store)
    (done,) = [line for line in log_lines(capsys.readouterr().out) if line.get("message") == "tool step done"]
    assert done["cache"] == "bypass" and done["status"] == "FAILED"
    assert not [i for i in dynamodb.scan(TableName=TABLE_NAME)["Items"] if i["PK"]["S"].startswith("CACHE#")]


def test_tools_with_state_or_side_effects_do_not_cache():
    from handlers.tools import load_tool

    assert load_tool("memory").cache is None and load_tool("create_ticket").cache is None


# -- never across users unless public -------------------------------------------------------------

USERS = ("alice", "bob", "carol")
PATHS = ("/x", "/y")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(USERS), st.sampled_from(PATHS), st.booleans(), st.integers(0, 90)),
        min_size=1,
        max_size=12,
    )
)
def test_a_cached_result_never_reaches_another_user_unless_public(cached_store, clock, monkeypatch, calls):
    """Any sequence of fetches by several users, of responses public or not, with time
    passing: whatever a user is served was fetched for that user, or was public."""
    run = next(_steps)
    produced: dict[str, tuple[str, bool]] = {}  # body → (user it was fetched for, public)
    pending: list[tuple[str, bool]] = []

    def open_(ip, hostname, path, headers, timeout):
        user, public = pending[-1]
        body = f"{run}-{len(produced)}"
        produced[body] = (user, public)
        return page(body, ("public, " if public else "") + "max-age=60")

    monkeypatch.setattr(http_fetch, "FETCHER", Fetcher(resolve=FakeResolver(), open=open_, wall_clock=clock))
    for user, path, public, wait in calls:
        clock.now += wait
        pending.append((user, public))
        body = fetch(cached_store, url=f"https://example.com/{run}{path}", user=user)["output"]["body"]
        fetched_for, was_public = produced[body]
        assert fetched_for == user or was_public, f"{user} was served {fetched_for}'s private response"


# -- two regions ------------------------------------------------------------------------------------


def test_cache_writes_racing_in_two_regions_leave_one_whole_entry_everywhere():
    """Both regions miss and fetch at once (different bodies: the origin changed between), and
    each writes its entry before either has replicated. Whatever order replication takes,
    the replicas end equal, holding one region's whole entry, and each region's read serves
    exactly that entry. Before replication each region sees its own; one with none misses."""
    for order in ((A, B), (B, A)):
        with global_table() as regions:
            clock = Clock()
            stores = {r: regions.store(r) for r in (A, B)}
            for store in stores.values():
                store.table.clock = clock
            input_hash = http_fetch.TOOL.cache.input_hash(HttpFetchInput(url="https://example.com/a"))
            scope = keys.PUBLIC_SCOPE
            written = {}
            for region in (A, B):
                written[region] = {"body": f"fetched in {region}"}
                stores[region].tool_cache.put("http_fetch", scope, input_hash, written[region], 60_000)
                clock.now += 0.001
            assert stores[A].tool_cache.get("http_fetch", scope, input_hash).output == written[A]
            assert stores[B].tool_cache.get("http_fetch", scope, input_hash).output == written[B]
            for origin, target in (order, order[::-1]):
                regions.replicate(origin, target)
            regions.settle()
            assert regions.table.differences() == []
            seen = [stores[r].tool_cache.get("http_fetch", scope, input_hash) for r in (A, B)]
            assert seen[0] == seen[1] and seen[0].output in written.values()
            assert seen[0].output == written[seen[0].region], "the entry is one region's, whole"
            assert stores[A].tool_cache.get("http_fetch", scope, "0" * 64) is None
