"""The desired state under ``gitops/``: KServe manifests per technique, one version file per environment.

Layout::

    gitops/models/<technique>/base/              kustomization.yaml, inferenceservice.yaml (no model pinned)
    gitops/models/<technique>/ab/                the B variant and the InferenceGraph splitter (A/B only)
    gitops/models/<technique>/overlays/<env>/    kustomization.yaml, version.yaml

``version.yaml`` is the one file a promotion edits: a strategic-merge patch that pins an immutable
``storageUri`` (the registered version's artifacts in S3, never an alias), the canary percent or the A/B
weights, and annotations naming the registry version, its sha256 and lineage.

A canary is written in the form of the technique's KServe deployment mode (``serving.mode`` in technique.yaml):

- ``serverless`` (the default): the new pin is the predictor, with ``canaryTrafficPercent``; Knative keeps the
  earlier revision and gives it the rest;
- ``standard`` (KServe's RawDeployment): there are no revisions, so the stable pin stays in ``spec.predictor`` and
  the new one is ``spec.canary[0]`` with its ``trafficPercent``.  Each predictor is named after its version
  (``v3``): ending a canary renames the stable predictor to the canary's name, which KServe does without a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from serving import shared
from workflows.errors import CtcdError

ENVIRONMENTS, NAMESPACE = shared.ENVIRONMENTS, shared.NAMESPACE
RUNTIME = "ctcd-predictor"
SERVING_ACCOUNT = "ctcd-serving"
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it: ~10x faster
ANNOTATION = shared.PREFIX
COLLECTOR_URL = "http://ctcd-collector.ctcd.svc.cluster.local/log"  # gitops/platform/collector.yaml
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
Strategy = Literal["full", "canary", "ab"]
Mode = Literal["serverless", "standard"]


class GitopsError(CtcdError, ValueError):
    """A promotion's inputs or a version file are invalid; the message says which and why."""


@dataclass(frozen=True)
class Pin:
    """One registered model version, as the manifests pin it.

    Attributes:
        version: Registry version number.
        storage_uri: Immutable ``s3://`` URI of the version's model folder.
        sha256: sha256 of the serialized model file (the predictor verifies it).
        run_id: MLflow run that produced it.
        dataset_version: Dataset version it was trained on.
    """

    version: str
    storage_uri: str
    sha256: str
    run_id: str = ""
    dataset_version: str = ""

    def __post_init__(self) -> None:
        """Refuse anything but a version number, an s3:// URI and a hex sha256 (no alias, no injection)."""
        if not re.fullmatch(r"[0-9]+", self.version):
            raise GitopsError(f"model version {self.version!r} must be a registry version number such as 3")
        if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/=-]+)?", self.storage_uri):
            raise GitopsError(f"storageUri {self.storage_uri!r} must be an s3://bucket/path URI")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise GitopsError(f"sha256 {self.sha256!r} must be 64 hex characters")


@dataclass(frozen=True)
class Desired:
    """What one environment of one technique should serve."""

    technique: str
    environment: str
    strategy: Strategy
    pin: Pin
    canary_percent: int | None = None
    b_pin: Pin | None = None
    weights: tuple[int, int] = (50, 50)
    extra: dict[str, str] = field(default_factory=dict)
    mode: Mode = "serverless"
    stable: Pin | None = None  # Standard mode: the pin a canary splits against (None: the canary takes all)

    def __post_init__(self) -> None:
        """Refuse a bad name, environment, canary percent or A/B split."""
        check_name(self.technique, "technique")
        if self.strategy not in ("full", "canary", "ab"):
            raise GitopsError(f"strategy {self.strategy!r} must be canary, full or ab")
        if self.environment not in ENVIRONMENTS:
            raise GitopsError(f"environment {self.environment!r} must be one of {', '.join(ENVIRONMENTS)}")
        if self.strategy == "canary" and not (self.canary_percent is not None and 0 <= self.canary_percent <= 100):
            raise GitopsError("a canary needs a percent from 0 to 100")
        if self.strategy == "ab" and (self.b_pin is None or sum(self.weights) != 100 or min(self.weights) < 0):
            raise GitopsError("A/B needs a second version and two weights that sum to 100")


def check_name(value: str, what: str) -> str:
    """Refuse anything but a DNS-1123 label (so no name can inject YAML, paths or git arguments)."""
    if not DNS1123.fullmatch(value or ""):
        raise GitopsError(f"{what} {value!r} must be a DNS-1123 label (lowercase letters, digits and '-')")
    return value


_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
VERSION = re.compile(r"^[1-9][0-9]{0,8}$")


def check_ref(value: str, what: str = "branch") -> str:
    """Refuse a name git would not accept as a branch (``git check-ref-format``), or one read as an option."""
    parts = (value or "").split("/")
    bad = (
        not value
        or value.startswith("-")
        or value == "@"
        or value.endswith((".", "/"))
        or _REF_FORBIDDEN.search(value) is not None
        or any(not p or p.startswith(".") or p.endswith(".lock") for p in parts)
    )
    if bad:
        raise GitopsError(f"{what} {value!r} is not a valid git branch name (see `git check-ref-format`)")
    return value


def check_version(value: str) -> str:
    """Refuse anything but a registry version number (1, 2, …)."""
    if not VERSION.fullmatch(str(value or "")):
        raise GitopsError(f"version {value!r} must be a registry version number such as 3")
    return str(value)


def _dump(docs: list[dict[str, Any]], header: str) -> str:
    return header + "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs).removeprefix("---\n")


def inference_service(technique: str, name: str | None = None, mode: Mode = "serverless") -> dict[str, Any]:
    """The base InferenceService of a technique: the generic predictor runtime, no model pinned yet."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name or technique,
            "labels": {shared.PART_OF: "ctcd", shared.TECHNIQUE: technique},
            "annotations": {shared.DEPLOYMENT_MODE: shared.DEPLOYMENT_MODES[mode]},
        },
        "spec": {"predictor": _predictor("s3://unpinned/promote-a-version")},
    }


def _predictor(storage_uri: str) -> dict[str, Any]:
    """A whole predictor of the ctcd runtime (a Standard canary states it all: it inherits nothing)."""
    return {
        "serviceAccountName": SERVING_ACCOUNT,
        "minReplicas": 1,
        "model": {
            "modelFormat": {"name": "ctcd-sklearn"},
            "runtime": RUNTIME,
            "storageUri": storage_uri,
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        },
    }


def mode_of(base: str) -> Mode:
    """The deployment mode a technique's ``base/inferenceservice.yaml`` was compiled with."""
    docs = [d for d in yaml.load_all(base, Loader=SAFE_LOADER) if isinstance(d, dict)]
    value = docs[0].get("metadata", {}).get("annotations", {}).get(shared.DEPLOYMENT_MODE) if docs else None
    return "standard" if value in ("Standard", "RawDeployment") else "serverless"


def base_files(technique: str, mode: Mode = "serverless") -> dict[str, str]:
    """``base/`` and ``ab/`` of a technique (generated by ``ctcd compile``, the same for every environment)."""
    header = (
        f"# Generated by `ctcd compile` for {technique}. "
        "The model is pinned per environment in overlays/*/version.yaml.\n"
    )
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": f"{technique}-ab", "labels": {shared.TECHNIQUE: technique}},
        "spec": {
            "nodes": {
                "root": {
                    "routerType": "Splitter",
                    "steps": [
                        {"serviceName": technique, "name": "a", "weight": 50},
                        {"serviceName": f"{technique}-b", "name": "b", "weight": 50},
                    ],
                }
            }
        },
    }
    return {
        "base/kustomization.yaml": _dump(
            [
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": ["inferenceservice.yaml"],
                }
            ],
            header,
        ),
        "base/inferenceservice.yaml": _dump([inference_service(technique, mode=mode)], header),
        "ab/kustomization.yaml": _dump(
            [
                {
                    "apiVersion": "kustomize.config.k8s.io/v1alpha1",
                    "kind": "Component",
                    "resources": ["inferenceservice-b.yaml", "inferencegraph.yaml"],
                }
            ],
            header,
        ),
        "ab/inferenceservice-b.yaml": _dump([inference_service(technique, f"{technique}-b", mode)], header),
        "ab/inferencegraph.yaml": _dump([graph], header),
    }


def payload_logger(version: str) -> dict[str, str]:
    """KServe's payload logger to the ctcd collector, the version in its URL (each canary revision keeps its own)."""
    return {"mode": "all", "url": f"{COLLECTOR_URL}?model_version={version}"}


def _standard(pin: Pin, whole: bool) -> dict[str, Any]:
    """A Standard-mode predictor named after its version, its pin in its own annotations."""
    body = _predictor(pin.storage_uri) if whole else {"model": {"storageUri": pin.storage_uri}}
    if whole:  # the canary's schema requires its container's name (KServe's own default for a predictor)
        body["model"] = {"name": "kserve-container", **body["model"]}
    notes = {shared.MODEL_VERSION: pin.version, shared.MODEL_SHA256: pin.sha256, shared.RUN_ID: pin.run_id}
    return {"name": f"v{pin.version}", "annotations": notes, **body, "logger": payload_logger(pin.version)}


def _pin_patch(
    name: str, pin: Pin, annotations: dict[str, str], canary: int | None, desired: Desired
) -> dict[str, Any]:
    predictor: dict[str, Any] = {"model": {"storageUri": pin.storage_uri}, "logger": payload_logger(pin.version)}
    spec: dict[str, Any] = {"predictor": predictor}
    if desired.mode == "standard" and canary is not None and desired.stable is not None:
        canaries = [{"predictor": _standard(pin, True), "trafficPercent": canary}]
        spec = {"predictor": _standard(desired.stable, False), "canary": canaries}
    elif desired.mode == "standard":
        spec["predictor"] = _standard(pin, False)
    elif canary is not None:
        predictor["canaryTrafficPercent"] = canary
    notes = {
        f"{ANNOTATION}model-version": pin.version,
        f"{ANNOTATION}model-sha256": pin.sha256,
        f"{ANNOTATION}run-id": pin.run_id,
        f"{ANNOTATION}dataset-version": pin.dataset_version,
        **annotations,
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": notes},
        "spec": spec,
    }


def overlay_files(desired: Desired) -> dict[str, str]:
    """``overlays/<env>/kustomization.yaml`` and ``version.yaml`` for a desired state."""
    t, env = desired.technique, desired.environment
    notes = {f"{ANNOTATION}strategy": desired.strategy, **{f"{ANNOTATION}{k}": v for k, v in desired.extra.items()}}
    canary = desired.canary_percent if desired.strategy == "canary" else None
    patches = [_pin_patch(t, desired.pin, notes, canary, desired)]
    if desired.strategy == "ab" and desired.b_pin is not None:
        patches.append(_pin_patch(f"{t}-b", desired.b_pin, notes, None, desired))
        patches.append(
            {
                "apiVersion": "serving.kserve.io/v1alpha1",
                "kind": "InferenceGraph",
                "metadata": {"name": f"{t}-ab"},
                "spec": {
                    "nodes": {
                        "root": {
                            "routerType": "Splitter",
                            "steps": [
                                {"serviceName": t, "name": "a", "weight": desired.weights[0]},
                                {"serviceName": f"{t}-b", "name": "b", "weight": desired.weights[1]},
                            ],
                        }
                    }
                },
            }
        )
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE[env],
        "resources": ["../../base"],
        "patches": [{"path": "version.yaml"}],
    }
    if desired.strategy == "ab":
        kustomization["components"] = ["../../ab"]
    header = f"# {t} in {env}: the one file a promotion edits (`ctcd promote`). Pins an immutable storageUri.\n"
    return {
        f"overlays/{env}/kustomization.yaml": _dump([kustomization], f"# {t} in {env}.\n"),
        f"overlays/{env}/version.yaml": _dump(patches, header),
    }


def read_version(text: str) -> dict[str, Any]:
    """The pins and traffic of a version file: ``{"a": {...}, "b": {...}|None, "canary": int|None, "weights": ...}``.

    ``a`` is the newest pin (a canary's own, in either mode); ``previous`` is the version a canary splits against
    (the one rolled out when it was made; '' when none), and ``stable`` that pin in Standard mode (else None).

    Raises:
        GitopsError: The file is not a version file ctcd wrote.
    """
    try:
        docs = [d for d in yaml.load_all(text, Loader=SAFE_LOADER) if d]
    except yaml.YAMLError as exc:
        raise GitopsError(f"version file is not YAML: {exc}") from exc
    services = [d for d in docs if d.get("kind") == "InferenceService"]
    if not services:
        raise GitopsError("version file has no InferenceService patch")
    graph = next((d for d in docs if d.get("kind") == "InferenceGraph"), None)

    def pin(doc: dict[str, Any]) -> dict[str, Any]:
        notes = doc["metadata"].get("annotations", {})
        predictor = (doc["spec"].get("canary") or [doc["spec"]])[0]["predictor"]
        return {
            "name": doc["metadata"]["name"],
            "storage_uri": predictor["model"]["storageUri"],
            "version": notes.get(f"{ANNOTATION}model-version", ""),
            "sha256": notes.get(f"{ANNOTATION}model-sha256", ""),
            "run_id": notes.get(f"{ANNOTATION}run-id", ""),
            "dataset_version": notes.get(f"{ANNOTATION}dataset-version", ""),
            "strategy": notes.get(f"{ANNOTATION}strategy", "full"),
        }

    weights = None
    if graph:
        steps = graph["spec"]["nodes"]["root"]["steps"]
        weights = {s["serviceName"]: int(s["weight"]) for s in steps}
    first = services[0]["metadata"].get("annotations", {})
    spec = services[0]["spec"]
    return {
        "a": pin(services[0]),
        "b": pin(services[1]) if len(services) > 1 else None,
        "canary": spec["canary"][0]["trafficPercent"]
        if spec.get("canary")
        else spec["predictor"].get("canaryTrafficPercent"),
        "weights": weights,
        "previous": str(first.get(f"{ANNOTATION}previous-version", "")),
        "stable": _stable(spec["predictor"]) if spec.get("canary") else None,
    }


def _stable(predictor: dict[str, Any]) -> dict[str, str]:
    """The stable pin of a Standard-mode canary, from its predictor's own annotations."""
    notes = predictor.get("annotations", {})
    return {
        "version": str(notes.get(shared.MODEL_VERSION, "")),
        "storage_uri": str(predictor["model"]["storageUri"]),
        "sha256": str(notes.get(shared.MODEL_SHA256, "")),
        "run_id": str(notes.get(shared.RUN_ID, "")),
    }
