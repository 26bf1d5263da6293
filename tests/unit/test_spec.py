"""Unit tests of spec checks and submission: unsupported fields, typos and parameters are refused up front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workflows.engine.spec.library import TemplateLibrary
from workflows.engine.spec.submit import SubmitError, from_reference, prepare
from workflows.engine.spec.validation import UnsupportedSpec, validate


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


def test_a_number_in_args_is_refused_at_submit_as_argo_s_decoder_does() -> None:
    wf = workflow(
        templates=[{"name": "main", "container": {"image": "alpine", "command": ["sh", "-c"], "args": ["exit", 1]}}]
    )
    with pytest.raises(UnsupportedSpec, match=r'container\.args\[1\]: 1 is not a string.*quote it, "1"'):
        validate(wf)
    wf["spec"]["templates"][0]["container"]["args"] = "exit 1"
    with pytest.raises(UnsupportedSpec, match=r"container\.args: give a list of strings, not str"):
        validate(wf)


def test_depends_on_an_omitted_task() -> None:
    from workflows.engine.language.conditions import evaluate_depends, expand_depends

    logic, names = expand_depends("b.Omitted || a.Succeeded", None, {})
    assert names == ["b", "a"]
    assert evaluate_depends(logic, {"b": {"Omitted": True}, "a": {"Succeeded": False}})
    assert not evaluate_depends(logic, {"b": {"Omitted": False}, "a": {"Succeeded": False}})


@pytest.mark.parametrize(
    ("arguments", "why"),
    [
        (
            {"parameters": {"a": 1}},
            r"spec\.arguments\.parameters: give a list of \{name: \.\.\., value: \.\.\.\} mappings, not a dict",
        ),
        ({"parameters": ["a"]}, r"spec\.arguments\.parameters\[0\]: 'a' is not a mapping with a name"),
        (["a"], r"spec\.arguments: give a mapping of parameters and artifacts"),
    ],
)
def test_a_malformed_parameters_map_is_named_not_a_traceback(tmp_path: Path, arguments: Any, why: str) -> None:
    with pytest.raises(SubmitError, match=why):
        prepare(_library(tmp_path), workflow(arguments=arguments), {})


def test_keys_that_differ_only_by_case_are_read_as_argo_s_decoder_reads_them(tmp_path: Path) -> None:
    wf = workflow(
        templates=[
            {
                "name": "main",
                "container": {"image": "alpine", "command": ["true"]},
                "Outputs": {"parameters": [{"name": "out", "valueFrom": {"Parameter": "x", "Default": "d"}}]},
            }
        ],
        Entrypoint="main",
    )
    del wf["spec"]["entrypoint"]
    ready = prepare(_library(tmp_path), wf, {})
    assert ready["spec"]["entrypoint"] == "main"
    assert ready["spec"]["templates"][0]["outputs"]["parameters"][0]["valueFrom"] == {"parameter": "x", "default": "d"}
    wf["metadata"]["labels"] = {"Team": "a"}  # a free-form map keeps its keys
    assert prepare(_library(tmp_path), wf, {})["metadata"]["labels"] == {"Team": "a"}


def test_what_argo_accepts_lint_accepts() -> None:
    from workflows.cli.library import lint_problems

    cluster = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ClusterWorkflowTemplate",
        "metadata": {"name": "say"},
        "spec": {"templates": [{"name": "say", "container": {"image": "alpine", "command": ["echo"]}}]},
    }
    assert lint_problems(cluster, "c.yaml") == []  # a template library needs no entrypoint
    retried = workflow(
        templates=[{"name": "main", "retryStrategy": {"limit": 2}, "container": {"image": "a", "command": ["true"]}}]
    )
    assert lint_problems({**retried, "kind": "WorkflowTemplate", "metadata": {"name": "r"}}, "r.yaml") == []


def test_a_run_from_a_template_is_labelled_and_sees_its_own_labels(tmp_path: Path) -> None:
    from workflows.engine.frames import workflow_globals

    (tmp_path / "t.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: hello}\n"
        "spec:\n  entrypoint: main\n  templates:\n  - {name: main, container: {image: a, command: ['true']}}\n"
    )
    library = TemplateLibrary([tmp_path])
    submitted = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "h-", "labels": {"team": "ml"}, "annotations": {"owner": "ada"}},
        "spec": {"workflowTemplateRef": {"name": "hello"}},
    }  # fmt: skip
    ready = prepare(library, submitted, {})
    assert ready["metadata"]["labels"] == {"team": "ml", "workflows.argoproj.io/workflow-template": "hello"}
    seen = workflow_globals(ready)
    assert (seen["workflow.mainEntrypoint"], seen["workflow.labels.team"], seen["workflow.annotations.owner"]) == (
        "main", "ml", "ada",
    )  # fmt: skip


def test_template_defaults_merge_under_each_template_of_their_kind() -> None:
    from workflows.engine.spec.submit import with_defaults

    defaults = {
        "timeout": "30s",
        "container": {"image": "alpine", "env": [{"name": "A", "value": "1"}]},
        "metadata": {"labels": {"a": "1"}},
    }
    own = with_defaults(defaults, {"name": "c", "container": {"command": ["true"]}, "metadata": {"labels": {"b": "2"}}})
    assert own["container"] == {"image": "alpine", "env": [{"name": "A", "value": "1"}], "command": ["true"]}
    assert own["metadata"] == {"labels": {"a": "1", "b": "2"}} and own["timeout"] == "30s"
    assert "container" not in with_defaults(defaults, {"name": "d", "dag": {"tasks": []}})  # a DAG gains no body
    assert (
        with_defaults(defaults, {"name": "t", "timeout": "5s", "container": {"image": "mine"}})["container"]["image"]
        == "mine"
    )
