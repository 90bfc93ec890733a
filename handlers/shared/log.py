"""One JSON object per log line, with the correlation id that entered at API Gateway.

Written on the standard library rather than taken from Powertools: Powertools' Logger and
Metrics import ``typing_extensions`` and cost about a fifth of a bare boto3 client's cold
start on their own (measured by ``bench/cold_start.py``'s method), which alone would
break the router's budget. This module is small: a formatter, a context, and CloudWatch
Embedded Metric Format lines for metrics (no API call, no extra permission).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039 - never mutated, replaced

# Attributes every LogRecord has; anything else passed in `extra=` is a field of the line.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
            line["exceptionType"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(line, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (Lambda's, or a test's capture)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def get_logger(service: str, level: str = "INFO") -> logging.Logger:
    """A logger that writes JSON lines to stdout (Lambda ships stdout to CloudWatch Logs)."""
    logger = logging.getLogger(f"agent.{service}")
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter(service))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def correlation_id() -> str | None:
    return _context.get().get("correlationId")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (``correlationId``, ``sessionId``, ...) to every line logged inside."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def emit_metric(
    namespace: str,
    metrics: Mapping[str, float],
    *,
    unit: str = "Count",
    dimensions: Mapping[str, str] | None = None,
    stream=None,
) -> dict[str, Any]:
    """Write one CloudWatch Embedded Metric Format line; CloudWatch turns it into metrics."""
    dims = dict(dimensions or {})
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [sorted(dims)],
                    "Metrics": [{"Name": name, "Unit": unit} for name in metrics],
                }
            ],
        },
        **dims,
        **metrics,
    }
    cid = correlation_id()
    if cid:
        document["correlationId"] = cid  # a property, not a dimension: searchable, not a metric
    print(json.dumps(document), file=stream or sys.stdout, flush=True)
    return document
