"""The local stand-in for Argo CD + KServe: make running model servers match ``gitops/`` at the remote's main.

Each pass renders every ``gitops/models/*/overlays/*`` at the main branch's commit with ``kubectl kustomize``
(the ref, not a working tree), every environment in its own namespace as on a cluster, and for each
InferenceService:

- a new pinned ``storageUri`` creates a revision (``<name>-predictor-00001``, …): the model folder is fetched
  from S3 and served by its own KServe process on 127.0.0.1 (``servers``);
- traffic follows KServe's canary rules (``model.traffic``), in either deployment mode: Serverless's
  ``canaryTrafficPercent`` over the previously rolled-out revision, or Standard's ``spec.canary`` beside the stable
  predictor the manifest names;
- a revision that fails to load gets no traffic, and the Ready condition says why;
- a model server that dies is started again (backing off while it keeps dying), from the model folder fetched
  before when its sha256 still matches, so a restart needs neither a new promotion nor S3;
- a server left by an earlier serving process is stopped and its revision started afresh.

State is kept in ``<state>/serving/state.json``; status, in KServe's own schema, in ``status.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from serving import shared
from serving.local import graph as graph_routes
from serving.local import servers, status
from serving.local.model import Revision, Service, traffic

_logger = logging.getLogger(__name__)
RESTART_BACKOFF_CAP = 30.0
DEFAULT_DOMAIN = shared.DEFAULT_DOMAIN


class Reconciler:
    """Keeps model servers and traffic in line with the desired state.

    Args:
        state_dir: Where model caches, logs and ``status.json`` go.
        fetch: Downloads an ``s3://`` folder into a local folder.
        base_url: The gateway's URL, for ``status.address.url``.
        domain: The ingress domain of ``status.url`` (``<name>.<namespace>.<domain>``).
    """

    def __init__(
        self, state_dir: Path, fetch: Any, base_url: str, domain: str = DEFAULT_DOMAIN, warm: bool = True
    ) -> None:
        self.root = state_dir / "serving"
        self.root.mkdir(parents=True, exist_ok=True)
        self.fetch, self.base_url, self.domain = fetch, base_url, domain
        self.services: dict[str, Service] = {}
        self.graphs: dict[str, dict[str, Any]] = {}
        self.commit = ""
        self.error = ""  # why the newest commit could not be applied ('' when it was)
        self.procs: dict[str, servers.Server] = {}
        self.warm = servers.warm_parent(self.root) if warm else None  # the parent model servers fork from
        self._load()

    # --- persistence -----------------------------------------------------------------------------

    def _load(self) -> None:
        path = self.root / "state.json"
        if not path.exists():
            return
        data = json.loads(path.read_text())
        for raw in data.get("services", []):
            revisions = [Revision(**r) for r in raw.pop("revisions")]
            service = Service(**raw, revisions=revisions)
            self.services[service.key] = service
        self.graphs = data.get("graphs", {})
        self.commit, self.error = data.get("commit", ""), data.get("error", "")
        earlier = data.get("warm") or {}
        servers.kill_group(int(earlier.get("pid", 0)), float(earlier.get("started", 0.0)))
        if any("/" not in k for k in self.graphs):  # written before namespaces: render the commit again
            self.graphs, self.commit = {}, ""
        for service in self.services.values():  # servers of an earlier serving process are not ours to trust
            for revision in service.revisions:
                servers.kill_group(revision.pid, revision.started)
                if revision.name in service.serving() and revision.state != "Failed":
                    revision.state, revision.pid, revision.retry_at = "Pending", 0, 0.0
                    revision.message = "restarting after local serving restarted"

    def save(self) -> None:
        """Write the internal state and the KServe-shaped status atomically."""
        services = [asdict(s) for s in self.services.values()]
        warm = {"pid": self.warm.pid, "started": self.warm.started} if self.warm else {}
        state = {"commit": self.commit, "error": self.error, "graphs": self.graphs, "services": services, "warm": warm}
        for path, body in ((self.root / "state.json", state), (shared.status_path(self.root.parent), self.status())):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(body, indent=1))
            tmp.replace(path)

    # --- desired state ---------------------------------------------------------------------------

    def apply(self, commit: str, docs: list[dict[str, Any]]) -> None:
        """Take a rendered desired state (InferenceServices and InferenceGraphs of every namespace) from a commit."""
        wanted = {_key(d): d for d in docs if d["kind"] == "InferenceService"}
        graphs = {_key(d): d for d in docs if d["kind"] == "InferenceGraph"}
        for graph in graphs.values():
            graph_routes.check(graph)  # an unroutable graph refuses the whole commit; what runs keeps serving
        self.graphs = graphs
        for doc in wanted.values():
            self._apply_service(doc)
        for key in list(self.services):
            if key not in wanted:
                self._delete(key)
        self.commit = commit

    def _apply_service(self, doc: dict[str, Any]) -> None:
        """Take one InferenceService in either KServe deployment mode (``model`` says how each splits traffic)."""
        meta, spec = doc["metadata"], doc["spec"]
        notes = meta.get("annotations", {})
        technique = meta.get("labels", {}).get(shared.TECHNIQUE, "")
        service = self.services.setdefault(_key(doc), Service(meta["name"], _namespace(doc), technique))
        service.mode = notes.get(shared.DEPLOYMENT_MODE, "Serverless")
        canaries = spec.get("canary") or []
        if canaries:  # Standard mode: the stable predictor and the canary are each named in the manifest
            stable = _revision(service, spec["predictor"], notes, newest=False)
            _revision(service, canaries[0]["predictor"], notes, newest=True)
            service.rolled_out, service.canary = stable.name, canaries[0].get("trafficPercent", 0)
            service.canary_name = str(canaries[0]["predictor"].get("name", ""))
            return
        service.canary, service.canary_name = spec["predictor"].get("canaryTrafficPercent"), ""
        newest = _revision(service, spec["predictor"], notes, newest=True)
        if service.canary is None and newest.state == "Ready":
            service.rolled_out = newest.name

    def _delete(self, key: str) -> None:
        service = self.services.pop(key)
        for revision in service.revisions:
            self._stop(service, revision)

    # --- processes -------------------------------------------------------------------------------

    def step(self) -> None:
        """Advance the revisions that serve (fetch, start, check readiness, restart), settle traffic, stop the rest."""
        for service in self.services.values():
            keep = service.serving()
            for revision in service.revisions:
                if revision.name in keep:
                    self._advance(service, revision)
                elif revision.state in ("Ready", "Loading", "Pending"):
                    self._stop(service, revision)
            latest = service.latest()
            if latest is not None and latest.state == "Ready" and (service.canary is None or not service.rolled_out):
                service.rolled_out = latest.name
        self.save()

    def _advance(self, service: Service, revision: Revision) -> None:
        if revision.state in ("Pending", "Stopped") and time.time() >= revision.retry_at:
            self._start(service, revision)
        elif revision.state == "Loading":
            self._check(service, revision)
        elif revision.state == "Ready" and not self._running(service, revision):
            self._restart(revision, "the model server exited")

    def _proc_key(self, service: Service, revision: Revision) -> str:
        return f"{service.namespace}/{revision.name}"

    def _log(self, service: Service, revision: Revision) -> Path:
        return self.root / "logs" / service.namespace / f"{revision.name}.log"

    def _running(self, service: Service, revision: Revision) -> bool:
        proc = self.procs.get(self._proc_key(service, revision))
        if proc is not None and proc.pid == revision.pid:
            return proc.poll() is None
        return servers.alive(revision.pid)

    def _restart(self, revision: Revision, why: str) -> None:
        """Queue a revision to start again, backing off (1 s doubling to 30 s) while it keeps failing."""
        revision.restarts += 1
        delay = min(RESTART_BACKOFF_CAP, 2.0 ** min(revision.restarts - 1, 5))
        revision.state, revision.pid, revision.retry_at = "Pending", 0, time.time() + delay
        revision.message = f"{why}; restart {revision.restarts} in {delay:.0f}s"
        _logger.warning("%s: %s", revision.name, revision.message)

    def _materialize(self, service: Service, revision: Revision) -> Path | None:
        """The revision's model folder: the local copy when it is intact, else fetched again (None on failure)."""
        folder = self.root / "models" / service.namespace / revision.name
        if _cached(revision, folder):
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
        folder = self._materialize(service, revision)
        if folder is None:
            return
        revision.port = servers.free_port()
        if self.warm is not None:
            self.warm.ensure()
        log = self._log(service, revision)
        proc = servers.start(service.name, folder, revision.sha256, revision.port, log, self.warm)
        self.procs[self._proc_key(service, revision)] = proc
        revision.pid, revision.state, revision.message = proc.pid, "Loading", ""
        revision.started = servers.create_time(proc.pid)

    def _check(self, service: Service, revision: Revision) -> None:
        if servers.ready(revision.port):
            revision.state, revision.message = "Ready", ""
            return
        if self._running(service, revision):
            return
        tail = servers.last_line(self._log(service, revision))
        proc = self.procs.get(self._proc_key(service, revision))
        if proc is not None and proc.returncode == servers.REFUSED:  # the artifact was refused: retrying cannot help
            revision.state = "Failed"
            revision.message = f"model failed to load: {tail or 'the artifact was refused'}"[:500]
            return
        self._restart(revision, f"the model server exited while loading: {tail or '-'}"[:300])

    def _stop(self, service: Service, revision: Revision) -> None:
        if revision.pid and self._running(service, revision):
            servers.kill_group(revision.pid, revision.started, signal.SIGTERM)
        self.procs.pop(self._proc_key(service, revision), None)
        revision.state = "Stopped" if revision.state != "Failed" else revision.state

    def stop_all(self) -> None:
        """Stop every model server (on shutdown)."""
        for service in self.services.values():
            for revision in service.revisions:
                if revision.state in ("Ready", "Loading"):
                    self._stop(service, revision)
                    revision.state = "Pending"  # it serves again when serving starts again
        if self.warm is not None:
            self.warm.stop()
        self.save()

    # --- status ----------------------------------------------------------------------------------

    def versions(self) -> dict[str, tuple[str, str]]:
        """Revision name -> (registry model version, MLflow run id): who answers, for the gateway's headers."""
        return {r.name: (r.model_version, r.run_id) for s in self.services.values() for r in s.revisions}

    def routes(self) -> dict[str, list[tuple[int, int, str]]]:
        """Gateway routes: ``namespace/name`` -> [(percent, port, revision)] of ready revisions with traffic."""
        table: dict[str, list[tuple[int, int, str]]] = {}
        for key, service in self.services.items():
            table[key] = [
                (t["percent"], service.get(t["revisionName"]).port, t["revisionName"])  # type: ignore[union-attr]
                for t in traffic(service)
                if t["percent"] > 0
            ]
        return table

    def items(self) -> list[dict[str, Any]]:
        """Every InferenceService with its KServe-shaped status."""
        return [status.inference_service(s, self.base_url, self.domain) for s in self.services.values()]

    def problems(self) -> list[str]:
        """One line per InferenceService that is not Ready, or graph step naming no service, saying why."""
        found = status.problems(self.items())
        for key, graph in sorted(self.graphs.items()):
            namespace = key.split("/", 1)[0]
            for service in sorted(graph_routes.services(graph)):
                if f"{namespace}/{service}" not in self.services:
                    found.append(f"{key}: routes to InferenceService {service}, which {namespace} does not serve")
        return found

    def status(self) -> dict[str, Any]:
        """InferenceServices and InferenceGraphs with KServe-shaped status, plus the gateway's routes."""
        items = self.items()
        ready = {
            f"{i['metadata']['namespace']}/{i['metadata']['name']}"
            for i in items
            if i["status"]["conditions"][0]["status"] == "True"
        }
        graphs = [status.inference_graph(k, g, self.base_url, self.domain, ready) for k, g in self.graphs.items()]
        return {
            "commit": self.commit,
            "error": self.error,
            "items": items,
            "graphs": graphs,
            "routes": self.routes(),
            "updated": status.now(),
        }


def _revision(service: Service, predictor: dict[str, Any], notes: dict[str, str], newest: bool) -> Revision:
    """The revision serving a predictor's pin (its own annotations name it in Standard mode, else the service's)."""
    own = {**notes, **predictor.get("annotations", {})}
    version, run = own.get(shared.MODEL_VERSION, ""), own.get(shared.RUN_ID, "")
    return service.revision_for(
        predictor["model"]["storageUri"], own.get(shared.MODEL_SHA256, ""), version, run, newest
    )


def _namespace(doc: dict[str, Any]) -> str:
    return str(doc["metadata"].get("namespace") or "default")


def _key(doc: dict[str, Any]) -> str:
    return f"{_namespace(doc)}/{doc['metadata']['name']}"


def _cached(revision: Revision, folder: Path) -> bool:
    """Whether ``folder`` already holds this revision's model file with the pinned sha256."""
    found = list(folder.rglob("model.pkl")) if folder.is_dir() else []
    if len(found) != 1 or not (folder / "MLmodel").exists():
        return False
    return not revision.sha256 or hashlib.sha256(found[0].read_bytes()).hexdigest() == revision.sha256


def wait_until(predicate: Any, timeout: float) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())
