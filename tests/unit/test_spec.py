"""Unit tests of spec checks and submission: unsupported fields, typos and parameters are refused up front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workflows.engine.spec import TemplateLibrary, UnsupportedSpec, validate
from workflows.engine.submit import SubmitError, from_reference, prepare


def workflow(**spec: Any) -> dict[str, Any]:
    base = {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "x", "command": ["true"]}}]}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "t-"},
        "spec": {**base, **spec},
    }


def test_valid_spec_passes() -> None:
    validate(workflow())


def test_typo_in_spec_is_refused_with_its_path() -> None:
    wf = workflow()
    wf["spec"]["entrypiont"] = "main"
    with pytest.raises(UnsupportedSpec, match=r"spec\.entrypiont: not supported"):
        validate(wf)


def test_what_needs_kubernetes_is_refused_with_its_reason() -> None:
    wf = workflow(
        templates=[
            {
                "name": "main",
                "sidecars": [{"name": "s", "image": "influxdb:1.2"}],
                "container": {"image": "x", "command": ["a"]},
            },
            {"name": "r", "resource": {"action": "create"}},
        ]
    )
    with pytest.raises(UnsupportedSpec) as info:
        validate(wf)
    assert any(
        p.startswith("spec.templates[0].sidecars[0].command: the image 'influxdb:1.2'") for p in info.value.problems
    )
    assert "spec.templates[1].resource: resource templates create Kubernetes objects, which need a cluster" in (
        info.value.problems
    )


def test_cluster_only_fields_are_accepted() -> None:
    wf = workflow(serviceAccountName="sa", podGC={"strategy": "OnPodSuccess"}, podResources={"limits": {}})
    wf["spec"]["templates"][0]["container"]["resources"] = {"limits": {"cpu": "1"}}
    validate(wf)


def test_container_without_command_is_refused_naming_the_image() -> None:
    wf = workflow(templates=[{"name": "main", "container": {"image": "alpine"}}])
    with pytest.raises(UnsupportedSpec, match=r"container\.command: the image 'alpine' has no command here"):
        validate(wf)


def test_images_with_a_known_entrypoint_need_no_command() -> None:
    validate(workflow(templates=[{"name": "main", "container": {"image": "argoproj/argosay:v2", "args": ["echo"]}}]))


def test_expression_tags_and_new_template_kinds_are_accepted() -> None:
    wf = workflow(
        templates=[
            {"name": "main", "container": {"image": "x", "command": ["echo", "{{=1+1}}"]}},
            {"name": "h", "http": {"url": "http://127.0.0.1:1/"}},
            {"name": "s", "suspend": {"duration": "1s"}},
            {"name": "c", "containerSet": {"containers": [{"name": "main", "image": "x", "command": ["true"]}]}},
        ]
    )
    validate(wf)


def test_a_typo_is_still_refused() -> None:
    wf = workflow(templates=[{"name": "main", "container": {"image": "x", "command": ["a"]}, "daemonn": True}])
    with pytest.raises(UnsupportedSpec, match=r"spec.templates\[0\].daemonn: not supported"):
        validate(wf)


def test_missing_entrypoint_template_is_refused() -> None:
    with pytest.raises(UnsupportedSpec, match="no template named 'nope'"):
        validate(workflow(entrypoint="nope"))


def _library(tmp_path: Path) -> TemplateLibrary:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: train}\n"
        "spec:\n  entrypoint: main\n  arguments:\n    parameters:\n    - {name: technique}\n"
        "    - {name: mode, value: fast, enum: [fast, full]}\n"
        "  templates:\n  - name: main\n"
        "    container: {image: x, command: [echo, '{{workflow.parameters.technique}}']}\n"
    )
    return TemplateLibrary([tmp_path])


def test_submit_from_template_applies_parameters(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    wf = prepare(lib, from_reference(lib, "workflowtemplate/train"), {"technique": "intent"})
    assert wf["metadata"]["name"].startswith("train-")
    assert {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]} == {
        "technique": "intent",
        "mode": "fast",
    }
    assert wf["spec"]["workflowTemplateRef"] == {"name": "train"}
    assert wf["status"]["phase"] == "Pending"


def test_submit_errors_name_the_problem(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    ref = from_reference(lib, "workflowtemplate/train")
    with pytest.raises(SubmitError, match=r"pass -p technique=VALUE"):
        prepare(lib, ref, {})
    with pytest.raises(SubmitError, match=r"unknown parameter 'tecnique' \(this workflow declares: mode, technique\)"):
        prepare(lib, ref, {"tecnique": "x"})
    with pytest.raises(SubmitError, match=r"mode='slow' is not one of"):
        prepare(lib, ref, {"technique": "x", "mode": "slow"})
    with pytest.raises(SubmitError, match=r"workflowtemplate/nope not found \(known: train\)"):
        from_reference(lib, "workflowtemplate/nope")
    with pytest.raises(SubmitError, match="use workflowtemplate/NAME"):
        from_reference(lib, "train")


def test_memoize_and_synchronization_are_checked() -> None:
    wf = workflow(synchronization={"semaphore": {"configMapKeyRef": {"name": "x"}}})
    wf["spec"]["templates"][0]["memoize"] = {"key": "k"}
    with pytest.raises(UnsupportedSpec) as info:
        validate(wf)
    assert "spec.templates[0].memoize: needs key and cache.configMap.name" in info.value.problems
    assert "spec.synchronization.semaphores[0].configMapKeyRef: needs name and key" in info.value.problems
