"""Read Argo Workflow / WorkflowTemplate objects and refuse, before anything runs, what the engine lacks.

Every key of the spec is checked against what the local engine implements.  A key that only matters on a
cluster (resources, node selectors, security contexts…) is accepted, and :func:`validate` returns its path so
that the run can say it was not applied; a key the engine cannot honour, or one that is not an Argo field at
all (a typo such as ``entrypiont``), is refused with its path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.engine.pod.images import KNOWN_IMAGES, known_entrypoint
from workflows.engine.spec.fields import (
    ARCHIVE_LOCATION,
    ARTIFACT,
    ARTIFACT_GC,
    ARTIFACT_PATHS,
    ARTIFACT_REPOSITORY_REF,
    BACKOFF,
    CACHE,
    CLUSTER_ONLY_ARTIFACT,
    CLUSTER_ONLY_ARTIFACT_GC,
    CLUSTER_ONLY_CONTAINER,
    CLUSTER_ONLY_LOCK,
    CLUSTER_ONLY_RETRY,
    CLUSTER_ONLY_S3,
    CLUSTER_ONLY_TEMPLATE,
    CLUSTER_ONLY_WORKFLOW_SPEC,
    CONTAINER,
    CONTAINER_SET,
    CONTAINER_SET_RETRY,
    CONTINUE_ON,
    CREATE_BUCKET,
    DAG,
    DATA,
    DATA_SOURCE,
    ENV,
    GC_STRATEGIES,
    HOOK,
    HTTP,
    HTTP_ARTIFACT,
    HTTP_ARTIFACT_HEADER,
    HTTP_BODY_SOURCE,
    HTTP_HEADER,
    HTTP_HEADER_SOURCE,
    INPUTS,
    MEMOIZE,
    MUTEX,
    OUTPUTS,
    PARAMETER,
    REFUSED,
    RETRY,
    RETRY_POLICIES,
    S3_ARTIFACT,
    SCRIPT,
    SEMAPHORE,
    SEQUENCE,
    SHUTDOWN,
    STEP,
    SUSPEND,
    SYNCHRONIZATION,
    TAR,
    TASK,
    TEMPLATE,
    TEMPLATE_REF,
    TRANSFORMATION,
    TTL_STRATEGY,
    VALUE_FROM,
    WORKFLOW_METADATA,
    WORKFLOW_SPEC,
    WORKFLOW_TEMPLATE_REF,
)
from workflows.errors import CtcdError


class UnsupportedSpec(CtcdError, ValueError):
    """The spec uses fields the local engine cannot honour; ``problems`` lists each with its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the workflow cannot run locally:\n  - " + "\n  - ".join(problems))


@dataclass
class _Checker:
    problems: list[str] = field(default_factory=list)
    cluster_only: list[str] = field(default_factory=list)

    def keys(self, obj: Any, path: str, allowed: set[str], cluster_only: Iterable[str] = ()) -> dict[str, Any]:
        if not isinstance(obj, dict):
            self.problems.append(f"{path}: expected a mapping, got {type(obj).__name__}")
            return {}
        for key in obj:
            if key in set(cluster_only):
                self.cluster_only.append(f"{path}.{key}")
            elif key not in allowed:
                self.problems.append(f"{path}.{key}: {REFUSED.get(key, 'not supported by the local engine')}")
        return obj

    def each(self, items: Any, path: str) -> list[tuple[str, Any]]:
        if items is None:
            return []
        if not isinstance(items, list):
            self.problems.append(f"{path}: expected a list")
            return []
        return [(f"{path}[{i}]", item) for i, item in enumerate(items)]


def validate(workflow: Mapping[str, Any]) -> list[str]:
    """Check a Workflow or WorkflowTemplate object; return the paths of its cluster-only fields.

    Raises:
        UnsupportedSpec: Listing every field the engine cannot honour.
    """
    check = _Checker()
    spec = check.keys(workflow.get("spec", {}), "spec", WORKFLOW_SPEC, CLUSTER_ONLY_WORKFLOW_SPEC)
    for path, param in check.each((spec.get("arguments") or {}).get("parameters"), "spec.arguments.parameters"):
        check.keys(param, path, PARAMETER)
    names = set()
    for path, tmpl in check.each(spec.get("templates"), "spec.templates"):
        _check_template(check, tmpl, path)
        names.add(tmpl.get("name") if isinstance(tmpl, dict) else None)
    if "workflowTemplateRef" not in spec:
        if not spec.get("entrypoint") and workflow.get("kind") not in ("WorkflowTemplate", "ClusterWorkflowTemplate"):
            check.problems.append("spec.entrypoint: required")
        if spec.get("entrypoint") and spec["entrypoint"] not in names:
            check.problems.append(f"spec.entrypoint: no template named {spec['entrypoint']!r}")
    _check_spec_extras(check, spec)
    if check.problems:
        raise UnsupportedSpec(check.problems)
    return check.cluster_only


def _check_spec_extras(check: _Checker, spec: dict[str, Any]) -> None:
    if "synchronization" in spec:
        _check_sync(check, spec["synchronization"], "spec.synchronization")
    if "retryStrategy" in spec:
        _check_retry(check, spec["retryStrategy"], "spec.retryStrategy")
    if "artifactGC" in spec:
        _check_gc(check, spec["artifactGC"], "spec.artifactGC")
    check.keys(spec.get("workflowTemplateRef", {}), "spec.workflowTemplateRef", WORKFLOW_TEMPLATE_REF)
    _check_hooks(check, spec.get("hooks"), "spec.hooks")
    meta = check.keys(spec.get("workflowMetadata", {}), "spec.workflowMetadata", WORKFLOW_METADATA)
    labels_from = meta.get("labelsFrom") or {}
    for label, source in labels_from.items() if isinstance(labels_from, dict) else []:
        given = check.keys(source, f"spec.workflowMetadata.labelsFrom.{label}", {"expression"})
        if isinstance(source, dict) and not isinstance(given.get("expression"), str):
            check.problems.append(f"spec.workflowMetadata.labelsFrom.{label}.expression: required")
    ttl = check.keys(spec.get("ttlStrategy", {}), "spec.ttlStrategy", TTL_STRATEGY)
    for key, seconds in ttl.items():
        if not isinstance(seconds, int) or seconds < 0:
            check.problems.append(f"spec.ttlStrategy.{key}: give a whole number of seconds, not {seconds!r}")
    check.keys(spec.get("artifactRepositoryRef", {}), "spec.artifactRepositoryRef", ARTIFACT_REPOSITORY_REF)
    if spec.get("shutdown") not in (None, "", *SHUTDOWN):
        check.problems.append(f"spec.shutdown: must be one of {sorted(SHUTDOWN)}, not {spec['shutdown']!r}")


BODIES = ("container", "script", "dag", "steps", "containerSet", "http", "suspend", "resource", "data", "plugin")


def _check_template(check: _Checker, tmpl: Any, path: str) -> None:
    tmpl = check.keys(tmpl, path, TEMPLATE, CLUSTER_ONLY_TEMPLATE)
    kinds = [k for k in BODIES if k in tmpl]
    if len(kinds) != 1:
        check.problems.append(f"{path}: needs exactly one of {', '.join(BODIES[:7])} (found {kinds or 'none'})")
    _check_io(check, tmpl, path)
    if "container" in tmpl:
        _check_container(check, tmpl["container"], f"{path}.container", CONTAINER)
    if "script" in tmpl:
        _check_container(check, tmpl["script"], f"{path}.script", SCRIPT)
    for key in ("sidecars", "initContainers"):
        for cpath, body in check.each(tmpl.get(key), f"{path}.{key}"):
            _check_container(check, body, cpath, CONTAINER)
    if "containerSet" in tmpl:
        cset = check.keys(tmpl["containerSet"], f"{path}.containerSet", CONTAINER_SET)
        check.keys(cset.get("retryStrategy", {}), f"{path}.containerSet.retryStrategy", CONTAINER_SET_RETRY)
        for cpath, body in check.each(cset.get("containers"), f"{path}.containerSet.containers"):
            _check_container(check, body, cpath, CONTAINER)
    if "dag" in tmpl:
        dag = check.keys(tmpl["dag"], f"{path}.dag", DAG)
        for tpath, task in check.each(dag.get("tasks"), f"{path}.dag.tasks"):
            _check_invocation(check, task, tpath, TASK)
    if "steps" in tmpl:
        for gpath, group in check.each(tmpl["steps"], f"{path}.steps"):
            for spath, step in check.each(group, gpath):
                _check_invocation(check, step, spath, STEP)
    _check_template_extras(check, tmpl, path)


def _check_template_extras(check: _Checker, tmpl: dict[str, Any], path: str) -> None:
    if "synchronization" in tmpl:
        _check_sync(check, tmpl["synchronization"], f"{path}.synchronization")
    if "http" in tmpl:
        _check_http(check, tmpl["http"], f"{path}.http")
    if "data" in tmpl:
        _check_data(check, tmpl["data"], f"{path}.data")
    if "suspend" in tmpl:
        check.keys(tmpl["suspend"] or {}, f"{path}.suspend", SUSPEND)
    if "memoize" in tmpl:
        memo = check.keys(tmpl["memoize"], f"{path}.memoize", MEMOIZE)
        check.keys(memo.get("cache", {}), f"{path}.memoize.cache", CACHE)
        if not memo.get("key") or not (memo.get("cache") or {}).get("configMap", {}).get("name"):
            check.problems.append(f"{path}.memoize: needs key and cache.configMap.name")
    if "retryStrategy" in tmpl:
        _check_retry(check, tmpl["retryStrategy"], f"{path}.retryStrategy")
    check.keys(tmpl.get("archiveLocation", {}), f"{path}.archiveLocation", ARCHIVE_LOCATION)


def _check_http(check: _Checker, http: Any, path: str) -> None:
    http = check.keys(http, path, HTTP)
    if not http.get("url"):
        check.problems.append(f"{path}.url: required")
    for hpath, header in check.each(http.get("headers"), f"{path}.headers"):
        header = check.keys(header, hpath, HTTP_HEADER)
        check.keys(header.get("valueFrom", {}), f"{hpath}.valueFrom", HTTP_HEADER_SOURCE)
    check.keys(http.get("bodyFrom", {}), f"{path}.bodyFrom", HTTP_BODY_SOURCE)


def _check_data(check: _Checker, data: Any, path: str) -> None:
    data = check.keys(data, path, DATA)
    source = check.keys(data.get("source", {}), f"{path}.source", DATA_SOURCE)
    paths = check.keys(source.get("artifactPaths", {}), f"{path}.source.artifactPaths", ARTIFACT_PATHS)
    check.keys(paths.get("s3", {}), f"{path}.source.artifactPaths.s3", S3_ARTIFACT, CLUSTER_ONLY_S3)
    for tpath, step in check.each(data.get("transformation"), f"{path}.transformation"):
        if not isinstance(check.keys(step, tpath, TRANSFORMATION).get("expression"), str):
            check.problems.append(f"{tpath}.expression: required")


def _check_hooks(check: _Checker, hooks: Any, path: str) -> None:
    for name, hook in (hooks or {}).items() if isinstance(hooks, dict) else []:
        hook = check.keys(hook, f"{path}.{name}", HOOK)
        if isinstance(hook.get("templateRef"), dict):
            check.keys(hook["templateRef"], f"{path}.{name}.templateRef", TEMPLATE_REF)


def _check_retry(check: _Checker, strategy: Any, path: str) -> None:
    retry = check.keys(strategy, path, RETRY, CLUSTER_ONLY_RETRY)
    check.keys(retry.get("backoff", {}), f"{path}.backoff", BACKOFF)
    if retry.get("retryPolicy", "OnFailure") not in RETRY_POLICIES:
        check.problems.append(f"{path}.retryPolicy: must be one of {sorted(RETRY_POLICIES)}")


def _check_sync(check: _Checker, sync: Any, path: str) -> None:
    sync = check.keys(sync, path, SYNCHRONIZATION)
    mutexes = ([sync["mutex"]] if "mutex" in sync else []) + list(sync.get("mutexes") or [])
    semaphores = ([sync["semaphore"]] if "semaphore" in sync else []) + list(sync.get("semaphores") or [])
    for mpath, mutex in check.each(mutexes, f"{path}.mutexes"):
        if not check.keys(mutex, mpath, MUTEX, CLUSTER_ONLY_LOCK).get("name"):
            check.problems.append(f"{mpath}.name: required")
    for spath, semaphore in check.each(semaphores, f"{path}.semaphores"):
        ref = check.keys(semaphore, spath, SEMAPHORE, CLUSTER_ONLY_LOCK).get("configMapKeyRef")
        if not isinstance(ref, dict) or not ref.get("name") or not ref.get("key"):
            check.problems.append(f"{spath}.configMapKeyRef: needs name and key")


def _check_io(check: _Checker, tmpl: dict[str, Any], path: str) -> None:
    inputs = check.keys(tmpl.get("inputs", {}), f"{path}.inputs", INPUTS)
    outputs = check.keys(tmpl.get("outputs", {}), f"{path}.outputs", OUTPUTS)
    for part, io in (("inputs", inputs), ("outputs", outputs)):
        for ppath, param in check.each(io.get("parameters"), f"{path}.{part}.parameters"):
            param = check.keys(param, ppath, PARAMETER)
            if "valueFrom" in param:
                check.keys(param["valueFrom"], f"{ppath}.valueFrom", VALUE_FROM)
        for apath, art in check.each(io.get("artifacts"), f"{path}.{part}.artifacts"):
            _check_artifact(check, art, apath)


def _check_artifact(check: _Checker, art: Any, path: str) -> None:
    art = check.keys(art, path, ARTIFACT, CLUSTER_ONLY_ARTIFACT)
    if "s3" in art:
        s3 = check.keys(art["s3"], f"{path}.s3", S3_ARTIFACT, CLUSTER_ONLY_S3)
        if s3.get("createBucketIfNotPresent") is not None:
            check.keys(s3["createBucketIfNotPresent"], f"{path}.s3.createBucketIfNotPresent", CREATE_BUCKET)
    if "http" in art:
        http = check.keys(art["http"], f"{path}.http", HTTP_ARTIFACT)
        for hpath, header in check.each(http.get("headers"), f"{path}.http.headers"):
            check.keys(header, hpath, HTTP_ARTIFACT_HEADER)
    archive = check.keys(art.get("archive", {}), f"{path}.archive", {"none", "tar"})
    check.keys(archive.get("tar") or {}, f"{path}.archive.tar", TAR)
    if "artifactGC" in art:
        _check_gc(check, art["artifactGC"], f"{path}.artifactGC")


def _check_gc(check: _Checker, gc: Any, path: str) -> None:
    gc = check.keys(gc, path, ARTIFACT_GC, CLUSTER_ONLY_ARTIFACT_GC)
    if gc.get("strategy", "") not in GC_STRATEGIES:
        check.problems.append(f"{path}.strategy: must be one of {sorted(GC_STRATEGIES - {''})}")


def _check_container(check: _Checker, body: Any, path: str, allowed: set[str]) -> None:
    body = check.keys(body, path, allowed, CLUSTER_ONLY_CONTAINER)
    if "script" not in path and not body.get("command") and not known_entrypoint(str(body.get("image", ""))):
        check.problems.append(
            f"{path}.command: the image {body.get('image')!r} has no command here, and its entrypoint is not known "
            f"locally (images with a known entrypoint: {', '.join(KNOWN_IMAGES)}); give the container a command"
        )
    for key in ("command", "args"):
        words = body.get(key)
        if words is not None and not isinstance(words, list):
            check.problems.append(f"{path}.{key}: give a list of strings, not {type(words).__name__}")
        for number, word in enumerate(words if isinstance(words, list) else []):
            if not isinstance(word, str):
                check.problems.append(
                    f"{path}.{key}[{number}]: {word!r} is not a string; Argo reads {key} as strings "
                    f'(cannot unmarshal it into Container.{key}): quote it, "{word}"'
                )
    for epath, env in check.each(body.get("env"), f"{path}.env"):
        env = check.keys(env, epath, ENV)
        value_from = env.get("valueFrom")
        if value_from is not None and not (
            isinstance(value_from, dict)
            and len(value_from) == 1
            and set(value_from) <= {"secretKeyRef", "configMapKeyRef"}
        ):
            check.problems.append(f"{epath}.valueFrom: only secretKeyRef and configMapKeyRef are supported")
    for fpath, source in check.each(body.get("envFrom"), f"{path}.envFrom"):
        source = check.keys(source, fpath, {"configMapRef", "secretRef", "prefix"})
        if len(set(source) & {"configMapRef", "secretRef"}) != 1:
            check.problems.append(f"{fpath}: needs exactly one of configMapRef or secretRef")


def _check_invocation(check: _Checker, item: Any, path: str, allowed: set[str]) -> None:
    item = check.keys(item, path, allowed)
    if sum(k in item for k in ("template", "templateRef", "inline")) != 1:
        check.problems.append(f"{path}: needs exactly one of template, templateRef or inline")
    if isinstance(item.get("inline"), dict):
        _check_template(check, {"name": item.get("name", "inline"), **item["inline"]}, f"{path}.inline")
    if isinstance(item.get("templateRef"), dict):
        check.keys(item["templateRef"], f"{path}.templateRef", TEMPLATE_REF)
    check.keys(item.get("continueOn", {}), f"{path}.continueOn", CONTINUE_ON)
    _check_hooks(check, item.get("hooks"), f"{path}.hooks")
    arguments = check.keys(item.get("arguments", {}), f"{path}.arguments", INPUTS)
    for ppath, param in check.each(arguments.get("parameters"), f"{path}.arguments.parameters"):
        check.keys(param, ppath, PARAMETER)
    for apath, art in check.each(arguments.get("artifacts"), f"{path}.arguments.artifacts"):
        _check_artifact(check, art, apath)
    if "withSequence" in item:
        check.keys(item["withSequence"], f"{path}.withSequence", SEQUENCE)
