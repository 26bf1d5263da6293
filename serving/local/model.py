"""What local serving knows of an InferenceService: its revisions and their traffic, by KServe's canary rules.

With ``canaryTrafficPercent: N`` (Serverless mode) the latest ready revision gets N% and the previously rolled-out
one 100−N%; without it the latest gets 100% and becomes the rolled-out one.  A latest revision that is not ready
leaves all traffic on the rolled-out one.  Standard mode's ``spec.canary`` is the same split with the rolled-out
revision named by the manifest (its stable predictor) rather than remembered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _now() -> str:
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
    created: str = field(default_factory=_now)
    restarts: int = 0
    retry_at: float = 0.0
    started: float = 0.0  # the server process's start time, so a reused pid is never taken for it
    run_id: str = ""  # the MLflow run that trained the model (from the version file's annotations)


@dataclass
class Service:
    """One InferenceService in one namespace."""

    name: str
    namespace: str
    technique: str
    created: str = field(default_factory=_now)
    revisions: list[Revision] = field(default_factory=list)
    rolled_out: str = ""
    canary: int | None = None
    generation: int = 0
    mode: str = "Serverless"  # KServe's deploymentMode annotation
    canary_name: str = ""  # Standard mode: the canary predictor's name (its canaryStatuses entry)

    @property
    def key(self) -> str:
        """``namespace/name``: unique across environments."""
        return f"{self.namespace}/{self.name}"

    def latest(self) -> Revision | None:
        """The newest revision."""
        return self.revisions[-1] if self.revisions else None

    def get(self, name: str) -> Revision | None:
        """A revision by name."""
        return next((r for r in self.revisions if r.name == name), None)

    def revision_for(self, uri: str, sha256: str, version: str, run_id: str, newest: bool) -> Revision:
        """The revision of a pin: the latest when it has it (any, for a Standard stable pin), else a new one."""
        candidates = self.revisions[-1:] if newest else self.revisions
        found = next((r for r in reversed(candidates) if (r.storage_uri, r.sha256) == (uri, sha256)), None)
        if found is not None:
            return found
        self.generation += 1
        self.revisions.append(
            Revision(f"{self.name}-predictor-{self.generation:05d}", uri, sha256, version, run_id=run_id)
        )
        return self.revisions[-1]

    def serving(self) -> set[str]:
        """The revisions that may take traffic: the latest and the rolled-out one."""
        latest = self.latest()
        return {latest.name if latest else "", self.rolled_out} - {""}


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
    if prev_name:
        return [{"revisionName": prev_name, "percent": 100, "latestRevision": False, "tag": "prev"}]
    return []
