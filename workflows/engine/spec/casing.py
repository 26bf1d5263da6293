"""Field names as Argo reads them: Go's JSON decoder matches a key to a field without regard to case.

``valueFrom: {Parameter: ...}`` is ``valueFrom.parameter`` to Argo, so the engine renames every key that matches a
field of Argo's schema (hera's models) only by case to the schema's own spelling, before anything reads it. Keys of
free-form maps (labels, annotations) are left as they are.
"""

from __future__ import annotations

import functools
from typing import Any

KINDS = frozenset({"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"})


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    """Argo's JSON schema of one kind, from hera's models (made once per process: it takes most of a second)."""
    from hera.workflows import models

    return dict(getattr(models, kind).model_json_schema())


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A schema node with its ``$ref`` followed and a single non-null ``anyOf``/``allOf``/``oneOf`` option taken."""
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    for combo in ("allOf", "anyOf", "oneOf"):
        options = [resolve(schema, o) for o in node.get(combo, []) if o.get("type") != "null"]
        if len(options) == 1:
            return options[0]
    return node


def _walk(schema: dict[str, Any], node: dict[str, Any], value: Any) -> Any:
    node = resolve(schema, node)
    if isinstance(value, dict) and "properties" in node:
        fields = {p.get("alias", k): p for k, p in node["properties"].items()}
        folded = {name.lower(): name for name in fields}
        renamed = {}
        for key, item in value.items():
            name = key if key in fields else folded.get(str(key).lower(), key)
            renamed[name] = _walk(schema, fields.get(name, {}), item)
        return renamed
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_walk(schema, node["items"], item) for item in value]
    return value


def canonical(doc: Any) -> Any:
    """An Argo object with every key spelt as Argo's schema spells it (other documents are returned unchanged)."""
    if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
        return doc
    found = schema(doc["kind"])
    return _walk(found, found, doc)
