"""A newcomer's first hour: ports remembered by the state folder, and a reset that keeps the venv."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from workflows.cli.app import app
from workflows.cli.output import settings
from workflows.local import ports
from workflows.settings import Settings


def test_a_shell_without_the_exports_finds_the_platform_up_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ports.record(Settings(state_dir=tmp_path, mlflow_port=6100, s3_port=9400, gateway_port=9090))
    assert (tmp_path / "platform.json").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("CTCD_STATE_DIR", str(tmp_path))
    found = settings()
    assert (found.mlflow_port, found.s3_port, found.gateway_port) == (6100, 9400, 9090)
    assert found.mlflow_tracking_uri == "http://127.0.0.1:6100" and found.s3_endpoint_url == "http://127.0.0.1:9400"
    monkeypatch.setenv("CTCD_MLFLOW_PORT", "5050")  # an export from another platform
    assert settings().mlflow_port == 5050
    said = capsys.readouterr().err
    assert "CTCD_MLFLOW_PORT=5050 here, but the platform in" in said and "mlflow_port=6100" in said


def test_reset_asks_then_deletes_the_state_folder_only(tmp_path: Path) -> None:
    state = tmp_path / ".ctcd"
    (state / "runs").mkdir(parents=True)
    env = {"CTCD_STATE_DIR": str(state)}
    refused = CliRunner().invoke(app, ["reset"], input="n\n", env=env)
    assert refused.exit_code == 1 and state.exists()
    done = CliRunner().invoke(app, ["reset", "--yes"], env=env)
    assert done.exit_code == 0 and not state.exists() and "`ctcd up` starts afresh" in done.output
