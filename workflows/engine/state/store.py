"""Run records of the local engine, kept under ``<state>/runs/<run-id>/``.

Each run folder holds ``workflow.json`` (an Argo ``Workflow`` object whose ``status`` follows Argo's
schema), one log file per node under ``logs/`` and each node's scratch folder under ``nodes/``.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import shutil
import signal
import string
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from workflows.engine.state import names
from workflows.engine.state.nodes import epoch

_ALPHABET = string.ascii_lowercase + string.digits
TERMINAL = ("Succeeded", "Failed", "Error")
WORKER_LOST = "the engine worker exited before the run ended (killed or crashed); see {log}"


def process_record(pid: int) -> dict[str, float]:
    """A pid with its start time, so that a later check never takes a reused pid for it."""
    return {"pid": pid, "create_time": psutil.Process(pid).create_time()}


def is_running(record: dict[str, Any]) -> bool:
    """Whether the process a :func:`process_record` names is still that very process."""
    try:
        proc = psutil.Process(int(record["pid"]))
        same = abs(proc.create_time() - float(record["create_time"])) < 0.5
        return bool(same and proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.Error, KeyError, ValueError):
        return False


def ttl_expired(workflow: dict[str, Any], now: float | None = None) -> bool:
    """Whether a finished run's ``ttlStrategy`` says it is to be deleted by now.

    ``secondsAfterSuccess`` applies to a Succeeded run and ``secondsAfterFailure`` to a Failed or Errored one;
    ``secondsAfterCompletion`` to any that has no more specific setting.
    """
    ttl = (workflow.get("spec") or {}).get("ttlStrategy") or {}
    status = workflow.get("status") or {}
    if not ttl or status.get("phase") not in TERMINAL or not status.get("finishedAt"):
        return False
    specific = "secondsAfterSuccess" if status["phase"] == "Succeeded" else "secondsAfterFailure"
    seconds = ttl.get(specific, ttl.get("secondsAfterCompletion"))
    if seconds is None:
        return False
    return (time.time() if now is None else now) >= epoch(status["finishedAt"]) + float(seconds)


def new_run_name(prefix: str) -> str:
    """A name in Argo's ``generateName`` style: the prefix plus five random characters."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(5))


class RunStore:
    """Reads and writes run records in one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "runs"

    def run_dir(self, name: str) -> Path:
        """The folder of one run.

        Raises:
            InvalidName: ``name`` is not a Kubernetes name (it could point outside the state folder).
        """
        return self.root / names.check("run", name)

    def save(self, workflow: dict[str, Any]) -> None:
        """Write a run's workflow object atomically (a reader never sees half a file)."""
        folder = self.run_dir(workflow["metadata"]["name"])
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".workflow.json.{os.getpid()}"
        tmp.write_text(json.dumps(workflow, indent=1, default=str))
        tmp.replace(folder / "workflow.json")

    def load(self, name: str) -> dict[str, Any]:
        """Read one run, settling it first if its worker died (see :meth:`settle`).

        Raises:
            KeyError: No such run, with a hint to list runs.
        """
        path = self.run_dir(name) / "workflow.json"
        if not path.exists():
            raise KeyError(f"run {name!r} not found; `ctcd runs list` shows the runs")
        workflow = self.settle(dict(json.loads(path.read_text())))
        if self._collected(workflow):
            raise KeyError(f"run {name!r} was deleted by its ttlStrategy; `ctcd runs list` shows the runs")
        return workflow

    def list(self) -> list[dict[str, Any]]:
        """Every run, newest first (each settled if its worker died)."""
        runs = []
        if self.root.exists():
            for path in self.root.glob("*/workflow.json"):
                try:
                    workflow = self.settle(json.loads(path.read_text()))
                except (OSError, json.JSONDecodeError):
                    continue
                if not self._collected(workflow):
                    runs.append(workflow)
        return sorted(runs, key=lambda w: w["metadata"].get("creationTimestamp", ""), reverse=True)

    def _collected(self, workflow: dict[str, Any]) -> bool:
        """Delete a finished run whose ``ttlStrategy`` has expired, as Argo's TTL controller does; say if it was."""
        if not ttl_expired(workflow):
            return False
        shutil.rmtree(self.run_dir(workflow["metadata"]["name"]), ignore_errors=True)
        return True

    def record_worker(self, name: str, pid: int) -> None:
        """Remember the detached worker that executes a run."""
        try:
            record = process_record(pid)
        except psutil.Error:
            record = {"pid": pid, "create_time": 0.0}  # it died at once: the run settles as lost
        (self.run_dir(name) / "worker.json").write_text(json.dumps(record))

    def worker(self, name: str) -> dict[str, Any] | None:
        """The recorded worker of a run while it still runs, else None."""
        path = self.run_dir(name) / "worker.json"
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return record if is_running(record) else None

    def worker_alive(self, name: str) -> bool:
        """Whether a run's worker still runs (True while none is recorded: it is being started)."""
        path = self.run_dir(name) / "worker.json"
        if not path.exists():
            return True
        try:
            return is_running(json.loads(path.read_text()))
        except (OSError, ValueError):
            return False

    def record_pod(self, name: str, node_id: str, pid: int) -> None:
        """Remember a running step's process (it leads its process group) until :meth:`forget_pod`."""
        try:
            record = process_record(pid)
        except psutil.Error:
            return  # it has exited already: nothing to remember
        folder = self.run_dir(name) / "pods"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{node_id}.json").write_text(json.dumps(record))

    def forget_pod(self, name: str, node_id: str) -> None:
        """The step's process group has ended."""
        (self.run_dir(name) / "pods" / f"{node_id}.json").unlink(missing_ok=True)

    def settle(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """End a run whose worker died: its steps' process groups are killed, it and its open nodes become Error.

        A run that is over, or whose worker still runs, is returned as it is.  Locks need no release: they
        are file locks that end with the processes holding them.
        """
        name = workflow["metadata"]["name"]
        status = workflow.setdefault("status", {})
        if status.get("phase") in TERMINAL or self.worker_alive(name):
            return workflow
        self._kill_pods(name)
        message = WORKER_LOST.format(log=self.run_dir(name) / "engine.log")
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for node in status.get("nodes", {}).values():
            if node.get("phase") in ("Running", "Pending"):
                node.update(phase="Error", message=message, finishedAt=stamp)
        status.update(phase="Error", message=message, finishedAt=stamp)
        self.save(workflow)
        return workflow

    def settle_all(self) -> builtins.list[str]:
        """Settle every run whose worker died; return the names of the runs this call ended."""
        ended = []
        for path in self.root.glob("*/workflow.json") if self.root.exists() else []:
            try:
                workflow = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if workflow.get("status", {}).get("phase") not in TERMINAL:
                if self.settle(workflow)["status"]["phase"] in TERMINAL:
                    ended.append(workflow["metadata"]["name"])
        return sorted(ended)

    def _kill_pods(self, name: str) -> None:
        for path in (self.run_dir(name) / "pods").glob("*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if is_running(record):
                try:
                    os.killpg(int(record["pid"]), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            path.unlink(missing_ok=True)

    def log_path(self, name: str, node_id: str) -> Path:
        """The log file of one node."""
        return self.run_dir(name) / "logs" / f"{node_id}.log"
