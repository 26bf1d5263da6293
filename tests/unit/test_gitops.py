"""Every overlay renders with the real `kubectl kustomize` and validates; promotions' version files round-trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.contract import discover
from workflows.delivery import overlays
from workflows.delivery.manifests import ManifestError, kustomize, validate
from workflows.settings import REPO_ROOT

SHA = "a" * 64


def pin(version: str) -> overlays.Pin:
    return overlays.Pin(
        version, f"s3://ctcd-artifacts/mlflow/1/models/m-{version}/artifacts", SHA, f"run{version}", "d1"
    )


def write_overlay(root: Path, desired: overlays.Desired) -> Path:
    tech = root / desired.technique
    if not tech.exists():
        shutil.copytree(
            REPO_ROOT / "gitops" / "models" / desired.technique, tech, ignore=shutil.ignore_patterns("overlays")
        )
    bases = overlays.base_files(desired.technique, desired.mode) if desired.mode != "serverless" else {}
    for rel, text in {**bases, **overlays.overlay_files(desired)}.items():
        (tech / rel).parent.mkdir(parents=True, exist_ok=True)
        (tech / rel).write_text(text)
    return tech / "overlays" / desired.environment


@pytest.mark.parametrize("technique", sorted(discover()))
@pytest.mark.parametrize(
    ("strategy", "extra"),
    [("full", {}), ("canary", {"canary_percent": 20}), ("ab", {"b_pin": pin("4"), "weights": (70, 30)})],
)
def test_overlays_render_and_validate(tmp_path: Path, technique: str, strategy: str, extra: dict) -> None:  # type: ignore[type-arg]
    desired = overlays.Desired(technique, "staging", strategy, pin("3"), **extra)  # type: ignore[arg-type]
    docs = kustomize(write_overlay(tmp_path, desired))
    validate(docs, technique)
    isvc = next(d for d in docs if d["kind"] == "InferenceService" and d["metadata"]["name"] == technique)
    assert isvc["metadata"]["namespace"] == "ctcd-staging"
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == pin("3").storage_uri
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "ctcd-predictor"
    assert isvc["metadata"]["annotations"]["ctcd.io/model-version"] == "3"
    assert isvc["spec"]["predictor"].get("canaryTrafficPercent") == (20 if strategy == "canary" else None)
    graphs = [d for d in docs if d["kind"] == "InferenceGraph"]
    if strategy == "ab":
        assert [s["weight"] for s in graphs[0]["spec"]["nodes"]["root"]["steps"]] == [70, 30]
        b = next(d for d in docs if d["metadata"]["name"] == f"{technique}-b")
        assert b["spec"]["predictor"]["model"]["storageUri"] == pin("4").storage_uri
    else:
        assert graphs == [] and len(docs) == 1


def test_committed_overlays_render_and_validate() -> None:
    overlays = sorted((REPO_ROOT / "gitops" / "models").glob("*/overlays/*"))
    for overlay in overlays:
        validate(kustomize(overlay), str(overlay))


def test_an_unpinned_base_fails_validation() -> None:
    docs = kustomize(REPO_ROOT / "gitops" / "models" / "intent-classifier" / "base")
    with pytest.raises(ManifestError, match=r"storageUri: 's3://unpinned/promote-a-version' is not a pinned"):
        validate(docs, "base")


def test_bad_percents_and_weights_are_refused() -> None:  # fields themselves: tests/unit/test_crd_schemas.py
    isvc = overlays.inference_service("x")
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = 120
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "g"},
        "spec": {
            "nodes": {
                "root": {
                    "routerType": "Splitter",
                    "steps": [{"serviceName": "a", "weight": 60}, {"serviceName": "b", "weight": 60}],
                }
            }
        },
    }
    with pytest.raises(ManifestError) as info:
        validate([isvc, graph], "test")
    text = str(info.value)
    assert "canaryTrafficPercent: 120 is not an integer from 0 to 100" in text
    assert "InferenceGraph/g.spec.nodes.root.steps: Splitter weights must sum to 100" in text


def test_version_file_round_trips() -> None:
    desired = overlays.Desired("intent-classifier", "production", "ab", pin("3"), b_pin=pin("5"), weights=(80, 20))
    parsed = overlays.read_version(overlays.overlay_files(desired)["overlays/production/version.yaml"])
    assert parsed["a"]["version"] == "3" and parsed["b"]["version"] == "5"  # type: ignore[index]
    assert parsed["a"]["run_id"] == "run3" and parsed["a"]["dataset_version"] == "d1"
    assert parsed["a"]["sha256"] == SHA and parsed["a"]["storage_uri"] == pin("3").storage_uri
    assert parsed["weights"] == {"intent-classifier": 80, "intent-classifier-b": 20}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"technique": "Intent; rm -rf"}, "must be a DNS-1123 label"),
        ({"environment": "prod"}, "must be one of staging, production"),
        ({"strategy": "canary"}, "a canary needs a percent"),
        ({"strategy": "ab", "b_pin": None}, "A/B needs a second version"),
    ],
)
def test_promotion_inputs_are_validated(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    args = {"technique": "intent-classifier", "environment": "staging", "strategy": "full", "pin": pin("3"), **kwargs}
    with pytest.raises(overlays.GitopsError, match=message):
        overlays.Desired(**args)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "v3"),
        ("storage_uri", "s3://b/k\nevil: yes"),
        ("storage_uri", "models:/x@champion"),
        ("sha256", "zz"),
    ],
)
def test_pins_refuse_aliases_and_injection(field: str, value: str) -> None:
    args = {"version": "3", "storage_uri": "s3://ctcd-artifacts/m/artifacts", "sha256": SHA, field: value}
    with pytest.raises(overlays.GitopsError):
        overlays.Pin(**args)
