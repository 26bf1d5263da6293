"""Run summaries to a Slack-compatible incoming webhook (``CTCD_NOTIFY_URL``; none means a log line only).

Delivery is retried with backoff and never fails the workflow: a notification that cannot be delivered is
logged, and the run's own status stands.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from workflows.platform import mlflow_tags

_logger = logging.getLogger(__name__)


def summary(facts: dict[str, Any]) -> dict[str, Any]:
    """The message: a one-line ``text`` plus the facts as ``fields`` (Slack's attachment format)."""
    icon = {"Succeeded": ":white_check_mark:", "Failed": ":x:", "Error": ":warning:"}.get(facts.get("status", ""), "")
    text = (
        f"{icon} {facts.get('workflow', '?')} {facts.get('status', '?')}: {facts.get('technique', '-')} "
        f"v{facts.get('version') or '-'} {facts.get('decision') or ''}"
    ).strip()
    fields = [{"title": k, "value": str(v), "short": True} for k, v in facts.items() if v not in (None, "")]
    return {"text": text, "attachments": [{"fields": fields}]}


def send(url: str, message: dict[str, Any], attempts: int = 4, backoff: float = 0.5) -> bool:
    """Post ``message``; True once delivered. Never raises."""
    if not url:
        _logger.info("notification (no CTCD_NOTIFY_URL): %s", message["text"])
        return False
    for attempt in range(attempts):
        try:
            reply = httpx.post(url, json=message, timeout=10)
            if reply.status_code < 300:
                return True
            _logger.warning("notification attempt %d: HTTP %d", attempt + 1, reply.status_code)
        except httpx.HTTPError as exc:
            _logger.warning("notification attempt %d failed: %s", attempt + 1, exc)
        time.sleep(backoff * 2**attempt)
    _logger.error("notification not delivered after %d attempts: %s", attempts, message["text"])
    return False


def facts(
    settings: Any, workflow: str, status: str, technique: str, failures: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One summary per technique a run registered (or one for the run when it registered nothing).

    Facts: status, technique, version, metric, champion metric, decision, commit/branch and the run id.
    """
    from models.contract import discover
    from workflows.platform import registry

    client = registry.client(settings.mlflow_tracking_uri)
    found = []
    for name in sorted(discover()):
        if technique not in ("", "all", name):
            continue
        for version in client.search_model_versions(f"name = '{name}'"):
            if version.tags.get(mlflow_tags.WORKFLOW_RUN) != workflow:
                continue
            found.append(
                {
                    "workflow": workflow,
                    "status": status,
                    "technique": name,
                    "version": version.version,
                    "metric": version.tags.get(mlflow_tags.GATE_CHALLENGER),
                    "champion_metric": version.tags.get(mlflow_tags.GATE_CHAMPION),
                    "decision": version.tags.get(mlflow_tags.GATE_DECISION),
                    "commit": _commit(settings, version.run_id or "") if "://" not in settings.git_remote else "",
                }
            )
    if not found:
        failed = ", ".join(f["displayName"] for f in failures) or ""
        found.append({"workflow": workflow, "status": status, "technique": technique or "-", "failed_steps": failed})
    return found


def _commit(settings: Any, run_id: str) -> str:
    """The promotion commit (and branch) that carries a run's model, if any."""
    from workflows.platform.gitrepo import git

    out = git(
        settings.state_dir,
        "--git-dir",
        settings.git_remote,
        "log",
        "--all",
        "--format=%h",
        "--grep",
        f"MLflow-Run-Id: {run_id}",
        check=False,
    ).stdout.split()
    if not out:
        return ""
    branches = git(
        settings.state_dir, "--git-dir", settings.git_remote, "branch", "--contains", out[0], check=False
    ).stdout.split()
    return f"{out[0]} on {','.join(b for b in branches if b != '*') or 'main'}"
