"""Run records of the local engine, kept under ``<state>/runs/<run-id>/``.

Each run folder holds ``workflow.json`` (an Argo ``Workflow`` object whose ``status`` follows Argo's
schema), one log file per node under ``logs/`` and each node's scratch folder under ``nodes/``.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from pathlib import Path
from typing import Any

_ALPHABET = string.ascii_lowercase + string.digits


def new_run_name(prefix: str) -> str:
    """A name in Argo's ``generateName`` style: the prefix plus five random characters."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(5))


class RunStore:
    """Reads and writes run records in one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "runs"

    def run_dir(self, name: str) -> Path:
        """The folder of one run."""
        return self.root / name

    def save(self, workflow: dict[str, Any]) -> None:
        """Write a run's workflow object atomically (a reader never sees half a file)."""
        folder = self.run_dir(workflow["metadata"]["name"])
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".workflow.json.{os.getpid()}"
        tmp.write_text(json.dumps(workflow, indent=1, default=str))
        tmp.replace(folder / "workflow.json")

    def load(self, name: str) -> dict[str, Any]:
        """Read one run.

        Raises:
            KeyError: No such run, with a hint to list runs.
        """
        path = self.run_dir(name) / "workflow.json"
        if not path.exists():
            raise KeyError(f"run {name!r} not found; `ctcd runs list` shows the runs")
        return dict(json.loads(path.read_text()))

    def list(self) -> list[dict[str, Any]]:
        """Every run, newest first."""
        runs = []
        if self.root.exists():
            for path in self.root.glob("*/workflow.json"):
                try:
                    runs.append(json.loads(path.read_text()))
                except (OSError, json.JSONDecodeError):
                    continue
        return sorted(runs, key=lambda w: w["metadata"].get("creationTimestamp", ""), reverse=True)

    def log_path(self, name: str, node_id: str) -> Path:
        """The log file of one node."""
        return self.run_dir(name) / "logs" / f"{node_id}.log"
