"""The failover drill's clients: conversations over REST and WebSocket, and a task that waits
for an approval, each as a real client of the global endpoint would behave.

A client retries what did not get an answer with the same Idempotency-Key (REST header, or
``idempotencyKey`` in a WebSocket ``sendMessage``), with backoff and jitter, until it is
answered; it never makes a new token or API key. Everything it sees goes on a shared
``Timeline`` (time, what, which region answered) for the report and its picture.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from local.route53.global_endpoint import LOCATION_HEADER, SERVED_BY_HEADER

__all__ = ["Credentials", "RestConversation", "TaskWithApproval", "Timeline", "WebSocketConversation"]

RETRY_BASE_SECONDS = 0.2
RETRY_CAP_SECONDS = 2.0
# Answers that mean "not now, try again": throttled, the turn did not complete, a backing
# service unavailable, too slow; and 409 when the session changed under the turn.
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Credentials:
    rest: str
    websocket: str
    token: str
    api_key: str


@dataclass(frozen=True)
class Event:
    at: float
    kind: str  # answered, failed, accepted-earlier
    region: str | None
    client: str


class Timeline:
    """What every client saw, in order (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.marks: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, kind: str, region: str | None, client: str) -> None:
        with self._lock:
            self.events.append(Event(time.time(), kind, region, client))

    def mark(self, name: str, at: float | None = None) -> None:
        with self._lock:
            self.marks.setdefault(name, at if at is not None else time.time())


@dataclass
class Sent:
    """One message a client sent, and what became of it."""

    text: str
    key: str
    outcome: str = "pending"  # answered, accepted-earlier, abandoned
    region: str | None = None
    attempts: int = 0
    answered_at: float | None = None


def backoff(attempt: int) -> float:
    """Full jitter, capped."""
    return random.uniform(0, min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt))  # noqa: S311 - jitter


@dataclass
class Conversation:
    """A client with one session, sending messages until told to stop."""

    name: str
    location: str
    session_id: str
    credentials: Credentials
    timeline: Timeline
    stop: threading.Event
    think_seconds: float = 0.2
    messages: Callable[[int], str] = lambda n: f"hello {n}"
    sent: list[Sent] = field(default_factory=list)
    refused_credentials: int = 0
    """401 and 403 answers: each would have made a real client get a new token or key."""
    regions_answering: set[str] = field(default_factory=set)

    def key(self, n: int) -> str:
        return f"{self.name}-{n}"

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            message = Sent(self.messages(n) + f" [{self.name} #{n}]", self.key(n))
            self.sent.append(message)
            self.deliver(message)
            n += 1
            self.stop.wait(self.think_seconds)

    def deliver(self, message: Sent) -> None:
        raise NotImplementedError

    def finish(self, message: Sent, outcome: str, region: str | None) -> None:
        message.outcome, message.region, message.answered_at = outcome, region, time.time()
        if region:
            self.regions_answering.add(region)
        self.timeline.add(outcome, region, self.name)


@dataclass
class RestConversation(Conversation):
    def deliver(self, message: Sent) -> None:
        headers = {
            "Authorization": f"Bearer {self.credentials.token}",
            "x-api-key": self.credentials.api_key,
            "content-type": "application/json",
            "Idempotency-Key": message.key,
            LOCATION_HEADER: self.location,
        }
        url = f"{self.credentials.rest}/v1/sessions/{self.session_id}/messages"
        while True:
            message.attempts += 1
            try:
                answer = requests.post(url, json={"message": message.text}, headers=headers, timeout=30)
            except requests.RequestException:
                answer = None
            if answer is not None:
                region = answer.headers.get(SERVED_BY_HEADER)
                if answer.status_code == 200:
                    return self.finish(message, "answered", region)
                code = _error_code(answer)
                if answer.status_code == 409 and code == "duplicate_request":
                    return self.finish(message, "accepted-earlier", region)
                if answer.status_code in (401, 403):
                    self.refused_credentials += 1
                if answer.status_code not in RETRYABLE_STATUSES and code != "conflict":
                    self.timeline.add("failed", region, self.name)
                    message.outcome = f"refused {answer.status_code} {code}"
                    return None
            self.timeline.add("failed", answer.headers.get(SERVED_BY_HEADER) if answer is not None else None, self.name)
            if self.stop.is_set() and message.attempts > 50:
                message.outcome = "abandoned"
                return None
            time.sleep(backoff(min(message.attempts, 6)))


@dataclass
class WebSocketConversation(Conversation):
    """Sends each message on a WebSocket and waits for its ``final`` frame; a connection lost
    before it is opened again (through the global endpoint: another region after failover)
    and the message sent again with its key."""

    connections: list[str | None] = field(default_factory=list)
    """The region of each connection it opened, in order: after the first, each one resumed."""
    _connection: Any = None
    _opened: Any = None
    _region: str | None = None

    def _connect(self) -> Any:
        from websockets.sync.client import connect

        url = f"{self.credentials.websocket}/?token={self.credentials.token}"
        self._opened = contextlib.ExitStack()
        connection = self._opened.enter_context(
            connect(url, additional_headers={LOCATION_HEADER: self.location}, open_timeout=10)
        )
        self._region = connection.response.headers.get(SERVED_BY_HEADER)
        self.connections.append(self._region)
        return connection

    def deliver(self, message: Sent) -> None:
        frame = {"action": "sendMessage", "sessionId": self.session_id, "message": message.text}
        frame["idempotencyKey"] = message.key
        while True:
            message.attempts += 1
            try:
                if self._connection is None:
                    self._connection = self._connect()
                self._connection.send(json.dumps(frame))
                outcome = self._await_final(message)
                if outcome is not None:
                    return self.finish(message, outcome, self._region)
            except Exception:
                self._close()
            self.timeline.add("failed", self._region, self.name)
            if self.stop.is_set() and message.attempts > 50:
                message.outcome = "abandoned"
                return None
            time.sleep(backoff(min(message.attempts, 6)))

    def _await_final(self, message: Sent) -> str | None:
        """``answered`` on the final frame, ``accepted-earlier`` when the key was used, None
        to send again (the turn failed for a reason a retry can cure)."""
        deadline = time.time() + 30
        while time.time() < deadline:
            data = json.loads(self._connection.recv(timeout=deadline - time.time()))
            kind = data.get("type")
            if kind == "final":
                return "answered"
            if kind == "error":
                if data.get("code") == "duplicate_request":
                    return "accepted-earlier"
                return None
        raise TimeoutError("no final frame")

    def _close(self) -> None:
        if self._opened is not None:
            with contextlib.suppress(Exception):  # it is gone either way
                self._opened.close()
        self._connection = self._opened = None

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._close()


def _error_code(answer: requests.Response) -> str:
    try:
        return answer.json().get("error", {}).get("code", "")
    except ValueError:
        return ""


@dataclass
class TaskWithApproval:
    """A Standard task whose tool waits for an approval, started in ``location``'s region;
    decided once that region has failed (``decide``), then followed to its end."""

    location: str
    credentials: Credentials
    timeline: Timeline
    task_id: str | None = None
    approval_id: str | None = None
    started_in: str | None = None
    decision: dict[str, Any] = field(default_factory=dict)
    final_status: str | None = None
    finished_at: float | None = None
    delivered_by: str | None = None

    def _headers(self, key: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.credentials.token}",
            "x-api-key": self.credentials.api_key,
            "content-type": "application/json",
            LOCATION_HEADER: self.location,
        }
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def _until(
        self, call: Callable[[], requests.Response | None], done: Callable[[requests.Response], bool], seconds: float
    ) -> requests.Response:
        deadline = time.time() + seconds
        attempt = 0
        last = "no answer"
        while time.time() < deadline:
            try:
                answer = call()
            except requests.RequestException as error:
                answer, last = None, type(error).__name__
            if answer is not None:
                if done(answer):
                    return answer
                last = f"{answer.status_code} {answer.text[:200]}"
            attempt += 1
            time.sleep(backoff(min(attempt, 5)))
        raise TimeoutError(f"the task drill step did not finish in {seconds:g} s; last answer: {last}")

    def start(self, seconds: float = 30) -> None:
        url = f"{self.credentials.rest}/v1/tasks"
        answer = self._until(
            lambda: requests.post(
                url, json={"message": "open a ticket: drill printer"}, headers=self._headers("drill-task"), timeout=30
            ),
            lambda a: a.status_code == 202,
            seconds,
        )
        self.task_id = answer.json()["taskId"]
        self.started_in = answer.headers.get(SERVED_BY_HEADER)
        status = self._until(self._status, lambda a: a.status_code == 200 and "pendingApproval" in a.json(), seconds)
        self.approval_id = status.json()["pendingApproval"]["approvalId"]

    def _status(self) -> requests.Response:
        return requests.get(f"{self.credentials.rest}/v1/tasks/{self.task_id}", headers=self._headers(), timeout=30)

    def decide(self, seconds: float = 60) -> None:
        url = f"{self.credentials.rest}/v1/approvals/{self.approval_id}"
        answer = self._until(
            lambda: requests.post(
                url, json={"decision": "approve", "comment": "drill"}, headers=self._headers(), timeout=30
            ),
            lambda a: a.status_code in (200, 202),
            seconds,
        )
        self.decision = {
            "status": answer.status_code,
            "region": answer.headers.get(SERVED_BY_HEADER),
            "delivery": answer.json().get("delivery", "delivered"),
            "at": time.time(),
        }
        self.timeline.mark("approval decided", self.decision["at"])

    def follow(self, seconds: float = 120) -> None:
        """Read the task's status (which delivers a pending decision) until it ends."""
        answer = self._until(self._status, lambda a: a.status_code == 200 and a.json()["status"] != "RUNNING", seconds)
        self.final_status = answer.json()["status"]
        self.finished_at = time.time()
        self.delivered_by = answer.headers.get(SERVED_BY_HEADER)
        self.timeline.mark("task finished", self.finished_at)
