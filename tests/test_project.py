"""The project's own promises: README and CI agree, the config reference is current."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from components.config import NAMESPACE, README_END, README_START, StackConfig, with_reference

ROOT = Path(__file__).resolve().parent.parent


def test_readme_config_reference_is_generated_from_the_model():
    readme = (ROOT / "README.md").read_text()
    assert with_reference(readme) == readme, "run `make config-reference`"
    table = readme[readme.index(README_START) : readme.index(README_END)]
    for field in StackConfig.model_fields.values():
        assert f"| `{field.alias}` |" in table


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    test_command = next(
        line.split("#")[0].strip() for block in blocks for line in block.splitlines() if "test" in line.split("#")[0]
    )
    assert test_command == "make test"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in [line.strip() for line in ci]


def test_pulumi_project_names_the_makefiles_virtualenv():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "agent-infra"
    assert project["runtime"]["name"] == "python"
    venv = project["runtime"]["options"]["virtualenv"]
    assert re.search(rf"^VENV := {re.escape(venv)}$", (ROOT / "Makefile").read_text(), flags=re.M)


def test_every_direct_requirement_is_pinned_and_constrained():
    constraints = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for name in ("requirements.txt", "requirements-dev.txt", "policy/requirements.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "-r")):
                continue
            package, _, version = line.partition("==")
            assert version, f"{name}: {line} is not pinned"
            base = package.split("[")[0].lower().replace("_", "-")
            assert constraints.get(base) == version, f"constraints.txt disagrees on {base}"


def _pulumi_config_type(annotation) -> dict:
    """The Pulumi project-file schema (``type``, ``items``) of a model field's annotation."""
    origin = get_origin(annotation)
    if origin is list:
        return {"type": "array", "items": _pulumi_config_type(get_args(annotation)[0])}
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return {"type": "object"}
    scalars = {str: "string", bool: "boolean", int: "integer"}
    assert annotation in scalars, f"no Pulumi config type for {annotation!r}"
    return {"type": scalars[annotation]}


def test_pulumi_yaml_declares_exactly_the_models_required_keys_with_their_types():
    declared = {
        key: schema
        for key, schema in yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"].items()
        if key.startswith(f"{NAMESPACE}:")
    }
    required = {
        f"{NAMESPACE}:{field.alias}": field for field in StackConfig.model_fields.values() if field.is_required()
    }
    assert set(declared) == set(required), "Pulumi.yaml's config declares the model's required keys, no others"
    for key, field in required.items():
        schema = declared[key]
        # A default (or value) would make the CLI fill the key in instead of asking for it.
        assert "default" not in schema and "value" not in schema, key
        assert {k: v for k, v in schema.items() if k in ("type", "items")} == _pulumi_config_type(field.annotation), key
        assert schema["description"] == field.description, key


def test_the_type_mapping_refuses_a_type_pulumi_cannot_declare():
    with pytest.raises(AssertionError, match="no Pulumi config type"):
        _pulumi_config_type(float)
    assert _pulumi_config_type(list[dict[str, str]]) == {"type": "array", "items": {"type": "object"}}


def _config(stack: str) -> dict:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def test_the_readme_states_make_devs_throttling_from_the_dev_stack_file():
    """A new user hit 429s from make dev that the README never mentioned: it says so now, in the
    dev stack file's numbers, and the banner it quotes shows them."""
    from local.stack import throttle_line

    api = _config("dev")["agent-infra:api"]
    readme = (ROOT / "README.md").read_text()
    rate, burst = api["rateLimit"], api["burstLimit"]
    assert f"the dev stack's {rate:g} requests/s, burst {burst} (`api.rateLimit`," in readme
    assert throttle_line(rate, burst) in readme.splitlines()


def test_the_readme_states_the_rest_message_limit_the_api_enforces():
    from handlers.shared.models import MAX_MESSAGE_CHARS

    assert f"A message is 1 to {MAX_MESSAGE_CHARS:,} characters" in (ROOT / "README.md").read_text()


def test_the_install_size_quoted_by_readme_and_makefile_is_about_right():
    """'about N packages and M MB' in the README and make's message, against this virtualenv."""
    import importlib.metadata
    import sys

    packages = len({d.metadata["Name"].lower() for d in importlib.metadata.distributions()})
    megabytes = sum(f.stat().st_size for f in Path(sys.prefix).rglob("*") if f.is_file() and not f.is_symlink()) / 1e6
    for name in ("README.md", "Makefile"):
        quoted = re.search(r"about (\d+) packages and (\d+) MB", (ROOT / name).read_text())
        assert quoted, name
        assert abs(int(quoted[1]) - packages) <= 0.15 * packages, (name, packages)
        assert abs(int(quoted[2]) - megabytes) <= 0.25 * megabytes, (name, round(megabytes))


def test_make_dev_passes_the_stack_on():
    dry_run = subprocess.run(["make", "-n", "dev", "STACK=prod"], cwd=ROOT, capture_output=True, text=True, check=True)  # noqa: S607 - make from PATH
    assert "-m local.stack --port 8080 --stack prod" in dry_run.stdout


def test_a_python_that_does_not_run_is_not_the_one_suggested():
    """`PYTHON=python3.13 make test` under pyenv without 3.13: the message suggested PYTHON=python3.13."""
    result = subprocess.run(
        ["make", "-n", "venv", "PYTHON=python3.99"],  # noqa: S607 - make from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "PYTHON=python3.99 does not run here" in result.stderr
    advice = result.stderr.split("does not run here", 1)[1]
    for interpreter in set(re.findall(r"python3(?:\.\d+)?", advice)):  # each one it suggests runs
        subprocess.run([interpreter, "-c", ""], check=True)  # noqa: S603 - an interpreter make named
