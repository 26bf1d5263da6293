"""Argo's ``estimatedDuration``: how long a run, and each of its nodes, took the last time it Succeeded.

The previous run is the newest Succeeded one submitted from the same WorkflowTemplate, ClusterWorkflowTemplate or
CronWorkflow (Argo's labels say which); a run from a file of its own has no estimate, as on a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from workflows.engine.state.nodes import epoch

ORIGINS = (
    "workflows.argoproj.io/workflow-template",
    "workflows.argoproj.io/cluster-workflow-template",
    "workflows.argoproj.io/cron-workflow",
)


def origin(workflow: Mapping[str, Any]) -> tuple[str, str] | None:
    """The label naming the template or CronWorkflow a run was submitted from, with its value."""
    labels = (workflow.get("metadata") or {}).get("labels") or {}
    return next(((key, labels[key]) for key in ORIGINS if key in labels), None)


def baseline(workflow: Mapping[str, Any], previous: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest Succeeded run from the same origin as ``workflow``, or None."""
    source = origin(workflow)
    if source is None:
        return None
    same = [
        w
        for w in previous
        if ((w.get("metadata") or {}).get("labels") or {}).get(source[0]) == source[1]
        and (w.get("status") or {}).get("phase") == "Succeeded"
        and w["metadata"]["name"] != workflow["metadata"]["name"]
    ]
    return max(same, key=lambda w: w["status"].get("finishedAt", ""), default=None)


def durations(run: Mapping[str, Any]) -> dict[str, int]:
    """Whole seconds each node of a finished run took, by its name after the run's name ("" is the run)."""
    name, status = run["metadata"]["name"], run["status"]
    found = {"": _seconds(status)}
    for node in (status.get("nodes") or {}).values():
        if node.get("finishedAt") and node["name"].startswith(name):
            found[node["name"][len(name) :]] = _seconds(node)
    return {k: v for k, v in found.items() if v is not None}


def _seconds(record: Mapping[str, Any]) -> int | None:
    if not record.get("startedAt") or not record.get("finishedAt"):
        return None
    return max(0, round(epoch(record["finishedAt"]) - epoch(record["startedAt"])))
