"""What a template sees: its scope, parameter and artifact frames, loop items and published outputs."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.expressions import evaluate, render
from workflows.engine.language.tags import TAG, substitute, substitute_all
from workflows.engine.state.nodes import (
    ABSENT,
    ArtifactRecord,
    Inputs,
    Node,
    NodeError,
    Outputs,
    Parameter,
    parameter,
)
from workflows.engine.state.nodes import artifact as artifact_record


@dataclass
class Scope:
    """Where template names resolve: the templates of one Workflow or WorkflowTemplate."""

    owner: str
    templates: dict[str, dict[str, Any]]


@dataclass
class Frame:
    """Values visible while resolving one DAG's tasks or one steps template's steps."""

    params: dict[str, str]
    artifacts: dict[str, dict[str, Any]]
    shared: Mapping[str, str] = field(default_factory=dict)  # the run's globals, as they grow (workflow.outputs)
    shared_artifacts: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)  # `tasks.NAME` / `steps.NAME` prefixes that were skipped

    def scope(self) -> dict[str, str]:
        """Parameters for substitution; artifact references stay as tags until they are resolved."""
        arts = {**self.shared_artifacts, **self.artifacts}
        return {**self.shared, **self.params, **{name: "{{" + name + "}}" for name in arts}}

    def artifact(self, name: str) -> dict[str, Any] | None:
        """An artifact published in this frame or globally."""
        return self.artifacts.get(name) or self.shared_artifacts.get(name)


def as_param(value: Any) -> str:
    """A value as Argo passes parameters: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def input_params(tmpl: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A template's declared input parameters."""
    return list((tmpl.get("inputs") or {}).get("parameters", []))


def input_artifacts(tmpl: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A DAG's or steps template's bound input artifacts, as ``inputs.artifacts.NAME`` references."""
    arts = (tmpl.get("inputs") or {}).get("artifacts", [])
    return {f"inputs.artifacts.{a['name']}": a for a in arts if artifact_location(a)}


def parallelism_limiter(tmpl: Mapping[str, Any]) -> asyncio.Semaphore | None:
    """A template's own ``parallelism`` as a semaphore, or None when it sets none."""
    return asyncio.Semaphore(int(tmpl["parallelism"])) if tmpl.get("parallelism") else None


def publish(frame: Frame, prefix: str, nodes: list[Node], expanded: bool) -> None:
    """Make a finished task's (or step's) outputs visible as ``{{tasks.NAME...}}``."""
    if not nodes:
        return
    if not expanded:
        node = nodes[0]
        outputs = node.get("outputs") or {}
        frame.params[f"{prefix}.status"] = node["phase"]
        frame.params[f"{prefix}.id"] = node["id"]
        if node.get("podIP"):
            frame.params[f"{prefix}.ip"] = node["podIP"]
        if node["phase"] in ("Skipped", "Omitted"):
            frame.skipped.add(prefix)
        for key in ("result", "exitCode"):
            if key in outputs:
                frame.params[f"{prefix}.outputs.{key}" if key == "result" else f"{prefix}.exitCode"] = outputs[key]
        for param in outputs.get("parameters", []):
            frame.params[f"{prefix}.outputs.parameters.{param['name']}"] = param["value"]
        for art in outputs.get("artifacts", []):
            frame.artifacts[f"{prefix}.outputs.artifacts.{art['name']}"] = dict(art)
        return
    results = [_json_or_text(n["outputs"]["result"]) for n in nodes if "result" in (n.get("outputs") or {})]
    frame.params[f"{prefix}.outputs.result"] = json.dumps(results)
    per_node = [{p["name"]: p["value"] for p in (n.get("outputs") or {}).get("parameters", [])} for n in nodes]
    if any(per_node):
        frame.params[f"{prefix}.outputs.parameters"] = json.dumps([m for m in per_node if m])
    names = {p["name"] for n in nodes for p in (n.get("outputs") or {}).get("parameters", [])}
    for name in names:
        values = [
            p["value"] for n in nodes for p in (n.get("outputs") or {}).get("parameters", []) if p["name"] == name
        ]
        frame.params[f"{prefix}.outputs.parameters.{name}"] = json.dumps(values)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def resolve_artifact_args(arguments: Mapping[str, Any], frame: Frame) -> dict[str, Any]:
    """Artifact arguments with each ``from`` reference replaced by the artifact it names."""
    resolved = dict(arguments)
    arts = []
    for art in arguments.get("artifacts", []):
        if "from" in art:
            ref = re.fullmatch(r"\{\{\s*(.+?)\s*\}\}", art["from"])
            source = frame.artifact(ref.group(1)) if ref else None
            if source is None:
                if art.get("optional"):
                    continue
                raise NodeError(f"artifact argument {art['name']}: cannot resolve {art['from']}")
            extra = {"subPath": art["subPath"]} if art.get("subPath") else {}
            art = {**{k: v for k, v in source.items() if k not in ("name", "globalName")}, "name": art["name"], **extra}
        arts.append(art)
    resolved["artifacts"] = arts
    return resolved


def artifact_location(given: Mapping[str, Any]) -> dict[str, Any]:
    """Where an artifact argument points (its S3, raw or archive fields)."""
    return {k: given[k] for k in ("s3", "raw", "archive", "subPath") if k in given}


def template_outputs(tmpl: Mapping[str, Any], frame: Frame) -> Outputs:
    """A DAG's or steps template's outputs, from what its children published.

    Parameters come from ``valueFrom.parameter`` or ``expression``, artifacts from ``from`` or ``fromExpression``.

    Raises:
        NodeError: An output cannot be resolved and has no default.
    """
    outputs: Outputs = {}
    params: list[Parameter] = []
    for param in (tmpl.get("outputs") or {}).get("parameters", []):
        value_from = param.get("valueFrom") or {}
        value: Any = None
        if value_from.get("parameter"):
            value = substitute(value_from["parameter"], {**frame.shared, **frame.params})
            value = None if TAG.fullmatch(value) else value
        elif value_from.get("expression"):
            value = _evaluated(evaluate, str(value_from["expression"]), {**frame.shared, **frame.params}, param["name"])
            value = None if value is None else render(value)
        if value is None and "default" in value_from:
            value = as_param(value_from["default"])
        if value is None:
            raise NodeError(
                f"outputs.parameters.{param['name']}: {_source(value_from)} did not resolve and has no default"
            )
        params.append(parameter(param["name"], value, param))
    if params:
        outputs["parameters"] = params
    arts: list[ArtifactRecord] = []
    for art in (tmpl.get("outputs") or {}).get("artifacts", []):
        found = _output_artifact(art, frame, evaluate)
        if found is not None:
            arts.append(artifact_record(found, art))
    if arts:
        outputs["artifacts"] = arts
    return outputs


def _source(value_from: Mapping[str, Any]) -> str:
    return next((f"{k} {v!r}" for k, v in value_from.items() if k in ("parameter", "expression")), "valueFrom")


def _evaluated(evaluate: Any, source: str, scope: Mapping[str, Any], name: str, arts: Any = None) -> Any:

    try:
        return evaluate(source, scope, arts)
    except ExpressionError as exc:
        raise NodeError(f"outputs.{name}: {exc}") from exc


def _output_artifact(art: Mapping[str, Any], frame: Frame, evaluate: Any) -> dict[str, Any] | None:
    if art.get("fromExpression"):
        arts = {**frame.shared_artifacts, **frame.artifacts}
        value = _evaluated(evaluate, art["fromExpression"], {**frame.shared, **frame.params}, art["name"], arts)
        if not isinstance(value, dict):
            if art.get("optional"):
                return None
            raise NodeError(f"outputs.artifacts.{art['name']}: fromExpression did not name an artifact ({value!r})")
        return value
    ref = re.fullmatch(r"\{\{\s*(.+?)\s*\}\}", art.get("from", ""))
    found = frame.artifact(ref.group(1)) if ref else None
    return dict(found) if found else None


def bind_inputs(
    globals_: Mapping[str, str],
    tmpl: dict[str, Any],
    args: Mapping[str, Any],
    node: Node,
    lookup: Callable[[str, Mapping[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Bind a template's inputs from the call's arguments and substitute them into its body."""
    given = {p["name"]: p for p in args.get("parameters", [])}
    bound: list[dict[str, Any]] = []
    for param in (tmpl.get("inputs") or {}).get("parameters", []):
        source = given.get(param["name"], {})
        value = source.get("value", param.get("value"))
        if value is None:  # a ConfigMap's name and key may be given by a parameter
            value = configmap_value(substitute_all(param, globals_), lookup)
        if value is None:
            value = param.get("default")
        if value is None and param["name"] in (args.get("absent") or {}):  # an absent optional nothing defaults
            raise NodeError(ABSENT.format(tag=args["absent"][param["name"]]))
        if value is None:
            raise NodeError(f"inputs.parameters.{param['name']} was not supplied")
        value = substitute(as_param(value), globals_) if "{{" in as_param(value) else as_param(value)
        if param.get("enum") and value not in [str(e) for e in param["enum"]]:
            raise NodeError(f"inputs.parameters.{param['name']}={value!r} is not one of {param['enum']}")
        bound.append({**param, "value": value})
    given_arts = {a["name"]: a for a in args.get("artifacts", [])}
    arts = [
        substitute_all({**a, **artifact_location(given_arts.get(a["name"], {}))}, globals_)
        for a in (tmpl.get("inputs") or {}).get("artifacts", [])
    ]
    scope = dict(globals_)
    scope["inputs.parameters"] = json.dumps([{"name": p["name"], "value": p["value"]} for p in bound])
    scope.update({f"inputs.parameters.{p['name']}": p["value"] for p in bound})
    scope.update({f"inputs.artifacts.{a['name']}.path": a.get("path", "") for a in arts})
    scope.update({f"inputs.artifacts.{a['name']}": "{{inputs.artifacts." + a["name"] + "}}" for a in arts})
    outputs = tmpl.get("outputs") or {}
    scope.update({f"outputs.artifacts.{a['name']}.path": a.get("path", "") for a in outputs.get("artifacts", [])})
    scope.update(
        {
            f"outputs.parameters.{p['name']}.path": (p.get("valueFrom") or {}).get("path", "")
            for p in outputs.get("parameters", [])
        }
    )
    body = {k: v for k, v in tmpl.items() if k not in ("inputs",)}
    body = substitute_all(body, scope, ("inputs.",))
    node["inputs"] = cast(Inputs, {k: v for k, v in (("parameters", bound), ("artifacts", arts)) if v})
    return {**body, "inputs": node["inputs"]}


def configmap_value(param: Mapping[str, Any], lookup: Callable[[str, Mapping[str, Any]], str] | None) -> str | None:
    """A parameter's value from ``valueFrom.configMapKeyRef`` (None when it has none, or an optional key is absent).

    Raises:
        NodeError: The ConfigMap or key does not exist and the reference is not optional.
    """
    ref = (param.get("valueFrom") or {}).get("configMapKeyRef")
    if not ref or lookup is None:
        return None
    try:
        return lookup("configMapKeyRef", ref)
    except NodeError:
        if ref.get("optional") or "default" in param or "default" in (param.get("valueFrom") or {}):
            return (param.get("valueFrom") or {}).get("default")
        raise


def workflow_globals(
    workflow: Mapping[str, Any], lookup: Callable[[str, Mapping[str, Any]], str] | None = None
) -> dict[str, str]:
    """The ``workflow.*`` values every template of a run sees (ConfigMap-sourced parameters resolved).

    Raises:
        NodeError: A parameter's ConfigMap key does not exist locally.
    """
    meta, spec = workflow["metadata"], workflow["spec"]
    params = {}
    for param in (spec.get("arguments") or {}).get("parameters", []):
        value = param.get("value")
        params[param["name"]] = str(value if value is not None else configmap_value(param, lookup) or "")
    return {
        "workflow.name": meta["name"],
        "workflow.namespace": meta.get("namespace", "default"),
        "workflow.uid": meta.get("uid", ""),
        "workflow.creationTimestamp": meta.get("creationTimestamp", ""),
        "workflow.serviceAccountName": spec.get("serviceAccountName", ""),
        "workflow.mainEntrypoint": str(spec.get("entrypoint", "")),
        **{f"workflow.labels.{k}": str(v) for k, v in (meta.get("labels") or {}).items()},
        **{f"workflow.annotations.{k}": str(v) for k, v in (meta.get("annotations") or {}).items()},
        "workflow.labels.json": json.dumps(meta.get("labels") or {}),
        "workflow.annotations.json": json.dumps(meta.get("annotations") or {}),
        "workflow.parameters": json.dumps([{"name": k, "value": v} for k, v in params.items()]),
        "workflow.parameters.json": json.dumps([{"name": k, "value": v} for k, v in params.items()]),
        **{f"workflow.parameters.{k}": v for k, v in params.items()},
    }


def resolve_template(library: Any, invocation: Mapping[str, Any], scope: Scope) -> tuple[dict[str, Any], Scope]:
    """Find the template a task or step names.

    It is named by ``template``, ``templateRef`` (with ``clusterScope`` for a ClusterWorkflowTemplate) or ``inline``.
    """
    if "inline" in invocation:
        return {
            "name": "",
            **json.loads(json.dumps(invocation["inline"])),
        }, scope  # Argo's inline templates are unnamed
    if "templateRef" in invocation:
        ref = invocation["templateRef"]
        kind = "clusterworkflowtemplate" if ref.get("clusterScope") else "workflowtemplate"
        try:
            owner = library.get(kind, ref["name"])
        except KeyError as exc:
            raise NodeError(str(exc.args[0])) from exc
        ref_scope = Scope(ref["name"], {t["name"]: t for t in owner["spec"].get("templates", [])})
        return resolve_template(library, {"template": ref["template"]}, ref_scope)
    name = invocation["template"]
    if name not in scope.templates:
        raise NodeError(f"template {name!r} not found in {scope.owner}")
    return json.loads(json.dumps(scope.templates[name])), scope


def skipped_outputs(library: Any, invocation: Mapping[str, Any], scope: Scope) -> Outputs:
    """What a skipped or omitted node's outputs resolve to (Argo v4).

    They are each output parameter's ``valueFrom.default``; parameters without one stay absent, so a
    consumer's input default applies.
    """
    try:
        tmpl, _ = resolve_template(library, invocation, scope)
    except NodeError:
        return {}
    params = [
        parameter(p["name"], as_param(p["valueFrom"]["default"]), {})
        for p in (tmpl.get("outputs") or {}).get("parameters", [])
        if "default" in (p.get("valueFrom") or {})
    ]
    return {"parameters": params} if params else {}
