"""`make dev` when something is wrong: a typo in the stack file, a port that is taken.

The stack is started as `make dev` starts it (``python -m local.stack``, a subprocess), so
what is asserted is what a developer sees: the exit status, the message, no traceback.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from local.stack import free_port_triple

ROOT = Path(__file__).resolve().parent.parent


def run_stack(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - this interpreter, this repository's module
        [sys.executable, "-m", "local.stack", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def listening(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_a_typo_in_the_stack_file_stops_make_dev_naming_the_key(tmp_path):
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    keys = config["config"]
    keys["agent-infra:obsevability"] = keys.pop("agent-infra:observability")
    keys["agnet-infra:budget"] = {"monthlyUsd": 5}
    stack_file = tmp_path / "Pulumi.typo.yaml"
    stack_file.write_text(yaml.safe_dump(config))

    result = run_stack(
        "--stack-file", str(stack_file), "--port", str(free_port_triple()), "--state-file", str(tmp_path / "s.json")
    )

    assert result.returncode == 2, result.stderr
    assert "agent-infra:obsevability: unknown key; did you mean agent-infra:observability?" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    warnings = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert any(
        w["level"] == "WARNING" and "agnet-infra:budget" in w["message"] and "agent-infra:budget" in w["message"]
        for w in warnings
    )
    assert "local stack is up" not in result.stdout
    assert not (tmp_path / "s.json").exists()


def test_a_taken_port_is_named_with_how_to_choose_others(tmp_path):
    port = free_port_triple()
    with listening(port + 1):  # the WebSocket API's port
        result = run_stack("--port", str(port), "--state-file", str(tmp_path / "s.json"), timeout=60)
    assert result.returncode == 2
    assert f"port {port + 1} (WebSocket API) on 127.0.0.1 is already in use" in result.stderr
    assert "make dev PORT=" in result.stderr and "PORT+2 (moto)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_port_taken_while_starting_is_reported_the_same_way(tmp_path, monkeypatch, capsys):
    """The port check and the listen are not atomic: a port taken in between (here: the
    check is told all is free) stops the start the same way, and leaves nothing installed."""
    import local.stack
    from local.stepfunctions import adapter as stepfunctions_adapter

    port = free_port_triple()
    checks = iter([[]])  # the first check sees nothing; the message's own check sees the truth
    real_check = local.stack.taken_ports
    monkeypatch.setattr(
        local.stack, "taken_ports", lambda host, p, regions=("",): next(checks, None) or real_check(host, p, regions)
    )
    monkeypatch.setattr(local.stack, "log_json_lines", lambda: None)
    with listening(port):  # the REST API's port, the last one the stack listens on
        status = local.stack.main(["--port", str(port), "--state-file", str(tmp_path / "s.json")])
    assert status == 2
    assert f"port {port} (REST API) on 127.0.0.1 is already in use" in capsys.readouterr().err
    assert stepfunctions_adapter.installed() is None, "a failed start leaves moto as it found it"


def test_make_dev_passes_port_on():
    dry_run = subprocess.run(["make", "-n", "dev", "PORT=9180"], cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S607 - make from PATH, as a developer runs it
    assert "-m local.stack --port 9180" in dry_run.stdout
    assert "--regions" not in dry_run.stdout, "one region unless asked"


def test_make_dev_passes_regions_and_lag_on():
    dry_run = subprocess.run(
        ["make", "-n", "dev", "REGIONS=us-east-1,eu-west-1", "REPLICATION_LAG_MS=250"],  # noqa: S607 - make from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--regions us-east-1,eu-west-1" in dry_run.stdout and "--replication-lag-ms 250" in dry_run.stdout


def test_the_port_message_of_several_regions_names_each_port(capsys):
    import local.stack

    regions = ["us-east-1", "eu-west-1"]
    port = free_port_triple(regions=regions)
    with listening(port + 5):  # eu-west-1's REST API
        status = local.stack.main(["--port", str(port), "--regions", ",".join(regions)])
    assert status == 2
    err = capsys.readouterr().err
    assert f"port {port + 5} (eu-west-1 REST API) on 127.0.0.1 is already in use" in err
    assert "each region's REST and WebSocket APIs" in err


def test_a_region_the_stack_does_not_know_is_a_config_error(capsys):
    import local.stack

    port = free_port_triple(regions=["us-east-1", "mars-1"])
    status = local.stack.main(["--port", str(port), "--regions", "us-east-1,mars-1", "--state-file", "/dev/null"])
    assert status == 2
    assert "mars-1 is not an AWS region" in capsys.readouterr().err


def test_a_port_left_in_time_wait_by_a_stopped_stack_is_free_again():
    """Ctrl-C, then make dev again at once: the old stack's connections sit in TIME_WAIT on its
    ports for up to a minute. The servers bind with SO_REUSEADDR, so they can listen there;
    the port check must agree, and still see a real listener."""
    import local.stack

    port = free_port_triple()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the stack's servers bind
    server.bind(("127.0.0.1", port))
    server.listen()
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the connection waits in TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    with socket.socket() as plain:  # what the old probe did: TIME_WAIT counted as taken
        try:
            plain.bind(("127.0.0.1", port))
        except OSError:
            pass
        else:
            raise AssertionError("no connection in TIME_WAIT on the port: the test proves nothing")

    assert local.stack.taken_ports("127.0.0.1", port) == []
    with socket.socket() as other:  # another make dev listening there is still seen
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        assert local.stack.taken_ports("127.0.0.1", port) == [(port, "REST API")]


def _start_stack(port: int, state_file: Path) -> subprocess.Popen:
    process = subprocess.Popen(  # noqa: S603 - this interpreter, this repository's module
        [sys.executable, "-m", "local.stack", "--port", str(port), "--state-file", str(state_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in process.stdout:
        if "local stack is up" in line:
            return process
    raise AssertionError(f"the stack on {port} did not start: exit {process.wait()}")


def _stop(process: subprocess.Popen) -> list[dict]:
    """Ctrl-C; the JSON lines it writes from then on."""
    import signal

    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    return [json.loads(line) for line in rest.splitlines() if line.startswith("{")]


def test_a_second_stack_stopping_leaves_the_first_one_findable(tmp_path):
    """Two make dev on other ports: the second one's Ctrl-C deleted build/local-stack.json while
    the first still ran, and make demo reported no stack. Now the file goes back to the first,
    and goes away when the last one stops."""
    state_file = tmp_path / "local-stack.json"
    first = _start_stack(free_port_triple(), state_file)
    try:
        first_state = json.loads(state_file.read_text())
        assert first_state["pid"] == first.pid
        second = _start_stack(free_port_triple(), state_file)
        try:
            assert json.loads(state_file.read_text())["pid"] == second.pid
        finally:
            _stop(second)
        assert json.loads(state_file.read_text()) == first_state
    finally:
        lines = _stop(first)
    assert not state_file.exists()
    # docs/local-stack.md's promise: `level` and `service` in each line (the stack's own included).
    assert [line["message"] for line in lines] == ["stopping", "stopped"]
    assert all(line["level"] == "INFO" and line["service"] == "local-stack" for line in lines)
