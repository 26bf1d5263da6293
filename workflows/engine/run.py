"""One execution of a Workflow object: its node records, the entrypoint and exit handler, and each template.

A template's body runs by kind (:mod:`workflows.engine.kinds`): DAGs, steps, HTTP and suspend templates there,
pods in :mod:`~workflows.engine.pod.pods`; retries wrap any of them.  The kinds see the run only through
:class:`~workflows.engine.context.RunContext`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from workflows.engine import lifecycle
from workflows.engine.context import EngineParts
from workflows.engine.frames import (
    Frame,
    Scope,
    bind_inputs,
    resolve_artifact_args,
    resolve_template,
    skipped_outputs,
)
from workflows.engine.kinds import control, dag, data, hooks, http, retry, steps, suspend, sync
from workflows.engine.language.conditions import evaluate_when
from workflows.engine.language.durations import parse_duration
from workflows.engine.language.errors import ExpressionError
from workflows.engine.pod import pods
from workflows.engine.state import progress
from workflows.engine.state.cache import memo_lookup
from workflows.engine.state.nodes import FAILED, Node, NodeError, Outputs, node_id, node_type, now


class Run:
    """One execution of a Workflow object."""

    def __init__(self, workflow: dict[str, Any], engine: EngineParts) -> None:
        self.wf = workflow
        self.engine = engine
        self.name: str = workflow["metadata"]["name"]
        self.spec: dict[str, Any] = workflow["spec"]
        self.status: dict[str, Any] = workflow.setdefault("status", {})
        self.nodes: dict[str, Node] = self.status.setdefault("nodes", {})
        self.dir = engine.store.run_dir(self.name)
        limit = min(engine.parallelism, int(self.spec.get("parallelism") or engine.parallelism))
        self.pod_slots = asyncio.Semaphore(limit)
        self.globals: dict[str, str] = {}
        self.global_artifacts: dict[str, dict[str, Any]] = {}
        self.daemons: dict[str, list[Any]] = {}
        self.stopped: str | None = None  # "stop" or "terminate" when a user ended the run
        self.reused: dict[str, dict[str, Any]] = self.status.pop("retriedFrom", None) or {}
        self.bucket = engine.artifacts_bucket
        self.estimates: dict[str, int] = {}  # seconds by node name after the run's name, from the last success
        self._dirty = True

    def touch(self) -> None:
        """Mark the status as changed; the saver writes it soon."""
        self._dirty = True

    def save(self) -> None:
        """Write the workflow object now if it changed."""
        if self._dirty:
            self._dirty = False
            progress.update(self.status)
            self.engine.store.save(self.wf)

    async def saver(self) -> None:
        """Write the status a few times a second while the run goes on."""
        while True:
            await asyncio.sleep(0.2)
            self.save()

    def new_node(self, name: str, display: str, kind: str, template: str, boundary: str | None) -> Node:
        """Create a Running node in Argo's NodeStatus shape."""
        node: Node = {
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
        if name[len(self.name) :] in self.estimates:
            node["estimatedDuration"] = self.estimates[name[len(self.name) :]]
        self.nodes[node["id"]] = node
        self.touch()
        return node

    def finish(self, node: Node, phase: str, message: str | None = None) -> Node:
        """Set a node's final phase."""
        node["phase"] = phase
        node["finishedAt"] = now()
        if message:
            node["message"] = message
        self.touch()
        return node

    def log(self, node: Node, text: str) -> None:
        """Append an engine note to a node's log."""
        path = self.engine.store.log_path(self.name, node["id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(f"[ctcd-engine] {text}\n")

    async def execute(self) -> None:
        """Run the entrypoint, then the exit handler, and set the workflow phase."""
        self.status.update({"phase": "Running", "startedAt": now()})
        scope = Scope(self.name, {t["name"]: t for t in self.spec.get("templates", [])})
        self.scope = scope
        saver = asyncio.create_task(self.saver())
        held = sync.Held(self.name, [], [])
        try:
            held = await sync.hold(self, self.spec.get("synchronization"), None)
            self.status.pop("message", None)
            self.status["phase"] = "Running"
            try:
                lifecycle.begin(self)
            except NodeError as exc:
                self.status.update(phase="Error", message=str(exc))
                return
            root = await hooks.around_run(self, scope, entry(self, scope))
            phase = root["phase"] if root["phase"] in ("Succeeded",) + FAILED else "Failed"
            message = root.get("message")
            phase, message = await hooks.exit_handler(self, scope, phase, message)  # the run stays Running meanwhile
            await asyncio.to_thread(lifecycle.collect_garbage, self)
            self.status["phase"] = phase
            if message:
                self.status["message"] = message
        finally:
            if self.status.get("phase") not in ("Succeeded", "Failed", "Error"):
                self.status.update(
                    phase="Error", message=self.status.get("message") or "the engine stopped unexpectedly"
                )
            sync.release(self, held)
            saver.cancel()
            self.status["finishedAt"] = now()
            self.touch()
            self.save()

    async def execute_template(
        self,
        name: str,
        display: str,
        invocation: Mapping[str, Any],
        scope: Scope,
        args: Mapping[str, Any],
        boundary: str | None,
        link: Callable[[Node], None] | None = None,
    ) -> Node:
        """Execute one template as node ``name`` and return its finished node.

        ``link`` is called with the node as soon as it exists, to place it in the node tree.
        """
        try:
            tmpl, tmpl_scope = resolve_template(self.engine.library, invocation, scope)
        except NodeError as exc:
            node = self.new_node(name, display, "Skipped", str(invocation.get("template", "")), boundary)
            if link:
                link(node)
            return self.finish(node, "Error", str(exc))
        if "retryStrategy" not in tmpl and self.spec.get("retryStrategy"):
            tmpl = {**tmpl, "retryStrategy": self.spec["retryStrategy"]}  # the workflow's, for every template
        kind = node_type(tmpl)
        node = self.new_node(name, display, "Retry" if tmpl.get("retryStrategy") else kind, tmpl["name"], boundary)
        if link:
            link(node)
        try:
            tmpl = bind_inputs(self.globals, tmpl, args, node, self.engine.objects.lookup)
        except (NodeError, ExpressionError) as exc:
            return self.finish(node, "Error", str(exc))
        previous = self.reused.get(name)
        if previous is not None and kind == "Pod":  # a retried run keeps what already succeeded
            node["outputs"] = cast(Outputs, previous.get("outputs") or {})  # a record read back from the store
            if previous.get("originalPod"):  # resubmitted --memoized: Argo shows the step Skipped
                node["type"] = "Skipped"
                return self.finish(node, "Skipped", f"original pod: {previous['originalPod']}")
            return self.finish(node, "Succeeded", "reused: succeeded before the run was retried")
        memo = tmpl.get("memoize")
        cached = memo_lookup(self.engine.cache, node, memo) if memo else None
        if cached is not None:
            node["outputs"] = cached
            return self.finish(node, "Succeeded", "cached: outputs reused (memoized)")
        try:
            held = await sync.hold(self, tmpl.get("synchronization"), node)
        except NodeError as exc:
            return self.finish(node, "Error", str(exc))
        try:
            if tmpl.get("retryStrategy"):
                done = await retry.retry(self, node, tmpl, tmpl_scope, boundary)
            else:
                done = await self.run_body(node, tmpl, tmpl_scope, attempt=0)
        finally:
            sync.release(self, held)
        if memo and done["phase"] == "Succeeded":
            self.engine.cache.put(memo["cache"]["configMap"]["name"], memo["key"], done.get("outputs", {}), done["id"])
        return done

    async def invoke(
        self,
        name: str,
        display: str,
        item: dict[str, Any],
        scope: Scope,
        frame: Frame,
        limiter: asyncio.Semaphore | None,
        boundary: str,
        link: Callable[[Node], None],
    ) -> Node:
        """Run one task or step after its ``when`` and artifact references are resolved."""
        try:
            when = item.get("when")
            if when and not evaluate_when(when):
                node = self.new_node(name, display, "Skipped", str(item.get("template", "")), boundary)
                link(node)
                node["outputs"] = skipped_outputs(self.engine.library, item, scope)
                return self.finish(node, "Skipped", f"when '{when}' evaluated false")
            args = resolve_artifact_args(item.get("arguments") or {}, frame)
        except (ExpressionError, NodeError) as exc:
            node = self.new_node(name, display, "Skipped", str(item.get("template", "")), boundary)
            link(node)
            return self.finish(node, "Error", str(exc))
        async with limiter or contextlib.nullcontext():
            if not hooks.step_hooks(item):
                return await self.execute_template(name, display, item, scope, args, boundary, link)

            def call(linked: Callable[[Node], None]) -> Awaitable[Node]:
                return self.execute_template(name, display, item, scope, args, boundary, linked)

            return await hooks.around_step(self, item, frame, scope, boundary, call, link)

    async def run_body(self, node: Node, tmpl: dict[str, Any], scope: Scope, attempt: int) -> Node:
        """Run a template's body by kind (DAG, steps or pod) within its deadline."""
        deadline = tmpl.get("activeDeadlineSeconds") or tmpl.get("timeout")
        if "dag" in tmpl:
            body = dag.DagRun(self, node, tmpl, scope).run()
        elif "steps" in tmpl:
            body = steps.run_steps(self, node, tmpl, scope)
        elif "http" in tmpl:
            body = http.run_http(self, node, tmpl)
        elif "data" in tmpl:
            body = data.run_data(self, node, tmpl)
        elif "suspend" in tmpl:
            body = suspend.run_suspend(self, node, tmpl)
        else:
            body = pods.run_pod(self, node, tmpl, attempt)
        try:
            if deadline is not None:
                await asyncio.wait_for(body, timeout=parse_duration(deadline))
            else:
                await body
        except TimeoutError:
            message = "Pod was active on the node longer than the specified deadline"
            self.finish(node, "Failed", message if node["type"] in ("Pod", "Retry") else "Step exceeded its deadline")
        except asyncio.CancelledError:
            if node["phase"] == "Running":
                self.finish(node, "Failed", control.stopped_message(self.stopped, node["type"]))
            raise
        except (NodeError, ExpressionError, OSError) as exc:
            self.finish(node, "Error", str(exc))
        finally:
            if node["type"] in ("DAG", "Steps"):
                await pods.stop_daemons(self, node["id"])
        if node["phase"] == "Succeeded":
            publish_globals(self, node)
        return node


def publish_globals(run: Run, node: Node) -> None:
    """Make outputs with a ``globalName`` visible as ``workflow.outputs.*`` and in the run's status."""
    outputs = node.get("outputs") or {}
    status = run.status.setdefault("outputs", {})
    for param in outputs.get("parameters", []):
        if param.get("globalName"):
            run.globals[f"workflow.outputs.parameters.{param['globalName']}"] = param["value"]
            kept = [p for p in status.get("parameters", []) if p["name"] != param["globalName"]]
            status["parameters"] = [*kept, {"name": param["globalName"], "value": param["value"]}]
    for art in outputs.get("artifacts", []):
        if art.get("globalName"):
            record = {**{k: v for k, v in art.items() if k != "globalName"}, "name": art["globalName"]}
            run.global_artifacts[f"workflow.outputs.artifacts.{art['globalName']}"] = record
            kept = [a for a in status.get("artifacts", []) if a["name"] != art["globalName"]]
            status["artifacts"] = [*kept, record]
    if not status:
        run.status.pop("outputs", None)


async def entry(run: Run, scope: Scope) -> Node:
    """Run the entrypoint with the workflow's arguments, within ``activeDeadlineSeconds``."""
    arguments = run.spec.get("arguments") or {}
    params = [
        {"name": p["name"], "value": run.globals.get(f"workflow.parameters.{p['name']}", "")}
        for p in arguments.get("parameters", [])
    ]
    args = {"parameters": params, "artifacts": arguments.get("artifacts", [])}
    call = run.execute_template(run.name, run.name, {"template": run.spec["entrypoint"]}, scope, args, None)
    deadline = run.spec.get("activeDeadlineSeconds")
    if deadline is None:
        return await control.interruptible(run, call) or run.nodes[run.name]
    task = asyncio.ensure_future(control.interruptible(run, call))
    try:
        return await asyncio.wait_for(asyncio.shield(task), timeout=float(deadline)) or run.nodes[run.name]
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        control.end_unfinished(run, None)
        root = run.nodes[run.name]
        return run.finish(root, "Failed", "Max duration limit exceeded")
