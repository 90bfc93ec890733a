"""The project's own promises: README and CI agree, the config reference is current."""

from __future__ import annotations

import re
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
