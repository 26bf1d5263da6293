"""Every manifest ctcd writes passes the real CRDs (vendored in tests/crds), as the API server would check them.

That is each object under ``gitops/`` and ``argocd/``, each kustomization rendered with the real kustomize, and each
overlay a promotion can write (every technique, environment and strategy); a misspelt field, a wrong type and a
broken CEL rule each fail.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.contract import discover
from tests.crds import schema
from tests.unit.test_gitops import pin, write_overlay
from workflows.delivery import overlays
from workflows.delivery.manifests import kustomize
from workflows.settings import REPO_ROOT


def checked(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents that a vendored CRD covers."""
    return [d for d in docs if (str(d.get("apiVersion")), str(d.get("kind"))) in schema.crds()]


def problems(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each refused document's kind/name with what the API server would say."""
    found = {f"{d['kind']}/{d['metadata'].get('name')}": schema.problems(d) for d in checked(docs)}
    return {k: v for k, v in found.items() if v}


def committed() -> list[dict[str, Any]]:
    files = sorted(p for root in ("gitops", "argocd") for p in (REPO_ROOT / root).rglob("*.yaml"))
    files = [p for p in files if "resource_customizations" not in p.parts]  # health checks' samples, not objects
    docs = [d for path in files for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    rendered = [d for k in sorted((REPO_ROOT / "gitops").rglob("kustomization.yaml")) for d in kustomize(k.parent)]
    return docs + rendered


def test_every_committed_and_rendered_manifest_passes_the_real_crds() -> None:
    docs = committed()
    kinds = {d["kind"] for d in checked(docs)}
    expected = {"WorkflowTemplate", "CronWorkflow", "InferenceService", "Application", "AppProject", "Sensor"}
    assert expected | {"AnalysisTemplate", "PodMonitor"} <= kinds
    assert problems(docs) == {}
    print(f"{len(checked(docs))} manifests validated against the vendored CRDs")


@pytest.mark.parametrize("technique", sorted(discover()))
@pytest.mark.parametrize("environment", ["staging", "production"])
@pytest.mark.parametrize("mode", ["serverless", "standard"])
@pytest.mark.parametrize(
    ("strategy", "extra"),
    [("full", {}), ("canary", {"canary_percent": 20}), ("ab", {"b_pin": pin("4"), "weights": (70, 30)})],
)
def test_every_overlay_a_promotion_writes_passes_the_real_crds(
    tmp_path: Path, technique: str, environment: str, mode: str, strategy: str, extra: dict[str, Any]
) -> None:
    stable = pin("2") if strategy == "canary" and mode == "standard" else None  # a canary over v2
    desired = overlays.Desired(
        technique,
        environment,
        strategy,
        pin("3"),
        mode=mode,
        stable=stable,
        **extra,  # type: ignore[arg-type]
    )
    docs = kustomize(write_overlay(tmp_path, desired))
    assert checked(docs) and problems(docs) == {}
    assert ("canary" in docs[0]["spec"]) == (stable is not None)


@pytest.mark.parametrize("mode", ["Serverless", "Standard"])
@pytest.mark.parametrize("state", ["Ready", "Loading", "Failed"])
def test_the_status_local_serving_writes_passes_the_real_crd(mode: str, state: str) -> None:
    from serving.local import status
    from serving.local.model import Revision, Service

    old = Revision("ic-1", "s3://b/1", "a" * 64, "1", state="Ready")
    new = Revision("ic-2", "s3://b/2", "b" * 64, "2", state=state, message="exit code 1")
    service = Service("ic", "ctcd-staging", "ic", revisions=[old, new], rolled_out="ic-1", canary=20, mode=mode)
    service.canary_name = "v2" if mode == "Standard" else ""
    report = status.inference_service(service, "http://127.0.0.1:8090", "example.com")
    assert schema.problems(report | {"spec": _isvc()["spec"]}) == []


def _isvc() -> dict[str, Any]:
    base = REPO_ROOT / "gitops" / "models" / "intent-classifier" / "base"
    return copy.deepcopy(next(d for d in kustomize(base) if d["kind"] == "InferenceService"))


def test_a_misspelt_field_is_refused() -> None:
    isvc = _isvc()
    isvc["spec"]["predictor"]["model"]["storageUrl"] = "s3://x/y"
    assert any("storageUrl" in p for p in schema.problems(isvc))


def test_a_wrong_type_is_refused() -> None:
    isvc = _isvc()
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = "twenty"
    assert any("canaryTrafficPercent" in p and "integer" in p for p in schema.problems(isvc))


def test_a_broken_cel_rule_is_refused() -> None:
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "both"},
        "spec": {
            "templates": [
                {
                    "name": "main",
                    "dag": {"tasks": [{"name": "b", "template": "main", "depends": "a", "dependencies": ["a"]}]},
                }
            ]
        },
    }
    found = schema.problems(template)
    assert found and all("depends" in p or "dependencies" in p for p in found), found
    del template["spec"]["templates"][0]["dag"]["tasks"][0]["dependencies"]
    assert schema.problems(template) == []


def test_the_structural_schema_keeps_what_the_crd_preserves() -> None:
    loose = {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}}
    assert "additionalProperties" not in schema.structural(loose)
    strict = {"type": "object", "properties": {"a": {"x-kubernetes-int-or-string": True}}}
    assert schema.structural(strict)["additionalProperties"] is False
    assert schema.structural(strict)["properties"]["a"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
