"""One round of canary analysis for a technique in an environment: read, decide, act by a commit.

The spec is ``gitops/models/<technique>/overlays/<env>/analysis.yaml`` on main (no file: the defaults of
:mod:`workflows.delivery.analysis`); it is not a kustomize resource, so nothing is applied to a cluster from it.
A pass moves the canary to its next traffic step or rolls it out, a fail rolls it back (``ctcd rollback``), an
inconclusive round leaves it and says so. Each action is a commit to main with the trailers ``Analysis`` (the
decision), ``Analysis-Evidence`` (each metric's figures) and ``Analysis-Run`` (the MLflow run of the readout, with
its chart), taken only while main still pins the canary that was
read: a second round on the same readout, or a round after someone moved the canary, commits nothing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import yaml

from workflows.delivery import analysis, overlays, promotion, readout, readout_run, rollback
from workflows.platform import gitrepo
from workflows.settings import Settings

_logger = logging.getLogger(__name__)
SPEC_FILE = "analysis.yaml"


@dataclass(frozen=True)
class Round:
    """What one round found and did."""

    technique: str
    environment: str
    decision: str  # pass, fail, inconclusive, or none (no live canary)
    action: str
    evidence: str
    commit: str = ""


def spec(settings: Settings, technique: str, environment: str) -> dict[str, Any]:
    """The environment's analysis spec on main (the defaults when there is none).

    Raises:
        AnalysisError: The file is not a mapping with ``steps`` and ``metrics``.
    """
    rel = promotion.version_path(technique, environment).replace("version.yaml", SPEC_FILE)
    with gitrepo.scratch_clone(settings.git_remote, settings.git_branch, only=rel) as repo:
        path = repo / rel
        if not path.is_file():
            return dict(analysis.DEFAULT_SPEC)
        loaded = yaml.safe_load(path.read_text())
    body = (loaded or {}).get("spec", loaded) if isinstance(loaded, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("metrics"), list):
        raise analysis.AnalysisError(f"{rel}: give spec.steps and spec.metrics (see the README)")
    for metric in body["metrics"]:
        analysis.condition(metric.get("successCondition", ""))
        analysis.condition(metric.get("failureCondition", ""))
        analysis.check_limits(metric)
    return {"steps": list(body.get("steps", analysis.DEFAULT_SPEC["steps"])), "metrics": body["metrics"]}


MEASUREMENTS = "analysis/"  # s3://<predictions>/analysis/<technique>/<env>/<step ms>/<time>-<id>.json


def measurements(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """The earlier rounds of this canary step: when each ran and each metric's outcome, oldest first."""
    from workflows.training import datasets

    return [json.loads(datasets.read_object(s3, bucket, key)) for key in datasets.list_keys(s3, bucket, prefix)]


def record_measurement(s3: Any, bucket: str, prefix: str, verdict: analysis.Verdict) -> None:
    """Keep this round's outcomes for the step's limits (one object per round, never rewritten)."""
    now = int(time.time() * 1000)
    body = json.dumps({"time_ms": now, "measured": verdict.measured}).encode()
    s3.put_object(Bucket=bucket, Key=f"{prefix}{now:015d}-{uuid.uuid4().hex[:8]}.json", Body=body)


def _too_soon(rules: dict[str, Any], earlier: list[dict[str, Any]]) -> str:
    """Why this round must wait: the step was measured less than the shortest ``interval`` ago ('' if not)."""
    intervals = [analysis.seconds(m["interval"]) for m in rules["metrics"] if "interval" in m]
    if not intervals or not earlier:
        return ""
    due = earlier[-1]["time_ms"] / 1000 + min(intervals)
    return f"next measurement after {time.strftime('%H:%M:%S', time.gmtime(due))} UTC" if time.time() < due else ""


def _same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two reads of a version file pin the same thing (when it was committed aside)."""
    if a is None or b is None:
        return False
    return {k: v for k, v in a.items() if k != "committed_ms"} == {k: v for k, v in b.items() if k != "committed_ms"}


def _pinned(settings: Settings, technique: str, environment: str) -> dict[str, Any] | None:
    """The environment's version file on main, with ``committed_ms`` (when main last changed it)."""
    found = promotion.pinned(settings.git_remote, settings.git_branch).get((technique, environment))
    if isinstance(found, Exception):
        raise found
    return found


def run(settings: Settings, s3: Any, technique: str, environment: str, since_days: int = 31) -> Round:
    """Analyse the live canary of ``technique`` in ``environment`` and act on the verdict."""
    doc = _pinned(settings, technique, environment)
    if doc is None or doc["canary"] is None:
        return Round(technique, environment, "none", "no live canary", "")
    canary, previous, percent = str(doc["a"]["version"]), str(doc.get("previous") or ""), int(doc["canary"])
    # Each step is judged on the traffic it served, never twice on the same: git keeps whole seconds, so the second
    # the step was committed in is left out (an answer in it may have come just before the commit).
    started = int(doc.get("committed_ms", 0)) + 1000 if doc.get("committed_ms") else 0
    found = readout.arms(s3, settings, technique, overlays.NAMESPACE[environment], since_days, started)
    rules = spec(settings, technique, environment)
    if not previous:  # a first canary takes all the traffic: nothing to compare with, only its own figures count
        rules = {**rules, "metrics": [m for m in rules["metrics"] if m["name"] not in analysis.COMPARATIVE]}
    step_key = f"{MEASUREMENTS}{technique}/{environment}/{started}/"
    earlier = measurements(s3, settings.predictions_bucket, step_key)
    wait = _too_soon(rules, earlier)
    if wait:
        return Round(technique, environment, "inconclusive", f"v{canary} stays at {percent}%: {wait}", "")
    verdict = analysis.decide(rules, analysis.figures(found, canary, previous), [m["measured"] for m in earlier])
    record_measurement(s3, settings.predictions_bucket, step_key, verdict)
    evidence = readout_run.log(settings.mlflow_tracking_uri, found)
    trailers = {
        "Source": "analysis",
        "Analysis": verdict.decision,
        "Analysis-Evidence": verdict.evidence()[:900],
        "Analysis-Run": evidence,
    }
    if verdict.decision == "inconclusive":
        escalated = f": needs a person, {verdict.escalation}" if verdict.escalation else ""
        return Round(
            technique, environment, "inconclusive", f"v{canary} stays at {percent}%{escalated}", verdict.evidence()
        )
    if not _same(doc, _pinned(settings, technique, environment)):
        return Round(technique, environment, verdict.decision, "git moved on: left alone", verdict.evidence())
    if verdict.decision == "fail" and not previous:
        return Round(technique, environment, "fail", f"v{canary} has no earlier version to roll back to: left", "")
    if verdict.decision == "fail":
        done = rollback.rollback(settings.git_remote, settings.git_branch, technique, environment, evidence=trailers)
        return Round(technique, environment, "fail", f"v{canary} rolled back", verdict.evidence(), done.commit)
    step = analysis.next_step(rules["steps"], percent)
    if step is None or not previous:
        done = promotion.rollout(settings.git_remote, settings.git_branch, technique, environment, trailers)
        return Round(technique, environment, "pass", f"v{canary} rolled out to 100%", verdict.evidence(), done.commit)
    a = doc["a"]
    pin = overlays.Pin(a["version"], a["storage_uri"], a["sha256"], a["run_id"], a["dataset_version"])
    desired = overlays.Desired(
        technique, environment, "canary", pin, canary_percent=step, extra={"previous-version": previous}
    )
    done = promotion.promote(settings.git_remote, settings.git_branch, desired, trailers, True)
    return Round(technique, environment, "pass", f"v{canary} {percent}% -> {step}%", verdict.evidence(), done.commit)


def announce(settings: Settings, rounds: list[Round]) -> None:
    """Tell people of every live canary's round (``CTCD_NOTIFY_URL``): an inconclusive one waits for more labels."""
    from workflows.delivery import notify

    for done in rounds:
        if done.decision == "none":
            continue
        facts = {
            "workflow": "canary-analysis",
            "status": "Succeeded",
            "technique": done.technique,
            "environment": done.environment,
            "decision": done.decision,
            "action": done.action,
            "evidence": done.evidence,
            "commit": done.commit[:12],
        }
        notify.send(settings.notify_url, notify.summary(facts))
