"""The embedded platform: start, stop and inspect S3 (SeaweedFS), MLflow, local serving and the registry bridge.

Each service runs as the leader of a session of its own (see ``supervisor``), bound to 127.0.0.1, with its
log, pid record and data in the gitignored state folder.  ``up`` is idempotent and replaces what a crash left
behind; ``down`` stops each service's whole process tree; ``status`` says why a service is not healthy.
Secrets the services need across restarts (S3 keys, MLflow's webhook encryption key) are generated at the
first ``up`` with mode 0600.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from serving import shared
from workflows.delivery import observed
from workflows.local import ports, supervisor
from workflows.local.credentials import prediction_log_key, webhook_encryption_key
from workflows.local.services import PlatformError, Service, http_ok, http_problem, services
from workflows.settings import Settings

_logger = logging.getLogger(__name__)


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


def check_writable(*folders: Path) -> None:
    """Create each folder and write a file in it, so a read-only or full disk is named before anything starts.

    Raises:
        PlatformError: Naming the folder and the system's own words (``Read-only file system``, ``No space…``).
    """
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-check-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise PlatformError(
                f"{folder} cannot be written: {exc.strerror or exc}",
                hint="make the state folder writable and free some space (or set CTCD_STATE_DIR), then `ctcd up`",
            ) from None


def up(
    settings: Settings, on_ready: Callable[[str, float], None] | None = None, only: tuple[str, ...] = ()
) -> dict[str, float | None]:
    """Start every service that is not already running, wait for health and create the buckets.

    A service whose leader died but left processes behind is stopped first, so that ``up`` after a crash or a
    kill -9 brings it back instead of refusing a port that its own leftovers hold.

    Args:
        settings: Where to keep state and which ports to use.
        on_ready: Called with each service's name and seconds as it becomes healthy (for a line of progress).
        only: Start just these services (``("s3",)`` for the engine alone); a later full ``up`` adds the rest.

    Returns:
        Seconds each service took to become healthy (None for one that was already running).

    Raises:
        PlatformError: A port is taken, a service exited, or it did not become healthy in time.
    """
    check_writable(settings.state_dir, settings.state_dir / "s3", settings.state_dir / "logs")
    _ensure_git_remote(settings)
    webhook_encryption_key(settings)
    prediction_log_key(settings)
    described = [s for s in services(settings, generate_credentials=True) if not only or s.name in only]
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

    def wait(service: Service, proc: psutil.Process) -> float:
        seconds = _wait_healthy(settings, service, proc)
        if on_ready is not None and service.name not in already:
            on_ready(service.name, seconds)
        return seconds

    with ThreadPoolExecutor(max_workers=len(pending)) as pool:
        waits = list(pool.map(lambda sp: wait(*sp), pending))
    ports.record(settings)
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
    for bucket in (settings.datasets_bucket, settings.artifacts_bucket, settings.predictions_bucket):
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
    items = _reported(settings, "items")
    down = _serving_down(settings)
    if down:
        for item in items:
            item["status"]["conditions"] = [_down(kind, down) for kind in ("Ready", "PredictorReady")]
            for part in item["status"].get("components", {}).values():
                part["traffic"] = []
    return items


def served_graphs(settings: Settings) -> list[dict[str, Any]]:
    """The InferenceGraphs local serving reports (Ready when every service they route to is), like :func:`served`."""
    graphs = _reported(settings, "graphs")
    down = _serving_down(settings)
    if down:
        for graph in graphs:
            graph["status"]["conditions"] = [_down("Ready", down)]
    return graphs


def _reported(settings: Settings, kind: str) -> list[dict[str, Any]]:
    """``items`` or ``graphs`` of what serving last wrote to ``status.json`` ([] when there is none to read)."""
    found = shared.read_status(settings.state_dir).get(kind)
    return found if isinstance(found, list) else []


def _down(kind: str, why: str) -> dict[str, str]:
    return {"type": kind, "status": "False", "reason": "ServingDown", "message": why}


def _serving_down(settings: Settings) -> str:
    if supervisor.tree(_pids(settings), "serving").leader is None:
        return "local serving is not running; `ctcd up` starts it"
    if not http_ok(settings.gateway_url + "/healthz", (200, 503)):
        return f"the gateway at {settings.gateway_url} does not answer; see {settings.state_dir}/logs/serving.log"
    return ""


def wait_serving(settings: Settings, timeout: float) -> str:
    """Wait until every pinned InferenceService is Ready; return '' then, else the last reason it was not."""
    end = time.monotonic() + timeout
    problem = "serving did not answer"
    while time.monotonic() < end:
        problem = http_problem(settings.gateway_url + "/healthz", (200,))
        if not problem:
            return ""
        time.sleep(0.5)
    return problem
