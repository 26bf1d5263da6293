"""Shared e2e fixtures: techniques trained twice on small data through the real engine, S3, MLflow and git."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import settings_env
from workflows.settings import Settings

CTCD = [sys.executable, "-m", "workflows.cli"]
SMALL = {"intent-classifier": 2000, "invoice-matcher": 900}


def ctcd(settings: Settings, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CTCD, *args], env=settings_env(settings), capture_output=True, text=True, timeout=timeout)


def run_template(settings: Settings, template: str, *parameters: str) -> dict[str, Any]:
    result = ctcd(settings, "submit", "--from", f"workflowtemplate/{template}", *parameters, "--wait", "-o", "name")
    assert result.returncode == 0, result.stdout + result.stderr
    name = result.stdout.strip().splitlines()[-1]
    return dict(json.loads(ctcd(settings, "runs", "get", name, "-o", "json").stdout))


@pytest.fixture(scope="session")
def runs(platform: Settings) -> dict[str, Any]:
    """Seed small datasets, then run train-all twice (the second sees unchanged data and code, a new champion)."""
    for technique, rows in SMALL.items():
        seeded = ctcd(platform, "data", "seed", technique, "--rows", str(rows))
        assert seeded.returncode == 0, seeded.stderr
    first = run_template(platform, "train-all")
    second = run_template(platform, "train-all")
    return {"first": first, "second": second}


@pytest.fixture(scope="session")
def registry(platform: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=platform.mlflow_tracking_uri)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the replayed history late (it rewrites production's pins), then the fault tests (they stop services),
    the registry-bridge tests (they move aliases) and the model-based loop (it moves everything)."""
    order = (
        "tests/e2e/test_replay.py",
        "tests/e2e/test_faults.py",
        "tests/e2e/test_recovery.py",
        "tests/e2e/test_bridge.py",
        "tests/e2e/test_loop_model.py",
    )
    items.sort(key=lambda item: next((i + 1 for i, m in enumerate(order) if item.nodeid.startswith(m)), 0))
