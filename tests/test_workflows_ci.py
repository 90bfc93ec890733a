"""The GitHub workflows: what runs on a pull request and on main, and the hardening rules
(pinned actions, least permissions, no untrusted input in scripts). `make test` also runs
zizmor and the workflow JSON schema over them; here both are run once more with every
network address unreachable, to hold that they need none."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bootstrap.roles import role_name

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
SHA = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})$")
# The commits behind the tags, read from each action's own repository (git rev-parse <tag>^{commit}).
PINNED = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/setup-node": ("820762786026740c76f36085b0efc47a31fe5020", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
}


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True


def all_steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


NAMES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def test_the_three_workflows():
    assert NAMES == ["main.yml", "pull-request.yml", "test.yml"]
    assert list(triggers(load("pull-request.yml"))) == ["pull_request"]
    assert triggers(load("main.yml")) == {"push": {"branches": ["main"]}}
    assert list(triggers(load("test.yml"))) == ["workflow_call"]


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_by_commit_with_its_version_beside_it(name):
    text = (WORKFLOWS / name).read_text()
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(?:\s*#\s*(\S+))?", text, flags=re.M)
    assert uses
    for ref, comment in uses:
        if ref.startswith("$/"):
            continue  # this repository's own reusable workflow, at the running commit
        match = SHA.match(ref)
        assert match, f"{ref} is not pinned by a full commit SHA"
        assert PINNED[match["action"]] == (match["sha"], comment), f"{ref} # {comment}"


@pytest.mark.parametrize("name", NAMES)
def test_least_permissions_and_no_untrusted_input_in_scripts(name):
    workflow = load(name)
    assert workflow["permissions"] == {}, "nothing at the top; each job asks for its own"
    assert "pull_request_target" not in triggers(workflow)
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{job_name} has no permissions of its own"
        assert job["permissions"].get("contents") == "read"
        assert set(job["permissions"]) <= {"contents", "id-token", "pull-requests"}
        assert "write" not in {job["permissions"].get("contents")}
    for step in all_steps(workflow):
        assert "${{" not in step.get("run", ""), f"expression in a script: {step.get('run')}"
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
            assert "role-to-assume" in step["with"]
            assert not {"aws-access-key-id", "aws-secret-access-key"} & set(step["with"]), "OIDC, no long-lived keys"


def test_the_test_job_runs_make_test_on_311_and_313():
    (job,) = load("test.yml")["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.13"]
    assert [s["run"] for s in job["steps"] if "run" in s] == ["make test"]


def test_a_pull_request_tests_then_previews_every_stack_with_the_policy_pack():
    workflow = load("pull-request.yml")
    assert workflow["jobs"]["test"]["uses"] == "$/.github/workflows/test.yml"
    preview = workflow["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert preview["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert "${{ matrix.stack }}" in preview["concurrency"]["group"]
    credentials = next(s for s in preview["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert credentials["with"]["role-to-assume"].endswith(":role/agent-infra-${{ matrix.stack }}-preview")
    run = next(s for s in preview["steps"] if s.get("with", {}).get("command") == "preview")
    assert run["with"] | {"pulumi-version": None} == {
        "command": "preview",
        "stack-name": "${{ matrix.stack }}",
        "pulumi-version": None,
        "comment-on-pr": True,
        "edit-pr-comment": True,
        "diff": True,
        "refresh": True,
        "policyPacks": "policy",
    }
    steps = preview["steps"]
    cost = next(s for s in steps if "make cost" in s.get("run", ""))
    assert 'MARKDOWN="build/cost-${STACK}.md"' in cost["run"] and cost["env"] == {"STACK": "${{ matrix.stack }}"}
    assert steps.index(cost) < steps.index(credentials), "make cost needs no AWS credentials: it runs before any exist"
    comment = steps[-1]
    assert steps.index(run) < steps.index(comment), "the cost summary joins the comment the preview wrote"
    assert comment["run"].startswith(".venv/bin/python -m scripts.pr_cost_comment")
    assert '"build/cost-${STACK}.md"' in comment["run"]
    assert comment["if"] == "${{ !cancelled() }}", "a failed preview still gets the cost summary"
    assert comment["env"]["GITHUB_TOKEN"] == "${{ github.token }}" and "secrets." not in str(comment["env"])


def test_main_deploys_dev_then_prod_behind_its_environment_one_at_a_time():
    jobs = load("main.yml")["jobs"]
    assert jobs["test"]["uses"] == "$/.github/workflows/test.yml"
    assert jobs["deploy-dev"]["needs"] == "test" and jobs["deploy-prod"]["needs"] == "deploy-dev"
    assert "environment" not in jobs["deploy-dev"], "dev: the main branch's subject"
    assert jobs["deploy-prod"]["environment"] == "prod"
    for stack in ("dev", "prod"):
        job = jobs[f"deploy-{stack}"]
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        credentials = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
        assert credentials["with"]["role-to-assume"].endswith(f":role/{role_name(stack, 'deploy')}")
        up = next(s for s in job["steps"] if s.get("with", {}).get("command") == "up")
        assert up["with"]["stack-name"] == stack and up["with"]["policyPacks"] == "policy"


def test_secrets_reach_scripts_only_through_the_environment():
    for name in NAMES:
        for step in all_steps(load(name)):
            for value in (step.get("env") or {}).values():
                assert "secrets." not in str(value) or str(value).startswith("${{ secrets.")
            if "LLM_API_KEY" in step.get("run", ""):
                assert "printf '%s' \"${LLM_API_KEY}\" | pulumi config set" in step["run"], "stdin, not argv"


def _offline_env() -> dict[str, str]:
    unreachable = "http://127.0.0.1:9"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("GH_", "GITHUB_", "ZIZMOR_"))}
    env.update(
        HTTP_PROXY=unreachable, HTTPS_PROXY=unreachable, http_proxy=unreachable, https_proxy=unreachable, NO_PROXY=""
    )
    return env


def run_offline(tool: str, *args: str) -> subprocess.CompletedProcess:
    """A tool of this virtualenv with every proxy pointed at a closed local port."""
    command = [str(BIN / tool), *args]
    return subprocess.run(command, capture_output=True, text=True, env=_offline_env(), timeout=120, check=False)  # noqa: S603 - our own tools and files


def test_zizmor_finds_nothing_offline():
    result = run_offline("zizmor", "--offline", "--quiet", str(WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_workflow_matches_the_vendored_schema_offline():
    result = run_offline(
        "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, sorted(WORKFLOWS.glob("*.yml")))
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_offline_checks_refuse_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert run_offline("check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(broken)).returncode == 1
    unpinned = tmp_path / "unpinned.yml"
    unpinned.write_text(
        "on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    permissions: {}\n"
        "    steps:\n      - uses: actions/checkout@v7\n"
    )
    result = run_offline("zizmor", "--offline", "--quiet", str(unpinned))
    assert result.returncode != 0 and "unpinned-uses" in result.stdout, result.stdout
