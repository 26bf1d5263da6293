"""Shared e2e fixtures: techniques trained twice on small data through the real engine, S3, MLflow and git."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ctcd
from workflows.settings import Settings

SMALL = {"intent-classifier": 2000, "invoice-matcher": 900}


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
    only = f"techniques={json.dumps(sorted(SMALL))}"  # the CLINC150 tests train intent-spacy on real data
    first = run_template(platform, "train-all", "-p", only)
    second = run_template(platform, "train-all", "-p", only)
    return {"first": first, "second": second}


@pytest.fixture(scope="session")
def registry(platform: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=platform.mlflow_tracking_uri)
