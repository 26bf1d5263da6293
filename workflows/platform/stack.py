"""The embedded platform: start, stop and inspect the local S3 (SeaweedFS) and MLflow servers.

Each service runs as a process of its own in a new session, bound to 127.0.0.1, with its log, pid
record and data in the gitignored state folder.  ``up`` is idempotent, ``down`` stops only the processes
whose pid records it wrote (checked against the process start time, so a reused pid is never killed).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from workflows.settings import Settings

_logger = logging.getLogger(__name__)


class PlatformError(RuntimeError):
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
        health: Returns True once the service answers.
    """

    name: str
    url: str
    ports: dict[int, str]
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: Callable[[], bool] = lambda: False


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise PlatformError(f"`{name}` is not installed in {candidate.parent}; run `make setup` to install it.")


def load_credentials(settings: Settings) -> dict[str, str]:
    """Return the local S3 credentials, generating and storing them (mode 0600) on first use.

    Args:
        settings: The settings naming the state folder.

    Returns:
        A dict with ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``.
    """
    path = settings.credentials_file
    if path.exists():
        return dict(json.loads(path.read_text()))
    path.parent.mkdir(parents=True, exist_ok=True)
    creds = {
        "AWS_ACCESS_KEY_ID": "ctcd" + secrets.token_hex(8),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(creds, handle)
    return creds


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


def _http_ok(url: str, accept: tuple[int, ...]) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code in accept
    except httpx.HTTPError:
        return False


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
    s3 = Service(
        name="s3",
        url=settings.s3_endpoint_url,
        ports=s3_ports(settings),
        command=_weed_command(settings),
        env=creds,
        health=lambda: _http_ok(settings.s3_endpoint_url + "/", (200, 403)),
    )
    mlflow = Service(
        name="mlflow",
        url=settings.mlflow_tracking_uri,
        ports={settings.mlflow_port: "CTCD_MLFLOW_PORT"},
        command=[
            _bin("mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{settings.state_dir / 'mlflow.db'}",
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
        },
        health=lambda: _http_ok(settings.mlflow_tracking_uri + "/health", (200,)),
    )
    serving = Service(
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
            "CTCD_SERVING_ENVIRONMENT": settings.serving_environment,
            "CTCD_GATEWAY_PORT": str(settings.gateway_port),
        },
        health=lambda: _http_ok(settings.gateway_url + "/healthz", (200,)),
    )
    bridge = Service(
        name="bridge",
        url=f"http://127.0.0.1:{settings.bridge_port}",
        ports={settings.bridge_port: "CTCD_BRIDGE_PORT"},
        command=[sys.executable, "-m", "workflows.bridge_server"],
        env={
            **creds,
            **settings.as_env(),
            "CTCD_BRIDGE_PORT": str(settings.bridge_port),
            "CTCD_AUTO_MERGE": settings.auto_merge,
        },
        health=lambda: _http_ok(f"http://127.0.0.1:{settings.bridge_port}/healthz", (200,)),
    )
    return [s3, mlflow, serving, bridge]


def _record_path(settings: Settings, name: str) -> Path:
    return settings.state_dir / "pids" / f"{name}.json"


def _live_process(settings: Settings, name: str) -> psutil.Process | None:
    """Return the process a pid record names, if it is still the very process that was started."""
    path = _record_path(settings, name)
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    try:
        proc = psutil.Process(record["pid"])
        if abs(proc.create_time() - record["create_time"]) < 0.5 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except psutil.Error:
        pass
    path.unlink(missing_ok=True)
    return None


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _check_ports(service: Service) -> None:
    for port, setting in service.ports.items():
        if _port_taken(port):
            raise PlatformError(
                f"port {port} for {service.name} is already in use on 127.0.0.1 (set by {setting}). "
                "Stop whatever holds it (`ss -ltnp | grep :%d`) or choose another port." % port
            )


def _start(settings: Settings, service: Service) -> psutil.Process:
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{service.name}.log", "ab") as log:
        popen = subprocess.Popen(
            service.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **service.env},
            cwd=settings.state_dir,
            start_new_session=True,
        )
    proc = psutil.Process(popen.pid)
    record = {"pid": popen.pid, "create_time": proc.create_time(), "url": service.url, "command": service.command}
    path = _record_path(settings, service.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return proc


def _log_tail(settings: Settings, name: str, lines: int = 15) -> str:
    path = settings.state_dir / "logs" / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(settings: Settings, service: Service, proc: psutil.Process) -> float:
    start = time.monotonic()
    while time.monotonic() - start < settings.startup_timeout:
        if service.health():
            return time.monotonic() - start
        if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            raise PlatformError(
                f"{service.name} exited during startup. Last log lines "
                f"({settings.state_dir / 'logs' / service.name}.log):\n{_log_tail(settings, service.name)}"
            )
        time.sleep(0.2)
    _stop_process(proc)
    _record_path(settings, service.name).unlink(missing_ok=True)
    raise PlatformError(
        f"{service.name} did not become healthy at {service.url} within {settings.startup_timeout:.0f}s "
        f"(CTCD_STARTUP_TIMEOUT). Last log lines:\n{_log_tail(settings, service.name)}"
    )


def up(settings: Settings) -> dict[str, float | None]:
    """Start every service that is not already running, wait for health and create the buckets.

    Args:
        settings: Where to keep state and which ports to use.

    Returns:
        Seconds each service took to become healthy (None for one that was already running).

    Raises:
        PlatformError: A port is taken, a service exited, or it did not become healthy in time.
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    _ensure_git_remote(settings)
    described = services(settings, generate_credentials=True)
    running = {s.name: _live_process(settings, s.name) for s in described}
    already = {name for name, proc in running.items() if proc is not None}
    for service in described:  # every port is checked before anything starts: no orphan on a clash
        if service.name not in already:
            _check_ports(service)
    pending: list[tuple[Service, psutil.Process]] = []
    for service in described:
        proc = running[service.name]
        if proc is None:
            proc = _start(settings, service)
            _logger.info("started %s (pid %d) at %s", service.name, proc.pid, service.url)
        pending.append((service, proc))
    with ThreadPoolExecutor(max_workers=len(pending)) as pool:
        waits = list(pool.map(lambda sp: _wait_healthy(settings, *sp), pending))
    _ensure_buckets(settings)
    return {
        service.name: None if service.name in already else seconds
        for (service, _), seconds in zip(pending, waits, strict=True)
    }


def _ensure_git_remote(settings: Settings) -> None:
    """Create the local GitOps remote (a bare repository) from the project's own history, once."""
    from workflows.platform.gitrepo import GitError, ensure_remote
    from workflows.settings import REPO_ROOT

    if "://" in settings.git_remote or settings.git_remote.startswith("git@"):
        return  # a hosted remote: nothing to create
    try:
        if ensure_remote(Path(settings.git_remote), REPO_ROOT, settings.git_branch):
            _logger.info("created the GitOps remote %s from %s", settings.git_remote, REPO_ROOT)
    except GitError as exc:
        raise PlatformError(f"cannot create the GitOps remote {settings.git_remote} (CTCD_GIT_REMOTE): {exc}") from exc


def _ensure_buckets(settings: Settings) -> None:
    from workflows.platform.s3 import s3_client

    client = s3_client(settings)
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    for bucket in (settings.datasets_bucket, settings.artifacts_bucket):
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)


def _stop_process(proc: psutil.Process, timeout: float = 15.0) -> None:
    family = [proc, *proc.children(recursive=True)]
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for member in family[1:]:  # children in sessions of their own (model servers) too
        try:
            member.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for leftover in alive:
        leftover.kill()
    psutil.wait_procs(alive, timeout=5)


def down(settings: Settings, only: tuple[str, ...] = ()) -> list[str]:
    """Stop the services this state folder started (or just those named); return the names of those stopped."""
    stopped = []
    for service in reversed(services(settings)):
        if only and service.name not in only:
            continue
        proc = _live_process(settings, service.name)
        if proc is not None:
            _stop_process(proc)
            stopped.append(service.name)
        _record_path(settings, service.name).unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> list[dict[str, object]]:
    """Return each service's name, URL, pid, state and health."""
    rows: list[dict[str, object]] = []
    for service in services(settings):
        proc = _live_process(settings, service.name)
        healthy = proc is not None and service.health()
        rows.append(
            {
                "name": service.name,
                "url": service.url,
                "pid": proc.pid if proc else None,
                "state": "running" if proc else "stopped",
                "healthy": healthy,
                "rss_mib": round(_tree_rss(proc) / 2**20, 1) if proc else None,
                "log": str(settings.state_dir / "logs" / f"{service.name}.log"),
            }
        )
    return rows


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for member in [proc, *proc.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total
