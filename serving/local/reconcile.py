"""The local stand-in for Argo CD + KServe: make running model servers match ``gitops/`` at the remote's main.

Each pass renders every ``gitops/models/*/overlays/<env>`` at the main branch's commit with ``kubectl
kustomize`` (the ref, not a working tree), and for each InferenceService:

- a new pinned ``storageUri`` creates a revision (``<name>-predictor-00001``, …): the model folder is fetched
  from S3 and served by its own KServe process on 127.0.0.1;
- traffic follows KServe's canary rules: with ``canaryTrafficPercent: N`` the latest ready revision gets N%
  and the previously rolled-out one 100−N%; without it the latest gets 100% and becomes the rolled-out one;
- a revision that fails to load gets no traffic, and the Ready condition says why.

Status is written in KServe's own schema to ``<state>/serving/status.json``.
"""

from __future__ import annotations

import json
import logging
import os
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
        """Advance every revision one step (fetch, start, check readiness), settle traffic, stop the unused."""
        for service in self.services.values():
            for revision in service.revisions:
                self._advance(service, revision)
            latest = service.latest()
            if service.canary is None and latest is not None and latest.state == "Ready":
                service.rolled_out = latest.name
            if not service.rolled_out and latest is not None and latest.state == "Ready":
                service.rolled_out = latest.name
            keep = {latest.name if latest else "", service.rolled_out}
            for revision in service.revisions:
                if revision.name not in keep and revision.state in ("Ready", "Loading"):
                    self._stop(revision)
        self.save()

    def _advance(self, service: Service, revision: Revision) -> None:
        if revision.state == "Pending":
            self._start(service, revision)
        elif revision.state == "Loading":
            self._check(revision)
        elif revision.state == "Ready" and not _alive(revision.pid):
            revision.state, revision.message = "Failed", "the model server exited"

    def _start(self, service: Service, revision: Revision) -> None:
        folder = self.root / "models" / revision.name
        try:
            self.fetch(revision.storage_uri, folder)
        except Exception as exc:  # any download failure is the revision's failure, reported in status
            revision.state, revision.message = "Failed", f"cannot fetch {revision.storage_uri}: {exc}"
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
            start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        revision.pid, revision.state, revision.message = proc.pid, "Loading", ""

    def _check(self, revision: Revision) -> None:
        try:
            if httpx.get(f"http://127.0.0.1:{revision.port}/v2/health/ready", timeout=0.5).status_code == 200:
                revision.state = "Ready"
                return
        except httpx.HTTPError:
            pass
        if not _alive(revision.pid):
            tail = (self.root / f"{revision.name}.log").read_text(errors="replace").strip().splitlines()[-1:]
            revision.state = "Failed"
            revision.message = f"model failed to load: {tail[0] if tail else 'the server exited'}"[:500]

    def _stop(self, revision: Revision) -> None:
        if revision.pid and _alive(revision.pid):
            try:
                os.killpg(revision.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
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

    def status(self) -> dict[str, Any]:
        """InferenceServices and InferenceGraphs with KServe-shaped status, plus the gateway's routes."""
        items = [self._isvc_status(s) for s in self.services.values()]
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
