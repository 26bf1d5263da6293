"""The embedded platform: start, stop and inspect S3 (SeaweedFS), MLflow, local serving and the registry bridge.

Each service runs as the leader of a session of its own (see ``supervisor``), bound to 127.0.0.1, with its
log, pid record and data in the gitignored state folder.  ``up`` is idempotent and replaces what a crash left
behind; ``down`` stops each service's whole process tree; ``status`` says why a service is not healthy.
Secrets the services need across restarts (S3 keys, MLflow's webhook encryption key) are generated at the
first ``up`` with mode 0600.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from workflows.delivery import observed
from workflows.errors import CtcdError
from workflows.local import supervisor
from workflows.settings import Settings

_logger = logging.getLogger(__name__)


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
    _write_private(path, json.dumps(creds))
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


def _webhook_key_env(settings: Settings) -> dict[str, str]:
    path = settings.state_dir / "mlflow-webhook-key"
    return {"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": path.read_text().strip()} if path.exists() else {}


def _http_ok(url: str, accept: tuple[int, ...]) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code in accept
    except httpx.HTTPError:
        return False


def webhook_encryption_key(settings: Settings) -> str:
    """The key MLflow encrypts webhook secrets with, generated once (mode 0600) so it survives restarts.

    Without a fixed key each MLflow process makes its own, and after a restart it can no longer decrypt the
    webhook it stored (``GET /api/2.0/mlflow/webhooks`` answers 500).  Webhooks stored before the key existed
    were encrypted with a key that is gone, so they are dropped once, before MLflow starts; the bridge
    registers its webhook again.
    """
    path = settings.state_dir / "mlflow-webhook-key"
    if path.exists():
        return path.read_text().strip()
    _drop_undecryptable_webhooks(settings.state_dir / "mlflow.db")
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    _write_private(path, key)
    return key


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (never readable by others, never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _drop_undecryptable_webhooks(database: Path) -> None:
    import sqlite3

    if not database.exists():
        return
    with contextlib.closing(sqlite3.connect(database)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in ("webhook_events", "webhooks"):
            if table in tables:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        conn.commit()


def _http_problem(url: str, accept: tuple[int, ...]) -> str:
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
    s3 = Service(
        name="s3",
        url=settings.s3_endpoint_url,
        ports=s3_ports(settings),
        command=_weed_command(settings),
        env=creds,
        health=lambda: _http_ok(settings.s3_endpoint_url + "/", (200, 403)),
        problem=lambda: _http_problem(settings.s3_endpoint_url + "/", (200, 403)),
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
            **_webhook_key_env(settings),
        },
        health=lambda: _http_ok(settings.mlflow_tracking_uri + "/health", (200,)),
        problem=lambda: _http_problem(settings.mlflow_tracking_uri + "/health", (200,)),
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
            "CTCD_SERVING_DOMAIN": settings.serving_domain,
            "CTCD_GATEWAY_PORT": str(settings.gateway_port),
        },
        health=lambda: _http_ok(settings.gateway_url + "/healthz", (200, 503)),
        problem=lambda: _http_problem(settings.gateway_url + "/healthz", (200,)),
    )
    bridge = Service(
        name="bridge",
        url=f"http://127.0.0.1:{settings.bridge_port}",
        ports={settings.bridge_port: "CTCD_BRIDGE_PORT"},
        command=[sys.executable, "-m", "workflows.local.bridge_server"],
        env={
            **creds,
            **settings.as_env(),
            "CTCD_BRIDGE_PORT": str(settings.bridge_port),
            "CTCD_AUTO_MERGE": settings.auto_merge,
        },
        health=lambda: _http_ok(f"http://127.0.0.1:{settings.bridge_port}/healthz", (200, 503)),
        problem=lambda: _http_problem(f"http://127.0.0.1:{settings.bridge_port}/healthz", (200,)),
    )
    return [s3, mlflow, serving, bridge]


def _pids(settings: Settings) -> Path:
    return settings.state_dir / "pids"


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
    return supervisor.start(
        _pids(settings),
        service.name,
        service.command,
        {**os.environ, **service.env},
        settings.state_dir,
        settings.state_dir / "logs" / f"{service.name}.log",
    )


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
            supervisor.stop(_pids(settings), service.name)
            raise PlatformError(
                f"{service.name} exited during startup. Last log lines "
                f"({settings.state_dir / 'logs' / service.name}.log):\n{_log_tail(settings, service.name)}"
            )
        time.sleep(0.2)
    supervisor.stop(_pids(settings), service.name)
    raise PlatformError(
        f"{service.name} did not become healthy at {service.url} within {settings.startup_timeout:.0f}s "
        f"(CTCD_STARTUP_TIMEOUT). Last log lines:\n{_log_tail(settings, service.name)}"
    )


SETTLE_SECONDS = 15.0  # the bridge's first pass may run before MLflow answers; its next one follows in seconds


def _wait_settled(described: list[Service], timeout: float) -> None:
    """Give services that depend on others (the bridge on MLflow) a moment to report healthy; never fails."""
    end = time.monotonic() + timeout
    for service in described:
        while service.problem() and time.monotonic() < end:
            time.sleep(0.3)


def _reap_orphans(settings: Settings, names: list[str]) -> None:
    """Stop what is left of services whose leader died (a kill -9 leaves MLflow's worker on its port)."""
    for name in names:
        left = supervisor.tree(_pids(settings), name)
        if left.state == "orphaned":
            _logger.warning("%s: its leader died; stopping %d leftover process(es)", name, len(left.members))
            supervisor.stop(_pids(settings), name)


def up(settings: Settings) -> dict[str, float | None]:
    """Start every service that is not already running, wait for health and create the buckets.

    A service whose leader died but left processes behind is stopped first, so that ``up`` after a crash or a
    kill -9 brings it back instead of refusing a port that its own leftovers hold.

    Args:
        settings: Where to keep state and which ports to use.

    Returns:
        Seconds each service took to become healthy (None for one that was already running).

    Raises:
        PlatformError: A port is taken, a service exited, or it did not become healthy in time.
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    _ensure_git_remote(settings)
    webhook_encryption_key(settings)
    described = services(settings, generate_credentials=True)
    _reap_orphans(settings, [s.name for s in described])
    running = {s.name: supervisor.tree(_pids(settings), s.name).leader for s in described}
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
    _wait_settled([s for s in described if s.name == "bridge"], SETTLE_SECONDS)
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


def down(settings: Settings, only: tuple[str, ...] = ()) -> list[str]:
    """Stop every process of the services this state folder started (or just those named), orphans included.

    Returns:
        The names of the services that had anything running.
    """
    stopped = []
    for service in reversed(services(settings)):
        if only and service.name not in only:
            continue
        if supervisor.stop(_pids(settings), service.name):
            stopped.append(service.name)
    return stopped


def status(settings: Settings) -> list[dict[str, object]]:
    """Each service's name, URL, pids, state, health and, when it is not healthy, why."""
    rows: list[dict[str, object]] = []
    for service in services(settings):
        found = supervisor.tree(_pids(settings), service.name)
        state, reason = found.state, ""
        if found.leader is not None:
            reason = service.problem()
            state = "running" if not reason else "unhealthy"
        elif found.members:
            reason = f"its leader died; {len(found.members)} leftover process(es) remain (`ctcd up` replaces them)"
        else:
            reason = "not running (`ctcd up` starts it)"
        if service.name == "serving" and found.leader is not None:
            reason = "; ".join(r for r in (reason, observed.summary(settings, served(settings))) if r)
        rows.append(
            {
                "name": service.name,
                "url": service.url,
                "pid": found.leader.pid if found.leader else None,
                "pids": sorted(p.pid for p in found.members),
                "state": state,
                "healthy": state == "running",
                "reason": reason,
                "rss_mib": round(found.rss() / 2**20, 1) if found.members else None,
                "log": str(settings.state_dir / "logs" / f"{service.name}.log"),
            }
        )
    return rows


def served(settings: Settings) -> list[dict[str, Any]]:
    """The InferenceServices local serving reports, with Ready False while serving itself is not answering.

    ``status.json`` is what serving last wrote; after a crash it would still say Ready, so unless the serving
    process runs and its gateway answers, every condition says why nothing is served.
    """
    path = settings.state_dir / "serving" / "status.json"
    try:
        items: list[dict[str, Any]] = json.loads(path.read_text())["items"] if path.exists() else []
    except (OSError, ValueError, KeyError):
        items = []
    down = _serving_down(settings)
    if down:
        for item in items:
            item["status"]["conditions"] = [
                {"type": kind, "status": "False", "reason": "ServingDown", "message": down}
                for kind in ("Ready", "PredictorReady")
            ]
            for part in item["status"].get("components", {}).values():
                part["traffic"] = []
    return items


def _serving_down(settings: Settings) -> str:
    if supervisor.tree(_pids(settings), "serving").leader is None:
        return "local serving is not running; `ctcd up` starts it"
    if not _http_ok(settings.gateway_url + "/healthz", (200, 503)):
        return f"the gateway at {settings.gateway_url} does not answer; see {settings.state_dir}/logs/serving.log"
    return ""


def wait_serving(settings: Settings, timeout: float) -> str:
    """Wait until every pinned InferenceService is Ready; return '' then, else the last reason it was not."""
    end = time.monotonic() + timeout
    problem = "serving did not answer"
    while time.monotonic() < end:
        problem = _http_problem(settings.gateway_url + "/healthz", (200,))
        if not problem:
            return ""
        time.sleep(0.5)
    return problem
