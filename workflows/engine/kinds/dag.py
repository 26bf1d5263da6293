"""DAG templates: tasks scheduled as their ``depends`` (or ``dependencies``) are fulfilled, then assessed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workflows.engine.frames import (
    Frame,
    input_artifacts,
    input_params,
    parallelism_limiter,
    publish,
    skipped_outputs,
    template_outputs,
)
from workflows.engine.items import item_label, loop_items, resolved, skipped_by_when, with_item
from workflows.engine.language.conditions import evaluate_depends, expand_depends
from workflows.engine.language.errors import ExpressionError
from workflows.engine.state.nodes import EMPTY_LOOP, FAILED, Node, NodeError, add_child, continues, failed_children

if TYPE_CHECKING:
    from workflows.engine.context import RunContext
    from workflows.engine.frames import Scope


class DagRun:
    """The scheduling loop of one DAG template."""

    def __init__(self, run: RunContext, node: Node, tmpl: dict[str, Any], scope: Scope) -> None:
        self.run_ = run
        self.node = node
        self.tmpl = tmpl
        self.scope = scope
        self.tasks = {t["name"]: t for t in tmpl["dag"]["tasks"]}
        continue_on = {n: t.get("continueOn") or {} for n, t in self.tasks.items()}
        self.logic = {
            n: expand_depends(t.get("depends"), t.get("dependencies"), continue_on) for n, t in self.tasks.items()
        }
        self.done: dict[str, Node] = {}
        self.frame = Frame({}, {}, run.globals, run.global_artifacts)
        self.frame.params.update({f"inputs.parameters.{p['name']}": p["value"] for p in input_params(tmpl)})
        self.frame.artifacts.update(input_artifacts(tmpl))
        self.limiter = parallelism_limiter(tmpl)
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
        running: dict[asyncio.Future[Node], str] = {}
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

    def _omit_if_unmet(self, name: str) -> Node | None:
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
        if phase == "Omitted":
            node["outputs"] = skipped_outputs(self.run_.engine.library, self.tasks[name], self.scope)
        self.run_.finish(node, phase, message)
        publish(self.frame, f"tasks.{name}", [node], expanded=False)
        return node

    def _link_task(self, name: str, node: Node) -> None:
        deps = self.logic[name][1]
        parents = [out for d in deps for out in _outbound(self.run_.nodes, self.done[d])] or [self.node]
        for parent in parents:
            add_child(parent, node)

    async def _run_task(self, name: str) -> Node:
        run, full = self.run_, f"{self.node['name']}.{name}"
        try:
            raw = self.tasks[name]
            task = skipped_by_when(raw, self.frame) or {
                **resolved(raw, self.frame, ("inputs.", "tasks.")),
                **_hooks(raw),
            }
            items = loop_items(task)
        except (ExpressionError, NodeError) as exc:
            node = run.new_node(full, name, "Skipped", str(self.tasks[name].get("template", "")), self.node["id"])
            self._link_task(name, node)
            return run.finish(node, "Error", str(exc))
        if items is None:
            node = await run.invoke(
                full,
                name,
                task,
                self.scope,
                self.frame,
                self.limiter,
                self.node["id"],
                lambda n: self._link_task(name, n),
            )
            publish(self.frame, f"tasks.{name}", [node], expanded=False)
            return node
        if not items:  # Argo's node for a loop over nothing
            empty = run.new_node(full, name, "Skipped", str(task.get("template", "")), self.node["id"])
            self._link_task(name, empty)
            empty["outputs"] = skipped_outputs(run.engine.library, self.tasks[name], self.scope)
            run.finish(empty, "Skipped", EMPTY_LOOP)
            publish(self.frame, f"tasks.{name}", [empty], expanded=False)
            return empty
        group = run.new_node(full, name, "TaskGroup", str(task.get("template", "")), self.node["id"])
        self._link_task(name, group)
        calls = [
            run.invoke(
                f"{full}({i}:{item_label(it)})",
                f"{name}({i}:{item_label(it)})",
                with_item(task, it, self.frame),
                self.scope,
                self.frame,
                self.limiter,
                self.node["id"],
                lambda n: add_child(group, n),
            )
            for i, it in enumerate(items)
        ]
        children = list(await asyncio.gather(*calls))
        failed = [c for c in children if c["phase"] in FAILED]
        run.finish(group, failed[0]["phase"] if failed else "Succeeded")
        publish(self.frame, f"tasks.{name}", children, expanded=True)
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
            if phase in FAILED and not continues(self.tasks[name], {"phase": phase}):
                result, message = phase, failed_children(self.tmpl, self.done[name])
                break
        if result == "Succeeded":
            self.node["outputs"] = template_outputs(self.tmpl, self.frame)
        self.run_.finish(self.node, result, message)

    def _branch_phase(self, name: str) -> str:
        node = self.done[name]
        if node["phase"] != "Omitted":
            return str(node["phase"])
        phases = [self._branch_phase(d) for d in self.logic[name][1]]
        return next((p for p in phases if p in FAILED), "Succeeded")


def _outbound(nodes: Mapping[str, Node], node: Node) -> list[Node]:
    """The nodes a dependent task hangs under, as in Argo: a retry's last attempt, a loop's iterations."""
    children = [nodes[c] for c in node.get("children", []) if c in nodes]
    if node["type"] == "Retry" and children:
        return _outbound(nodes, children[-1])
    if node["type"] == "TaskGroup" and children:
        return [out for child in children for out in _outbound(nodes, child)]
    return [node]


def _results(run: RunContext, node: Node) -> dict[str, bool]:
    phase = node["phase"]
    children = [run.nodes[c] for c in node.get("children", []) if c in run.nodes] if node["type"] == "TaskGroup" else []
    return {
        "Succeeded": phase == "Succeeded",
        "Failed": phase == "Failed",
        "Errored": phase == "Error",
        "Skipped": phase == "Skipped",
        "Omitted": phase == "Omitted",
        "Completed": phase in ("Succeeded", "Failed", "Error", "Skipped"),
        "Daemoned": bool(node.get("daemoned")) and phase != "Pending",
        "AnySucceeded": any(c["phase"] == "Succeeded" for c in children),
        "AllFailed": bool(children) and all(c["phase"] == "Failed" for c in children),
    }


def _hooks(item: dict[str, Any]) -> dict[str, Any]:
    """A step's hooks, kept unsubstituted: they are resolved when they fire, with the step's own outputs."""
    return {k: item[k] for k in ("hooks",) if k in item}
