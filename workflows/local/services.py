"""The embedded platform's services as data: name, URL, ports, command, environment and health checks.

Nothing here starts a process; :mod:`~workflows.local.stack` does, under :mod:`~workflows.local.supervisor`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from workflows.errors import CtcdError
from workflows.local.credentials import load_credentials
from workflows.settings import Settings


class PlatformError(CtcdError, RuntimeError):
    """A service of the embedded platform could not be started, stopped or reached."""


@dataclass(frozen=True)
class Service:
    """One process of the embedded platform.

    Attributes:
        name: Short name used for the pid record and the log file.
        url: The URL users and clients talk to.
        ports: Every port the process opens, each with the setting that controls it.
        command: The argv to start it.
        env: Extra environment variables.
        health: Returns True once the service answers (what ``up`` waits for).
        problem: Why a running service is not healthy ('' when it is), for ``status``.
    """

    name: str
    url: str
    ports: dict[int, str]
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: Callable[[], bool] = lambda: False
    problem: Callable[[], str] = lambda: ""


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise PlatformError(f"`{name}` is not installed in {candidate.parent}; run `make setup` to install it.")


def s3_ports(settings: Settings) -> dict[int, str]:
    """Every port ``weed mini`` opens, derived from ``CTCD_S3_PORT`` so two platforms never collide."""
    base = settings.s3_port
    offsets = {"s3": 0, "master": 1, "volume": 2, "filer": 3, "admin": 4}
    ports = {base + off: f"CTCD_S3_PORT (+{off}, {name})" for name, off in offsets.items()}
    ports.update({base + 10000 + off: f"CTCD_S3_PORT (+{10000 + off}, {name} gRPC)" for name, off in offsets.items()})
    return ports


def _weed_command(settings: Settings) -> list[str]:
    p = settings.s3_port
    flags = {
        "dir": str(settings.state_dir / "s3"),
        "ip": "127.0.0.1",
        "ip.bind": "127.0.0.1",
        "s3.port": p,
        "s3.port.grpc": p + 10000,
        "master.port": p + 1,
        "master.port.grpc": p + 10001,
        "volume.port": p + 2,
        "volume.port.grpc": p + 10002,
        "filer.port": p + 3,
        "filer.port.grpc": p + 10003,
        "admin.port": p + 4,
        "admin.port.grpc": p + 10004,
        "s3.port.iceberg": 0,
        "s3.port.lance": 0,
        "webdav": "false",
        "admin.ui": "false",
        "master.telemetry": "false",
    }
    return [_bin("weed"), "mini", *(f"-{k}={v}" for k, v in flags.items())]


def _webhook_key_env(settings: Settings) -> dict[str, str]:
    path = settings.state_dir / "mlflow-webhook-key"
    return {"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": path.read_text().strip()} if path.exists() else {}


def http_ok(url: str, accept: tuple[int, ...]) -> bool:
    """Whether ``url`` answers one of ``accept`` within a second."""
    try:
        return httpx.get(url, timeout=1.0).status_code in accept
    except httpx.HTTPError:
        return False


def http_problem(url: str, accept: tuple[int, ...]) -> str:
    """'' when ``url`` answers one of ``accept``; else what went wrong (the body's ``reason`` if it gives one)."""
    try:
        reply = httpx.get(url, timeout=2.0)
    except httpx.HTTPError as exc:
        return f"{url} does not answer ({type(exc).__name__})"
    if reply.status_code in accept:
        return ""
    try:
        body = reply.json()
        reason = body.get("reason") if isinstance(body, dict) else None
    except ValueError:
        reason = None
    return str(reason or f"{url} answered {reply.status_code}")


def services(settings: Settings, generate_credentials: bool = False) -> list[Service]:
    """Describe the embedded services for these settings (nothing is started).

    Args:
        settings: Ports, state folder and buckets.
        generate_credentials: Create the S3 credentials if they do not exist yet (only ``up`` does).
    """
    if generate_credentials or settings.credentials_file.exists():
        creds = load_credentials(settings)
    else:
        creds = {}
    return [
        _s3(settings, creds),
        _mlflow(settings, creds),
        _serving(settings, creds),
        _bridge(settings, creds),
        *([_scheduler(settings, creds)] if settings.scheduler else []),
    ]


def _s3(settings: Settings, creds: dict[str, str]) -> Service:
    return Service(
        name="s3",
        url=settings.s3_endpoint_url,
        ports=s3_ports(settings),
        command=_weed_command(settings),
        env=creds,
        health=lambda: http_ok(settings.s3_endpoint_url + "/", (200, 403)),
        problem=lambda: (
            http_problem(settings.s3_endpoint_url + "/", (200, 403)) or disk_problem(settings.state_dir / "s3")
        ),
    )


MIN_FREE_BYTES = 100 * 2**20  # below this SeaweedFS can no longer write a volume, so S3 refuses every write


def disk_problem(folder: Path) -> str:
    """'' when ``folder``'s disk has room and can be written; else what is wrong and the fix."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    if free < MIN_FREE_BYTES:
        return f"the disk under {folder} is full ({free >> 20} MiB free): S3 cannot store anything; free some space"
    if not os.access(folder, os.W_OK):
        return f"{folder} is read-only: S3 cannot store anything; make it writable"
    return ""


def _mlflow(settings: Settings, creds: dict[str, str]) -> Service:
    store = f"sqlite:///{settings.state_dir / 'mlflow.db'}"
    return Service(
        name="mlflow",
        url=settings.mlflow_tracking_uri,
        ports={settings.mlflow_port: "CTCD_MLFLOW_PORT"},
        command=[
            _bin("mlflow"),
            "server",
            "--backend-store-uri",
            store,
            "--artifacts-destination",
            f"s3://{settings.artifacts_bucket}/mlflow",
            "--host",
            "127.0.0.1",
            "--port",
            str(settings.mlflow_port),
            "--workers",
            "1",
        ],
        env={
            **creds,
            "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            **_webhook_key_env(settings),
        },
        health=lambda: http_ok(settings.mlflow_tracking_uri + "/health", (200,)),
        problem=lambda: http_problem(settings.mlflow_tracking_uri + "/health", (200,)),
    )


def _serving(settings: Settings, creds: dict[str, str]) -> Service:
    return Service(
        name="serving",
        url=settings.gateway_url,
        ports={settings.gateway_port: "CTCD_GATEWAY_PORT"},
        command=[sys.executable, "-m", "serving.local"],
        env={
            **creds,
            "CTCD_STATE_DIR": str(settings.state_dir),
            "CTCD_GIT_REMOTE": settings.git_remote,
            "CTCD_GIT_BRANCH": settings.git_branch,
            "CTCD_S3_ENDPOINT_URL": settings.s3_endpoint_url,
            "CTCD_S3_REGION": settings.s3_region,
            "CTCD_SERVING_DOMAIN": settings.serving_domain,
            "CTCD_GATEWAY_PORT": str(settings.gateway_port),
            "CTCD_GATEWAY_TIMEOUT": str(settings.gateway_timeout),
            "CTCD_PREDICTIONS_BUCKET": settings.predictions_bucket,
            "CTCD_FEEDBACK_URL": f"http://127.0.0.1:{settings.bridge_port}/v1/feedback",
        },
        health=lambda: http_ok(settings.gateway_url + "/healthz", (200, 503)),
        problem=lambda: http_problem(settings.gateway_url + "/healthz", (200,)),
    )


def _bridge(settings: Settings, creds: dict[str, str]) -> Service:
    url = f"http://127.0.0.1:{settings.bridge_port}"
    return Service(
        name="bridge",
        url=url,
        ports={settings.bridge_port: "CTCD_BRIDGE_PORT"},
        command=[sys.executable, "-m", "workflows.local.bridge_server"],
        env={
            **creds,
            **settings.as_env(),
            "CTCD_BRIDGE_PORT": str(settings.bridge_port),
            "CTCD_AUTO_MERGE": settings.auto_merge,
        },
        health=lambda: http_ok(url + "/healthz", (200, 503)),
        problem=lambda: http_problem(url + "/healthz", (200,)),
    )


HEARTBEAT_SECONDS = 20.0  # the scheduler touches its heartbeat every few seconds


def _heartbeat_problem(path: Path) -> str:
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return "no heartbeat yet"
    return "" if age < HEARTBEAT_SECONDS else f"no heartbeat for {age:.0f}s"


def _scheduler(settings: Settings, creds: dict[str, str]) -> Service:
    heartbeat = settings.state_dir / "scheduler.heartbeat"
    return Service(
        name="scheduler",
        url=f"CronWorkflows ({heartbeat.name})",
        ports={},
        command=[sys.executable, "-m", "workflows.local.scheduler"],
        env={
            **creds,
            **settings.as_env(),
            "CTCD_TEMPLATE_PATH": settings.template_path,
            "CTCD_ENGINE_PARALLELISM": str(settings.engine_parallelism),
        },
        health=lambda: not _heartbeat_problem(heartbeat),
        problem=lambda: _heartbeat_problem(heartbeat),
    )
