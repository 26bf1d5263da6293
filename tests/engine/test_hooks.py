"""Lifecycle hooks and exit handlers as Argo runs them: when each fires, its node's phase and flags, what is waited for.

The cases are those Argo's own hook tests check (workflow and step level, DAG dependencies, retries, waiting for a
fired hook, a mutex inside a hook, the exit hook past the workflow's deadline), written with its argosay image.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.engine.test_examples import EXAMPLES, run
from workflows.engine import Engine, from_file, from_reference, prepare, signals


@pytest.fixture
def engine(fresh_engine: Engine) -> Engine:
    """Fresh step processes only: what is tested here is decided by the node kinds, not by how a step starts."""
    return fresh_engine


def by_name(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Nodes by their name without the run's name in front (``.hooks.running``, ``[0].work``…)."""
    name = wf["metadata"]["name"]
    return {n["name"].removeprefix(name): n for n in wf["status"]["nodes"].values()}


def hooks_of(wf: dict[str, Any]) -> dict[str, str]:
    """Every hook node's name and phase."""
    return {k: n["phase"] for k, n in by_name(wf).items() if ".hooks." in k or k.endswith(".onExit")}


@pytest.mark.parametrize(("code", "phase", "fired"), [("0", "Succeeded", "succeeded"), ("1", "Failed", "failed")])
def test_workflow_level_hooks_see_running_then_the_outcome(engine: Engine, code: str, phase: str, fired: str) -> None:
    wf = run(engine, "hooks-wf-level", code=code)
    assert wf["status"]["phase"] == phase
    assert hooks_of(wf) == {".hooks.running": "Succeeded", f".hooks.{fired}": "Succeeded"}
    nodes, root = by_name(wf), wf["status"]["nodes"]
    assert all(nodes[h]["nodeFlag"] == {"hooked": True} for h in hooks_of(wf))
    root_children = root[nodes[""]["id"]]["children"]
    assert {nodes[".hooks.running"]["id"], nodes[f".hooks.{fired}"]["id"]} <= set(root_children)


@pytest.mark.parametrize(("code", "phase", "fired"), [("0", "Succeeded", "succeeded"), ("1", "Failed", "failed")])
def test_step_level_hooks_see_the_step_s_status(engine: Engine, code: str, phase: str, fired: str) -> None:
    wf = run(engine, "hooks-step-level", code=code)
    assert wf["status"]["phase"] == phase
    assert hooks_of(wf) == {"[0].work.hooks.running": "Succeeded", f"[0].work.hooks.{fired}": "Succeeded"}
    work = by_name(wf)["[0].work"]
    assert {by_name(wf)[h]["id"] for h in hooks_of(wf)} <= set(work["children"])


def test_an_omitted_task_fires_no_hook_and_progress_counts_pods(engine: Engine) -> None:
    wf = run(engine, "hooks-dag-dep")
    assert wf["status"]["phase"] == "Failed"
    assert hooks_of(wf) == {".a.hooks.running": "Succeeded"}
    assert by_name(wf)[".b"]["phase"] == "Omitted"
    assert wf["status"]["progress"] == "1/2"


def test_hooks_around_a_retried_entrypoint_carry_their_own_flags(engine: Engine) -> None:
    wf = run(engine, "hooks-retry-wf")
    nodes = by_name(wf)
    assert wf["status"]["phase"] == "Failed" and wf["status"]["progress"] == "2/4"
    assert nodes[""]["type"] == "Retry" and "nodeFlag" not in nodes[""]
    assert [nodes[f"({i})"]["nodeFlag"] for i in (0, 1)] == [{"retried": True}, {"retried": True}]
    assert nodes[".hooks.running"]["nodeFlag"] == nodes[".hooks.failed"]["nodeFlag"] == {"hooked": True}
    assert hooks_of(wf) == {".hooks.running": "Succeeded", ".hooks.failed": "Succeeded"}


def test_step_hooks_on_a_retried_step_fire_once_under_the_retry_node(engine: Engine) -> None:
    wf = run(engine, "hooks-retry-step")
    nodes = by_name(wf)
    assert wf["status"]["phase"] == "Succeeded"
    assert hooks_of(wf) == {"[0].build.hooks.started": "Succeeded", "[0].build.hooks.success": "Succeeded"}
    retry = nodes["[0].build"]
    assert retry["type"] == "Retry" and retry["phase"] == "Succeeded"
    assert nodes["[0].build.hooks.started"]["id"] in retry["children"]
    assert nodes["[0].build(2)"]["phase"] == "Succeeded" and "hooked" not in nodes["[0].build(2)"]["nodeFlag"]
    assert nodes["[1].show"]["outputs"]["result"] == "built"  # the next step reads the retried step's outputs


def test_the_exit_hook_runs_past_the_workflow_deadline(engine: Engine) -> None:
    wf = run(engine, "hooks-deadline-exit")
    nodes = by_name(wf)
    assert wf["status"]["phase"] == "Failed"
    assert nodes["[0].nap"]["message"] == "Step exceeded its deadline"
    assert all(n["phase"] != "Running" for n in nodes.values())
    assert nodes[".onExit"]["phase"] == "Succeeded" and nodes[".onExit"]["nodeFlag"] == {"hooked": True}


def test_the_run_waits_for_the_hooks_it_fired_even_under_a_mutex(engine: Engine) -> None:
    wf = run(engine, "hooks-wait-sync")
    assert wf["status"]["phase"] == "Succeeded" and wf["status"]["progress"] == "4/4"
    assert set(hooks_of(wf).values()) == {"Succeeded"} and len(hooks_of(wf)) == 3
    slow = by_name(wf)[".hooks.running"]
    assert slow["finishedAt"] <= wf["status"]["finishedAt"]


def test_hooks_work_in_a_run_submitted_from_a_workflow_template(engine: Engine) -> None:
    wf = engine.run(prepare(engine.library, from_reference(engine.library, "workflowtemplate/hooked-steps"), {}))
    assert wf["status"]["phase"] == "Succeeded"
    assert hooks_of(wf) == {"[0].work.hooks.succeeded": "Succeeded", "[0].work.onExit": "Succeeded"}
    assert wf["metadata"]["labels"]["workflows.argoproj.io/workflow-template"] == "hooked-steps"


def test_terminate_while_the_exit_handler_runs_ends_the_run(engine: Engine) -> None:
    wf = prepare(engine.library, from_file(EXAMPLES / "exit-terminate.yaml"), {})
    thread = threading.Thread(target=engine.run, args=(wf,), daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while by_name(wf).get(".onExit", {}).get("phase") != "Running":
        assert time.monotonic() < end, "the exit handler never started"
        time.sleep(0.05)
    signals.request(engine.store.run_dir(wf["metadata"]["name"]), "terminate")
    thread.join(timeout=15)
    assert not thread.is_alive(), "the run went on after terminate"
    assert wf["status"]["phase"] == "Failed" and wf["status"]["message"] == "Stopped with strategy 'Terminate'"
    assert by_name(wf)[".onExit"]["message"] == "workflow shutdown with strategy:  Terminate"
    assert all(n["phase"] not in ("Running", "Pending") for n in wf["status"]["nodes"].values())


@pytest.mark.parametrize("strategy", ["stop", "terminate"])
def test_a_stop_runs_a_step_s_own_exit_handler_and_a_terminate_does_not(
    engine: Engine, tmp_path: Path, strategy: str
) -> None:
    marker = tmp_path / "cleaned"
    wf = prepare(engine.library, from_file(EXAMPLES / "stop-step-exit.yaml"), {"marker": str(marker)})
    thread = threading.Thread(target=engine.run, args=(wf,), daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while by_name(wf).get("[0].long", {}).get("startedAt") is None or not by_name(wf)["[0].long"].get("hostNodeName"):
        assert time.monotonic() < end, "the step never started"
        time.sleep(0.05)
    signals.request(engine.store.run_dir(wf["metadata"]["name"]), strategy)
    thread.join(timeout=20)
    assert not thread.is_alive() and wf["status"]["phase"] == "Failed"
    assert marker.exists() == (strategy == "stop")
    if strategy == "stop":
        assert by_name(wf)["[0].long.onExit"]["phase"] == "Succeeded"
        assert by_name(wf)["[0].long.onExit"]["nodeFlag"] == {"hooked": True}
    assert all(n["phase"] not in ("Running", "Pending") for n in wf["status"]["nodes"].values())
