"""What a template sees: its scope, parameter and artifact frames, loop items and published outputs."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflows.engine.expr import substitute, substitute_all
from workflows.engine.nodes import NodeError


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

    def scope(self) -> dict[str, str]:
        """Parameters for substitution; artifact references stay as tags until they are resolved."""
        return {**self.params, **{name: "{{" + name + "}}" for name in self.artifacts}}


def as_param(value: Any) -> str:
    """A value as Argo passes parameters: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def input_params(tmpl: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A template's declared input parameters."""
    return list((tmpl.get("inputs") or {}).get("parameters", []))


def parallelism_limiter(tmpl: Mapping[str, Any]) -> asyncio.Semaphore | None:
    """A template's own ``parallelism`` as a semaphore, or None when it sets none."""
    return asyncio.Semaphore(int(tmpl["parallelism"])) if tmpl.get("parallelism") else None


def loop_items(item: Mapping[str, Any]) -> list[Any] | None:
    """The items a task or step loops over (``withItems``, ``withParam``, ``withSequence``), or None."""
    if "withItems" in item:
        return list(item["withItems"])
    if "withParam" in item:
        try:
            value = json.loads(item["withParam"])
        except json.JSONDecodeError as exc:
            raise NodeError(f"withParam value could not be parsed as a JSON list: {item['withParam'][:200]}") from exc
        if not isinstance(value, list):
            raise NodeError(f"withParam value is not a JSON list: {item['withParam'][:200]}")
        return value
    if "withSequence" in item:
        return sequence_items(item["withSequence"])
    return None


def sequence_items(seq: Mapping[str, Any]) -> list[str]:
    """The items of a ``withSequence``: a count or an inclusive range, each formatted."""
    start = int(seq.get("start", 0))
    if "count" in seq:
        numbers = list(range(start, start + int(seq["count"])))
    else:
        end = int(seq.get("end", 0))
        numbers = list(range(start, end + 1)) if end >= start else list(range(start, end - 1, -1))
    fmt = seq.get("format")
    return [fmt % n if fmt else str(n) for n in numbers]


def item_label(item: Any) -> str:
    """An item as Argo shows it in a looped node's name."""
    if isinstance(item, dict):
        return ",".join(f"{k}:{item_label(v)}" for k, v in sorted(item.items()))
    return item if isinstance(item, str) else json.dumps(item)


def with_item(item_spec: Mapping[str, Any], item: Any, frame: Frame) -> dict[str, Any]:
    """A task or step with ``{{item}}`` (and ``{{item.KEY}}``) substituted for one item."""
    scope = {"item": as_param(item)}
    if isinstance(item, dict):
        scope.update({f"item.{k}": as_param(v) for k, v in item.items()})
    body = {k: v for k, v in item_spec.items() if k not in ("withItems", "withParam", "withSequence")}
    return dict(substitute_all(body, {**frame.scope(), **scope}, ("item",)))


def expands(item: Mapping[str, Any]) -> bool:
    """Whether a task or step loops."""
    return any(k in item for k in ("withItems", "withParam", "withSequence"))


def publish(frame: Frame, prefix: str, nodes: list[dict[str, Any]], expanded: bool) -> None:
    """Make a finished task's (or step's) outputs visible as ``{{tasks.NAME...}}``."""
    if not nodes:
        return
    if not expanded:
        node = nodes[0]
        outputs = node.get("outputs") or {}
        frame.params[f"{prefix}.status"] = node["phase"]
        frame.params[f"{prefix}.id"] = node["id"]
        for key in ("result", "exitCode"):
            if key in outputs:
                frame.params[f"{prefix}.outputs.{key}" if key == "result" else f"{prefix}.exitCode"] = outputs[key]
        for param in outputs.get("parameters", []):
            frame.params[f"{prefix}.outputs.parameters.{param['name']}"] = param["value"]
        for art in outputs.get("artifacts", []):
            frame.artifacts[f"{prefix}.outputs.artifacts.{art['name']}"] = art
        return
    results = [_json_or_text(n["outputs"]["result"]) for n in nodes if "result" in (n.get("outputs") or {})]
    frame.params[f"{prefix}.outputs.result"] = json.dumps(results)
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
            source = frame.artifacts.get(ref.group(1)) if ref else None
            if source is None:
                if art.get("optional"):
                    continue
                raise NodeError(f"artifact argument {art['name']}: cannot resolve {art['from']}")
            art = {**{k: v for k, v in source.items() if k != "name"}, "name": art["name"]}
        arts.append(art)
    resolved["artifacts"] = arts
    return resolved


def artifact_location(given: Mapping[str, Any]) -> dict[str, Any]:
    """Where an artifact argument points (its S3, raw or archive fields)."""
    return {k: given[k] for k in ("s3", "raw", "archive") if k in given}


def template_outputs(tmpl: Mapping[str, Any], frame: Frame) -> dict[str, Any]:
    """A DAG's or steps template's outputs, from the parameters and artifacts its children published."""
    outputs: dict[str, Any] = {}
    params = []
    for param in (tmpl.get("outputs") or {}).get("parameters", []):
        source = (param.get("valueFrom") or {}).get("parameter")
        if source:
            params.append({"name": param["name"], "value": substitute(source, frame.params)})
    if params:
        outputs["parameters"] = params
    arts = []
    for art in (tmpl.get("outputs") or {}).get("artifacts", []):
        ref = re.fullmatch(r"\{\{\s*(.+?)\s*\}\}", art.get("from", ""))
        if ref and ref.group(1) in frame.artifacts:
            arts.append({**frame.artifacts[ref.group(1)], "name": art["name"]})
    if arts:
        outputs["artifacts"] = arts
    return outputs


def bind_inputs(
    globals_: Mapping[str, str], tmpl: dict[str, Any], args: Mapping[str, Any], node: dict[str, Any]
) -> dict[str, Any]:
    """Bind a template's inputs from the call's arguments and substitute them into its body."""
    given = {p["name"]: p for p in args.get("parameters", [])}
    bound: list[dict[str, Any]] = []
    for param in (tmpl.get("inputs") or {}).get("parameters", []):
        source = given.get(param["name"], {})
        value = source.get("value", param.get("value", param.get("default")))
        if value is None:
            raise NodeError(f"inputs.parameters.{param['name']} was not supplied")
        value = as_param(value)
        if param.get("enum") and value not in [str(e) for e in param["enum"]]:
            raise NodeError(f"inputs.parameters.{param['name']}={value!r} is not one of {param['enum']}")
        bound.append({**param, "value": value})
    given_arts = {a["name"]: a for a in args.get("artifacts", [])}
    arts = [
        {**a, **artifact_location(given_arts.get(a["name"], {}))}
        for a in (tmpl.get("inputs") or {}).get("artifacts", [])
    ]
    scope = dict(globals_)
    scope["inputs.parameters"] = json.dumps([{"name": p["name"], "value": p["value"]} for p in bound])
    scope.update({f"inputs.parameters.{p['name']}": p["value"] for p in bound})
    scope.update({f"inputs.artifacts.{a['name']}.path": a.get("path", "") for a in arts})
    body = {k: v for k, v in tmpl.items() if k not in ("inputs",)}
    body = substitute_all(body, scope, ("inputs.",))
    node["inputs"] = {k: v for k, v in (("parameters", bound), ("artifacts", arts)) if v}
    return {**body, "inputs": node["inputs"]}


def workflow_globals(workflow: Mapping[str, Any]) -> dict[str, str]:
    """The ``workflow.*`` values every template of a run sees."""
    meta, spec = workflow["metadata"], workflow["spec"]
    params = {p["name"]: str(p.get("value", "")) for p in (spec.get("arguments") or {}).get("parameters", [])}
    return {
        "workflow.name": meta["name"],
        "workflow.namespace": meta.get("namespace", "default"),
        "workflow.uid": meta.get("uid", ""),
        "workflow.creationTimestamp": meta.get("creationTimestamp", ""),
        "workflow.serviceAccountName": spec.get("serviceAccountName", ""),
        "workflow.parameters": json.dumps([{"name": k, "value": v} for k, v in params.items()]),
        **{f"workflow.parameters.{k}": v for k, v in params.items()},
    }


def resolve_template(library: Any, invocation: Mapping[str, Any], scope: Scope) -> tuple[dict[str, Any], Scope]:
    """Find the template a task or step names (``template`` or ``templateRef``)."""
    if "templateRef" in invocation:
        ref = invocation["templateRef"]
        try:
            owner = library.get("workflowtemplate", ref["name"])
        except KeyError as exc:
            raise NodeError(str(exc.args[0])) from exc
        ref_scope = Scope(ref["name"], {t["name"]: t for t in owner["spec"].get("templates", [])})
        return resolve_template(library, {"template": ref["template"]}, ref_scope)
    name = invocation["template"]
    if name not in scope.templates:
        raise NodeError(f"template {name!r} not found in {scope.owner}")
    return json.loads(json.dumps(scope.templates[name])), scope
