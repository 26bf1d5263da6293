"""Unit tests of the settings object: derived URLs, and errors that name the variable and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.settings import SettingError, Settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults_point_at_loopback(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, s3_port=9000, mlflow_port=9001)
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:9001"
    assert settings.git_remote == str(tmp_path / "gitops.git")


def test_env_names_are_shared_with_the_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CTCD_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.ctcd.svc:5000")
    monkeypatch.setenv("CTCD_S3_ENDPOINT_URL", "http://minio.ctcd.svc:9000")
    settings = Settings()
    assert settings.mlflow_tracking_uri == "http://mlflow.ctcd.svc:5000"
    assert settings.s3_endpoint_url == "http://minio.ctcd.svc:9000"
    assert settings.as_env()["MLFLOW_TRACKING_URI"] == "http://mlflow.ctcd.svc:5000"


def test_malformed_url_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"CTCD_S3_ENDPOINT_URL='minio:9000' is not an http\(s\) URL"):
        Settings(state_dir=tmp_path, s3_endpoint_url="minio:9000")


def test_unreachable_endpoint_names_the_variable_and_value(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, mlflow_tracking_uri="http://127.0.0.1:9")
    with pytest.raises(SettingError, match=r"MLFLOW_TRACKING_URI=http://127.0.0.1:9 is not reachable.*ctcd up"):
        settings.require_reachable("mlflow", timeout=0.5)


def test_the_cluster_configmap_sets_what_local_steps_get(tmp_path: Path) -> None:
    import yaml

    documents = yaml.safe_load_all((REPO / "gitops" / "platform" / "config.yaml").read_text())
    configmap = next(d for d in documents if d["metadata"]["name"] == "ctcd-config")
    local = Settings(state_dir=tmp_path).as_env()
    assert set(configmap["data"]) == set(local) - {"CTCD_STATE_DIR"}  # the state folder exists only locally
    assert configmap["data"]["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == local["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]


def test_the_scheduler_is_a_service_unless_turned_off(tmp_path: Path) -> None:
    from workflows.local.services import services

    on = Settings(state_dir=tmp_path, scheduler=True)  # type: ignore[call-arg]
    off = Settings(state_dir=tmp_path, scheduler=False)  # type: ignore[call-arg]
    assert [s.name for s in services(on)] == ["s3", "mlflow", "serving", "bridge", "scheduler"]
    assert "scheduler" not in [s.name for s in services(off)]
    assert Settings.model_fields["scheduler"].default is True
