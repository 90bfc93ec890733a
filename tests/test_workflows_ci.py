"""The GitHub workflows: what runs on a pull request and on main, and the hardening rules
(pinned actions, least permissions, no untrusted input in scripts, secrets only where Pulumi
runs and write tokens only in the deploy environments, fully qualified stack names). `make
test` also runs zizmor (auditor persona) and the workflow JSON schema over them; here both are
run once more with every network address unreachable, to hold that they need none. Every
test reads the real workflow files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bootstrap.provider_calls import PREVIEW_SKIPS
from bootstrap.roles import SESSION_SECONDS, role_name, subject

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
    "pulumi/auth-actions": ("141415910c3beb54e03b48e9057c204c97b956f2", "v2.1.0"),
}
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
ORG = "${{ vars.PULUMI_ORG }}"
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
SECRET = re.compile(r"\bsecrets\.")


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True


def all_steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def qualified(stack: str) -> str:
    """How a workflow names a stack to Pulumi: <org>/<project>/<stack>."""
    return f"{ORG}/{PROJECT}/{stack}"


def reads_secrets(value: object) -> bool:
    return bool(SECRET.search(yaml.safe_dump(value)))


def pulumi_runs(step: dict) -> bool:
    """A pulumi/actions step with a command, or a script of Pulumi CLI commands that runs
    nothing of the checkout (no make, Python or package manager)."""
    if step.get("uses", "").startswith("pulumi/actions@"):
        return "command" in step.get("with", {})
    run = step.get("run", "")
    return bool(re.search(r"\bpulumi (config|preview|up)\b", run)) and not re.search(
        r"\b(make|python|pip|npm)\b|\.venv", run
    )


def conjuncts(condition: str) -> list[str]:
    """The top-level `&&` terms of a job's `if:` (with or without ${{ }})."""
    inner = condition.strip().removeprefix("${{").removesuffix("}}")
    return [term.strip() for term in inner.split("&&")]


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
    steps = preview["steps"]
    credentials = next(s for s in steps if "configure-aws-credentials" in s.get("uses", ""))
    assert credentials["with"]["role-to-assume"].endswith(":role/agent-infra-${{ matrix.stack }}-preview")
    run = next(s for s in steps if s.get("with", {}).get("command") == "preview")
    assert run["with"] | {"pulumi-version": None} == {
        "command": "preview",
        "stack-name": qualified("${{ matrix.stack }}"),
        "pulumi-version": None,
        "comment-on-pr": True,
        "edit-pr-comment": True,
        "diff": True,
        "refresh": True,
        "exclude": run["with"]["exclude"],  # test_the_preview_leaves_out_exactly_...
        "policyPacks": "policy",
    }
    assert steps[-1] is run, "nothing runs after the preview: the job's Pulumi token is in every later step"
    assert not any("make cost" in s.get("run", "") for s in steps), "make cost runs in a job without tokens"


def test_the_preview_token_is_minted_read_only_by_oidc_and_only_pulumi_runs_after_it():
    steps = load("pull-request.yml")["jobs"]["preview"]["steps"]
    (auth,) = [s for s in steps if s.get("uses", "").startswith("pulumi/auth-actions@")]
    assert auth["with"] == {
        "organization": ORG,
        "requested-token-type": "urn:pulumi:token-type:access_token:team",
        "scope": "team:${{ vars.PULUMI_PREVIEW_TEAM }}",
    }
    before, after = steps[: steps.index(auth)], steps[steps.index(auth) + 1 :]
    assert any(s.get("run") == "make venv" for s in before), "the pull request's make venv runs before any token"
    assert after and all(pulumi_runs(s) for s in after), [s.get("name") for s in after if not pulumi_runs(s)]
    assert "PULUMI_ACCESS_TOKEN" not in yaml.safe_dump(steps), "the token comes from the exchange, not a secret"


def test_an_openai_stack_previews_with_a_stand_in_key_never_the_real_one():
    steps = load("pull-request.yml")["jobs"]["preview"]["steps"]
    (stand_in,) = [s for s in steps if "agent-infra:llm.apiKey" in s.get("run", "")]
    assert 'pulumi config get --stack "${STACK}" --path \'agent-infra:llm.provider\')" = openai' in stand_in["run"]
    assert "printf '%s' 'pull-request-stand-in' | pulumi config set" in stand_in["run"]
    assert stand_in["env"] == {"STACK": qualified("${{ matrix.stack }}")}


def test_the_cost_of_each_stack_joins_its_preview_comment_from_a_job_without_tokens():
    jobs = load("pull-request.yml")["jobs"]
    cost = jobs["cost"]
    assert cost["needs"] == "preview" and cost["strategy"]["matrix"] == jobs["preview"]["strategy"]["matrix"]
    assert cost["permissions"] == {"contents": "read", "pull-requests": "write"}, "no id-token: no OIDC exchange"
    terms = conjuncts(cost["if"])
    assert "!cancelled()" in terms and FORK_GUARD in terms
    assert "(needs.preview.result == 'success' || needs.preview.result == 'failure')" in terms
    assert "${{ matrix.stack }}" in cost["concurrency"]["group"]
    steps = cost["steps"]
    assert not any(s.get("uses", "").startswith(("pulumi/", "aws-actions/")) for s in steps)
    assert not reads_secrets(cost)
    make_cost = next(s for s in steps if "make cost" in s.get("run", ""))
    assert 'MARKDOWN="build/cost-${STACK}.md"' in make_cost["run"] and make_cost["env"] == {
        "STACK": "${{ matrix.stack }}"
    }
    comment = steps[-1]
    assert comment["run"] == (
        '.venv/bin/python -m scripts.pr_cost_comment --stack "${PULUMI_STACK}" --pr "${PR_NUMBER}" "build/cost-${STACK}.md"'
    )
    assert comment["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert comment["env"]["STACK"] == "${{ matrix.stack }}"


def test_the_cost_step_names_the_stack_the_preview_comment_is_headed_with():
    """pr_cost_comment finds the comment by pulumi/actions' heading, built from the preview's
    stack-name; both expressions, rendered for one organization and stack, must agree."""
    from scripts.pr_cost_comment import preview_heading

    jobs = load("pull-request.yml")["jobs"]
    preview = next(s for s in jobs["preview"]["steps"] if s.get("with", {}).get("command") == "preview")
    cost_stack = jobs["cost"]["steps"][-1]["env"]["PULUMI_STACK"]

    def render(expression: str) -> str:
        return expression.replace(ORG, "acme").replace("${{ matrix.stack }}", "prod")

    assert render(preview["with"]["stack-name"]) == render(cost_stack) == f"acme/{PROJECT}/prod"
    assert preview_heading(render(cost_stack)) == f"#### :tropical_drink: `preview` on {PROJECT}/acme/{PROJECT}/prod"


def test_fork_pull_requests_run_the_tests_and_skip_the_preview_and_cost_jobs():
    jobs = load("pull-request.yml")["jobs"]
    assert "if" not in jobs["test"], "a fork's tests need no secret: they run"
    assert jobs["preview"]["if"] == FORK_GUARD
    assert FORK_GUARD in conjuncts(jobs["cost"]["if"])


def test_main_deploys_dev_then_prod_each_in_its_environment_one_at_a_time():
    jobs = load("main.yml")["jobs"]
    assert jobs["test"]["uses"] == "$/.github/workflows/test.yml"
    assert jobs["deploy-dev"]["needs"] == "test" and jobs["deploy-prod"]["needs"] == "deploy-dev"
    for stack in ("dev", "prod"):
        job = jobs[f"deploy-{stack}"]
        assert job["environment"] == stack
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        credentials = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
        assert credentials["with"]["role-to-assume"].endswith(f":role/{role_name(stack, 'deploy')}")
        up = next(s for s in job["steps"] if s.get("with", {}).get("command") == "up")
        assert up["with"]["stack-name"] == qualified(stack) and up["with"]["policyPacks"] == "policy"
        assert job["steps"][-1] is up, "nothing runs after pulumi up"
        # The deploy role trusts this job (bootstrap/Pulumi.example.yaml names its environment)
        # and its session lasts as long as the role allows.
        example = yaml.safe_load((ROOT / "bootstrap" / "Pulumi.example.yaml").read_text())["config"]
        environment = example["agent-infra-bootstrap:stacks"][stack]["environment"]
        assert subject("o/r", environment=environment) == subject("o/r", environment=job["environment"])
        assert int(credentials["with"]["role-duration-seconds"]) == SESSION_SECONDS["deploy"]


def _urn_glob(pattern: str) -> re.Pattern:
    """A URN glob as ``--exclude`` takes it: ``**`` any characters, ``*`` any but ``:``."""
    parts = re.split(r"(\*\*|\*)", pattern)
    return re.compile("".join(".*" if p == "**" else "[^:]*" if p == "*" else re.escape(p) for p in parts))


def test_the_preview_leaves_out_exactly_the_types_the_preview_role_may_not_refresh():
    (preview,) = [
        s for s in load("pull-request.yml")["jobs"]["preview"]["steps"] if s.get("with", {}).get("command") == "preview"
    ]
    assert preview["with"]["refresh"] is True
    patterns = [_urn_glob(line.strip()) for line in preview["with"]["exclude"].splitlines() if line.strip()]

    def urn(typ: str) -> str:
        return f"urn:pulumi:dev::{PROJECT}::agent-infra:compute:AgentCompute${typ}::us-east-1-llm-key"

    for typ in PREVIEW_SKIPS:
        assert any(p.fullmatch(urn(typ)) for p in patterns), f"{typ} is refreshed by the pull request's preview"
    for typ in ("aws:secretsmanager/secret:Secret", "aws:lambda/function:Function", "aws:kms/key:Key"):
        assert not any(p.fullmatch(urn(typ)) for p in patterns), f"{typ} is left out of the preview"


@pytest.mark.parametrize("name", NAMES)
def test_no_job_holds_a_secret_and_a_step_holds_one_only_to_run_pulumi(name):
    for job_name, job in load(name)["jobs"].items():
        assert not reads_secrets(job.get("env", {})), f"{job_name}: a secret in the job's env reaches every step"
        assert "secrets" not in job, f"{job_name}: no secrets passed to a reusable workflow"
        for step in job.get("steps", []):
            if reads_secrets(step):
                assert pulumi_runs(step), f"{job_name}: {step.get('name') or step.get('uses')} holds a secret"
                assert not reads_secrets(step.get("with", {})), "secrets reach steps through env only"


def test_write_tokens_and_the_llm_key_only_in_the_deploy_environments():
    for name in NAMES:
        for job_name, job in load(name)["jobs"].items():
            if reads_secrets(job):
                assert name == "main.yml" and job.get("environment") in {"dev", "prod"}, f"{name}: {job_name}"
                up = next(s for s in job["steps"] if s.get("with", {}).get("command") == "up")
                assert up["with"]["stack-name"] == qualified(job["environment"]), "the environment's own stack"


def test_pull_request_jobs_get_no_secret_at_all():
    """Neither the Pulumi token nor the LLM key: not the preview, not the cost job, not the
    tests the pull request calls."""
    for name in ("pull-request.yml", "test.yml"):
        workflow = load(name)
        assert not reads_secrets(workflow), name
        assert "LLM_API_KEY" not in yaml.safe_dump(workflow), name


@pytest.mark.parametrize("name", NAMES)
def test_every_stack_is_named_fully_qualified(name):
    for job in load(name)["jobs"].values():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("pulumi/actions@") and "command" in step["with"]:
                assert step["with"]["stack-name"].startswith(qualified("")), step["with"]["stack-name"]
            for variable in re.findall(r'--stack "\$\{(\w+)\}"', step.get("run", "")):
                assert step["env"][variable].startswith(qualified("")), f"{step.get('name')}: {variable}"


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


def test_zizmor_as_auditor_finds_nothing_offline():
    assert "zizmor --offline --persona auditor" in (ROOT / "Makefile").read_text(), "make workflows audits as auditor"
    result = run_offline("zizmor", "--offline", "--persona", "auditor", "--quiet", str(WORKFLOWS))
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
    # A secret outside a dedicated environment: the regular persona lets it pass, the auditor does not.
    job_secret = tmp_path / "job_secret.yml"
    job_secret.write_text(
        "on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    permissions: {}\n"
        "    env:\n      TOKEN: ${{ secrets.TOKEN }}\n    steps:\n      - run: echo ok\n"
    )
    assert run_offline("zizmor", "--offline", "--quiet", str(job_secret)).returncode == 0
    result = run_offline("zizmor", "--offline", "--persona", "auditor", "--quiet", str(job_secret))
    assert result.returncode != 0 and "secrets-outside-env" in result.stdout, result.stdout
