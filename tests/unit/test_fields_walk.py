"""Every field of hera's Workflow model is implemented, named as cluster-only, or refused at submit: none is ignored.

The walk starts at ``WorkflowSpec`` and follows every implemented field into the Argo model it holds, so a new
field in a new hera release, or a model reached by an implemented field, fails here until it is classified.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from typing import Any

import hera.workflows.models.io.argoproj.workflow.v1alpha1 as argo
import pytest
from hera.workflows.models import Container
from pydantic import BaseModel, RootModel

from workflows.engine import UnsupportedSpec, validate
from workflows.engine.spec import fields as F

LEAF = {"image": "alpine", "command": ["true"]}
MAIN = {"name": "main", "container": LEAF}
Place = Callable[[dict[str, Any]], tuple[dict[str, Any], str]]


def wf(spec: dict[str, Any] | None = None, template: dict[str, Any] | None = None) -> dict[str, Any]:
    leaf = {"name": "leaf", "container": LEAF}
    body = {"entrypoint": "main", "templates": [template or MAIN, leaf], **(spec or {})}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"}, "spec": body}


T0 = "spec.templates[0]"


def _step(x: dict[str, Any]) -> dict[str, Any]:
    return {"name": "main", "steps": [[{"name": "a", "template": "leaf", **x}]]}


def _art(where: str, x: dict[str, Any]) -> dict[str, Any]:
    return {**MAIN, where: {"artifacts": [{"name": "a", "path": "/tmp/a", **x}]}}


def _s3(x: dict[str, Any]) -> dict[str, Any]:
    return _art("outputs", {"s3": {"key": "k", **x}})


PLACES: dict[type[BaseModel], tuple[set[str], set[str], Place]] = {
    argo.WorkflowSpec: (F.WORKFLOW_SPEC, F.CLUSTER_ONLY_WORKFLOW_SPEC, lambda x: (wf(x), "spec")),
    argo.Template: (F.TEMPLATE, F.CLUSTER_ONLY_TEMPLATE, lambda x: (wf(template={**MAIN, **x}), T0)),
    Container: (
        F.CONTAINER,
        F.CLUSTER_ONLY_CONTAINER,
        lambda x: (wf(template={**MAIN, "container": {**LEAF, **x}}), f"{T0}.container"),
    ),
    argo.ScriptTemplate: (
        F.SCRIPT,
        F.CLUSTER_ONLY_CONTAINER,
        lambda x: (wf(template={"name": "main", "script": {"image": "python", "source": "1", **x}}), f"{T0}.script"),
    ),
    argo.UserContainer: (
        F.CONTAINER,
        F.CLUSTER_ONLY_CONTAINER,
        lambda x: (wf(template={**MAIN, "sidecars": [{"name": "s", **LEAF, **x}]}), f"{T0}.sidecars[0]"),
    ),
    argo.ContainerSetTemplate: (
        F.CONTAINER_SET,
        set(),
        lambda x: (
            wf(template={"name": "main", "containerSet": {"containers": [{"name": "main", **LEAF}], **x}}),
            f"{T0}.containerSet",
        ),
    ),
    argo.ContainerNode: (
        F.CONTAINER,
        F.CLUSTER_ONLY_CONTAINER,
        lambda x: (
            wf(template={"name": "main", "containerSet": {"containers": [{"name": "main", **LEAF, **x}]}}),
            f"{T0}.containerSet.containers[0]",
        ),
    ),
    argo.ContainerSetRetryStrategy: (
        F.CONTAINER_SET_RETRY,
        set(),
        lambda x: (
            wf(
                template={
                    "name": "main",
                    "containerSet": {"containers": [{"name": "main", **LEAF}], "retryStrategy": x},
                }
            ),
            f"{T0}.containerSet.retryStrategy",
        ),
    ),
    argo.DAGTemplate: (
        F.DAG,
        set(),
        lambda x: (
            wf(template={"name": "main", "dag": {"tasks": [{"name": "a", "template": "leaf"}], **x}}),
            f"{T0}.dag",
        ),
    ),
    argo.DAGTask: (
        F.TASK,
        set(),
        lambda x: (
            wf(template={"name": "main", "dag": {"tasks": [{"name": "a", "template": "leaf", **x}]}}),
            f"{T0}.dag.tasks[0]",
        ),
    ),
    argo.WorkflowStep: (F.STEP, set(), lambda x: (wf(template=_step(x)), f"{T0}.steps[0][0]")),
    argo.ContinueOn: (
        F.CONTINUE_ON,
        set(),
        lambda x: (wf(template=_step({"continueOn": x})), f"{T0}.steps[0][0].continueOn"),
    ),
    argo.Sequence: (
        F.SEQUENCE,
        set(),
        lambda x: (wf(template=_step({"withSequence": {"count": "2", **x}})), f"{T0}.steps[0][0].withSequence"),
    ),
    argo.TemplateRef: (
        F.TEMPLATE_REF,
        set(),
        lambda x: (
            wf(
                template={
                    "name": "main",
                    "steps": [[{"name": "a", "templateRef": {"name": "t", "template": "x", **x}}]],
                }
            ),
            f"{T0}.steps[0][0].templateRef",
        ),
    ),
    argo.LifecycleHook: (
        F.HOOK,
        set(),
        lambda x: (wf({"hooks": {"exit": {"template": "leaf", **x}}}), "spec.hooks.exit"),
    ),
    argo.Arguments: (F.INPUTS, set(), lambda x: (wf({"arguments": x}), "spec.arguments")),
    argo.Inputs: (F.INPUTS, set(), lambda x: (wf(template={**MAIN, "inputs": x}), f"{T0}.inputs")),
    argo.Outputs: (F.OUTPUTS, set(), lambda x: (wf(template={**MAIN, "outputs": x}), f"{T0}.outputs")),
    argo.Parameter: (
        F.PARAMETER,
        set(),
        lambda x: (wf(template={**MAIN, "inputs": {"parameters": [{"name": "p", **x}]}}), f"{T0}.inputs.parameters[0]"),
    ),
    argo.ValueFrom: (
        F.VALUE_FROM,
        set(),
        lambda x: (
            wf(template={**MAIN, "outputs": {"parameters": [{"name": "p", "valueFrom": {"path": "/tmp/p", **x}}]}}),
            f"{T0}.outputs.parameters[0].valueFrom",
        ),
    ),
    argo.Artifact: (
        F.ARTIFACT,
        F.CLUSTER_ONLY_ARTIFACT,
        lambda x: (wf(template=_art("outputs", x)), f"{T0}.outputs.artifacts[0]"),
    ),
    argo.S3Artifact: (
        F.S3_ARTIFACT,
        F.CLUSTER_ONLY_S3,
        lambda x: (wf(template=_s3(x)), f"{T0}.outputs.artifacts[0].s3"),
    ),
    argo.CreateS3BucketOptions: (
        F.CREATE_BUCKET,
        set(),
        lambda x: (
            wf(template=_s3({"createBucketIfNotPresent": x})),
            f"{T0}.outputs.artifacts[0].s3.createBucketIfNotPresent",
        ),
    ),
    argo.ArchiveStrategy: (
        {"none", "tar"},
        set(),
        lambda x: (wf(template=_art("outputs", {"archive": x})), f"{T0}.outputs.artifacts[0].archive"),
    ),
    argo.TarStrategy: (
        F.TAR,
        set(),
        lambda x: (wf(template=_art("outputs", {"archive": {"tar": x}})), f"{T0}.outputs.artifacts[0].archive.tar"),
    ),
    argo.ArtifactGC: (
        F.ARTIFACT_GC,
        F.CLUSTER_ONLY_ARTIFACT_GC,
        lambda x: (wf(template=_art("outputs", {"artifactGC": x})), f"{T0}.outputs.artifacts[0].artifactGC"),
    ),
    argo.WorkflowLevelArtifactGC: (
        F.ARTIFACT_GC,
        F.CLUSTER_ONLY_ARTIFACT_GC,
        lambda x: (wf({"artifactGC": x}), "spec.artifactGC"),
    ),
    argo.RetryStrategy: (
        F.RETRY,
        F.CLUSTER_ONLY_RETRY,
        lambda x: (wf(template={**MAIN, "retryStrategy": x}), f"{T0}.retryStrategy"),
    ),
    argo.Backoff: (
        F.BACKOFF,
        set(),
        lambda x: (wf(template={**MAIN, "retryStrategy": {"backoff": x}}), f"{T0}.retryStrategy.backoff"),
    ),
    argo.Memoize: (
        F.MEMOIZE,
        set(),
        lambda x: (
            wf(template={**MAIN, "memoize": {"key": "k", "cache": {"configMap": {"name": "c"}}, **x}}),
            f"{T0}.memoize",
        ),
    ),
    argo.Cache: (
        F.CACHE,
        set(),
        lambda x: (
            wf(template={**MAIN, "memoize": {"key": "k", "cache": {"configMap": {"name": "c"}, **x}}}),
            f"{T0}.memoize.cache",
        ),
    ),
    argo.Synchronization: (F.SYNCHRONIZATION, set(), lambda x: (wf({"synchronization": x}), "spec.synchronization")),
    argo.Mutex: (
        F.MUTEX,
        F.CLUSTER_ONLY_LOCK,
        lambda x: (wf({"synchronization": {"mutexes": [{"name": "m", **x}]}}), "spec.synchronization.mutexes[0]"),
    ),
    argo.SemaphoreRef: (
        F.SEMAPHORE,
        F.CLUSTER_ONLY_LOCK,
        lambda x: (
            wf({"synchronization": {"semaphores": [{"configMapKeyRef": {"name": "c", "key": "k"}, **x}]}}),
            "spec.synchronization.semaphores[0]",
        ),
    ),
    argo.HTTP: (
        F.HTTP,
        set(),
        lambda x: (wf(template={"name": "main", "http": {"url": "http://x", **x}}), f"{T0}.http"),
    ),
    argo.HTTPHeader: (
        F.HTTP_HEADER,
        set(),
        lambda x: (
            wf(template={"name": "main", "http": {"url": "http://x", "headers": [{"name": "h", **x}]}}),
            f"{T0}.http.headers[0]",
        ),
    ),
    argo.HTTPHeaderSource: (
        F.HTTP_HEADER_SOURCE,
        set(),
        lambda x: (
            wf(template={"name": "main", "http": {"url": "http://x", "headers": [{"name": "h", "valueFrom": x}]}}),
            f"{T0}.http.headers[0].valueFrom",
        ),
    ),
    argo.HTTPBodySource: (
        F.HTTP_BODY_SOURCE,
        set(),
        lambda x: (wf(template={"name": "main", "http": {"url": "http://x", "bodyFrom": x}}), f"{T0}.http.bodyFrom"),
    ),
    argo.SuspendTemplate: (F.SUSPEND, set(), lambda x: (wf(template={"name": "main", "suspend": x}), f"{T0}.suspend")),
    argo.WorkflowMetadata: (
        F.WORKFLOW_METADATA,
        set(),
        lambda x: (wf({"workflowMetadata": x}), "spec.workflowMetadata"),
    ),
    argo.LabelValueFrom: (
        {"expression"},
        set(),
        lambda x: (
            wf({"workflowMetadata": {"labelsFrom": {"l": {"expression": "'a'", **x}}}}),
            "spec.workflowMetadata.labelsFrom.l",
        ),
    ),
    argo.TTLStrategy: (F.TTL_STRATEGY, set(), lambda x: (wf({"ttlStrategy": x}), "spec.ttlStrategy")),
    argo.ArtifactRepositoryRef: (
        F.ARTIFACT_REPOSITORY_REF,
        set(),
        lambda x: (wf({"artifactRepositoryRef": x}), "spec.artifactRepositoryRef"),
    ),
    argo.ArtifactLocation: (
        F.ARCHIVE_LOCATION,
        set(),
        lambda x: (wf(template={**MAIN, "archiveLocation": x}), f"{T0}.archiveLocation"),
    ),
    argo.HTTPArtifact: (
        F.HTTP_ARTIFACT,
        set(),
        lambda x: (wf(template=_art("inputs", {"http": {"url": "http://x", **x}})), f"{T0}.inputs.artifacts[0].http"),
    ),
    argo.Header: (
        F.HTTP_ARTIFACT_HEADER,
        set(),
        lambda x: (
            wf(template=_art("inputs", {"http": {"url": "http://x", "headers": [{"name": "h", **x}]}})),
            f"{T0}.inputs.artifacts[0].http.headers[0]",
        ),
    ),
    argo.Data: (F.DATA, set(), lambda x: (wf(template={"name": "main", "data": {"source": {}, **x}}), f"{T0}.data")),
    argo.DataSource: (
        F.DATA_SOURCE,
        set(),
        lambda x: (wf(template={"name": "main", "data": {"source": x}}), f"{T0}.data.source"),
    ),
    argo.ArtifactPaths: (
        F.ARTIFACT_PATHS,
        set(),
        lambda x: (
            wf(template={"name": "main", "data": {"source": {"artifactPaths": {"name": "p", **x}}}}),
            f"{T0}.data.source.artifactPaths",
        ),
    ),
    argo.TransformationStep: (
        F.TRANSFORMATION,
        set(),
        lambda x: (
            wf(template={"name": "main", "data": {"source": {}, "transformation": [{"expression": "data", **x}]}}),
            f"{T0}.data.transformation[0]",
        ),
    ),
    argo.WorkflowTemplateRef: (
        F.WORKFLOW_TEMPLATE_REF,
        set(),
        lambda x: (
            {"kind": "Workflow", "spec": {"workflowTemplateRef": {"name": "t", **x}}},
            "spec.workflowTemplateRef",
        ),
    ),
}
# Models an implemented field holds whose own fields are values, not keys to walk.
LEAVES = {argo.Item, argo.ParallelSteps, argo.NoneStrategy, argo.SuppliedValueFrom, argo.RawArtifact}


def _alias(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def _held(annotation: Any) -> list[type[BaseModel]]:
    found = [a for arg in typing.get_args(annotation) for a in _held(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    return found


def _walked() -> list[tuple[type[BaseModel], str]]:
    """(model, field) for every field of every Argo model reached from WorkflowSpec through implemented fields."""
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [argo.WorkflowSpec]
    pairs = []
    while todo:
        model = todo.pop()
        if model in seen or model in LEAVES or issubclass(model, RootModel):
            continue
        seen.add(model)
        implemented = PLACES[model][0] if model in PLACES else set()
        for name, info in model.model_fields.items():
            pairs.append((model, _alias(model, name)))
            if _alias(model, name) in implemented:
                todo += [m for m in _held(info.annotation) if m.__module__.startswith(argo.__name__) or m is Container]
    return pairs


def test_every_model_an_implemented_field_reaches_has_its_fields_classified() -> None:
    unplaced = sorted({m.__name__ for m, _ in _walked() if m not in PLACES and m.model_fields})
    assert not unplaced, f"classify the fields of {unplaced} (add them to PLACES and to the engine's fields)"


@pytest.mark.parametrize(("model", "key"), _walked(), ids=lambda v: getattr(v, "__name__", v))
def test_each_field_is_implemented_cluster_only_or_refused(model: type[BaseModel], key: str) -> None:
    implemented, cluster_only, place = PLACES[model]
    if key in implemented:
        return  # its behaviour is tested with the engine (tests/engine)
    workflow, path = place({key: {"x": 1} if key != "name" else "n"})
    if key in cluster_only:
        assert f"{path}.{key}" in validate(workflow)
        return
    with pytest.raises(UnsupportedSpec, match=re.escape(f"{path}.{key}: ")):
        validate(workflow)


def test_a_place_with_nothing_added_is_accepted() -> None:
    for model, (_, _, place) in PLACES.items():
        workflow, _ = place({})
        if model is argo.WorkflowTemplateRef:
            continue  # needs its template in a library; submit resolves it
        validate(workflow)
