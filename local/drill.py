"""make drill: a region fails with clients on it, and comes back; then one session through
two regions at once. Prints a table, writes a JSON report and a timeline picture, and exits
non-zero when a goal is missed.

    python -m local.drill                      (make drill: two regions, 20 clients)
    python -m local.drill --short              (what CI runs: the same, on a faster clock)
    python -m local.drill --endpoint https://api.<zone> --ws-endpoint wss://ws.<zone> \\
        --token ... --api-key ...              (the clients against a deployed stack)

Scenario "failover": clients converse through the global endpoint (``local/route53/global_endpoint.py``,
Route 53's rules on a clock ``--scale`` times faster), over REST and WebSocket, from the
regions' locations, and a Standard task waits for an approval in the first region (A). A is
killed mid-run (its gateways drop every connection, its functions fail, its replica stops
replicating and cannot be reached), the approval is decided while it is down, A comes back.
Scenario "flip": one session written through both regions at once, no failure.

The report counts, after replication has settled:
- lost: messages a client was answered for (or told its key was used) that are not in the
  session's history;
- duplicated: a client's message shown more than once in a history;
- run twice: Idempotency-Keys whose turn ran in more than one execution, split into those
  beyond the guarantee (goal 0) and those explained by a write stranded in A when it failed
  (AWS's RPO for global tables: "any data not yet replicated to other Regions will be
  replicated when the replica becomes healthy",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html);
- rekeyed: clients that got a 401 or 403 (would have had to get a new token or API key);
- replicas equal: every replica holds the same items; merge lost: items of A's stranded
  writes missing after the merge;
- seconds until every client is answered again, the WebSocket clients that resumed in
  another region, and what became of the pending approval.

One module on purpose: the drill's scenarios, their goals and its report read top to bottom
as the run happens; the clients live apart in local/drill_clients.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.failover import HEALTH_CHECK_FAILURE_THRESHOLD, HEALTH_CHECK_INTERVAL_SECONDS, seconds_to_fail_over
from local.drill_clients import (
    Conversation,
    Credentials,
    RestConversation,
    Sent,
    TaskWithApproval,
    Timeline,
    WebSocketConversation,
)

ROOT = Path(__file__).resolve().parent.parent
REPORT_DIR = ROOT / "build" / "drill"
DRILL_THROTTLE = (200.0, 400)
"""Requests/s and burst of each region's stage in the drill: prod's (Pulumi.prod.yaml)."""
GOALS = {"lost": 0, "duplicated": 0, "run twice beyond the guarantee": 0, "rekeyed": 0}
GOAL_DETAILS = {"lost": "missing", "run twice beyond the guarantee": "run twice beyond the guarantee, first"}


@dataclass(frozen=True)
class Plan:
    regions: tuple[str, str] = ("us-east-1", "eu-west-1")
    clients: int = 20
    websocket_clients: int = 4
    kill_after: float = 10.0
    down_for: float = 30.0
    recover_for: float = 20.0
    scale: float = 10.0
    """How much faster than Route 53's the health checks run."""
    lag_ms: float = 1000.0
    think_seconds: float = 0.2
    flip_messages: int = 10

    @classmethod
    def short(cls) -> Plan:
        """What CI runs: the same drill on a clock three times faster, in about half a minute."""
        return cls(kill_after=4.0, down_for=9.0, recover_for=7.0, scale=30.0, flip_messages=6)


def _message(n: int) -> str:
    # Every third turn calls a tool (two model steps, a tool run): a turn that can be cut
    # between its steps.
    return f"calculate {n}+1" if n % 3 == 0 else f"hello {n}"


# -- scenario 1: a region fails -----------------------------------------------------------------


def run_failover(stack: Any, plan: Plan, timeline: Timeline) -> dict[str, Any]:
    a, b = plan.regions
    credentials = Credentials(stack.rest.url, stack.websocket.url, stack.dev_token, stack.api_key)
    stop = threading.Event()
    clients: list[Conversation] = []
    for n in range(plan.clients):
        location = a if n % 2 == 0 else b
        kind = WebSocketConversation if n < plan.websocket_clients else RestConversation
        clients.append(
            kind(
                name=f"c{n:02d}",
                location=location,
                session_id=f"drill-{n:02d}",
                credentials=credentials,
                timeline=timeline,
                stop=stop,
                think_seconds=plan.think_seconds,
                messages=_message,
            )
        )
    task = TaskWithApproval(a, credentials, timeline)
    task.start()
    threads = [threading.Thread(target=c.run, name=c.name, daemon=True) for c in clients]
    timeline.mark("start")
    for thread in threads:
        thread.start()
    time.sleep(plan.kill_after)
    stack.fabric.kill(a)
    timeline.mark("region killed")
    # Decide the approval once the clients are sent elsewhere (the decision goes to B).
    _wait_for(lambda: a not in stack.endpoint.checks.healthy_regions(), plan.down_for)
    timeline.mark("failed over", _transition(stack, a, healthy=False))
    task.decide(seconds=plan.down_for * 2)
    time.sleep(max(0.0, plan.down_for - (time.time() - timeline.marks["region killed"])))
    # What A holds that never left it: taken while A is still down, so a request that was
    # already on its way into A when it was killed counts too.
    stranded = _stranded(stack, a)
    stack.fabric.revive(a)
    timeline.mark("region back")
    follower = threading.Thread(target=task.follow, kwargs={"seconds": plan.recover_for * 6}, daemon=True)
    follower.start()
    time.sleep(plan.recover_for)
    timeline.mark("recovered", _transition(stack, a, healthy=True))
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    follower.join(timeout=plan.recover_for * 6)
    stack.global_table.drain(timeout=60)
    return {
        "clients": clients,
        "task": task,
        "stranded": stranded,
    }


def _stranded(stack: Any, region: str) -> set[tuple[str, str]]:
    """Keys of ``region``'s writes not yet replicated everywhere."""
    return {w.key for w in stack.global_table.pending_writes(region)}


def _transition(stack: Any, region: str, healthy: bool) -> float | None:
    found = [t.at for t in stack.endpoint.checks.transitions if t.region == region and t.healthy == healthy]
    return found[-1] if found else None


def _wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


# -- scenario 2: one session through two regions at once ----------------------------------------


def run_flip(stack: Any, plan: Plan, timeline: Timeline) -> dict[str, Any]:
    """Two clients write one session at once, each switching region every message (a client
    whose latency routing flips)."""
    a, b = plan.regions
    credentials = Credentials(stack.rest.url, stack.websocket.url, stack.dev_token, stack.api_key)
    stop = threading.Event()
    writers = []
    for n, first in enumerate((a, b)):
        writer = _FlippingConversation(
            name=f"flip{n}",
            location=first,
            session_id="drill-flip",
            credentials=credentials,
            timeline=timeline,
            stop=stop,
            think_seconds=0.05,
            messages=_message,
        )
        writer.regions = (first, b if first == a else a)
        writer.limit = plan.flip_messages
        writers.append(writer)
    threads = [threading.Thread(target=w.run, daemon=True) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stack.global_table.drain(timeout=60)
    return {"clients": writers}


@dataclass
class _FlippingConversation(RestConversation):
    regions: tuple[str, str] = ("", "")
    limit: int = 10

    def run(self) -> None:
        for n in range(self.limit):
            self.location = self.regions[n % 2]
            message = self._message(n)
            self.sent.append(message)
            self.deliver(message)
            time.sleep(self.think_seconds)

    def _message(self, n: int) -> Sent:
        return Sent(self.messages(n) + f" [{self.name} #{n}]", self.key(n))


# -- what the table says afterwards -----------------------------------------------------------


def verify(stack: Any, clients: list[Conversation], stranded: set[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    """Every figure of the report that the replicas decide, read from each replica."""
    from handlers.shared import table as keys
    from handlers.shared.store import Replicas, Store

    regions = list(stack.regions)
    stores = {
        r: Store(stack.table_name, r, stack.config.state.ttl_days, replicas=Replicas(r, [r], client_for=_plain_client))
        for r in regions
    }
    sessions = sorted({c.session_id for c in clients})
    histories = {r: {s: _history(stores[r], s) for s in sessions} for r in regions}
    lost = duplicated = 0
    missing: list[str] = []
    for client in clients:
        shown = Counter(m.text for m in histories[regions[0]][client.session_id] if m.role == "user")
        for message in client.sent:
            if message.outcome in ("answered", "accepted-earlier") and shown[message.text] == 0:
                lost += 1
                missing.append(message.text)
        duplicated += sum(count - 1 for text, count in shown.items() if count > 1 and f"[{client.name} #" in text)
    order_agreed = all(
        [m.message_id for m in histories[r][s]] == [m.message_id for m in histories[regions[0]][s]]
        for r in regions
        for s in sessions
    )
    # Turns per Idempotency-Key, from the raw items: every execution whose step claimed it.
    items = stack.global_table.items(regions[0])
    partitions = {keys.session_pk(s) for s in sessions}
    claims: dict[str, list[tuple[int, tuple[str, str]]]] = {}
    for key, item in items.items():
        if key[0] in partitions and key[1].startswith(keys.STEP_PREFIX) and "claim" in item:
            claims.setdefault(item["claim"]["S"], []).append((int(item["createdAt"]["N"]), key))
    run_twice = [sorted(found) for found in claims.values() if len(found) > 1]
    explained = [found for found in run_twice if found[0][1] in stranded]
    beyond = [found for found in run_twice if found not in explained]
    stranded_kept = [k for k in stranded if k in items or not k[1].startswith(keys.STEP_PREFIX)]
    return {
        "lost": lost,
        "missing": missing[:10],
        "duplicated": duplicated,
        "run twice": len(run_twice),
        "run twice beyond the guarantee": len(beyond),
        "run twice beyond the guarantee, first": [f"{key[0]} {key[1]}" for found in beyond for _, key in found[:1]][
            :10
        ],
        "run twice after a write stranded in the failed region": len(explained),
        "replicas equal": not stack.global_table.differences(),
        "one order in every replica": order_agreed,
        "stranded writes": len(stranded),
        "merge lost": len(stranded) - len(stranded_kept),
        "rekeyed": sum(1 for c in clients if c.refused_credentials),
    }


def _plain_client(region: str) -> Any:
    import boto3

    return boto3.client("dynamodb", region_name=region)


def _history(store: Any, session_id: str) -> list[Any]:
    messages, cursor, owner = [], None, None
    while True:
        page = store.conversations.load(session_id, limit=100, cursor=cursor, owner=owner)
        if page.meta is not None:
            owner = page.meta.user_id
        messages.extend(page.messages)
        cursor = page.next_cursor
        if not cursor:
            return list(reversed(messages))


# -- the report ---------------------------------------------------------------------------------


@dataclass
class Report:
    plan: dict[str, Any]
    failover: dict[str, Any] = field(default_factory=dict)
    flip: dict[str, Any] = field(default_factory=dict)
    goals_missed: list[str] = field(default_factory=list)

    def check(self) -> None:
        for scenario, figures in (("failover", self.failover), ("flip", self.flip)):
            for name, goal in GOALS.items():
                if figures.get(name, 0) != goal:
                    which = figures.get(GOAL_DETAILS.get(name, ""))
                    self.goals_missed.append(
                        f"{scenario}: {name} {figures.get(name)} (goal {goal})" + (f": {which}" if which else "")
                    )
            for name in ("replicas equal", "one order in every replica"):
                if not figures.get(name, False):
                    self.goals_missed.append(f"{scenario}: {name} is false")
            if figures.get("merge lost", 0):
                self.goals_missed.append(f"{scenario}: the merge lost {figures['merge lost']} stranded writes")
        approval = self.failover.get("approval", {})
        if approval and approval.get("task") != "SUCCEEDED":
            self.goals_missed.append(f"failover: the task waiting for approval ended {approval.get('task')}")
        if self.failover and self.failover.get("seconds until every client is answered again") is None:
            self.goals_missed.append("failover: some clients were never answered again")


def failover_figures(stack: Any, plan: Plan, timeline: Timeline, result: dict[str, Any]) -> dict[str, Any]:
    clients, task = result["clients"], result["task"]
    killed = timeline.marks["region killed"]
    figures = verify(stack, clients, result["stranded"])
    answered_again: dict[str, float | None] = {}
    for client in clients:
        after = [m.answered_at for m in client.sent if m.answered_at and m.answered_at >= killed]
        answered_again[client.name] = round(min(after) - killed, 2) if after else None
    waits = list(answered_again.values())
    worst = None if None in waits else max(waits)
    ws = [c for c in clients if isinstance(c, WebSocketConversation)]
    low, high = seconds_to_fail_over()
    figures.update(
        {
            "clients": len(clients),
            "websocket clients": len(ws),
            "seconds until every client is answered again": None if worst is None else round(worst, 2),
            "seconds until the global endpoint failed over": _round(
                (timeline.marks.get("failed over") or killed) - killed
            ),
            "seconds until answered again, slowest clients": dict(
                sorted(answered_again.items(), key=lambda kv: -(kv[1] if kv[1] is not None else 1e9))[:3]
            ),
            "websocket clients that resumed in another region": sum(
                1 for c in ws if any(region not in (None, c.connections[0]) for region in c.connections[1:])
            ),
            "answers": sum(1 for c in clients for m in c.sent if m.outcome in ("answered", "accepted-earlier")),
            "answers by region": dict(Counter(m.region for c in clients for m in c.sent if m.region)),
            "approval": {
                "started in": task.started_in,
                "decided in": task.decision.get("region"),
                "decision answer": task.decision.get("status"),
                "delivery when decided": task.decision.get("delivery"),
                "seconds from the region's return to the task's end": _round(
                    (task.finished_at or 0) - timeline.marks["region back"] if task.finished_at else None
                ),
                "task": task.final_status,
            },
            "deployed failover": {
                "health check": f"every {HEALTH_CHECK_INTERVAL_SECONDS} s, {HEALTH_CHECK_FAILURE_THRESHOLD} failures",
                "seconds, from failure to every client moved": [low, high],
                "local clock": f"{plan.scale:g}x faster: every {HEALTH_CHECK_INTERVAL_SECONDS / plan.scale:g} s",
            },
        }
    )
    return figures


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def draw_timeline(timeline: Timeline, regions: tuple[str, ...], path: Path) -> None:
    """Answers per second per region, failures per second, and the drill's moments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = timeline.marks.get("start") or min(e.at for e in timeline.events)
    end = max(e.at for e in timeline.events) if timeline.events else start + 1
    seconds = range(int(end - start) + 1)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for region in regions:
        counts = Counter(int(e.at - start) for e in timeline.events if e.kind != "failed" and e.region == region)
        ax.plot(seconds, [counts.get(s, 0) for s in seconds], label=f"answered in {region}", linewidth=1.8)
    failures = Counter(int(e.at - start) for e in timeline.events if e.kind == "failed")
    ax.bar(seconds, [failures.get(s, 0) for s in seconds], color="tab:red", alpha=0.35, label="failed attempts")
    top = ax.get_ylim()[1]
    for number, (name, style) in enumerate(
        (
            ("region killed", "k-"),
            ("failed over", "k--"),
            ("approval decided", "g:"),
            ("region back", "b-"),
            ("recovered", "b--"),
            ("task finished", "g-"),
        )
    ):
        if timeline.marks.get(name) is not None:
            x = timeline.marks[name] - start
            ax.axvline(x, color=style[0], linestyle=style[1:], linewidth=1)
            ax.text(x, top * (0.97 if number % 2 == 0 else 0.6), f" {name}", rotation=90, va="top", fontsize=8)
    ax.set_xlabel("seconds into the drill")
    ax.set_ylabel("per second")
    ax.set_title("Failover drill: answers per second per region, and failed attempts")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(report: Report) -> None:
    rows = [
        "lost",
        "duplicated",
        "run twice beyond the guarantee",
        "run twice after a write stranded in the failed region",
        "rekeyed",
        "replicas equal",
        "one order in every replica",
        "merge lost",
        "stranded writes",
        "seconds until every client is answered again",
        "seconds until the global endpoint failed over",
        "websocket clients that resumed in another region",
        "answers",
    ]
    print(f"{'':56} {'failover':>12} {'flip':>12} {'goal':>8}")
    for row in rows:
        goal = GOALS.get(row, "yes" if row in ("replicas equal", "one order in every replica") else "")
        goal = 0 if row == "merge lost" else goal
        print(f"{row:56} {_cell(report.failover.get(row)):>12} {_cell(report.flip.get(row)):>12} {goal!s:>8}")
    approval = report.failover.get("approval")
    if approval:
        after_return = approval["seconds from the region's return to the task's end"]
        print(
            f"pending approval: started in {approval['started in']}, decided in {approval['decided in']}"
            f" ({approval['decision answer']}, delivery {approval['delivery when decided']}), task"
            f" {approval['task']} {after_return} s after the region returned"
        )
    deployed = report.failover.get("deployed failover")
    if deployed:
        low, high = deployed["seconds, from failure to every client moved"]
        print(
            f"health checks here: {deployed['local clock']}; deployed: {deployed['health check']}, so"
            f" {low:g}-{high:g} s from a failure to every client moved (with a 60 s DNS TTL)"
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return str(value)


# -- running it ---------------------------------------------------------------------------------


def run(plan: Plan, report_dir: Path = REPORT_DIR) -> Report:
    """Both scenarios on a local stack of ``plan.regions``; the report, its JSON and its
    picture in ``report_dir``, and what the stack logged in ``report_dir/stack.log``."""
    from local.stack import LocalStack, free_port_triple, region_ports

    report_dir.mkdir(parents=True, exist_ok=True)
    report = Report(plan=asdict(plan))
    timeline = Timeline()
    port = free_port_triple(regions=plan.regions)
    with (
        (report_dir / "stack.log").open("w") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        stack = LocalStack(
            api_port=port,
            ws_port=port + 1,
            moto_port=None,
            regions=list(plan.regions),
            region_ports=region_ports(port, plan.regions),
            replication_lag_seconds=plan.lag_ms / 1000,
            health_check_scale=plan.scale,
            # dev's stage allows 5 requests/s; the drill's 20 clients are a small prod's traffic.
            throttle=DRILL_THROTTLE,
        ).start()
        try:
            result = run_failover(stack, plan, timeline)
            report.failover = failover_figures(stack, plan, timeline, result)
            flipped = run_flip(stack, plan, Timeline())
            report.flip = verify(stack, flipped["clients"])
            report.flip["answers"] = sum(1 for c in flipped["clients"] for m in c.sent if m.outcome == "answered")
            report.flip["answers by region"] = dict(Counter(m.region for c in flipped["clients"] for m in c.sent))
        finally:
            stack.stop()
    report.check()
    draw_timeline(timeline, plan.regions, report_dir / "timeline.png")
    (report_dir / "report.json").write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    return report


# -- against a deployed stack ---------------------------------------------------------------------


def run_against(
    credentials: Credentials,
    clients: int,
    duration: float,
    report_dir: Path,
    abort_after: float | None = None,
    abort_region: str | None = None,
    stack_name: str = "dev",
) -> dict[str, Any]:
    """The drill's clients against a deployed global endpoint while someone runs the region's
    FIS experiment: answers and failures per second, how long clients waited, and, from each
    session's history read back through the API, what was lost or shown twice. With
    ``abort_after``, a client failing longer than that puts AgentInfra/Drill Abort=1 in
    ``abort_region``: the experiment's stop condition."""
    timeline = Timeline()
    stop = threading.Event()
    run_id = time.strftime("%Y%m%d%H%M%S")
    conversations: list[Conversation] = [
        (WebSocketConversation if n < max(1, clients // 5) else RestConversation)(
            name=f"d{run_id}-{n:02d}",
            location="",
            session_id=f"drill-{run_id}-{n:02d}",
            credentials=credentials,
            timeline=timeline,
            stop=stop,
            messages=_message,
        )
        for n in range(clients)
    ]
    threads = [threading.Thread(target=c.run, daemon=True) for c in conversations]
    started = time.time()
    timeline.mark("start", started)
    for thread in threads:
        thread.start()
    aborted = False
    deadline = time.time() + duration
    while time.time() < deadline:
        time.sleep(1)
        if abort_after is not None and not aborted and _longest_wait(conversations, started) > abort_after:
            _abort(abort_region, stack_name)
            timeline.mark("abort")
            aborted = True
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    lost = duplicated = 0
    for conversation in conversations:
        shown = Counter(_history_texts(credentials, conversation.session_id))
        lost += sum(1 for m in conversation.sent if m.outcome in ("answered", "accepted-earlier") and not shown[m.text])
        duplicated += sum(n - 1 for n in shown.values() if n > 1)
    figures = {
        "clients": clients,
        "lost": lost,
        "duplicated": duplicated,
        "rekeyed": sum(1 for c in conversations if c.refused_credentials),
        "longest wait for an answer (s)": round(_longest_wait(conversations, started, finished=True), 2),
        "answers": sum(1 for c in conversations for m in c.sent if m.answered_at),
        "failed attempts": sum(1 for e in timeline.events if e.kind == "failed"),
        "aborted the experiment": aborted,
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    draw_timeline(timeline, (), report_dir / "timeline.png")
    (report_dir / "report.json").write_text(json.dumps({"deployed": figures}, indent=2) + "\n")
    return figures


def _longest_wait(conversations: list[Conversation], since: float, finished: bool = False) -> float:
    """The longest any client went without an answer since ``since`` (counting, unless
    ``finished``, the wait still going on)."""
    now = time.time()
    longest = 0.0
    for conversation in conversations:
        last = since
        for message in conversation.sent:
            if message.answered_at is not None:
                longest = max(longest, message.answered_at - last)
                last = message.answered_at
        if not finished and conversation.sent and conversation.sent[-1].answered_at is None:
            longest = max(longest, now - last)
    return longest


def _abort(region: str | None, stack_name: str) -> None:
    import boto3

    boto3.client("cloudwatch", region_name=region).put_metric_data(
        Namespace="AgentInfra/Drill",
        MetricData=[{"MetricName": "Abort", "Dimensions": [{"Name": "Stack", "Value": stack_name}], "Value": 1}],
    )


def _history_texts(credentials: Credentials, session_id: str) -> list[str]:
    import requests

    headers = {"Authorization": f"Bearer {credentials.token}", "x-api-key": credentials.api_key}
    texts, cursor = [], None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        answer = requests.get(
            f"{credentials.rest}/v1/sessions/{session_id}/messages", headers=headers, params=params, timeout=30
        )
        if answer.status_code == 404:
            return texts
        answer.raise_for_status()
        body = answer.json()
        texts += [m["text"] for m in body["messages"] if m["role"] == "user"]
        cursor = body.get("nextCursor")
        if not cursor:
            return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a region fails with clients on it (make drill)")
    parser.add_argument("--short", action="store_true", help="the CI version: a faster clock, shorter phases")
    parser.add_argument("--endpoint", help="a deployed stack's global REST URL (https://api.<zone>): clients only")
    parser.add_argument("--ws-endpoint", help="its global WebSocket URL (wss://ws.<zone>)")
    parser.add_argument("--token", help="a JWT of the stack's issuer, for --endpoint")
    parser.add_argument("--api-key", help="an API key of the stack (pulumi stack output apiKeys), for --endpoint")
    parser.add_argument("--duration", type=float, default=900.0, help="seconds the clients run, with --endpoint")
    parser.add_argument("--stack", default="dev", help="the stack's name, with --endpoint (the Abort metric's)")
    parser.add_argument(
        "--abort-after",
        type=float,
        help="with --endpoint: put AgentInfra/Drill Abort=1 in --abort-region when a client waits longer",
    )
    parser.add_argument("--abort-region", help="the region whose experiment the abort stops")
    parser.add_argument("--regions", default="us-east-1,eu-west-1", help="two local regions; the first is killed")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--lag-ms", type=float, default=1000.0, help="the global table's replication lag")
    parser.add_argument("--report-dir", default=str(REPORT_DIR))
    args = parser.parse_args(argv)
    if args.endpoint:
        missing = [f"--{n.replace('_', '-')}" for n in ("ws_endpoint", "token", "api_key") if not getattr(args, n)]
        if args.abort_after is not None and not args.abort_region:
            missing.append("--abort-region")
        if missing:
            print(f"make drill: with --endpoint, give {', '.join(missing)} too", file=sys.stderr)
            return 2
        credentials = Credentials(args.endpoint.rstrip("/"), args.ws_endpoint.rstrip("/"), args.token, args.api_key)
        figures = run_against(
            credentials,
            args.clients,
            args.duration,
            Path(args.report_dir),
            args.abort_after,
            args.abort_region,
            args.stack,
        )
        for name, value in figures.items():
            print(f"{name:40} {value}")
        return 1 if figures["lost"] or figures["duplicated"] or figures["rekeyed"] else 0
    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    if len(regions) != 2:
        print("make drill: --regions names two regions (the first is the one that fails)", file=sys.stderr)
        return 2
    if args.clients < 20:
        print("make drill: at least 20 clients", file=sys.stderr)
        return 2
    base = Plan.short() if args.short else Plan()
    plan = Plan(**{**asdict(base), "regions": regions, "clients": args.clients, "lag_ms": args.lag_ms})
    started = time.time()
    report = run(plan, Path(args.report_dir))
    print_table(report)
    print(f"report: {Path(args.report_dir) / 'report.json'}, timeline: {Path(args.report_dir) / 'timeline.png'}")
    print(f"drill took {time.time() - started:.0f} s")
    if report.goals_missed:
        print("goals missed:\n  " + "\n  ".join(report.goals_missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
