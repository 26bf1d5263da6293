"""KServe's Standard (RawDeployment) mode: ``serving.mode: standard`` writes a canary as ``spec.canary``.

Promotions run against a real git remote whose technique base was compiled in Standard mode; every version file
they write renders with the real kustomize and passes the vendored KServe CRD and KServe's admission rules; local
serving splits traffic from that form as it does from Serverless's ``canaryTrafficPercent``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from serving.local import status
from serving.local.model import traffic
from serving.local.reconcile import Reconciler
from tests.crds import schema
from tests.gitops_remote import bare_remote
from workflows.delivery import manifests, overlays, promotion, rollback
from workflows.platform import gitrepo

TECHNIQUE = "intent-classifier"
OVERLAY = f"gitops/models/{TECHNIQUE}/overlays/staging"


def pin(version: str) -> overlays.Pin:
    return overlays.Pin(version, f"s3://ctcd-artifacts/m/{version}", version * 64, f"run-{version}", "ds1")


def desired(version: str, **kw: Any) -> overlays.Desired:
    return overlays.Desired(TECHNIQUE, "staging", kw.pop("strategy", "full"), pin(version), **kw)


@pytest.fixture()
def remote(tmp_path: Path) -> str:
    """A GitOps remote whose intent-classifier base is compiled with ``serving.mode: standard``."""
    bare = bare_remote(tmp_path)
    source = tmp_path / "source"
    for rel, text in overlays.base_files(TECHNIQUE, "standard").items():
        (source / "gitops" / "models" / TECHNIQUE / rel).write_text(text)
    gitrepo.git(source, "commit", "--quiet", "-am", "serving.mode: standard")
    gitrepo.git(source, "push", "--quiet", str(bare), "main")
    return str(bare)


def rendered(remote: str, tmp_path: Path) -> dict[str, Any]:
    """The staging InferenceService as Argo CD would apply it, checked as the API server and KServe would."""
    checkout = tmp_path / f"checkout-{len(list(tmp_path.glob('checkout-*')))}"
    subprocess.run(["git", "clone", "--quiet", remote, str(checkout)], check=True)
    docs = manifests.kustomize(checkout / OVERLAY)
    manifests.validate(docs, "staging")
    (isvc,) = docs
    assert schema.problems(isvc) == []
    return isvc


def test_a_canary_is_its_own_predictor_beside_the_stable_one(remote: str, tmp_path: Path) -> None:
    promotion.promote(remote, "main", desired("1"), {}, to_main=True)
    isvc = rendered(remote, tmp_path)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert isvc["spec"]["predictor"]["name"] == "v1" and "canary" not in isvc["spec"]

    promotion.promote(remote, "main", desired("2", strategy="canary", canary_percent=20), {}, to_main=True)
    isvc = rendered(remote, tmp_path)
    stable, (canary,) = isvc["spec"]["predictor"], isvc["spec"]["canary"]
    assert (stable["name"], stable["model"]["storageUri"]) == ("v1", pin("1").storage_uri)
    assert stable["model"]["runtime"] == "ctcd-predictor"  # the base's, kept by the patch
    assert (canary["predictor"]["name"], canary["trafficPercent"]) == ("v2", 20)
    assert canary["predictor"]["model"]["storageUri"] == pin("2").storage_uri
    assert "canaryTrafficPercent" not in stable
    now = promotion.current(remote, "main", TECHNIQUE, "staging")
    assert now is not None and (now["a"]["version"], now["canary"], now["previous"]) == ("2", 20, "1")
    assert now["stable"] == {"version": "1", "storage_uri": pin("1").storage_uri, "sha256": "1" * 64, "run_id": "run-1"}

    step = desired("2", strategy="canary", canary_percent=50, extra={"previous-version": "1"})  # the analysis's step
    promotion.promote(remote, "main", step, {}, to_main=True)
    isvc = rendered(remote, tmp_path)
    assert isvc["spec"]["predictor"]["name"] == "v1" and isvc["spec"]["canary"][0]["trafficPercent"] == 50

    promotion.rollout(remote, "main", TECHNIQUE, "staging")  # the stable predictor takes the canary's name
    isvc = rendered(remote, tmp_path)
    assert isvc["spec"]["predictor"]["name"] == "v2" and "canary" not in isvc["spec"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == pin("2").storage_uri

    rollback.rollback(remote, "main", TECHNIQUE, "staging")
    assert rendered(remote, tmp_path)["spec"]["predictor"]["name"] == "v1"


def test_a_first_canary_has_nothing_to_split_against_so_it_serves_whole(remote: str, tmp_path: Path) -> None:
    promotion.promote(remote, "main", desired("1", strategy="canary", canary_percent=20), {}, to_main=True)
    isvc = rendered(remote, tmp_path)
    assert isvc["spec"]["predictor"]["name"] == "v1" and "canary" not in isvc["spec"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda i: i["metadata"]["annotations"].update({"serving.kserve.io/deploymentMode": "Serverless"}), "only"),
        (lambda i: i["spec"]["canary"][0]["predictor"].update(name="v1"), "its own name"),
        (lambda i: i["spec"]["canary"][0].update(trafficPercent=101), "more than 100"),
        (lambda i: i["spec"]["canary"][0]["predictor"].update(maxReplicas=3), "fixed replicas"),
        (lambda i: i["spec"]["predictor"].update(canaryTrafficPercent=20), "splits with spec.canary"),
    ],
)
def test_kserve_s_admission_rules_for_a_standard_canary_are_kept(remote: str, tmp_path: Path, change, problem) -> None:  # type: ignore[no-untyped-def]
    promotion.promote(remote, "main", desired("1"), {}, to_main=True)
    promotion.promote(remote, "main", desired("2", strategy="canary", canary_percent=20), {}, to_main=True)
    isvc = rendered(remote, tmp_path)
    change(isvc)
    with pytest.raises(manifests.ManifestError, match=problem):
        manifests.validate([isvc], "staging")


def test_local_serving_splits_a_standard_canary_and_reports_it_as_kserve_does(remote: str, tmp_path: Path) -> None:
    promotion.promote(remote, "main", desired("1"), {}, to_main=True)
    reconciler = Reconciler(tmp_path / "state", fetch=None, base_url="http://127.0.0.1:8090")
    reconciler.apply("c1", [rendered(remote, tmp_path)])
    (service,) = reconciler.services.values()
    assert service.key == "ctcd-staging/intent-classifier"
    service.revisions[0].state = "Ready"  # no model server runs here: readiness is set by hand
    promotion.promote(remote, "main", desired("2", strategy="canary", canary_percent=20), {}, to_main=True)
    isvc = rendered(remote, tmp_path)
    reconciler.apply("c2", [isvc])
    first, second = service.revisions
    assert (service.rolled_out, service.canary, second.model_version, second.run_id) == (first.name, 20, "2", "run-2")
    assert traffic(service) == [{"revisionName": first.name, "percent": 100, "latestRevision": False, "tag": "prev"}]
    report = status.inference_service(service, "http://127.0.0.1:8090", "example.com")
    assert report["status"]["canaryStatuses"][0]["ready"] is False
    second.state = "Ready"
    assert [(t["revisionName"], t["percent"]) for t in traffic(service)] == [(second.name, 20), (first.name, 80)]
    report = status.inference_service(service, "http://127.0.0.1:8090", "example.com")
    assert report["status"]["deploymentMode"] == "Standard"
    assert report["status"]["canaryStatuses"][0] | {"modelStatus": {}} == {
        "name": "v2",
        "ready": True,
        "trafficPercent": 20,
        "modelStatus": {},
    }
    assert schema.problems(report | {"spec": isvc["spec"]}) == []  # the status passes the CRD too

    promotion.rollout(remote, "main", TECHNIQUE, "staging")
    reconciler.apply("c3", [rendered(remote, tmp_path)])
    assert len(service.revisions) == 2 and service.canary is None  # the canary's revision is promoted, no restart
    assert (
        service.rolled_out == second.name
        and "canaryStatuses" not in status.inference_service(service, "http://127.0.0.1:8090", "example.com")["status"]
    )
