"""The container entrypoint of ``fargate-spot`` tools: ``python -m handlers.longrun``.

The task machine starts the tool's ECS task with the environment of a tool Lambda
(``TABLE_NAME``, ``AWS_REGION``, ``TTL_DAYS``, ``TABLE_REGIONS``, ``EVACUATED_REGIONS``,
``LOG_LEVEL``), ``TOOL_NAME`` (the tool, a module under ``handlers/tools`` whose runtime is
``fargate-spot``) and, as a container override, ``TOOL_EVENT``: the JSON of the tool event a
Lambda tool gets (executionId, startedAt, seq, name, toolUseId, input, userId, sessionId,
correlationId), whose ``name`` must be ``TOOL_NAME``. ``AWS_ENDPOINT_URL`` (boto3 reads it)
points the table's client elsewhere, at moto locally.

The step runs and is recorded exactly as a Lambda tool's (``RUN#<executionId>`` /
``TOOL#<seq>#<name>``, through ``handlers.shared.tooling``); a run whose step is recorded
already returns that record and does nothing. Exit status:

* 0: a result is recorded (SUCCEEDED, or FAILED: the tool refused the request);
* 143 (128 + SIGTERM): told to stop, the checkpoint saved (``handlers.shared.longrun``); run
  the same event again to resume. Fargate Spot's interruption is SIGTERM, then SIGKILL after
  the container's stopTimeout, at most 120 s
  (https://aws.amazon.com/premiumsupport/knowledge-center/fargate-spot-termination-notice/);
* 2: misconfigured (an environment variable missing or wrong, TOOL_EVENT not the tool's);
* 1: crashed (a dependency failed after the step's own retries, or a bug): nothing is
  recorded; the checkpoint is saved, so a retry resumes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

EXIT_RECORDED = 0
EXIT_CRASHED = 1
EXIT_MISCONFIGURED = 2
EXIT_STOPPED = 143


def _event(environ: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The tool's name and its event, checked against each other; ValueError says what is wrong."""
    name = environ.get("TOOL_NAME", "")
    raw = environ.get("TOOL_EVENT")
    if not name:
        raise ValueError("TOOL_NAME is not set: it names the tool module to run")
    if raw is None:
        raise ValueError("TOOL_EVENT is not set: it is the JSON of the tool event")
    try:
        event = json.loads(raw)
    except ValueError as error:
        raise ValueError(f"TOOL_EVENT is not JSON: {error}") from None
    if not isinstance(event, dict):
        raise ValueError("TOOL_EVENT must be a JSON object (the tool event)")
    if event.get("name") != name:
        raise ValueError(f"TOOL_EVENT is for tool {event.get('name')!r}, but TOOL_NAME is {name!r}")
    return name, event


def main() -> int:
    """Run the step the process's environment describes; the exit status (see the module)."""
    import msgspec

    from handlers.shared.log import get_logger
    from handlers.shared.longrun import STOP, Interrupted, RunSettings
    from handlers.shared.settings import SettingsError
    from handlers.shared.tooling import ToolEvent
    from handlers.tools import load_tool

    STOP.install()  # first: a SIGTERM from here on is a stop, not a kill
    env = os.environ
    logger = get_logger("longrun", env.get("LOG_LEVEL", "INFO"))
    try:
        name, event = _event(env)
        RunSettings.from_environ(env)
        msgspec.convert(event, ToolEvent)
        tool = load_tool(name)
        if tool.runtime != "fargate-spot":
            raise ValueError(f"tool {name!r} has runtime {tool.runtime!r}; this entrypoint runs fargate-spot tools")
        tool.store()  # the table's settings and client, before any work
    except (ValueError, LookupError, SettingsError) as error:
        logger.error("misconfigured", extra={"error": str(error)})
        return EXIT_MISCONFIGURED
    try:
        result = tool.lambda_handler(event)
    except Interrupted as stopped:
        logger.warning("stopped", extra={"cursor": stopped.cursor, "checkpointSaved": stopped.saved})
        return EXIT_STOPPED
    except Exception:
        logger.exception("crashed")
        return EXIT_CRASHED
    logger.info("recorded", extra={"status": result.get("status"), "replayed": result.get("replayed", False)})
    return EXIT_RECORDED


def exit_now(status: int) -> None:
    """Leave with ``status`` at once. Not ``sys.exit``: while the interpreter finalizes, it puts
    SIGTERM's default action back, and a SIGTERM then (the step done, its result recorded)
    would end the process as killed (-15) instead of with this status."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    exit_now(main())
