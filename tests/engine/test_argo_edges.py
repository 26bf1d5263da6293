"""Where the engine used to part from Argo once something is skipped, retried, daemoned or named by a parameter."""

from __future__ import annotations

import uuid

import pytest

from tests.engine.test_examples import node, phases, run
from workflows.engine import Engine, LocalObjects
from workflows.engine.state.nodes import pod_name


@pytest.fixture
def engine(fresh_engine: Engine) -> Engine:
    """Fresh step processes only: what is tested here is decided by the node kinds, not by how a step starts."""
    return fresh_engine


def test_a_false_when_skips_the_task_before_its_arguments_are_resolved(engine: Engine) -> None:
    wf = run(engine, "when-first")
    assert wf["status"]["phase"] == "Succeeded"
    assert phases(wf) == {wf["metadata"]["name"]: "Succeeded", "a": "Skipped", "b": "Skipped"}
    assert node(wf, "b")["message"] == "when 'Skipped == Succeeded' evaluated false"


def test_a_configmap_named_by_a_parameter(engine: Engine) -> None:
    engine.objects = LocalObjects(configmaps={"my-config": {"color": "blue"}})
    wf = run(engine, "configmap-by-parameter")
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    assert node(wf, wf["metadata"]["name"])["outputs"]["result"] == "blue blue"


def test_a_retried_daemon_serves_its_dependent_then_ends_with_its_scope(engine: Engine) -> None:
    wf = run(engine, "daemon-retry")
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    server = node(wf, "server")
    assert server["type"] == "Retry" and server["daemoned"] is True and server["phase"] == "Succeeded"
    assert "Welcome to nginx" in node(wf, "client")["outputs"]["result"]


def test_memoized_steps_templates_hit_with_and_without_outputs(engine: Engine) -> None:
    wf = run(engine, "memoize-steps", cache=f"memo-{uuid.uuid4().hex[:8]}")
    assert wf["status"]["phase"] == "Succeeded"
    first, second = node(wf, "first"), node(wf, "second")
    assert first["memoizationStatus"]["hit"] is False and second["memoizationStatus"]["hit"] is True
    assert second["outputs"] == first["outputs"] and first["outputs"]["parameters"][0]["value"].startswith("hi ")
    assert node(wf, "quiet-second")["memoizationStatus"]["hit"] is True


def test_pod_names_are_argo_s_v2_names_and_globs_read_the_pod_s_files(engine: Engine) -> None:
    wf = run(engine, "pod-names")
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded"
    named, inline = node(wf, "named"), node(wf, "inline")
    assert (
        named["outputs"]["result"]
        == pod_name(name, named["name"], "named")
        == f"{name}-named-{named['id'][len(name) + 1 :]}"
    )
    assert inline["outputs"]["result"] == inline["id"]  # an inline template has no name: <workflow>-<hash>
    assert node(wf, "glob")["outputs"]["result"] == "from the artifact"
    assert "< moo >" in node(wf, "cow")["outputs"]["result"]


def test_retry_defaults_and_backoff_limits_in_argo_s_words(engine: Engine) -> None:
    wf = run(engine, "retry-policies")
    errored, capped = node(wf, "errored"), node(wf, "capped")
    assert len(errored["children"]) == 2  # with an expression and no retryPolicy, Argo's policy is Always
    assert errored["message"] == "No more retries left"
    assert capped["phase"] == "Failed" and capped["message"] == "Backoff would exceed max duration limit"


def test_an_absent_optional_nothing_defaults_fails_the_consumer_in_argo_s_words(engine: Engine) -> None:
    wf = run(engine, "absent-optional")
    assert wf["status"]["phase"] == "Failed"
    assert node(wf, "b")["message"] == (
        "unable to substitute {{steps.a.outputs.parameters.x}}: "
        "output is an absent optional (skipped/omitted node with no default)"
    )


def test_when_evaluates_expr_lang_over_labels_json_and_concat(engine: Engine) -> None:
    wf = run(engine, "when-expressions")
    assert wf["status"]["phase"] == "Succeeded"
    assert phases(wf)["by-label"] == phases(wf)["by-concat"] == "Succeeded"
    assert phases(wf)["not-by-label"] == "Skipped"
