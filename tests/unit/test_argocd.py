"""Argo CD objects and the platform manifests: fixed project, automated sync, no secrets, least privilege."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workflows.delivery.manifests import kustomize
from workflows.settings import REPO_ROOT

ARGOCD = REPO_ROOT / "argocd"


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def argocd_objects() -> list[dict[str, Any]]:
    """What Argo CD is given (the health checks' samples under resource_customizations are not objects of ctcd)."""
    paths = [p for p in sorted(ARGOCD.rglob("*.yaml")) if "resource_customizations" not in p.parts]
    return [d for path in paths for d in load(path)]


def test_every_app_uses_the_fixed_project_and_automated_prune_self_heal() -> None:
    apps = [d for d in argocd_objects() if d["kind"] in ("Application", "ApplicationSet")]
    assert {d["metadata"]["name"] for d in apps} == {"ctcd-root", "ctcd-platform", "ctcd-models", "ctcd-tasks"}
    for app in apps:
        spec = app["spec"]["template"]["spec"] if app["kind"] == "ApplicationSet" else app["spec"]
        assert spec["project"] == "ctcd", app["metadata"]["name"]  # fixed, never templated
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_application_set_generates_one_app_per_overlay() -> None:
    appset = next(d for d in argocd_objects() if d["metadata"]["name"] == "ctcd-models")
    assert appset["spec"]["goTemplate"] is True
    assert appset["spec"]["generators"][0]["git"]["directories"] == [{"path": "gitops/models/*/overlays/*"}]
    template = appset["spec"]["template"]
    assert template["spec"]["source"]["path"] == "{{.path.path}}"
    assert template["spec"]["destination"]["namespace"] == "ctcd-{{.path.basename}}"
    assert template["spec"]["ignoreDifferences"][0]["kind"] == "InferenceService"


def test_task_application_set_generates_one_app_per_task_overlay_after_the_models() -> None:
    appset = next(d for d in argocd_objects() if d["metadata"]["name"] == "ctcd-tasks")
    assert appset["spec"]["generators"][0]["git"]["directories"] == [{"path": "gitops/tasks/*/overlays/*"}]
    template = appset["spec"]["template"]
    assert template["metadata"]["name"] == "task-{{index .path.segments 2}}-{{.path.basename}}"
    assert template["spec"]["destination"]["namespace"] == "ctcd-{{.path.basename}}"
    models = next(d for d in argocd_objects() if d["metadata"]["name"] == "ctcd-models")
    wave = "argocd.argoproj.io/sync-wave"
    assert int(appset["metadata"]["annotations"][wave]) > int(models["metadata"]["annotations"][wave])


def test_project_restricts_sources_and_destinations() -> None:
    project = next(d for d in argocd_objects() if d["kind"] == "AppProject")
    assert project["spec"]["sourceRepos"] == ["https://github.com/ctcd/ctcd.git"]
    assert "*" not in str(project["spec"]["destinations"])
    apps = [d for d in argocd_objects() if d["kind"] == "Application"]
    assert {a["spec"]["source"]["repoURL"] for a in apps} <= set(project["spec"]["sourceRepos"])


def test_platform_renders_without_secrets_and_with_least_privilege() -> None:
    docs = kustomize(REPO_ROOT / "gitops" / "platform")
    kinds = {d["kind"] for d in docs}
    assert "Secret" not in kinds and {"WorkflowTemplate", "ClusterServingRuntime", "Role"} <= kinds
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "ctcd-workflow")
    assert role["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    ]
    runtime = next(d for d in docs if d["kind"] == "ClusterServingRuntime")
    security = runtime["spec"]["containers"][0]["securityContext"]
    assert security["runAsNonRoot"] is True and security["capabilities"]["drop"] == ["ALL"]
    templates = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    assert {t["metadata"]["namespace"] for t in templates} == {"ctcd"}
    assert all(t["spec"]["serviceAccountName"] == "ctcd-workflow" for t in templates)


def test_the_project_whitelists_every_kind_the_platform_renders() -> None:
    project = next(d for d in argocd_objects() if d["kind"] == "AppProject")
    allowed = {
        (r["group"], r["kind"])
        for r in project["spec"]["clusterResourceWhitelist"] + project["spec"]["namespaceResourceWhitelist"]
    }
    for doc in kustomize(REPO_ROOT / "gitops" / "platform"):
        group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
        assert (group, doc["kind"]) in allowed, f"{doc['kind']}/{doc['metadata']['name']} is not whitelisted"


def test_sensors_submit_templates_that_exist_and_validate_their_input() -> None:
    docs = kustomize(REPO_ROOT / "gitops" / "platform")
    templates = {d["metadata"]["name"] for d in docs if d["kind"] == "WorkflowTemplate"}
    sensors = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Sensor"}
    assert set(sensors) == {"registry-sync-on-mlflow", "admin-retrain"}
    for sensor in sensors.values():
        for trigger in sensor["spec"]["triggers"]:
            workflow = trigger["template"]["argoWorkflow"]["source"]["resource"]
            assert workflow["spec"]["workflowTemplateRef"]["name"] in templates
    retrain = sensors["admin-retrain"]
    filters = {f["path"] for f in retrain["spec"]["dependencies"][0]["filters"]["data"]}
    assert filters == {"body.technique", "body.requestId"}  # names are checked before they reach a Workflow
    dests = {p["dest"] for p in retrain["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"]}
    assert dests == {"spec.arguments.parameters.0.value", "metadata.name"}
    source = next(d for d in docs if d["kind"] == "EventSource")
    assert source["spec"]["webhook"]["retrain"]["authSecret"]["name"] == "ctcd-events-token"


def test_every_argocd_object_keeps_ctcd_s_rules() -> None:  # its fields: tests/unit/test_crd_schemas.py
    from workflows.delivery.manifests import validate_argocd

    for doc in argocd_objects():
        validate_argocd(doc, str(doc.get("kind")))


def test_a_templated_project_is_refused() -> None:
    import copy

    import pytest

    from workflows.delivery.manifests import ManifestError, validate_argocd

    appset = copy.deepcopy(next(d for d in argocd_objects() if d["kind"] == "ApplicationSet"))
    appset["spec"]["template"]["spec"]["project"] = "{{.path.basename}}"
    appset["spec"]["generator"] = []
    with pytest.raises(ManifestError, match="the project must be fixed"):
        validate_argocd(appset, "appset")
    from tests.crds import schema

    assert any("generator" in problem for problem in schema.problems(appset))  # the CRD refuses the misspelling


def test_the_cluster_guide_documents_every_secret_and_every_repo_url() -> None:
    import subprocess

    from workflows.steps.pods import SECRETS

    guide = (REPO_ROOT / "docs" / "cluster.md").read_text()
    for name, keys in SECRETS.items():
        assert f"`{name}`" in guide and all(f"`{k}`" in guide or k in guide for k in keys)
    files = subprocess.run(
        ["git", "grep", "-l", "https://github.com/ctcd/ctcd.git", "--", "argocd", "gitops/platform"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    ).stdout.split()
    assert files and all(f.startswith(("argocd/", "gitops/platform/")) for f in files)
    assert "git grep -l 'https://github.com/ctcd/ctcd.git' -- argocd gitops/platform" in guide
