"""Amazon ECS's RunTask and DescribeTasks as ``ecs:runTask.sync`` uses them, each task a local process.

``LocalEcs`` runs a registered task definition's one container (a command, e.g. ``python -m
handlers.longrun``) with the definition's environment and the overrides'; the state gets the
stopped task as DescribeTasks describes it
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html: LastStatus STOPPED,
StopCode, StoppedReason, Containers[].ExitCode). Exit 0: success; any other exit, or a
container that did not start (TaskFailedToStart), fails the state with States.TaskFailed and
the description as the Cause. A Spot interruption, injected on request on a FARGATE_SPOT task:
SIGTERM, SIGKILL after the stop timeout, StopCode SpotInterruption
(https://repost.aws/knowledge-center/fargate-spot-termination-notice). A state that times out
(or an execution that stops) stops its task the same way.

Not emulated: images (the container is a command on this machine), networking
(awsvpcConfiguration is accepted and ignored), CPU and memory limits, several containers per
task, clusters as resources (any cluster name is taken), capacity provider placement beyond
FARGATE/FARGATE_SPOT, the PROVISIONING/PENDING/RUNNING states a DescribeTasks poll would see,
and ECS's own API outside Step Functions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components import naming
from local.stepfunctions.errors import TaskFailure

ROOT = Path(__file__).resolve().parents[2]
LONGRUN_COMMAND = (sys.executable, "-m", "handlers.longrun")
"""The container's entrypoint, as the image runs it (the Dockerfile's command)."""
# ECS's default stop timeout when a container definition sets none; Fargate allows at most 120 s
# (https://repost.aws/knowledge-center/fargate-spot-termination-notice).
DEFAULT_STOP_TIMEOUT_SECONDS = 30.0
# The stopped task's fields, as DescribeTasks (API_Task) and the Spot interruption event name them:
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html (stopCode: TaskStopCode),
# https://repost.aws/knowledge-center/fargate-spot-termination-notice ("stopCode":
# "SpotInterruption", "stoppedReason": "Your Spot Task was interrupted."), and an essential
# container that exited: "Essential container in task exited" (an execution's recorded Cause:
# https://github.com/mcattarinussi/step-functions-runtask-retry/blob/master/test/data/error-events/failed-task-exit-code-1.json).
EXITED = ("EssentialContainerExited", "Essential container in task exited")
SPOT_INTERRUPTED = ("SpotInterruption", "Your Spot Task was interrupted.")
USER_STOPPED = ("UserInitiated", "Task stopped by AWS Step Functions")
# https://docs.aws.amazon.com/AmazonECS/latest/userguide/stopped-task-error-codes.html
# "CannotStartContainerError: This error occurs when a container can't be started."
FAILED_TO_START = "TaskFailedToStart"
# RunTask refused (bad parameters, an unknown task definition): the ECS API error as a runTask
# state's Retry names it (components.workflows.ECS_RETRYABLE).
ECS_API_ERROR = "ECS.AmazonECSException"


@dataclass(frozen=True)
class LocalTaskDefinition:
    """A registered task definition's one container, as the local stack runs it."""

    arn: str
    container_name: str
    environment: Mapping[str, str]
    command: Sequence[str] = LONGRUN_COMMAND
    stop_timeout_seconds: float = DEFAULT_STOP_TIMEOUT_SECONDS
    cwd: Path = ROOT


@dataclass
class _Interruption:
    """A Spot interruption to inject into the next Spot task: once ``when()`` holds (polled),
    or ``after_seconds`` after the task started."""

    after_seconds: float
    when: Callable[[], bool] | None


class _RunningTask:
    def __init__(self, arn: str, spot: bool, process: subprocess.Popen) -> None:
        self.arn, self.spot, self.process = arn, spot, process
        self.started = time.monotonic()
        self.stop: tuple[str, str] | None = None  # (stop code, reason) once asked to stop
        self.kill_at: float | None = None
        self.interruption: _Interruption | None = None
        self.work_items = 0
        """The container's ``work item`` log lines so far (one per item done)."""


class LocalEcs:
    """RunTask and DescribeTasks for ``ecs:runTask.sync``, each task a local process.

    ``register`` a task definition (the local stack: one per fargate-spot tool); ``run_task``
    runs one to its end as the .sync integration waits for it; ``interrupt_next`` injects a
    Spot interruption into the next Spot task (a test, the demo); ``stopped`` keeps each
    finished task's description. ``log(line)`` hears the containers' output."""

    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self.definitions: dict[str, LocalTaskDefinition] = {}
        self.stopped: list[dict[str, Any]] = []
        self.running: dict[str, _RunningTask] = {}
        self._planned: list[_Interruption] = []
        self._lock = threading.Lock()
        self._log = log
        self.spot_trigger: Path | None = None
        """A file another process writes to interrupt the next Spot task (``make demo``; by
        hand: ``echo '{"afterItems": 2}' > build/spot-interruption``): read and removed when
        that task starts; it is interrupted once it has done ``afterItems`` work items (0: as
        it starts)."""

    def register(self, definition: LocalTaskDefinition) -> None:
        self.definitions[definition.arn] = definition

    def interrupt_next(
        self, count: int = 1, after_seconds: float = 0.0, when: Callable[[], bool] | None = None
    ) -> None:
        """Interrupt the next ``count`` tasks that start on FARGATE_SPOT."""
        with self._lock:
            self._planned.extend(_Interruption(after_seconds, when) for _ in range(count))

    def interrupt(self, task_arn: str) -> None:
        """A Spot interruption of a running Spot task, now."""
        with self._lock:
            task = self.running.get(task_arn)
            if task is None:
                raise KeyError(f"no running task {task_arn}")
            if not task.spot:
                raise ValueError(f"{task_arn} runs on FARGATE: only a FARGATE_SPOT task is interrupted")
            task.interruption = _Interruption(0.0, None)

    # -- RunTask, to the task's end -------------------------------------------------------------

    def run_task(self, parameters: dict[str, Any], region: str, is_running: Callable[[], bool]) -> dict[str, Any]:
        """The stopped task (DescribeTasks' Task, PascalCase); ``TaskFailure`` as Step
        Functions fails the state. ``is_running()`` false (the state timed out, the execution
        stopped): the task is stopped as StopTask does (SIGTERM, SIGKILL after the timeout)."""
        definition, spot, environment, override = self._placement(parameters)
        task_id = uuid.uuid4().hex
        cluster = parameters["Cluster"]
        account = cluster.split(":")[4] if cluster.startswith("arn:") else naming.STAND_IN_ACCOUNT_ID
        cluster_name = cluster.rsplit("/", 1)[-1]
        arn = f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/{task_id}"
        created = _now_ms()
        description: dict[str, Any] = {
            "TaskArn": arn,
            "ClusterArn": cluster
            if cluster.startswith("arn:")
            else f"arn:aws:ecs:{region}:{account}:cluster/{cluster}",
            "TaskDefinitionArn": definition.arn,
            "CapacityProviderName": "FARGATE_SPOT" if spot else "FARGATE",
            "LaunchType": "FARGATE",
            "StartedBy": "AWS Step Functions",
            "Group": "family:" + definition.arn.rsplit("/", 1)[-1].split(":")[0],
            "Overrides": {"ContainerOverrides": [override]} if override else {"ContainerOverrides": []},
            "CreatedAt": created,
            "DesiredStatus": "STOPPED",
            "LastStatus": "STOPPED",
        }
        container: dict[str, Any] = {
            "Name": definition.container_name,
            "ContainerArn": f"arn:aws:ecs:{region}:{account}:container/{cluster_name}/{task_id}/{uuid.uuid4()}",
            "TaskArn": arn,
            "LastStatus": "STOPPED",
        }
        try:
            process = subprocess.Popen(  # noqa: S603 - a registered task definition's own command
                list(definition.command),
                cwd=definition.cwd,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as error:
            reason = f"CannotStartContainerError: {error}"
            container["Reason"] = reason
            description.update(StopCode=FAILED_TO_START, StoppedReason=reason, StoppedAt=_now_ms())
            return self._finished(description, [container])
        description["StartedAt"] = _now_ms()
        task = _RunningTask(arn, spot, process)
        with self._lock:
            if spot and self._planned:
                task.interruption = self._planned.pop(0)
            elif spot:
                task.interruption = self._triggered(task)
            self.running[arn] = task
        reader = threading.Thread(target=self._read_output, args=(process, task), name="ecs-task-output", daemon=True)
        reader.start()
        try:
            self._wait(task, definition, is_running)
        finally:
            with self._lock:
                self.running.pop(arn, None)
            reader.join(timeout=5)
        code, reason = task.stop or EXITED
        container["ExitCode"] = _exit_code(process.returncode)
        description.update(StopCode=code, StoppedReason=reason, StoppedAt=_now_ms())
        if task.stop is not None:
            description["StoppingAt"] = description["StoppedAt"]
        return self._finished(description, [container])

    def _placement(self, parameters: dict[str, Any]) -> tuple[LocalTaskDefinition, bool, dict[str, str], dict | None]:
        """The task definition, whether it runs on Spot, the container's environment and the
        override as given: RunTask's checks, with ECS's messages."""

        def refused(message: str) -> TaskFailure:
            return TaskFailure(
                ECS_API_ERROR,
                f"{message} (Service: AmazonECS; Status Code: 400; Error Code: InvalidParameterException)",
            )

        if not parameters.get("Cluster"):
            raise refused("Cluster is required here: the local ECS has no default cluster")
        definition = self.definitions.get(parameters.get("TaskDefinition", ""))
        if definition is None:
            raise refused(f"Unable to find task definition {parameters.get('TaskDefinition')!r}")
        strategy = parameters.get("CapacityProviderStrategy") or []
        if strategy and parameters.get("LaunchType"):
            # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html
            raise refused("If a capacityProviderStrategy is specified, the launchType parameter must be omitted")
        providers = {item.get("CapacityProvider") for item in strategy}
        if providers - {"FARGATE", "FARGATE_SPOT"}:
            raise refused(f"The local ECS has FARGATE and FARGATE_SPOT only, not {sorted(providers)}")
        spot = providers == {"FARGATE_SPOT"}
        overrides = (parameters.get("Overrides") or {}).get("ContainerOverrides") or []
        environment = {"PATH": os.environ.get("PATH", ""), **definition.environment}
        given = None
        for override in overrides:
            if override.get("Name") != definition.container_name:
                raise refused(
                    f"Override for container named {override.get('Name')} is not a container in the TaskDefinition."
                )
            environment.update({item["Name"]: item["Value"] for item in override.get("Environment") or []})
            given = override
        return definition, spot, environment, given

    def _wait(self, task: _RunningTask, definition: LocalTaskDefinition, is_running: Callable[[], bool]) -> None:
        """Until the process ends: inject the planned interruption, stop the task when the
        state no longer runs, SIGKILL once the stop timeout is over."""
        process = task.process
        while process.poll() is None:
            now = time.monotonic()
            interruption = task.interruption
            if task.stop is None and interruption is not None:
                due = (
                    interruption.when()
                    if interruption.when is not None
                    else now - task.started >= interruption.after_seconds
                )
                if due:
                    self._stop(task, SPOT_INTERRUPTED, definition)
            if task.stop is None and not is_running():
                self._stop(task, USER_STOPPED, definition)
            if task.kill_at is not None and now >= task.kill_at:
                process.kill()
                task.kill_at = None
            time.sleep(0.02)

    def _stop(self, task: _RunningTask, why: tuple[str, str], definition: LocalTaskDefinition) -> None:
        # ECS sends SIGTERM, then SIGKILL once the container's stop timeout is over
        # (https://repost.aws/knowledge-center/fargate-spot-termination-notice).
        task.stop = why
        task.process.send_signal(signal.SIGTERM)
        task.kill_at = time.monotonic() + definition.stop_timeout_seconds

    def _finished(self, description: dict[str, Any], containers: list[dict[str, Any]]) -> dict[str, Any]:
        description["Containers"] = containers
        with self._lock:
            self.stopped.append(description)
        if all(c.get("ExitCode") == 0 for c in containers):
            return description
        raise TaskFailure(ECS_TASK_FAILED, json.dumps(description, separators=(",", ":")))

    def _triggered(self, task: _RunningTask) -> _Interruption | None:
        """The interruption ``spot_trigger`` asks for, once (the file is removed)."""
        if self.spot_trigger is None:
            return None
        try:
            text = self.spot_trigger.read_text()
            self.spot_trigger.unlink()
        except FileNotFoundError:
            return None
        try:
            after = int(json.loads(text or "{}").get("afterItems", 0))
        except (ValueError, AttributeError, TypeError):
            after = 0  # a trigger that says nothing readable interrupts at the start
        return _Interruption(0.0, lambda: task.work_items >= after)

    def _read_output(self, process: subprocess.Popen, task: _RunningTask | None = None) -> None:
        for line in process.stdout or ():
            if task is not None and '"message": "work item"' in line:
                task.work_items += 1
            if self._log is not None:
                self._log(line.rstrip("\n"))


# Step Functions fails a runTask.sync state whose task stopped with a non-zero exit with this
# error and the task's description as the Cause (components.workflows.ECS_TASK_FAILED).
ECS_TASK_FAILED = "States.TaskFailed"


def _exit_code(returncode: int | None) -> int | None:
    """A container's exit code as ECS reports it: a process ended by a signal exits 128 +
    the signal's number (137 after SIGKILL, 143 after SIGTERM), as in "Common exit codes":
    https://repost.aws/knowledge-center/ecs-task-stopped"""
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


def _now_ms() -> int:
    return int(time.time() * 1000)
