"""The local Argo engine: executes a compiled Workflow as Argo's controller would, with local processes.

The input is the Workflow object Argo would receive.  DAGs, steps, loops, conditions, retries, deadlines,
parallelism, exit handlers, parameters and S3 artifacts follow Argo's documented semantics; the resulting
``status`` (phases, node tree, outputs) uses Argo's own schema so tools written for ``argo get -o json``
can read it.  Container and script templates run as host processes: the image is ignored (and said so in
the node's log), a hera runner script runs exactly as in its container, and every path a template
declares is mapped into the node's own folder so that parallel steps never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workflows.engine import artifacts
from workflows.engine.expr import (
    ExpressionError,
    evaluate_depends,
    evaluate_retry,
    evaluate_when,
    expand_depends,
    parse_duration,
    substitute,
    substitute_all,
)
from workflows.engine.launcher import PRELOAD, Launcher
from workflows.engine.store import RunStore
from workflows.engine.sync import Cache, Locks, requirements
from workflows.errors import CtcdError

_logger = logging.getLogger(__name__)

FAILED = ("Failed", "Error")
FULFILLED = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")
HERA_OUTPUTS_ENV = "hera__outputs_directory"
DRAIN_SECONDS = 2.0  # output a step's leftovers may still flush after it exited


class NodeError(CtcdError):
    """A node cannot run (bad input, missing artifact…); it ends in phase Error with this message."""


def now() -> str:
    """An RFC 3339 timestamp, as Argo writes them."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_id(workflow_name: str, node_name: str) -> str:
    """Argo's node id: the workflow name for the root, else ``<workflow>-<fnv32a(node name)>``."""
    if node_name == workflow_name:
        return workflow_name
    value = 0x811C9DC5
    for byte in node_name.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{workflow_name}-{value}"


@dataclass
class LocalObjects:
    """Stand-ins for the cluster's ConfigMaps and Secrets that templates reference by name."""

    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)

    def all_of(self, source: Mapping[str, Any]) -> dict[str, str]:
        """Every key of the object an ``envFrom`` entry names, with its prefix.

        Raises:
            NodeError: The object does not exist locally and is not optional.
        """
        ref_kind = "secretRef" if "secretRef" in source else "configMapRef"
        ref = source[ref_kind]
        store = self.secrets if ref_kind == "secretRef" else self.configmaps
        if ref.get("name") not in store:
            if ref.get("optional"):
                return {}
            kind = "Secret" if ref_kind == "secretRef" else "ConfigMap"
            raise NodeError(f"{kind} {ref.get('name')!r} does not exist locally (known: {sorted(store)})")
        return {source.get("prefix", "") + k: v for k, v in store[ref["name"]].items()}

    def lookup(self, ref_kind: str, ref: Mapping[str, Any]) -> str:
        """Resolve a ``secretKeyRef`` or ``configMapKeyRef``.

        Raises:
            NodeError: The object or key does not exist locally.
        """
        store = self.secrets if ref_kind == "secretKeyRef" else self.configmaps
        name, key = ref.get("name", ""), ref.get("key", "")
        if key not in store.get(name, {}):
            kind = "Secret" if ref_kind == "secretKeyRef" else "ConfigMap"
            raise NodeError(f"{kind} {name!r} has no key {key!r} locally (known: {sorted(store)})")
        return store[name][key]


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


class Run:
    """One execution of a Workflow object."""

    def __init__(self, workflow: dict[str, Any], engine: Engine) -> None:
        self.wf = workflow
        self.engine = engine
        self.name: str = workflow["metadata"]["name"]
        self.spec: dict[str, Any] = workflow["spec"]
        self.status: dict[str, Any] = workflow.setdefault("status", {})
        self.nodes: dict[str, dict[str, Any]] = self.status.setdefault("nodes", {})
        self.dir = engine.store.run_dir(self.name)
        limit = min(engine.parallelism, int(self.spec.get("parallelism") or engine.parallelism))
        self.pod_slots = asyncio.Semaphore(limit)
        self.globals: dict[str, str] = {}
        self._dirty = True

    # --- bookkeeping -------------------------------------------------------------------------------

    def touch(self) -> None:
        """Mark the status as changed; the saver writes it soon."""
        self._dirty = True

    def save(self) -> None:
        """Write the workflow object now if it changed."""
        if self._dirty:
            self._dirty = False
            self.engine.store.save(self.wf)

    async def saver(self) -> None:
        """Write the status a few times a second while the run goes on."""
        while True:
            await asyncio.sleep(0.2)
            self.save()

    def new_node(self, name: str, display: str, kind: str, template: str, boundary: str | None) -> dict[str, Any]:
        """Create a Running node in Argo's NodeStatus shape."""
        node: dict[str, Any] = {
            "id": node_id(self.name, name),
            "name": name,
            "displayName": display,
            "type": kind,
            "templateName": template,
            "phase": "Running",
            "startedAt": now(),
            "children": [],
        }
        if boundary:
            node["boundaryID"] = boundary
        self.nodes[node["id"]] = node
        self.touch()
        return node

    def finish(self, node: dict[str, Any], phase: str, message: str | None = None) -> dict[str, Any]:
        """Set a node's final phase."""
        node["phase"] = phase
        node["finishedAt"] = now()
        if message:
            node["message"] = message
        self.touch()
        return node

    def log(self, node: dict[str, Any], text: str) -> None:
        """Append an engine note to a node's log."""
        path = self.engine.store.log_path(self.name, node["id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(f"[ctcd-engine] {text}\n")

    # --- top level ---------------------------------------------------------------------------------

    async def execute(self) -> None:
        """Run the entrypoint, then the exit handler, and set the workflow phase."""
        self.status.update({"phase": "Running", "startedAt": now()})
        scope = Scope(self.name, {t["name"]: t for t in self.spec.get("templates", [])})
        self._init_globals()
        saver = asyncio.create_task(self.saver())
        held: list[int] = []
        try:
            held = await self._lock(self.spec.get("synchronization"), None)
            self.status.pop("message", None)
            self.status["phase"] = "Running"
            root = await self._entry(scope)
            phase = root["phase"] if root["phase"] in ("Succeeded",) + FAILED else "Failed"
            message = root.get("message")
            phase, message = await self._exit_handler(scope, phase, message)  # the run stays Running meanwhile
            self.status["phase"] = phase
            if message:
                self.status["message"] = message
        finally:
            if self.status.get("phase") not in ("Succeeded", "Failed", "Error"):
                self.status.update(
                    phase="Error", message=self.status.get("message") or "the engine stopped unexpectedly"
                )
            self.engine.locks.release(held)
            saver.cancel()
            self.status["finishedAt"] = now()
            pods = [n for n in self.nodes.values() if n["type"] == "Pod"]
            self.status["progress"] = f"{sum(n['phase'] == 'Succeeded' for n in pods)}/{len(pods)}"
            self.touch()
            self.save()

    async def _lock(self, sync: dict[str, Any] | None, node: dict[str, Any] | None) -> list[int]:
        """Hold the locks of a synchronization block; the run (or node) is Pending while it waits."""
        if not sync:
            return []
        needs = requirements(sync, self.engine.objects.lookup)

        def waiting(message: str) -> None:
            target = node if node is not None else self.status
            target.update(phase="Pending", message=message)
            self.touch()

        held = await self.engine.locks.acquire(needs, waiting)
        if node is not None and node.get("phase") == "Pending":  # it waited: it starts now
            node.update(phase="Running", startedAt=now())
            node.pop("message", None)
        return held

    def _init_globals(self) -> None:
        meta = self.wf["metadata"]
        params = {p["name"]: str(p.get("value", "")) for p in (self.spec.get("arguments") or {}).get("parameters", [])}
        self.globals = {
            "workflow.name": self.name,
            "workflow.namespace": meta.get("namespace", "default"),
            "workflow.uid": meta.get("uid", ""),
            "workflow.creationTimestamp": meta.get("creationTimestamp", ""),
            "workflow.serviceAccountName": self.spec.get("serviceAccountName", ""),
            "workflow.parameters": json.dumps([{"name": k, "value": v} for k, v in params.items()]),
            **{f"workflow.parameters.{k}": v for k, v in params.items()},
        }

    async def _entry(self, scope: Scope) -> dict[str, Any]:
        args = {"parameters": (self.spec.get("arguments") or {}).get("parameters", [])}
        call = self.execute_template(self.name, self.name, {"template": self.spec["entrypoint"]}, scope, args, None)
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline is None:
            return await call
        task = asyncio.ensure_future(call)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=float(deadline))
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            root = self.nodes[self.name]
            return self.finish(root, "Failed", "Max duration limit exceeded")

    async def _exit_handler(self, scope: Scope, phase: str, message: str | None) -> tuple[str, str | None]:
        """Run ``onExit`` (if any) with ``workflow.status``; return the run's final phase and message."""
        on_exit = self.spec.get("onExit")
        if not on_exit:
            return phase, message
        self.globals["workflow.status"] = phase
        self.globals["workflow.failures"] = json.dumps(self._failures())
        self.globals["workflow.duration"] = f"{time.time() - _epoch(self.status['startedAt']):.3f}"
        node = await self.execute_template(
            f"{self.name}.onExit", f"{self.name}.onExit", {"template": on_exit}, scope, {}, None
        )
        if node["phase"] in FAILED and phase == "Succeeded":
            return node["phase"], f"exit handler {node['displayName']} {node['phase'].lower()}"
        return phase, message

    def _failures(self) -> list[dict[str, Any]]:
        return [
            {
                "displayName": n["displayName"],
                "message": n.get("message", ""),
                "templateName": n.get("templateName", ""),
                "phase": n["phase"],
                "podName": n["id"],
                "finishedAt": n.get("finishedAt", ""),
            }
            for n in self.nodes.values()
            if n["type"] == "Pod" and n["phase"] in FAILED
        ]

    # --- templates ---------------------------------------------------------------------------------

    def resolve(self, invocation: Mapping[str, Any], scope: Scope) -> tuple[dict[str, Any], Scope]:
        """Find the template a task or step names (``template`` or ``templateRef``)."""
        if "templateRef" in invocation:
            ref = invocation["templateRef"]
            try:
                owner = self.engine.library.get("workflowtemplate", ref["name"])
            except KeyError as exc:
                raise NodeError(str(exc.args[0])) from exc
            ref_scope = Scope(ref["name"], {t["name"]: t for t in owner["spec"].get("templates", [])})
            return self.resolve({"template": ref["template"]}, ref_scope)
        name = invocation["template"]
        if name not in scope.templates:
            raise NodeError(f"template {name!r} not found in {scope.owner}")
        return json.loads(json.dumps(scope.templates[name])), scope

    async def execute_template(
        self,
        name: str,
        display: str,
        invocation: Mapping[str, Any],
        scope: Scope,
        args: Mapping[str, Any],
        boundary: str | None,
        link: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Execute one template as node ``name`` and return its finished node.

        ``link`` is called with the node as soon as it exists, to place it in the node tree.
        """
        try:
            tmpl, tmpl_scope = self.resolve(invocation, scope)
        except NodeError as exc:
            node = self.new_node(name, display, "Skipped", str(invocation.get("template", "")), boundary)
            if link:
                link(node)
            return self.finish(node, "Error", str(exc))
        kind = _node_type(tmpl)
        node = self.new_node(name, display, "Retry" if tmpl.get("retryStrategy") else kind, tmpl["name"], boundary)
        if link:
            link(node)
        try:
            tmpl = self._bind_inputs(tmpl, args, node)
        except (NodeError, ExpressionError) as exc:
            return self.finish(node, "Error", str(exc))
        memo = tmpl.get("memoize")
        if memo:
            cached = self.engine.cache.get(memo["cache"]["configMap"]["name"], memo["key"], memo.get("maxAge"))
            node["memoizationStatus"] = {
                "hit": cached is not None,
                "key": memo["key"],
                "cacheName": memo["cache"]["configMap"]["name"],
            }
            if cached is not None:
                node["outputs"] = cached
                return self.finish(node, "Succeeded", "cached: outputs reused (memoized)")
        try:
            held = await self._lock(tmpl.get("synchronization"), node)
        except NodeError as exc:
            return self.finish(node, "Error", str(exc))
        try:
            if tmpl.get("retryStrategy"):
                done = await self._retry(node, tmpl, tmpl_scope, boundary)
            else:
                done = await self._run_body(node, tmpl, tmpl_scope, attempt=0)
        finally:
            self.engine.locks.release(held)
        if memo and done["phase"] == "Succeeded":
            self.engine.cache.put(
                memo["cache"]["configMap"]["name"], memo["key"], done.get("outputs") or {}, done["id"]
            )
        return done

    def _bind_inputs(self, tmpl: dict[str, Any], args: Mapping[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        given = {p["name"]: p for p in args.get("parameters", [])}
        bound: list[dict[str, Any]] = []
        for param in (tmpl.get("inputs") or {}).get("parameters", []):
            source = given.get(param["name"], {})
            value = source.get("value", param.get("value", param.get("default")))
            if value is None:
                raise NodeError(f"inputs.parameters.{param['name']} was not supplied")
            value = _as_param(value)
            if param.get("enum") and value not in [str(e) for e in param["enum"]]:
                raise NodeError(f"inputs.parameters.{param['name']}={value!r} is not one of {param['enum']}")
            bound.append({**param, "value": value})
        given_arts = {a["name"]: a for a in args.get("artifacts", [])}
        arts = [
            {**a, **_artifact_location(given_arts.get(a["name"], {}))}
            for a in (tmpl.get("inputs") or {}).get("artifacts", [])
        ]
        scope = dict(self.globals)
        scope["inputs.parameters"] = json.dumps([{"name": p["name"], "value": p["value"]} for p in bound])
        scope.update({f"inputs.parameters.{p['name']}": p["value"] for p in bound})
        scope.update({f"inputs.artifacts.{a['name']}.path": a.get("path", "") for a in arts})
        body = {k: v for k, v in tmpl.items() if k not in ("inputs",)}
        body = substitute_all(body, scope, ("inputs.",))
        node["inputs"] = {k: v for k, v in (("parameters", bound), ("artifacts", arts)) if v}
        return {**body, "inputs": node["inputs"]}

    async def _retry(
        self, node: dict[str, Any], tmpl: dict[str, Any], scope: Scope, boundary: str | None
    ) -> dict[str, Any]:
        strategy = tmpl["retryStrategy"]
        limit = int(strategy.get("limit", 0))
        policy = strategy.get("retryPolicy", "OnFailure")
        backoff = strategy.get("backoff") or {}
        started = time.monotonic()
        child: dict[str, Any] = {}
        for attempt in range(limit + 1):
            child = self.new_node(
                f"{node['name']}({attempt})",
                f"{node['displayName']}({attempt})",
                _node_type(tmpl),
                tmpl["name"],
                boundary,
            )
            node["children"].append(child["id"])
            await self._run_body(child, tmpl, scope, attempt)
            if child["phase"] == "Succeeded" or attempt == limit or not _should_retry(policy, child["phase"]):
                break
            if strategy.get("expression") and not self._expression_allows(strategy["expression"], child, started):
                break
            delay = parse_duration(backoff.get("duration")) * float(backoff.get("factor", 1)) ** attempt
            if backoff.get("cap"):
                delay = min(delay, parse_duration(backoff["cap"]))
            max_duration = parse_duration(backoff.get("maxDuration"))
            if max_duration and time.monotonic() - started + delay > max_duration:
                self.finish(node, child["phase"], "Max duration limit exceeded")
                node["outputs"] = child.get("outputs")
                return node
            self.log(child, f"attempt {attempt} {child['phase']}; retrying in {delay:.2f}s ({policy})")
            await asyncio.sleep(delay)
        if child.get("outputs"):
            node["outputs"] = child["outputs"]
        return self.finish(node, child["phase"], child.get("message"))

    def _expression_allows(self, expression: str, child: dict[str, Any], started: float) -> bool:
        """Argo's conditional retry: retry only while the expression over ``lastRetry`` holds."""
        last = {
            "exitCode": (child.get("outputs") or {}).get("exitCode", "-1"),
            "status": child["phase"],
            "duration": str(round(time.monotonic() - started)),
            "message": child.get("message", ""),
        }
        try:
            allowed = evaluate_retry(expression, last)
        except ExpressionError as exc:
            self.log(child, f"retryStrategy.expression {expression!r}: {exc}; not retrying")
            return False
        if not allowed:
            self.log(child, f"retryStrategy.expression {expression!r} is false for exit code {last['exitCode']}")
        return allowed

    async def _run_body(self, node: dict[str, Any], tmpl: dict[str, Any], scope: Scope, attempt: int) -> dict[str, Any]:
        deadline = tmpl.get("activeDeadlineSeconds") or tmpl.get("timeout")
        if "dag" in tmpl:
            body = self._run_dag(node, tmpl, scope)
        elif "steps" in tmpl:
            body = self._run_steps(node, tmpl, scope)
        else:
            body = self._run_pod(node, tmpl, attempt)
        try:
            if deadline is not None:
                await asyncio.wait_for(body, timeout=parse_duration(deadline))
            else:
                await body
        except TimeoutError:
            message = "Pod was active on the node longer than the specified deadline"
            self.finish(node, "Failed", message if node["type"] in ("Pod", "Retry") else "Step exceeded its deadline")
        except asyncio.CancelledError:
            self.finish(node, "Failed", "terminated: the workflow exceeded its deadline")
            raise
        except (NodeError, ExpressionError, OSError) as exc:
            self.finish(node, "Error", str(exc))
        return node

    # --- pods --------------------------------------------------------------------------------------

    async def _run_pod(self, node: dict[str, Any], tmpl: dict[str, Any], attempt: int) -> None:
        body = dict(tmpl.get("script") or tmpl["container"])
        node_dir = self.dir / "nodes" / node["id"]
        fs_root = node_dir / "fs"
        extra = {"retries": str(attempt), "pod.name": node["id"], "node.name": node["name"]}
        body = substitute_all(body, extra)
        mapping = _path_mapping(tmpl, fs_root)
        for art in (tmpl.get("inputs") or {}).get("artifacts", []):
            await asyncio.to_thread(self._fetch_input_artifact, art, mapping)
        argv = [_remap(a, mapping) for a in [*body.get("command", []), *body.get("args", [])]]
        if "source" in body:
            node_dir.mkdir(parents=True, exist_ok=True)
            script = node_dir / "script"
            script.write_text(_remap(substitute(body["source"], extra), mapping))
            argv.append(str(script))
        if argv and argv[0] in ("python", "python3", "python3.11"):
            argv[0] = sys.executable
        env = self._pod_env(body, mapping)
        self.log(node, f"image {body.get('image', '-')!r} ignored: running `{' '.join(argv)[:300]}` as a local process")
        async with self.pod_slots:  # a pod holds its slot until it is complete, as in Argo
            node.update({"startedAt": now(), "hostNodeName": "localhost"})
            code, stdout = await self._spawn(
                node, argv, env, Path(_remap(body.get("workingDir", ""), mapping) or node_dir)
            )
            node["outputs"] = {"exitCode": str(code)}
            if "script" in tmpl or stdout:
                node["outputs"]["result"] = stdout.strip()[-262144:]
            if code != 0:
                self.finish(node, "Failed", f"Error (exit code {code})")
                return
            await asyncio.to_thread(self._collect_outputs, node, tmpl, mapping)
            self.finish(node, "Succeeded")

    def _pod_env(self, body: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, str]:
        env = {**os.environ, **self.engine.base_env, "ARGO_WORKFLOW_NAME": self.name, **self.engine.thread_env()}
        for source in body.get("envFrom", []):
            env.update(self.engine.objects.all_of(source))
        for item in body.get("env", []):
            if "valueFrom" in item:
                ((ref_kind, ref),) = item["valueFrom"].items()
                env[item["name"]] = self.engine.objects.lookup(ref_kind, ref)
            elif item["name"] == HERA_OUTPUTS_ENV:
                env[item["name"]] = mapping.get(item.get("value", ""), _remap(item.get("value", ""), mapping))
            else:
                env[item["name"]] = _remap(str(item.get("value", "")), mapping)
        return env

    async def _spawn(self, node: dict[str, Any], argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
        """Run a step's process to its exit; whatever it left running in its process group is killed then.

        The node ends when the step's own process exits, as a pod ends with its main container: workers it
        forked (joblib/loky) that still hold its output pipes are killed with the group, and the output is
        drained for at most ``DRAIN_SECONDS`` more.
        """
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = self.engine.store.log_path(self.name, node["id"])
        proc = await self._start(node, argv, env, cwd)
        self.engine.store.record_pod(self.name, node["id"], proc.pid)
        out: list[bytes] = []
        with log_path.open("ab") as log:
            pumps = [
                asyncio.ensure_future(_pump(proc.stdout, log, out)),
                asyncio.ensure_future(_pump(proc.stderr, log, None)),
            ]
            try:
                await _exited(proc)
            finally:
                if proc.returncode is None:
                    await _kill(proc)
                _kill_group(proc.pid)
                _, late = await asyncio.wait(pumps, timeout=DRAIN_SECONDS)
                for pump in late:
                    pump.cancel()
                self.engine.store.forget_pod(self.name, node["id"])
        return int(proc.returncode or 0), b"".join(out).decode(errors="replace")

    async def _start(self, node: dict[str, Any], argv: list[str], env: dict[str, str], cwd: Path) -> Any:
        """Start a step's process: forked from the warm launcher when it can be, else a fresh one."""
        launcher = self.engine.launcher
        if launcher is not None:
            try:
                child = await launcher.try_spawn(argv, env, str(cwd))
            except OSError as exc:
                self.log(node, f"warm start failed ({exc}); starting a fresh process")
            else:
                if child is not None:
                    self.log(node, f"forked from the warm launcher as pid {child.pid}")
                    return child
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise NodeError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc

    def _fetch_input_artifact(self, art: dict[str, Any], mapping: Mapping[str, str]) -> None:
        dest = Path(mapping[art["path"]])
        if "raw" in art:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(art["raw"].get("data", ""))
            return
        if "s3" not in art:
            if art.get("optional"):
                return
            raise NodeError(f"inputs.artifacts.{art['name']} has no source (from, s3 or raw)")
        bucket = art["s3"].get("bucket") or self.engine.artifacts_bucket
        try:
            artifacts.download(self.engine.s3(), bucket, art["s3"]["key"], dest, artifacts.is_raw(art))
        except Exception as exc:  # botocore raises many types; all mean the artifact is unavailable
            if art.get("optional"):
                return
            raise NodeError(
                f"cannot fetch input artifact {art['name']} from s3://{bucket}/{art['s3']['key']}: {exc}"
            ) from exc

    def _collect_outputs(self, node: dict[str, Any], tmpl: dict[str, Any], mapping: Mapping[str, str]) -> None:
        outputs = tmpl.get("outputs") or {}
        params = []
        for param in outputs.get("parameters", []):
            value_from = param.get("valueFrom") or {}
            path = Path(mapping.get(value_from.get("path", ""), "/nonexistent"))
            if path.is_file():
                text = path.read_text()
                params.append({"name": param["name"], "value": text[:-1] if text.endswith("\n") else text})
            elif "default" in value_from:
                params.append({"name": param["name"], "value": _as_param(value_from["default"])})
            else:
                raise NodeError(f"output parameter {param['name']}: {value_from.get('path')} was not written")
        arts = [self._upload_artifact(node, art, mapping) for art in outputs.get("artifacts", [])]
        if params:
            node["outputs"]["parameters"] = params
        if any(arts):
            node["outputs"]["artifacts"] = [a for a in arts if a]

    def _upload_artifact(self, node: dict[str, Any], art: dict[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
        source = Path(mapping[art["path"]])
        if not source.exists() and art.get("optional"):
            return {}
        key = (art.get("s3") or {}).get("key") or f"{self.name}/{node['id']}/{art['name']}.tgz"
        bucket = (art.get("s3") or {}).get("bucket") or self.engine.artifacts_bucket
        try:
            artifacts.upload(self.engine.s3(), bucket, key, source, artifacts.is_raw(art))
        except FileNotFoundError as exc:
            raise NodeError(str(exc)) from exc
        record = {"name": art["name"], "path": art["path"], "s3": {"bucket": bucket, "key": key}}
        if art.get("archive"):
            record["archive"] = art["archive"]
        return record

    # --- DAGs --------------------------------------------------------------------------------------

    async def _run_dag(self, node: dict[str, Any], tmpl: dict[str, Any], scope: Scope) -> None:
        dag = DagRun(self, node, tmpl, scope)
        await dag.run()

    # --- steps -------------------------------------------------------------------------------------

    async def _run_steps(self, node: dict[str, Any], tmpl: dict[str, Any], scope: Scope) -> None:
        frame = Frame(dict(self.globals), {})
        frame.params.update({f"inputs.parameters.{p['name']}": p["value"] for p in _inputs(tmpl)})
        limiter = _limiter(tmpl)
        previous: list[dict[str, Any]] = []
        for index, group in enumerate(tmpl["steps"]):
            gnode = self.new_node(f"{node['name']}[{index}]", f"[{index}]", "StepGroup", tmpl["name"], node["id"])
            for parent in previous or [node]:
                parent["children"].append(gnode["id"])
            runs = [self._run_step(gnode, step, frame, scope, limiter) for step in group]
            results = await asyncio.gather(*runs)
            previous = [n for nodes in results for n in nodes]
            failed = [n for n, step in _step_nodes(results, group) if n["phase"] in FAILED and not _continues(step, n)]
            self.finish(
                gnode, "Failed" if failed else "Succeeded", f"child '{failed[0]['id']}' failed" if failed else None
            )
            for step, nodes in zip(group, results, strict=True):
                _publish(frame, f"steps.{step['name']}", nodes, expanded=_expands(step))
            if failed:
                self.finish(node, "Failed", f"child '{failed[0]['id']}' failed")
                return
        node["outputs"] = _template_outputs(tmpl, frame)
        self.finish(node, "Succeeded")

    async def _run_step(
        self, group: dict[str, Any], step: dict[str, Any], frame: Frame, scope: Scope, limiter: asyncio.Semaphore | None
    ) -> list[dict[str, Any]]:
        try:
            step = substitute_all(step, frame.scope(), ("inputs.", "steps."))
            items = _items(step)
        except (ExpressionError, NodeError) as exc:
            skipped = self.new_node(f"{group['name']}.{step['name']}", step["name"], "Skipped", "", group["boundaryID"])
            _add_child(group, skipped)
            return [self.finish(skipped, "Error", str(exc))]
        expansions = (
            [(step["name"], step)]
            if items is None
            else [
                (f"{step['name']}({i}:{_item_label(item)})", _with_item(step, item, frame))
                for i, item in enumerate(items)
            ]
        )
        calls = [
            self._invoke(
                f"{group['name']}.{label}",
                label,
                s,
                scope,
                frame,
                limiter,
                group["boundaryID"],
                lambda n: _add_child(group, n),
            )
            for label, s in expansions
        ]
        return list(await asyncio.gather(*calls))

    async def _invoke(
        self,
        name: str,
        display: str,
        item: dict[str, Any],
        scope: Scope,
        frame: Frame,
        limiter: asyncio.Semaphore | None,
        boundary: str,
        link: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """Run one task or step after its ``when`` and artifact references are resolved."""
        try:
            when = item.get("when")
            if when and not evaluate_when(when):
                node = self.new_node(name, display, "Skipped", str(item.get("template", "")), boundary)
                link(node)
                return self.finish(node, "Skipped", f"when '{when}' evaluated false")
            args = _resolve_artifact_args(item.get("arguments") or {}, frame)
        except (ExpressionError, NodeError) as exc:
            node = self.new_node(name, display, "Skipped", str(item.get("template", "")), boundary)
            link(node)
            return self.finish(node, "Error", str(exc))
        async with limiter or contextlib.nullcontext():
            return await self.execute_template(name, display, item, scope, args, boundary, link)


class DagRun:
    """The scheduling loop of one DAG template."""

    def __init__(self, run: Run, node: dict[str, Any], tmpl: dict[str, Any], scope: Scope) -> None:
        self.run_ = run
        self.node = node
        self.tmpl = tmpl
        self.scope = scope
        self.tasks = {t["name"]: t for t in tmpl["dag"]["tasks"]}
        continue_on = {n: t.get("continueOn") or {} for n, t in self.tasks.items()}
        self.logic = {
            n: expand_depends(t.get("depends"), t.get("dependencies"), continue_on) for n, t in self.tasks.items()
        }
        self.done: dict[str, dict[str, Any]] = {}
        self.frame = Frame(dict(run.globals), {})
        self.frame.params.update({f"inputs.parameters.{p['name']}": p["value"] for p in _inputs(tmpl)})
        self.limiter = _limiter(tmpl)
        self._check_graph()

    def _check_graph(self) -> None:
        for name, (_, deps) in self.logic.items():
            for dep in deps:
                if dep not in self.tasks:
                    raise NodeError(f"task {name!r} depends on unknown task {dep!r}")
        seen: dict[str, int] = {}

        def visit(name: str) -> None:
            if seen.get(name) == 1:
                raise NodeError(f"dependency cycle through task {name!r}")
            if seen.get(name) == 2:
                return
            seen[name] = 1
            for dep in self.logic[name][1]:
                visit(dep)
            seen[name] = 2

        for name in self.tasks:
            visit(name)

    async def run(self) -> None:
        """Schedule tasks as their dependencies are fulfilled, then assess the DAG's phase."""
        pending = list(self.tasks)
        running: dict[asyncio.Future[dict[str, Any]], str] = {}
        while pending or running:
            for name in self._ready(pending):
                pending.remove(name)
                node = self._omit_if_unmet(name)
                if node is not None:
                    self.done[name] = node
                    continue
                running[asyncio.ensure_future(self._run_task(name))] = name
            if not running:
                if pending:  # only omitted chains are left: loop again to omit them
                    continue
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                self.done[name] = future.result()
        self._assess()

    def _ready(self, pending: list[str]) -> list[str]:
        return [n for n in pending if all(d in self.done for d in self.logic[n][1])]

    def _omit_if_unmet(self, name: str) -> dict[str, Any] | None:
        logic, deps = self.logic[name]
        if not logic:
            return None
        results = {d: _results(self.run_, self.done[d]) for d in deps}
        try:
            if evaluate_depends(logic, results):
                return None
            phase, message = "Omitted", "omitted: depends condition not met"
        except ExpressionError as exc:
            phase, message = "Error", str(exc)
        node = self.run_.new_node(
            f"{self.node['name']}.{name}", name, "Skipped", str(self.tasks[name].get("template", "")), self.node["id"]
        )
        self._link_task(name, node)
        return self.run_.finish(node, phase, message)

    def _link_task(self, name: str, node: dict[str, Any]) -> None:
        deps = self.logic[name][1]
        parents = [out for d in deps for out in _outbound(self.run_.nodes, self.done[d])] or [self.node]
        for parent in parents:
            _add_child(parent, node)

    async def _run_task(self, name: str) -> dict[str, Any]:
        run, full = self.run_, f"{self.node['name']}.{name}"
        try:
            task = substitute_all(self.tasks[name], self.frame.scope(), ("inputs.", "tasks."))
            items = _items(task)
        except (ExpressionError, NodeError) as exc:
            node = run.new_node(full, name, "Skipped", str(self.tasks[name].get("template", "")), self.node["id"])
            self._link_task(name, node)
            return run.finish(node, "Error", str(exc))
        if items is None:
            node = await run._invoke(
                full,
                name,
                task,
                self.scope,
                self.frame,
                self.limiter,
                self.node["id"],
                lambda n: self._link_task(name, n),
            )
            _publish(self.frame, f"tasks.{name}", [node], expanded=False)
            return node
        group = run.new_node(full, name, "TaskGroup", str(task.get("template", "")), self.node["id"])
        self._link_task(name, group)
        calls = [
            run._invoke(
                f"{full}({i}:{_item_label(it)})",
                f"{name}({i}:{_item_label(it)})",
                _with_item(task, it, self.frame),
                self.scope,
                self.frame,
                self.limiter,
                self.node["id"],
                lambda n: _add_child(group, n),
            )
            for i, it in enumerate(items)
        ]
        children = list(await asyncio.gather(*calls))
        failed = [c for c in children if c["phase"] in FAILED]
        run.finish(group, failed[0]["phase"] if failed else "Succeeded")
        _publish(self.frame, f"tasks.{name}", children, expanded=True)
        return group

    def _assess(self) -> None:
        target = self.tmpl["dag"].get("target")
        targets = (
            target.split()
            if target
            else [n for n in self.tasks if not any(n in deps for _, deps in self.logic.values())]
        )
        result, message = "Succeeded", None
        for name in sorted(targets):
            phase = self._branch_phase(name)
            if phase in FAILED and not _continues(self.tasks[name], {"phase": phase}):
                result, message = phase, f"child '{self.done[name]['id']}' failed"
                break
        if result == "Succeeded":
            self.node["outputs"] = _template_outputs(self.tmpl, self.frame)
        self.run_.finish(self.node, result, message)

    def _branch_phase(self, name: str) -> str:
        node = self.done[name]
        if node["phase"] != "Omitted":
            return str(node["phase"])
        phases = [self._branch_phase(d) for d in self.logic[name][1]]
        return next((p for p in phases if p in FAILED), "Succeeded")


def _outbound(nodes: Mapping[str, dict[str, Any]], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes a dependent task hangs under, as in Argo: a retry's last attempt, a loop's iterations."""
    children = [nodes[c] for c in node.get("children", []) if c in nodes]
    if node["type"] == "Retry" and children:
        return _outbound(nodes, children[-1])
    if node["type"] == "TaskGroup" and children:
        return [out for child in children for out in _outbound(nodes, child)]
    return [node]


def _add_child(parent: dict[str, Any], node: Mapping[str, Any]) -> None:
    if node["id"] not in parent["children"]:
        parent["children"].append(node["id"])


# --- helpers -------------------------------------------------------------------------------------------


class Engine:
    """Runs Workflow objects locally and keeps their records in a :class:`RunStore`.

    Args:
        store: Where run records go.
        library: WorkflowTemplates that ``workflowTemplateRef`` and ``templateRef`` resolve against.
        s3: A factory returning a boto3 S3 client (called only when a run uses artifacts).
        artifacts_bucket: Default bucket of the artifact repository.
        objects: Local stand-ins for the cluster's ConfigMaps and Secrets.
        base_env: Environment every step gets (the platform's endpoints).
        parallelism: Most steps running at once.
        warm: Fork Python steps from a launcher that has preloaded the heavy libraries (see ``launcher``).
        preload: The modules that launcher imports.
    """

    def __init__(
        self,
        store: RunStore,
        library: Any,
        s3: Callable[[], Any],
        artifacts_bucket: str,
        objects: LocalObjects | None = None,
        base_env: Mapping[str, str] | None = None,
        parallelism: int = 2,
        warm: bool = False,
        preload: tuple[str, ...] = PRELOAD,
    ) -> None:
        self.store = store
        self.library = library
        self._s3_factory = s3
        self._s3_client: Any = None
        self.artifacts_bucket = artifacts_bucket
        self.objects = objects or LocalObjects()
        self.base_env = dict(base_env or {})
        self.parallelism = parallelism
        self.locks = Locks(store.root.parent / "locks")
        self.cache = Cache(store.root.parent / "cache")
        self.warm, self.preload = warm, preload
        self.launcher: Launcher | None = None

    def thread_env(self) -> dict[str, str]:
        """Thread limits for one step: its share of the cores, as a CPU limit gives a pod on a cluster.

        Without them, parallel steps that each start one thread per core (OpenMP, BLAS) oversubscribe the
        machine and slow each other down many times over. A template's own ``env`` still overrides them.
        """
        share = str(max(1, (os.cpu_count() or 1) // self.parallelism))
        return {name: share for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}

    def s3(self) -> Any:
        """The S3 client, created on first use."""
        if self._s3_client is None:
            self._s3_client = self._s3_factory()
        return self._s3_client

    def run(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """Execute a prepared Workflow to the end and return it with its final status."""
        asyncio.run(self._execute(workflow))
        return workflow

    async def _execute(self, workflow: dict[str, Any]) -> None:
        if self.warm:
            self.launcher = Launcher({**os.environ, **self.base_env, **self.thread_env()}, self.preload)
        try:
            await Run(workflow, self).execute()
        finally:
            if self.launcher is not None:
                await self.launcher.close()
                self.launcher = None


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _node_type(tmpl: Mapping[str, Any]) -> str:
    return "DAG" if "dag" in tmpl else "Steps" if "steps" in tmpl else "Pod"


def _as_param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _inputs(tmpl: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((tmpl.get("inputs") or {}).get("parameters", []))


def _should_retry(policy: str, phase: str) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return phase == "Failed"
    return phase == "Error"  # OnError, OnTransientError


def _continues(item: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    flags = item.get("continueOn") or {}
    return bool(
        (node["phase"] == "Failed" and flags.get("failed")) or (node["phase"] == "Error" and flags.get("error"))
    )


def _limiter(tmpl: Mapping[str, Any]) -> asyncio.Semaphore | None:
    return asyncio.Semaphore(int(tmpl["parallelism"])) if tmpl.get("parallelism") else None


def _results(run: Run, node: Mapping[str, Any]) -> dict[str, bool]:
    phase = node["phase"]
    children = [run.nodes[c] for c in node.get("children", []) if c in run.nodes] if node["type"] == "TaskGroup" else []
    return {
        "Succeeded": phase == "Succeeded",
        "Failed": phase == "Failed",
        "Errored": phase == "Error",
        "Skipped": phase == "Skipped",
        "Completed": phase in ("Succeeded", "Failed", "Error", "Skipped"),
        "Daemoned": False,
        "AnySucceeded": any(c["phase"] == "Succeeded" for c in children),
        "AllFailed": bool(children) and all(c["phase"] == "Failed" for c in children),
    }


def _items(item: Mapping[str, Any]) -> list[Any] | None:
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
        return _sequence(item["withSequence"])
    return None


def _sequence(seq: Mapping[str, Any]) -> list[str]:
    start = int(seq.get("start", 0))
    if "count" in seq:
        numbers = list(range(start, start + int(seq["count"])))
    else:
        end = int(seq.get("end", 0))
        numbers = list(range(start, end + 1)) if end >= start else list(range(start, end - 1, -1))
    fmt = seq.get("format")
    return [fmt % n if fmt else str(n) for n in numbers]


def _item_label(item: Any) -> str:
    if isinstance(item, dict):
        return ",".join(f"{k}:{_item_label(v)}" for k, v in sorted(item.items()))
    return item if isinstance(item, str) else json.dumps(item)


def _with_item(item_spec: Mapping[str, Any], item: Any, frame: Frame) -> dict[str, Any]:
    scope = {"item": _as_param(item)}
    if isinstance(item, dict):
        scope.update({f"item.{k}": _as_param(v) for k, v in item.items()})
    body = {k: v for k, v in item_spec.items() if k not in ("withItems", "withParam", "withSequence")}
    return dict(substitute_all(body, {**frame.scope(), **scope}, ("item",)))


def _expands(item: Mapping[str, Any]) -> bool:
    return any(k in item for k in ("withItems", "withParam", "withSequence"))


def _step_nodes(
    results: list[list[dict[str, Any]]], group: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(node, step) for step, nodes in zip(group, results, strict=True) for node in nodes]


def _publish(frame: Frame, prefix: str, nodes: list[dict[str, Any]], expanded: bool) -> None:
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


def _resolve_artifact_args(arguments: Mapping[str, Any], frame: Frame) -> dict[str, Any]:
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


def _artifact_location(given: Mapping[str, Any]) -> dict[str, Any]:
    return {k: given[k] for k in ("s3", "raw", "archive") if k in given}


def _template_outputs(tmpl: Mapping[str, Any], frame: Frame) -> dict[str, Any]:
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


def _path_mapping(tmpl: Mapping[str, Any], fs_root: Path) -> dict[str, str]:
    """Map every container path a template declares to a host path under the node's own folder."""
    paths = {a["path"] for a in (tmpl.get("inputs") or {}).get("artifacts", []) if a.get("path")}
    outputs = tmpl.get("outputs") or {}
    paths |= {a["path"] for a in outputs.get("artifacts", []) if a.get("path")}
    paths |= {(p.get("valueFrom") or {}).get("path", "") for p in outputs.get("parameters", [])} - {""}
    body = tmpl.get("script") or tmpl.get("container") or {}
    paths |= {e.get("value", "") for e in body.get("env", []) if e.get("name") == HERA_OUTPUTS_ENV} - {""}
    mapping = {p: str(fs_root) + p for p in paths if p.startswith("/")}
    for host in mapping.values():
        Path(host).parent.mkdir(parents=True, exist_ok=True)
    return mapping


def _remap(text: str, mapping: Mapping[str, str]) -> str:
    """Replace whole container paths with their host paths in one pass (a host path is never re-mapped)."""
    if not mapping or not text:
        return text
    alternation = "|".join(re.escape(p) for p in sorted(mapping, key=len, reverse=True))
    pattern = rf"(?<![\w./-])({alternation})(?=$|[/\s\"'>;:|)&,])"
    return re.sub(pattern, lambda m: mapping[m.group(1)], text)


async def _pump(stream: asyncio.StreamReader | None, log: Any, sink: list[bytes] | None) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        log.write(chunk)
        log.flush()
        if sink is not None:
            sink.append(chunk)


async def _exited(proc: Any) -> None:
    """Return once the process itself has exited.

    ``asyncio``'s ``wait()`` (Python 3.11) also waits for the pipes to close, which a forked worker holding
    them would delay for ever; the exit status is known as soon as the process is reaped.
    """
    waiter = asyncio.ensure_future(proc.wait())
    try:
        while not waiter.done() and proc.returncode is None:
            await asyncio.wait([waiter], timeout=0.1)
    finally:
        if not waiter.done():
            waiter.cancel()


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a step's process group (nothing, usually)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), timeout=3)
            return
        except TimeoutError:
            continue
