"""What a run's object says of itself as it starts: ``workflowMetadata`` and the artifact repository it uses.

Argo's controller applies ``spec.workflowMetadata`` to the Workflow's own metadata (``labelsFrom`` expressions
are evaluated over the workflow's parameters) and records the artifact repository in
``status.artifactRepositoryRef``; both happen here, before the first node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.expressions import evaluate, render
from workflows.engine.state.nodes import NodeError

Lookup = Callable[[str, Mapping[str, Any]], str]
DEFAULT_KEY_FORMAT = "{{workflow.name}}/{{pod.name}}"  # Argo's default key of archived logs and outputs


def apply_workflow_metadata(workflow: dict[str, Any]) -> None:
    """Put ``spec.workflowMetadata`` labels and annotations on the workflow, evaluating ``labelsFrom``.

    Raises:
        NodeError: A ``labelsFrom`` expression cannot be evaluated.
    """
    given = workflow["spec"].get("workflowMetadata") or {}
    meta = workflow.setdefault("metadata", {})
    labels = {**(meta.get("labels") or {}), **{k: str(v) for k, v in (given.get("labels") or {}).items()}}
    params = {
        f"workflow.parameters.{p['name']}": str(p.get("value", ""))
        for p in (workflow["spec"].get("arguments") or {}).get("parameters", [])
    }
    scope = {"workflow.name": meta.get("name", ""), "workflow.namespace": meta.get("namespace", ""), **params}
    for label, source in (given.get("labelsFrom") or {}).items():
        try:
            labels[label] = render(evaluate(source["expression"], scope))
        except ExpressionError as exc:
            raise NodeError(f"spec.workflowMetadata.labelsFrom.{label}: {exc}") from exc
    if labels:
        meta["labels"] = labels
    if given.get("annotations"):
        meta["annotations"] = {**(meta.get("annotations") or {}), **given["annotations"]}


def artifact_repository(spec: Mapping[str, Any], default_bucket: str, lookup: Lookup) -> dict[str, Any]:
    """The run's ``status.artifactRepositoryRef``: the engine's S3 bucket, or the one a ConfigMap key names.

    Raises:
        NodeError: The referenced ConfigMap or key does not exist locally, or holds no S3 repository.
    """
    ref = spec.get("artifactRepositoryRef")
    if not ref:
        return {
            "default": True,
            "artifactRepository": {"s3": {"bucket": default_bucket, "keyFormat": DEFAULT_KEY_FORMAT}},
        }
    config = ref.get("configMap", "artifact-repositories")
    key = ref.get("key", "default-v1")
    try:
        text = lookup("configMapKeyRef", {"name": config, "key": key})
        repository = yaml.safe_load(text)
    except (NodeError, yaml.YAMLError) as exc:
        raise NodeError(f"error in getting artifact repository: {exc}") from exc
    if not isinstance(repository, dict) or not isinstance(repository.get("s3"), dict):
        raise NodeError(f"ConfigMap {config!r} key {key!r}: not an S3 artifact repository (give `s3: {{bucket: ...}}`)")
    s3 = {"bucket": default_bucket, "keyFormat": DEFAULT_KEY_FORMAT, **repository["s3"]}
    return {"configMap": config, "key": key, "namespace": "default", "artifactRepository": {**repository, "s3": s3}}
