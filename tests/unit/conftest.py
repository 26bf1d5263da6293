"""Unit tests see no ambient ctcd or MLflow settings from the developer's shell or other tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CTCD_") or key in ("MLFLOW_TRACKING_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(autouse=True)
def _fresh_settings() -> None:
    """Each test reads the settings from its own environment (the CLI caches them per process)."""
    from workflows.settings import get_settings

    get_settings.cache_clear()
