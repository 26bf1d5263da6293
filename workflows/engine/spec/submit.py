"""Turn what a user submits (a file, or ``workflowtemplate/NAME``) into a runnable Workflow object.

This follows ``argo submit``: a WorkflowTemplate becomes a Workflow with a ``workflowTemplateRef`` whose spec
is merged in, ``-p key=value`` overrides declared parameters, and the name comes from ``generateName``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflows.engine.spec import casing
from workflows.engine.spec.library import TemplateLibrary, load_documents
from workflows.engine.spec.validation import validate
from workflows.engine.state import names
from workflows.engine.state.nodes import now
from workflows.engine.state.store import new_run_name
from workflows.errors import CtcdError

SUBMITTABLE = ("workflowtemplate", "cronworkflow")


class SubmitError(CtcdError, ValueError):
    """What was submitted cannot be run; the message says why and what to do."""


def from_reference(library: TemplateLibrary, reference: str) -> dict[str, Any]:
    """A Workflow for ``workflowtemplate/NAME`` (or ``cronworkflow/NAME``), as ``argo submit --from`` builds it."""
    kind, _, name = reference.partition("/")
    if kind.lower() not in SUBMITTABLE or not name:
        raise SubmitError(f"--from {reference!r}: use workflowtemplate/NAME or cronworkflow/NAME")
    try:
        source = library.get(kind, name)
    except KeyError as exc:
        raise SubmitError(str(exc.args[0])) from exc
    if kind.lower() == "cronworkflow":
        spec = copy.deepcopy(source["spec"]["workflowSpec"])
        meta: dict[str, Any] = {"generateName": f"{name}-"}
    else:
        spec = {"workflowTemplateRef": {"name": name}}
        meta = {"generateName": source["metadata"].get("generateName") or f"{name}-"}
    meta["labels"] = {f"workflows.argoproj.io/{kind.lower().replace('workflowtemplate', 'workflow-template')}": name}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": meta, "spec": spec}


def from_file(path: Path) -> dict[str, Any]:
    """The Workflow in a YAML file (a WorkflowTemplate file is submitted as a Workflow of its own)."""
    docs = [d for d in load_documents(path) if d["kind"] == "Workflow"]
    docs = docs or [d for d in load_documents(path) if d["kind"] == "WorkflowTemplate"]
    if len(docs) != 1:
        raise SubmitError(f"{path}: expected exactly one Workflow or WorkflowTemplate, found {len(docs)}")
    doc = copy.deepcopy(docs[0])
    meta = doc.get("metadata", {})
    if doc["kind"] == "WorkflowTemplate":
        meta = {"generateName": meta.get("generateName") or f"{meta.get('name', 'workflow')}-"}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": meta, "spec": doc["spec"]}


def _prefix(meta: Mapping[str, Any]) -> str:
    """``generateName``, checked as the start of a Kubernetes name (the random suffix completes it)."""
    prefix = str(meta.get("generateName", "workflow-"))
    names.check("Workflow metadata.generateName:", prefix + "x")
    return prefix


def prepare(library: TemplateLibrary, workflow: dict[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """Resolve the template reference, apply parameters, validate, name the run and mark it Pending.

    Raises:
        SubmitError: An unknown template or parameter, or a spec the engine cannot run.
    """
    workflow = copy.deepcopy(workflow)
    spec = workflow["spec"]
    ref = spec.get("workflowTemplateRef")
    if ref:
        try:
            kind = "clusterworkflowtemplate" if ref.get("clusterScope") else "workflowtemplate"
            base = copy.deepcopy(library.get(kind, ref["name"])["spec"])
        except KeyError as exc:
            raise SubmitError(str(exc.args[0])) from exc
        overrides = {p["name"]: p for p in _parameters(spec.get("arguments"), "spec.arguments.parameters")}
        spec = {**base, **{k: v for k, v in spec.items() if k not in ("workflowTemplateRef", "arguments")}}
        spec["arguments"] = _merge_arguments(base.get("arguments") or {}, overrides)
        workflow["spec"] = spec
    spec["arguments"] = _apply_parameters(spec.get("arguments") or {}, parameters)
    spec["templates"] = [with_defaults(spec.get("templateDefaults"), t) for t in spec.get("templates") or []]
    workflow, cluster_only = _validated(workflow)
    meta = workflow.setdefault("metadata", {})
    meta["name"] = names.check("Workflow metadata.name:", meta.get("name") or new_run_name(_prefix(meta)))
    meta.update({"namespace": meta.get("namespace", "default"), "uid": str(uuid.uuid4()), "creationTimestamp": now()})
    workflow["status"] = {"phase": "Pending", "nodes": {}}
    if cluster_only:
        workflow["status"]["conditions"] = [spec_warnings(cluster_only)]
    if ref:
        workflow["spec"]["workflowTemplateRef"] = ref
        origin = "cluster-workflow-template" if ref.get("clusterScope") else "workflow-template"
        meta.setdefault("labels", {})[f"workflows.argoproj.io/{origin}"] = ref["name"]  # as Argo labels it
    return workflow


BODY_KINDS = ("container", "script", "containerSet", "dag", "steps", "http", "suspend", "resource", "data", "plugin")


def with_defaults(defaults: Any, template: Any) -> Any:
    """A template over ``spec.templateDefaults``, as Argo merges them: the template's own values win, mappings merge.

    A default body (a ``container``, say) reaches only templates of that kind, so a DAG never gains a container.
    """
    if not isinstance(defaults, dict) or not isinstance(template, dict):
        return template
    kind = next((k for k in BODY_KINDS if k in template), None)
    wanted = {k: v for k, v in defaults.items() if k not in BODY_KINDS or k == kind}
    return _merge(wanted, template)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in over.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def spec_warnings(paths: list[str]) -> dict[str, str]:
    """Argo's ``SpecWarnings`` condition, naming the cluster-only fields this run does not apply."""
    shown = ", ".join(paths[:12]) + (f" and {len(paths) - 12} more" if len(paths) > 12 else "")
    return {
        "type": "SpecWarnings",
        "status": "True",
        "message": f"not applied on this machine (they act on a cluster's pods or its Prometheus): {shown}",
    }


def _validated(workflow: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The workflow once the engine can run it, and its cluster-only fields.

    Keys Argo would match without regard to case are renamed first.

    Raises:
        SubmitError: What the engine cannot run, every problem named.
    """
    try:
        return workflow, validate(workflow)
    except ValueError as exc:
        fixed = casing.canonical(workflow)  # the slow path only: it builds Argo's schema
        if fixed == workflow:
            raise SubmitError(str(exc)) from exc
        try:
            return dict(fixed), validate(fixed)
        except ValueError as again:
            raise SubmitError(str(again)) from again


def _parameters(arguments: Any, where: str) -> list[dict[str, Any]]:
    """An ``arguments.parameters`` list, each a mapping with a name.

    Raises:
        SubmitError: Another shape (a mapping, a list of bare names…), naming where and how to write it.
    """
    if arguments is None:
        return []
    if not isinstance(arguments, dict):
        raise SubmitError(f"{where.removesuffix('.parameters')}: give a mapping of parameters and artifacts")
    given = arguments.get("parameters") or []
    shape = "give a list of {name: ..., value: ...} mappings"
    if not isinstance(given, list):
        raise SubmitError(f"{where}: {shape}, not a {type(given).__name__}")
    for number, item in enumerate(given):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SubmitError(f"{where}[{number}]: {item!r} is not a mapping with a name; {shape}")
    return given


def _merge_arguments(base: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    params = [{**p, **overrides.get(p["name"], {})} for p in _parameters(base, "the template's arguments.parameters")]
    params += [dict(p) for name, p in overrides.items() if name not in {q["name"] for q in params}]
    return {**base, "parameters": params}


def _apply_parameters(arguments: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    declared = {p["name"]: dict(p) for p in _parameters(arguments, "spec.arguments.parameters")}
    for key, value in parameters.items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise SubmitError(f"unknown parameter {key!r} (this workflow declares: {known})")
        declared[key]["value"] = value
    for param in declared.values():
        if "value" not in param and "valueFrom" not in param:
            if "default" not in param:
                raise SubmitError(f"parameter {param['name']!r} has no value: pass -p {param['name']}=VALUE")
            param["value"] = param["default"]
        if param.get("enum") and str(param["value"]) not in [str(e) for e in param["enum"]]:
            raise SubmitError(f"parameter {param['name']}={param['value']!r} is not one of {param['enum']}")
    return {**arguments, "parameters": list(declared.values())}
