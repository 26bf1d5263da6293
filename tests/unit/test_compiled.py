"""Golden files: the committed compiled YAML equals a fresh compile of the Hera definitions.

Regenerate only on purpose, with ``CTCD_REGENERATE=1`` (never in CI); then review and commit the diff.
"""

from __future__ import annotations

import os

import pytest
import yaml

from workflows import compile as compiler
from workflows.engine.spec.validation import validate


def test_compiled_yaml_matches_golden_files() -> None:
    if os.environ.get("CTCD_REGENERATE") == "1":
        if os.environ.get("CI"):
            pytest.fail("CTCD_REGENERATE=1 is not allowed in CI")
        compiler.write()
    assert compiler.diff() == []


def test_every_template_module_compiles_to_one_runnable_object() -> None:
    rendered = {
        k.rsplit("/", 1)[1]: v
        for k, v in compiler.render().items()
        if k.startswith(compiler.TEMPLATES_REL) and not k.endswith("kustomization.yaml")
    }
    assert {"smoke.yaml", "train.yaml", "train-all.yaml"} <= set(rendered)
    for name, text in rendered.items():
        doc = yaml.safe_load(text)
        suffix = "-cron" if doc["kind"] == "CronWorkflow" else ""
        assert doc["metadata"]["name"] + suffix + ".yaml" == name
        assert doc["kind"] in ("WorkflowTemplate", "CronWorkflow")
        if doc["kind"] == "WorkflowTemplate":
            validate(doc)  # the local engine can run every compiled template


def _argo_docs() -> list[dict]:  # type: ignore[type-arg]
    return [
        yaml.safe_load(text)
        for rel, text in compiler.render().items()
        if rel.startswith(compiler.TEMPLATES_REL) and not rel.endswith("kustomization.yaml")
    ]


def _references_a_template(spec: dict) -> bool:  # type: ignore[type-arg]
    """A CronWorkflow that runs a WorkflowTemplate inherits its settings; the template must exist."""
    ref = spec.get("workflowTemplateRef")
    if ref:
        names = {d["metadata"]["name"] for d in _argo_docs() if d["kind"] == "WorkflowTemplate"}
        assert ref["name"] in names
    return bool(ref)


def test_images_are_a_parameter_with_a_pinned_default() -> None:
    from workflows.steps.pods import check_image

    for doc in _argo_docs():
        spec = doc["spec"].get("workflowSpec", doc["spec"])
        if _references_a_template(spec):
            continue
        params = {p["name"]: p.get("value") for p in spec["arguments"]["parameters"]}
        assert check_image(params["trainer-image"]) and ":latest" not in params["trainer-image"]
        for template in spec["templates"]:
            body = template.get("script") or template.get("container")
            if body:
                assert body["image"] == "{{workflow.parameters.trainer-image}}", template["name"]
                assert body["resources"]["requests"] and body["resources"]["limits"], template["name"]


def test_every_template_uses_the_artifact_repository_and_least_privilege_account() -> None:
    for doc in _argo_docs():
        spec = doc["spec"].get("workflowSpec", doc["spec"])
        if _references_a_template(spec):
            continue
        assert spec["artifactRepositoryRef"] == {"configMap": "artifact-repositories", "key": "ctcd-s3"}
        assert spec["serviceAccountName"] == "ctcd-workflow"


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("ghcr.io/ctcd/trainer", "not a pinned reference"),
        ("ghcr.io/ctcd/trainer:latest", "floats on latest"),
        ("GHCR.io/Bad Name:1", "not a pinned reference"),
        ("trainer:1.0", "not a pinned reference"),
    ],
)
def test_bad_image_references_are_refused_at_compile_time(image: str, message: str) -> None:
    from workflows.steps.pods import TemplateConfigError, check_image

    with pytest.raises(TemplateConfigError, match=message):
        check_image(image)


def test_an_undocumented_secret_is_refused_at_compile_time() -> None:
    from workflows.steps.pods import TemplateConfigError, secret

    with pytest.raises(TemplateConfigError, match="Secret 'aws-creds' is not one the platform documents"):
        secret("aws-creds")


def test_a_broken_template_module_is_a_compile_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTCD_IMAGE_TAG", "latest")
    import importlib

    import workflows.steps.pods as pods

    importlib.reload(pods)
    try:
        with pytest.raises(pods.TemplateConfigError, match="floats on latest"):
            pods.default_image()
    finally:
        monkeypatch.delenv("CTCD_IMAGE_TAG")
        importlib.reload(pods)


def test_diff_reports_a_stale_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    compiler.write(tmp_path)
    templates = tmp_path / compiler.TEMPLATES_REL
    (templates / "smoke.yaml").write_text("tampered")
    (templates / "orphan.yaml").write_text("x")
    (tmp_path / "gitops/models/intent-classifier/base/inferenceservice.yaml").unlink()
    problems = compiler.diff(tmp_path)
    assert f"{compiler.TEMPLATES_REL}/smoke.yaml: differs from a fresh compile" in problems
    assert f"{compiler.TEMPLATES_REL}/orphan.yaml: nothing compiles to it any more" in problems
    assert "gitops/models/intent-classifier/base/inferenceservice.yaml: missing; run `make compile`" in problems


@pytest.mark.parametrize(
    "rel",
    sorted(
        r for r in compiler.render() if r.startswith(compiler.TEMPLATES_REL) and not r.endswith("kustomization.yaml")
    ),
)
def test_every_compiled_argo_object_passes_schema_model_client_and_key_checks(rel: str) -> None:
    from workflows.delivery.manifests import validate_argo

    validate_argo(yaml.safe_load(compiler.render()[rel]), rel)


def test_typos_and_wrong_types_are_refused() -> None:
    import copy

    from workflows.delivery.manifests import ManifestError, validate_argo

    doc = yaml.safe_load(compiler.render()[f"{compiler.TEMPLATES_REL}/train.yaml"])
    typo = copy.deepcopy(doc)
    typo["spec"]["entrypiont"] = "train-technique"
    with pytest.raises(ManifestError, match=r"\$\.spec\.entrypiont: unknown field"):
        validate_argo(typo, "typo")
    wrong = copy.deepcopy(doc)
    wrong["spec"]["templates"][0]["dag"] = "not a dag"
    with pytest.raises(ManifestError, match="argo-workflows client|schema"):
        validate_argo(wrong, "wrong")


def test_training_holds_a_mutex_per_technique_and_notifies_on_exit() -> None:
    docs = {d["metadata"]["name"]: d for d in _argo_docs() if d["kind"] == "WorkflowTemplate"}
    train = docs["train"]["spec"]
    dag = next(t for t in train["templates"] if t["name"] == "train-technique")
    assert dag["synchronization"] == {"mutexes": [{"name": "train-{{inputs.parameters.technique}}"}]}
    assert train["onExit"] == "notify-run" and docs["continuous-training"]["spec"]["onExit"] == "notify-run"
