"""The project's own promises: README, docs and CI agree, the config reference is current, the
documents' links resolve."""

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
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
LOCAL_STACK = DOCS / "local-stack.md"
README_MAX_LINES = 200


def test_the_config_reference_is_generated_from_the_model():
    document = CONFIGURATION.read_text()
    assert with_reference(document) == document, "run `make config-reference`"
    table = document[document.index(README_START) : document.index(README_END)]
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


def test_the_docs_state_make_devs_throttling_from_the_dev_stack_file():
    """A new user hit 429s from make dev that the README never mentioned: the local stack's
    document says so now, in the dev stack file's numbers, and the banner the README quotes
    shows them."""
    from local.stack import throttle_line

    api = _config("dev")["agent-infra:api"]
    rate, burst = api["rateLimit"], api["burstLimit"]
    assert f"the dev stack's {rate:g} requests/s, burst {burst} (`api.rateLimit`," in LOCAL_STACK.read_text()
    assert throttle_line(rate, burst) in (ROOT / "README.md").read_text().splitlines()


def test_the_docs_state_the_rest_message_limit_the_api_enforces():
    from handlers.shared.models import MAX_MESSAGE_CHARS

    assert f"A message is 1 to {MAX_MESSAGE_CHARS:,} characters" in LOCAL_STACK.read_text()


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


def test_the_readme_is_read_in_five_minutes():
    """What the project is, how to start, where to read on: the rest lives in docs/."""
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: its text (code marks and link targets dropped) in lower
    case, punctuation removed, spaces turned into '-'
    (https://docs.github.com/en/get-started/writing-on-github/getting-started-with-writing-and-formatting-on-github/basic-writing-and-formatting-syntax#section-links)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _outside_code(markdown: str) -> str:
    """``markdown`` without fenced blocks and inline code, where a link or a heading is only text."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S))


def _anchors(markdown: str) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    anchors = set()
    headings = re.findall(r"^#{1,6} +(.+?) *$", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S), flags=re.M)
    for heading in headings:
        anchor = github_anchor(heading)
        anchors.add(f"{anchor}-{seen[anchor]}" if anchor in seen else anchor)
        seen[anchor] = seen.get(anchor, 0) + 1
    return anchors


def broken_links(path: Path) -> list[str]:
    """The relative links of a Markdown file whose file is missing, or whose ``#anchor`` names no
    heading of the Markdown file it points into."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _outside_code(path.read_text())):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text()):
            broken.append(f"{target}: no such heading in {linked.name}")
    return broken


def test_every_relative_link_of_the_readme_and_docs_resolves():
    documents = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    assert len(documents) > 1
    broken = {str(path.relative_to(ROOT)): broken_links(path) for path in documents}
    assert {path: links for path, links in broken.items() if links} == {}


def test_every_document_in_docs_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert [path.name for path in sorted(DOCS.glob("*.md")) if f"(docs/{path.name}" not in readme] == []


def test_github_anchors_and_broken_links_are_found(tmp_path):
    assert github_anchor("The pipeline's roles: `bootstrap/`") == "the-pipelines-roles-bootstrap"
    assert github_anchor("DAX: not deployed, by measurement") == "dax-not-deployed-by-measurement"
    assert github_anchor("[`make demo`](x.md) and tool_runs") == "make-demo-and-tool_runs"
    (tmp_path / "other.md").write_text("# Other\n\n## Twice\n\n## Twice\n\n```sh\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](other.md#twice-1) [ok](#page) [web](https://example.com/x#y) `[code](nowhere.md)`\n"
        "[gone](missing.md) [bad anchor](other.md#thrice) [not a heading](other.md#not-a-heading) [self](#nope)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#thrice: no such heading in other.md",
        "other.md#not-a-heading: no such heading in other.md",
        "#nope: no such heading in page.md",
    ]
