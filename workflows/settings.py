"""The one typed settings object of ctcd.

Every value is read from an environment variable whose name is the same locally and on a cluster (the
cluster sets them from the ``ctcd-config`` ConfigMap).  The defaults point at the embedded platform that
``ctcd up`` starts on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving import shared
from workflows.errors import CtcdError

REPO_ROOT = Path(__file__).resolve().parents[1]


# MLflow's client retries a dead server for minutes by default; steps give up after seconds and leave the
# retrying to their retryStrategy, which logs each attempt.
CLIENT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


class SettingError(CtcdError, RuntimeError):
    """A setting has a wrong or unreachable value; the message names the variable and the value."""


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name}={value!r} is not an http(s) URL such as http://127.0.0.1:8333")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Settings shared by the CLI, the local engine, the workflow steps and the servers.

    Attributes:
        state_dir: Gitignored folder for local state: credentials, logs, pids, runs, data.
        s3_port: Port of the embedded S3 server (SeaweedFS ``weed mini``).
        s3_endpoint_url: S3 endpoint; derived from ``s3_port`` when unset.
        s3_region: Region name passed to S3 clients.
        datasets_bucket: Bucket holding the techniques' datasets.
        artifacts_bucket: Bucket holding MLflow artifacts and workflow artifacts.
        predictions_bucket: Bucket of the prediction log (every answer serving gives, as JSON Lines).
        mlflow_port: Port of the embedded MLflow server.
        mlflow_tracking_uri: MLflow tracking and registry URI; derived from ``mlflow_port`` when unset.
        git_remote: Git remote that Argo CD watches; locally a bare repository in the state folder.
        git_branch: Branch that Argo CD syncs.
        gateway_port: Port of the local serving gateway (the stand-in for the cluster's ingress).
        bridge_port: Port of the registry bridge's webhook receiver.
        gateway_timeout: Seconds the gateway waits for a model server's answer before it answers 504 (the server
            then skips the abandoned request if it has not started on it).
        serving_domain: The ingress domain of local InferenceService URLs (``<name>.<namespace>.<domain>``).
        auto_merge: Environments (comma-separated) whose promotions go straight to the main branch; the others
            wait on a ``promote/<env>/<technique>/v<N>`` branch for a human merge.
        bridge_state: Where the registry bridge keeps what it last saw (default ``<state>/bridge-state.json``;
            ``s3://bucket/key`` on a cluster).
        notify_url: Slack-compatible incoming webhook for run summaries (empty: log lines only).
        engine_parallelism: How many steps the local engine runs at once.
        engine_warm: Fork Python steps from a process with the heavy libraries already imported (saves seconds
            per step; ``CTCD_ENGINE_WARM=false`` starts every step as a fresh interpreter, as a pod does).
        startup_timeout: Seconds ``ctcd up`` waits for each service to become healthy.
        template_path: Folders (separated by ``os.pathsep``) holding compiled WorkflowTemplates.
        scheduler: Fire CronWorkflows on their schedules while the platform is up (``CTCD_SCHEDULER=false``
            leaves them to ``ctcd cron trigger``).
    """

    model_config = SettingsConfigDict(env_prefix="CTCD_", extra="ignore")

    state_dir: Path = Field(default=REPO_ROOT / ".ctcd")
    s3_port: int = Field(default=8333, ge=1, le=65535)
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    datasets_bucket: str = "ctcd-datasets"
    artifacts_bucket: str = "ctcd-artifacts"
    predictions_bucket: str = "ctcd-predictions"
    mlflow_port: int = Field(default=5050, ge=1, le=65535)
    mlflow_tracking_uri: str = Field(default="", validation_alias="MLFLOW_TRACKING_URI")
    git_remote: str = ""
    git_branch: str = "main"
    gateway_port: int = Field(default=shared.DEFAULT_GATEWAY_PORT, ge=1, le=65535)
    bridge_port: int = Field(default=8091, ge=1, le=65535)
    gateway_timeout: float = Field(default=30.0, gt=0, le=3600)
    serving_domain: str = shared.DEFAULT_DOMAIN
    auto_merge: str = "staging"
    notify_url: str = ""
    bridge_state: str = ""
    engine_parallelism: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1)
    engine_warm: bool = True
    startup_timeout: float = Field(default=60.0, gt=0)
    template_path: str = str(REPO_ROOT / "gitops" / "platform" / "workflow-templates")
    scheduler: bool = True

    @field_validator("state_dir")
    @classmethod
    def _absolute_state_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _derive_urls(self) -> Settings:
        if not self.s3_endpoint_url:
            self.s3_endpoint_url = f"http://127.0.0.1:{self.s3_port}"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"http://127.0.0.1:{self.mlflow_port}"
        self.s3_endpoint_url = _check_url("CTCD_S3_ENDPOINT_URL", self.s3_endpoint_url)
        self.mlflow_tracking_uri = _check_url("MLFLOW_TRACKING_URI", self.mlflow_tracking_uri)
        if not self.git_remote:
            self.git_remote = str(self.state_dir / "gitops.git")
        return self

    @property
    def credentials_file(self) -> Path:
        """Where ``ctcd up`` keeps the generated S3 credentials (mode 0600)."""
        return self.state_dir / "credentials.json"

    @property
    def gateway_url(self) -> str:
        """The local serving gateway."""
        return f"http://127.0.0.1:{self.gateway_port}"

    def merges_by_itself(self, environment: str) -> bool:
        """Whether promotions to ``environment`` commit straight to the main branch."""
        return environment in {e.strip() for e in self.auto_merge.split(",") if e.strip()}

    def endpoint(self, setting: str) -> str:
        """Return the URL of an endpoint setting (``s3`` or ``mlflow``)."""
        return {"s3": self.s3_endpoint_url, "mlflow": self.mlflow_tracking_uri}[setting]

    def require_reachable(self, setting: str, timeout: float = 2.0) -> None:
        """Raise :class:`SettingError` naming the variable and value when an endpoint cannot be reached.

        Args:
            setting: ``s3`` or ``mlflow``.
            timeout: Seconds to wait for a TCP connection.
        """
        env_name = {"s3": "CTCD_S3_ENDPOINT_URL", "mlflow": "MLFLOW_TRACKING_URI"}[setting]
        url = self.endpoint(setting)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=timeout):
                return
        except OSError as exc:
            raise SettingError(
                f"{env_name}={url} is not reachable ({exc.strerror or exc}). "
                "Start the embedded platform with `ctcd up`, or set "
                f"{env_name} to a running server."
            ) from exc

    def as_env(self) -> dict[str, str]:
        """Return these settings as environment variables, for processes the engine starts."""
        return {
            "CTCD_STATE_DIR": str(self.state_dir),
            "CTCD_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "CTCD_S3_REGION": self.s3_region,
            "CTCD_DATASETS_BUCKET": self.datasets_bucket,
            "CTCD_ARTIFACTS_BUCKET": self.artifacts_bucket,
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "CTCD_GIT_REMOTE": self.git_remote,
            "CTCD_GIT_BRANCH": self.git_branch,
            "CTCD_AUTO_MERGE": self.auto_merge,
            "CTCD_NOTIFY_URL": self.notify_url,
            "CTCD_BRIDGE_STATE": self.bridge_state,
            **CLIENT_RETRIES,
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    try:
        return Settings()
    except ValueError as exc:
        raise SettingError(str(exc)) from exc
