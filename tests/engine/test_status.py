"""Status fields Argo fills: progress (also as a step reports it), estimatedDuration, the template labels."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.engine.test_examples import EXAMPLES, node, run
from workflows.engine import Engine, from_file, from_reference, prepare


@pytest.fixture
def engine(fresh_engine: Engine) -> Engine:
    """Fresh step processes only: what is tested here is decided by the node kinds, not by how a step starts."""
    return fresh_engine


def test_progress_counts_pods_and_defaults_to_done_when_they_succeed(engine: Engine) -> None:
    wf = run(engine, "steps")
    pods = sum(n["type"] == "Pod" for n in wf["status"]["nodes"].values())
    assert wf["status"]["progress"] == f"{pods}/{pods}"
    assert node(wf, wf["metadata"]["name"])["progress"] == f"{pods}/{pods}"


def test_a_step_reports_its_own_progress_through_its_progress_file(engine: Engine) -> None:
    wf = prepare(engine.library, from_file(EXAMPLES / "progress.yaml"), {})
    thread = threading.Thread(target=engine.run, args=(wf,), daemon=True)
    thread.start()
    seen: set[str] = set()
    while thread.is_alive():
        root = wf["status"].get("nodes", {}).get(wf["metadata"]["name"], {})
        step = next((n for n in wf["status"].get("nodes", {}).values() if n["displayName"] == "progress"), {})
        if root.get("progress") and root.get("progress") == step.get("progress"):
            seen.add(root["progress"])
        time.sleep(0.1)
    assert "50/100" in seen  # what the step wrote, on its node and summed on the run's root
    assert wf["status"]["phase"] == "Succeeded" and wf["status"]["progress"] == "100/100"
    assert node(wf, wf["metadata"]["name"])["progress"] == "100/100"


def test_estimated_duration_comes_from_the_last_success_of_the_same_template(engine: Engine) -> None:
    def from_library() -> dict[str, Any]:
        return engine.run(prepare(engine.library, from_reference(engine.library, "workflowtemplate/hooked-steps"), {}))

    first = from_library()
    assert first["status"]["phase"] == "Succeeded" and "estimatedDuration" not in first["status"]
    second = from_library()
    assert isinstance(second["status"]["estimatedDuration"], int)
    work = next(n for n in second["status"]["nodes"].values() if n["displayName"] == "work")
    assert "estimatedDuration" in work
    alone = run(engine, "steps")  # a run from a file of its own has nothing to estimate from
    assert "estimatedDuration" not in alone["status"]
