"""The local stand-in for Argo CD + KServe: make running model servers match ``gitops/`` at the remote's main.

Each pass renders every ``gitops/models/*/overlays/<env>`` at the main branch's commit with ``kubectl
kustomize`` (the ref, not a working tree), and for each InferenceService:

- a new pinned ``storageUri`` creates a revision (``<name>-predictor-00001``, …): the model folder is fetched
  from S3 and served by its own KServe process on 127.0.0.1;
- traffic follows KServe's canary rules: with ``canaryTrafficPercent: N`` the latest ready revision gets N%
  and the previously rolled-out one 100−N%; without it the latest gets 100% and becomes the rolled-out one;
- a revision that fails to load gets no traffic, and the Ready condition says why;
- a model server that dies is started again (backing off while it keeps dying), from the model folder fetched
  before when its sha256 still matches, so a restart needs neither a new promotion nor S3;
- a server left by an earlier serving process is stopped and its revision started afresh.

Status is written in KServe's own schema to ``<state>/serving/status.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

_logger = logging.getLogger(__name__)
REFUSED = 3  # the predictor's exit code for an artifact it refuses (sha256 mismatch, not a model folder)
RESTART_BACKOFF_CAP = 30.0


def now() -> str:
    """RFC 3339, as Kubernetes writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Revision:
    """One served version of an InferenceService."""

    name: str
    storage_uri: str
    sha256: str
    model_version: str
    port: int = 0
    pid: int = 0
    state: str = "Pending"  # Pending, Loading, Ready, Failed, Stopped
    message: str = ""
    created: str = field(default_factory=now)
    restarts: int = 0
    retry_at: float = 0.0
    started: float = 0.0  # the server process's start time, so a reused pid is never taken for it


@dataclass
class Service:
    """What the reconciler knows of one InferenceService."""

    name: str
    namespace: str
    technique: str
    created: str = field(default_factory=now)
    revisions: list[Revision] = field(default_factory=list)
    rolled_out: str = ""
    canary: int | None = None
    generation: int = 0

    def latest(self) -> Revision | None:
        """The newest revision."""
        return self.revisions[-1] if self.revisions else None

    def get(self, name: str) -> Revision | None:
        """A revision by name."""
        return next((r for r in self.revisions if r.name == name), None)


def traffic(service: Service) -> list[dict[str, Any]]:
    """KServe/Knative traffic for a service: ``[{revisionName, percent, latestRevision, tag}]``."""
    latest, prev = service.latest(), service.get(service.rolled_out)
    if latest is None:
        return []
    latest_ok = latest.state == "Ready"
    prev_name = prev.name if prev is not None and prev.state == "Ready" and prev.name != latest.name else ""
    if service.canary is not None and prev_name and latest_ok:
        return [
            {"revisionName": latest.name, "percent": service.canary, "latestRevision": True, "tag": "latest"},
            {"revisionName": prev_name, "percent": 100 - service.canary, "latestRevision": False, "tag": "prev"},
        ]
    if latest_ok:
        return [{"revisionName": latest.name, "percent": 100, "latestRevision": True, "tag": "latest"}]
    if prev_name:  # the new revision is not ready (or failed): everything stays on the rolled-out one
        return [{"revisionName": prev_name, "percent": 100, "latestRevision": False, "tag": "prev"}]
    return []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Reconciler:
    """Keeps model servers and traffic in line with the desired state.

    Args:
        state_dir: Where model caches, logs and ``status.json`` go.
        fetch: Downloads an ``s3://`` folder into a local folder.
        base_url: The gateway's URL, for ``status.url``.
    """

    def __init__(self, state_dir: Path, fetch: Any, base_url: str) -> None:
        self.root = state_dir / "serving"
        self.root.mkdir(parents=True, exist_ok=True)
        self.fetch = fetch
        self.base_url = base_url
        self.services: dict[str, Service] = {}
        self.graphs: dict[str, dict[str, Any]] = {}
        self.commit = ""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._load()

    # --- persistence -----------------------------------------------------------------------------

    def _load(self) -> None:
        path = self.root / "state.json"
        if not path.exists():
            return
        data = json.loads(path.read_text())
        for raw in data.get("services", []):
            revisions = [Revision(**r) for r in raw.pop("revisions")]
            self.services[raw["name"]] = Service(**raw, revisions=revisions)
        self.graphs = data.get("graphs", {})
        self.commit = data.get("commit", "")
        for service in self.services.values():  # servers of an earlier serving process are not ours to trust
            latest = service.latest()
            keep = {latest.name if latest else "", service.rolled_out}
            for revision in service.revisions:
                _kill_group(revision.pid, revision.started)
                crashed = revision.state == "Failed" and revision.message == "the model server exited"  # older state
                if revision.name in keep and (revision.state != "Failed" or crashed):
                    revision.state, revision.pid, revision.retry_at = "Pending", 0, 0.0
                    revision.message = "restarting after local serving restarted"

    def save(self) -> None:
        """Write the internal state and the KServe-shaped status atomically."""
        state = {"commit": self.commit, "graphs": self.graphs, "services": [asdict(s) for s in self.services.values()]}
        for name, body in (("state.json", state), ("status.json", self.status())):
            tmp = self.root / f".{name}.tmp"
            tmp.write_text(json.dumps(body, indent=1))
            tmp.replace(self.root / name)

    # --- desired state ---------------------------------------------------------------------------

    def apply(self, commit: str, docs: list[dict[str, Any]]) -> None:
        """Take a rendered desired state (InferenceServices and InferenceGraphs) from one commit."""
        wanted = {d["metadata"]["name"]: d for d in docs if d["kind"] == "InferenceService"}
        self.graphs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "InferenceGraph"}
        for doc in wanted.values():
            self._apply_service(doc)
        for name in list(self.services):
            if name not in wanted:
                self._delete(name)
        self.commit = commit

    def _apply_service(self, doc: dict[str, Any]) -> None:
        meta, predictor = doc["metadata"], doc["spec"]["predictor"]
        notes = meta.get("annotations", {})
        service = self.services.setdefault(
            meta["name"],
            Service(
                meta["name"], meta.get("namespace", "default"), meta.get("labels", {}).get("ctcd.io/technique", "")
            ),
        )
        service.canary = predictor.get("canaryTrafficPercent")
        uri, sha = predictor["model"]["storageUri"], notes.get("ctcd.io/model-sha256", "")
        latest = service.latest()
        if latest is None or (latest.storage_uri, latest.sha256) != (uri, sha):
            service.generation += 1
            service.revisions.append(
                Revision(
                    f"{service.name}-predictor-{service.generation:05d}",
                    uri,
                    sha,
                    notes.get("ctcd.io/model-version", ""),
                )
            )
        if service.canary is None and service.latest() and service.latest().state == "Ready":  # type: ignore[union-attr]
            service.rolled_out = service.latest().name  # type: ignore[union-attr]

    def _delete(self, name: str) -> None:
        for revision in self.services[name].revisions:
            self._stop(revision)
        del self.services[name]

    # --- processes -------------------------------------------------------------------------------

    def step(self) -> None:
        """Advance the revisions that serve (fetch, start, check readiness, restart), settle traffic, stop the rest."""
        for service in self.services.values():
            latest = service.latest()
            keep = {latest.name if latest else "", service.rolled_out}
            for revision in service.revisions:
                if revision.name in keep:
                    self._advance(service, revision)
                elif revision.state in ("Ready", "Loading", "Pending"):
                    self._stop(revision)
            if latest is not None and latest.state == "Ready" and (service.canary is None or not service.rolled_out):
                service.rolled_out = latest.name
        self.save()

    def _advance(self, service: Service, revision: Revision) -> None:
        if revision.state == "Pending" and time.time() >= revision.retry_at:
            self._start(service, revision)
        elif revision.state == "Loading":
            self._check(revision)
        elif revision.state == "Ready" and not self._running(revision):
            self._restart(revision, "the model server exited")

    def _running(self, revision: Revision) -> bool:
        proc = self.procs.get(revision.name)
        if proc is not None and proc.pid == revision.pid:
            return proc.poll() is None
        return _alive(revision.pid)

    def _restart(self, revision: Revision, why: str) -> None:
        """Queue a revision to start again, backing off (1 s doubling to 30 s) while it keeps failing."""
        revision.restarts += 1
        delay = min(RESTART_BACKOFF_CAP, 2.0 ** min(revision.restarts - 1, 5))
        revision.state, revision.pid, revision.retry_at = "Pending", 0, time.time() + delay
        revision.message = f"{why}; restart {revision.restarts} in {delay:.0f}s"
        _logger.warning("%s: %s", revision.name, revision.message)

    def _cached(self, revision: Revision, folder: Path) -> bool:
        """Whether ``folder`` already holds this revision's model file with the pinned sha256."""
        found = list(folder.rglob("model.pkl")) if folder.is_dir() else []
        if len(found) != 1 or not (folder / "MLmodel").exists():
            return False
        return not revision.sha256 or hashlib.sha256(found[0].read_bytes()).hexdigest() == revision.sha256

    def _materialize(self, revision: Revision) -> Path | None:
        """The revision's model folder: the local copy when it is intact, else fetched again (None on failure)."""
        folder = self.root / "models" / revision.name
        if self._cached(revision, folder):
            return folder
        partial = folder.with_name(f".{folder.name}.partial")
        try:
            self.fetch(revision.storage_uri, partial)
        except Exception as exc:  # any download failure: retried, and reported in status meanwhile
            shutil.rmtree(partial, ignore_errors=True)
            self._restart(revision, f"cannot fetch {revision.storage_uri}: {str(exc)[:200]}")
            return None
        shutil.rmtree(folder, ignore_errors=True)
        partial.replace(folder)
        return folder

    def _start(self, service: Service, revision: Revision) -> None:
        folder = self._materialize(revision)
        if folder is None:
            return
        revision.port = _free_port()
        log = open(self.root / f"{revision.name}.log", "ab")  # noqa: SIM115 - the child keeps it open
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving",
                "--model_name",
                service.name,
                "--model_dir",
                str(folder),
                "--sha256",
                revision.sha256,
                "--http_port",
                str(revision.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,  # its own group, but in serving's session: `ctcd down` finds it even if orphaned
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        log.close()
        self.procs[revision.name] = proc
        revision.pid, revision.state, revision.message = proc.pid, "Loading", ""
        revision.started = _create_time(proc.pid)

    def _check(self, revision: Revision) -> None:
        try:
            if httpx.get(f"http://127.0.0.1:{revision.port}/v2/health/ready", timeout=0.5).status_code == 200:
                revision.state, revision.message = "Ready", ""
                return
        except httpx.HTTPError:
            pass
        if self._running(revision):
            return
        tail = (self.root / f"{revision.name}.log").read_text(errors="replace").strip().splitlines()[-1:]
        proc = self.procs.get(revision.name)
        if proc is not None and proc.returncode == REFUSED:  # the artifact was refused: retrying cannot help
            revision.state = "Failed"
            revision.message = f"model failed to load: {tail[0] if tail else 'the artifact was refused'}"[:500]
            return
        self._restart(revision, f"the model server exited while loading: {tail[0] if tail else '-'}"[:300])

    def _stop(self, revision: Revision) -> None:
        if revision.pid and self._running(revision):
            _kill_group(revision.pid, revision.started, signal.SIGTERM)
        self.procs.pop(revision.name, None)
        revision.state = "Stopped" if revision.state != "Failed" else revision.state

    def stop_all(self) -> None:
        """Stop every model server (on shutdown)."""
        for service in self.services.values():
            for revision in service.revisions:
                self._stop(revision)
        self.save()

    # --- status ----------------------------------------------------------------------------------

    def routes(self) -> dict[str, list[tuple[int, int, str]]]:
        """Gateway routes: service name -> [(percent, port, revision)] of ready revisions with traffic."""
        table: dict[str, list[tuple[int, int, str]]] = {}
        for service in self.services.values():
            table[service.name] = [
                (t["percent"], service.get(t["revisionName"]).port, t["revisionName"])  # type: ignore[union-attr]
                for t in traffic(service)
                if t["percent"] > 0
            ]
        return table

    def problems(self) -> list[str]:
        """One line per InferenceService that is not Ready, saying why ([] when all serve)."""
        found = []
        for item in self._items():
            ready = item["status"]["conditions"][0]
            if ready["status"] != "True":
                found.append(
                    f"{item['metadata']['name']}: {ready.get('message') or ready.get('reason') or 'not ready'}"
                )
        return found

    def _items(self) -> list[dict[str, Any]]:
        return [self._isvc_status(s) for s in self.services.values()]

    def status(self) -> dict[str, Any]:
        """InferenceServices and InferenceGraphs with KServe-shaped status, plus the gateway's routes."""
        items = self._items()
        graphs = [
            {
                "apiVersion": "serving.kserve.io/v1alpha1",
                "kind": "InferenceGraph",
                "metadata": {"name": name},
                "spec": g["spec"],
                "status": {"url": f"{self.base_url}/v1/models/{name}:predict"},
            }
            for name, g in self.graphs.items()
        ]
        return {"commit": self.commit, "items": items, "graphs": graphs, "routes": self.routes(), "updated": now()}

    def _isvc_status(self, service: Service) -> dict[str, Any]:
        split = traffic(service)
        latest = service.latest()
        ready = bool(split) and (latest is None or latest.state != "Failed" or service.rolled_out != "")
        ready = ready and latest is not None and latest.state == "Ready"
        condition = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now()}
        if latest is not None and not ready:
            condition.update(
                reason="RevisionFailed" if latest.state == "Failed" else "RevisionLoading",
                message=latest.message or f"revision {latest.name} is {latest.state.lower()}",
            )
        ready_revisions = [r.name for r in service.revisions if r.state == "Ready"]
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": service.name, "namespace": service.namespace, "creationTimestamp": service.created},
            "status": {
                "url": f"{self.base_url}/v1/models/{service.name}:predict",
                "conditions": [condition, {"type": "PredictorReady", "status": condition["status"]}],
                "components": {
                    "predictor": {
                        "latestCreatedRevision": latest.name if latest else "",
                        "latestReadyRevision": ready_revisions[-1] if ready_revisions else "",
                        "latestRolledoutRevision": service.rolled_out,
                        "previousRolledoutRevision": next(
                            (t["revisionName"] for t in split if t.get("tag") == "prev"), ""
                        ),
                        "traffic": split,
                    }
                },
                "modelStatus": {
                    "states": {"activeModelState": "Loaded" if split else "FailedToLoad"},
                    "lastFailureInfo": {"message": latest.message} if latest and latest.message else {},
                },
            },
        }


def _kill_group(pid: int, started: float, sig: int = signal.SIGKILL) -> None:
    """Signal a model server's process group (it leads one) if that very process still runs."""
    import psutil

    try:
        if not pid or abs(psutil.Process(pid).create_time() - started) > 0.5:
            return
        os.killpg(pid, sig)
    except (psutil.Error, ProcessLookupError, PermissionError):
        pass


def _create_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def _alive(pid: int) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child counts as dead
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return True


def wait_until(predicate: Any, timeout: float) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())
