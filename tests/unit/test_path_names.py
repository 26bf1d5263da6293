"""Names that would become paths outside the state folder are refused by every command that takes one.

Each command runs in-process on a state folder three levels deep inside a scratch tree; after it, nothing in the
scratch tree outside the state folder may have appeared, changed or gone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from workflows.cli.app import app
from workflows.engine.state import names
from workflows.engine.state.store import RunStore

HOSTILE = ["../../../pwn-workflow", "../x", "/tmp/abs", "a/../../b", "..", "UPPER", "a..b", "-lead", "x" * 254]


def _tree(root: Path, state: Path) -> dict[str, str]:
    seen = {}
    for path in sorted(root.rglob("*")):
        if state in path.parents or path == state:
            continue
        seen[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return seen


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    state = tmp_path / "a" / "b" / "c" / "state"
    (state / "runs" / "real").mkdir(parents=True)
    (tmp_path / "a" / "x").mkdir()  # what `runs delete ../x` once removed
    (tmp_path / "a" / "x" / "keep.txt").write_text("keep")
    monkeypatch.setenv("CTCD_STATE_DIR", str(state))
    monkeypatch.setenv("CTCD_SCHEDULER", "false")
    return tmp_path, state


def _workflow(folder: Path, name: str, kind: str = "Workflow") -> str:
    spec = {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "alpine", "command": ["echo"]}}],
    }
    if kind == "CronWorkflow":
        spec = {"schedules": ["* * * * *"], "workflowSpec": spec}
    doc = {
        "apiVersion": "argoproj.io/v1alpha1" if kind != "ConfigMap" else "v1",
        "kind": kind,
        "metadata": {"name": name},
    }
    doc.update({"data": {"k": "v"}} if kind == "ConfigMap" else {"spec": spec})
    path = folder / "wf.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


COMMANDS = [
    ["runs", "get", "{n}"],
    ["runs", "logs", "{n}"],
    ["runs", "delete", "{n}"],
    ["runs", "stop", "{n}"],
    ["runs", "terminate", "{n}"],
    ["runs", "retry", "{n}"],
    ["runs", "resubmit", "{n}"],
    ["runs", "suspend", "{n}"],
    ["runs", "resume", "{n}"],
    ["template", "get", "{n}"],
    ["template", "delete", "{n}"],
    ["cron", "delete", "{n}"],
    ["cron", "suspend", "{n}"],
    ["cron", "resume", "{n}"],
    ["cron", "trigger", "{n}"],
]


@pytest.mark.parametrize("name", HOSTILE[:4])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_no_command_touches_anything_outside_the_state_folder(
    scratch: tuple[Path, Path], command: list[str], name: str
) -> None:
    tmp, state = scratch
    before = _tree(tmp, state)
    result = CliRunner().invoke(app, [part.format(n=name) for part in command])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert _tree(tmp, state) == before


@pytest.mark.parametrize("name", HOSTILE[:4])
@pytest.mark.parametrize("kind", ["Workflow", "WorkflowTemplate", "CronWorkflow", "ConfigMap"])
def test_files_naming_hostile_objects_are_refused_by_submit_apply_template_and_cron(
    scratch: tuple[Path, Path], name: str, kind: str
) -> None:
    tmp, state = scratch
    source = _workflow(tmp / "a", name, kind)
    before = _tree(tmp, state)
    verbs = {
        "Workflow": [["submit", source]],
        "WorkflowTemplate": [["template", "create", source], ["apply", source]],
        "CronWorkflow": [["cron", "create", source], ["apply", source]],
        "ConfigMap": [["apply", source]],
    }[kind]
    for verb in verbs:
        result = CliRunner().invoke(app, verb)
        assert result.exit_code != 0 and "not a valid Kubernetes name" in result.output, result.output
    assert _tree(tmp, state) == before


@pytest.mark.parametrize("name", HOSTILE)
def test_the_engine_store_refuses_every_name_that_is_not_dns1123(tmp_path: Path, name: str) -> None:
    with pytest.raises(names.InvalidName, match="is not a valid Kubernetes name"):
        RunStore(tmp_path).run_dir(name)


@pytest.mark.parametrize("name", ["train-abc12", "a.b-c", "x" * 253, "0"])
def test_kubernetes_names_pass(name: str) -> None:
    assert names.check("run", name) == name
