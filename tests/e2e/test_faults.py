"""Faults against the real services: S3 lost in the middle of training, MLflow down at registration.

Each fault interrupts a real ``train`` run of the session platform at a known point (the train step has begun
fitting; the gate has decided), stops the service, lets the retryStrategy run its course, brings the service back
and checks what was left behind.  A plain re-run must then succeed and converge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ctcd
from tests.e2e.conftest import run_template
from workflows.engine.state.store import RunStore
from workflows.local import runs as engine_runs
from workflows.local import stack
from workflows.settings import Settings

TECHNIQUE = "intent-classifier"
Trigger = Callable[[RunStore, str, dict[str, Any]], bool]


def _fitting(store: RunStore, name: str, node: dict[str, Any]) -> bool:
    """The train step is past its service checks and fitting the model."""
    log = store.log_path(name, node["id"])
    return node["templateName"] == "train" and log.exists() and "fitting " in log.read_text(errors="replace")


def _decided(store: RunStore, name: str, node: dict[str, Any]) -> bool:
    """The gate has started: registration comes next."""
    return node["templateName"] == "decide"


def _interrupted(platform: Settings, service: str, trigger: Trigger) -> dict[str, Any]:
    """Submit a train run, stop ``service`` once ``trigger`` holds for a node, wait for the end, restart it."""
    submitted = ctcd(
        platform, "submit", "--from", "workflowtemplate/train", "-p", f"technique={TECHNIQUE}", "-o", "name"
    )
    assert submitted.returncode == 0, submitted.stderr
    name = submitted.stdout.strip().splitlines()[-1]
    store, deadline = RunStore(platform.state_dir), time.monotonic() + 300
    while not any(trigger(store, name, n) for n in store.load(name)["status"].get("nodes", {}).values()):
        assert time.monotonic() < deadline and store.load(name)["status"].get("phase") != "Failed", name
        time.sleep(0.1)
    try:
        assert stack.down(platform, only=(service,)) == [service]
        return engine_runs.wait(platform, name, timeout=600)
    finally:
        stack.up(platform)


def _pods(run: dict[str, Any], template: str) -> list[dict[str, Any]]:
    return [n for n in run["status"]["nodes"].values() if n["templateName"] == template and n["type"] == "Pod"]


def _output(node: dict[str, Any], name: str) -> str:
    return next(p["value"] for p in node["outputs"]["parameters"] if p["name"] == name)


@pytest.fixture(scope="module")
def faults(runs: dict[str, Any], platform: Settings, registry: MlflowClient) -> dict[str, Any]:
    before = len(registry.search_model_versions(f"name = '{TECHNIQUE}'"))
    s3_lost = _interrupted(platform, "s3", _fitting)
    mlflow_down = _interrupted(platform, "mlflow", _decided)
    after_faults = len(registry.search_model_versions(f"name = '{TECHNIQUE}'"))
    rerun = run_template(platform, "train", "-p", f"technique={TECHNIQUE}")
    return {"before": before, "after_faults": after_faults, "s3": s3_lost, "mlflow": mlflow_down, "rerun": rerun}


def test_s3_lost_mid_training_is_retried_then_fails_cleanly(
    faults: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    run = faults["s3"]
    assert run["status"]["phase"] == "Failed"
    attempts = _pods(run, "train")
    assert len(attempts) == 3 and all(a["outputs"]["exitCode"] == "75" for a in attempts)  # retried, then final
    name = run["metadata"]["name"]
    first = ctcd(platform, "runs", "logs", name, "--node", "train(0)").stdout
    assert "fitting " in first and "lost a service mid-step" in first and "CTCD_S3_ENDPOINT_URL=" in first
    later = ctcd(platform, "runs", "logs", name, "--node", "train(2)").stdout
    assert "CTCD_S3_ENDPOINT_URL=" in later and "not reachable" in later and "ctcd up" in later
    assert "Traceback" not in ctcd(platform, "runs", "logs", name).stdout
    assert not _pods(run, "register")
    experiment = registry.get_experiment_by_name(TECHNIQUE)
    attempts_runs = registry.search_runs([experiment.experiment_id], f"tags.`ctcd.workflow_run` = '{name}'")
    assert attempts_runs and {r.info.status for r in attempts_runs} == {"FAILED"}  # none left RUNNING


def test_mlflow_down_at_registration_fails_clearly_and_registers_nothing(
    faults: dict[str, Any], platform: Settings, registry: MlflowClient
) -> None:
    run = faults["mlflow"]
    assert run["status"]["phase"] == "Failed"
    attempts = _pods(run, "register")
    assert len(attempts) == 3 and {a["outputs"]["exitCode"] for a in attempts} == {"75"}
    logs = ctcd(platform, "runs", "logs", run["metadata"]["name"], "--node", "register(2)").stdout
    assert "MLFLOW_TRACKING_URI=" in logs and "not reachable" in logs and "Traceback" not in logs
    (trained,) = [n for n in _pods(run, "train") if n["phase"] == "Succeeded"]
    run_id = _output(trained, "run-id")
    assert registry.search_model_versions(f"name = '{TECHNIQUE}' and run_id = '{run_id}'") == []
    assert faults["after_faults"] == faults["before"]  # neither fault left a version behind


def test_a_rerun_after_the_services_return_converges(faults: dict[str, Any], registry: MlflowClient) -> None:
    rerun = faults["rerun"]
    assert rerun["status"]["phase"] == "Succeeded"
    versions = registry.search_model_versions(f"name = '{TECHNIQUE}'")
    assert len(versions) == faults["before"] + 1
    newest = max(versions, key=lambda v: int(v.version))
    assert newest.tags["ctcd.workflow_run"] == rerun["metadata"]["name"]
    champion = registry.get_model_version_by_alias(TECHNIQUE, "champion").version
    assert (champion == newest.version) is (newest.tags["ctcd.gate.decision"] == "better")  # the gate was applied
    (trained,) = _pods(rerun, "train")
    assert newest.run_id == _output(trained, "run-id")
