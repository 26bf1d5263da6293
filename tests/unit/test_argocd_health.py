"""ctcd's Argo CD health checks, run as Argo CD runs them: the real Lua over sample objects (its testdata layout).

Each ``argocd/resource_customizations/<group>/<kind>/health_test.yaml`` lists objects and the health Argo CD must
report for them; the statuses that local serving writes are checked too, so a canary looks the same on a laptop
and on a cluster. The kustomization beside them must carry the same Lua into ``argocd-cm``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml

from serving.local import status
from serving.local.model import Revision, Service
from workflows.delivery.manifests import kustomize
from workflows.settings import REPO_ROOT

CUSTOMIZATIONS = REPO_ROOT / "argocd" / "resource_customizations"


def health(kind_dir: Path, obj: dict[str, Any]) -> dict[str, str]:
    """What the kind's health.lua reports for ``obj``, in a fresh Lua runtime as Argo CD gives each check."""
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)  # lists become 1-based Lua sequences
    result = runtime.execute((kind_dir / "health.lua").read_text())
    return {"status": str(result["status"]), "message": str(result["message"])}


def cases() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for spec in sorted(CUSTOMIZATIONS.glob("*/*/health_test.yaml")):
        found += [(spec.parent, test) for test in yaml.safe_load(spec.read_text())["tests"]]
    return found


@pytest.mark.parametrize(("kind_dir", "case"), cases(), ids=lambda v: v.name if isinstance(v, Path) else None)
def test_health_reports_what_its_testdata_expects(kind_dir: Path, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((kind_dir / case["inputPath"]).read_text())
    assert health(kind_dir, obj) == case["healthStatus"]


def test_every_kind_ctcd_deploys_has_its_checks() -> None:
    kinds = {p.parent.name for p in CUSTOMIZATIONS.glob("serving.kserve.io/*/health.lua")}
    assert kinds == {"InferenceService", "InferenceGraph"}
    assert {case["healthStatus"]["status"] for _, case in cases()} == {"Healthy", "Progressing", "Degraded"}


def _service(canary_state: str, mode: str) -> Service:
    old = Revision("ic-1", "s3://b/1", "a" * 64, "1", state="Ready")
    new = Revision("ic-2", "s3://b/2", "b" * 64, "2", state=canary_state, message="exit code 1")
    return Service(
        "intent-classifier",
        "ctcd-production",
        "intent-classifier",
        revisions=[old, new],
        rolled_out="ic-1",
        canary=20,
        mode=mode,
        canary_name="v2" if mode == "Standard" else "",
    )


@pytest.mark.parametrize("mode", ["Serverless", "Standard"])
@pytest.mark.parametrize(
    ("canary_state", "expected"), [("Ready", "Healthy"), ("Loading", "Progressing"), ("Failed", "Degraded")]
)
def test_local_serving_s_statuses_read_as_a_cluster_s(canary_state: str, expected: str, mode: str) -> None:
    obj = status.inference_service(_service(canary_state, mode), "http://127.0.0.1:8090", "example.com")
    assert health(CUSTOMIZATIONS / "serving.kserve.io" / "InferenceService", obj)["status"] == expected
    assert ("canaryStatuses" in obj["status"]) == (mode == "Standard")
    if mode == "Standard" and expected == "Healthy":
        assert obj["status"]["canaryStatuses"][0] | {"modelStatus": None} == {
            "name": "v2",
            "ready": True,
            "trafficPercent": 20,
            "modelStatus": None,
        }


@pytest.mark.parametrize(
    ("ready", "expected"),
    [({"ctcd-production/a", "ctcd-production/b"}, "Healthy"), ({"ctcd-production/a"}, "Progressing")],
)
def test_local_serving_s_graph_statuses_read_as_a_cluster_s(ready: set[str], expected: str) -> None:
    steps = [{"serviceName": "a", "weight": 50}, {"serviceName": "b", "weight": 50}]
    graph = {"spec": {"nodes": {"root": {"routerType": "Splitter", "steps": steps}}}}
    obj = status.inference_graph("ctcd-production/ab", graph, "http://127.0.0.1:8090", "example.com", ready)
    assert health(CUSTOMIZATIONS / "serving.kserve.io" / "InferenceGraph", obj)["status"] == expected


def test_the_argocd_cm_kustomization_carries_the_same_lua() -> None:
    (config,) = kustomize(CUSTOMIZATIONS)
    assert config["kind"] == "ConfigMap" and config["metadata"]["name"] == "argocd-cm"
    for lua in CUSTOMIZATIONS.glob("*/*/health.lua"):
        key = f"resource.customizations.health.{lua.parent.parent.name}_{lua.parent.name}"
        assert config["data"][key] == lua.read_text()
