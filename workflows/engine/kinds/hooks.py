"""Lifecycle hooks: templates that run when an expression becomes true, or when a step (or the run) exits.

At the workflow level ``spec.hooks`` sees ``workflow.status``: ``Running`` while the entrypoint runs, then the
entrypoint's outcome (``Succeeded``, ``Failed`` or ``Error``), before the exit handler.  At the step or task level
a hook sees the step's own ``steps.NAME.status`` / ``tasks.NAME.status`` and, for ``exit``, its outputs.  Each
hook fires at most once, as a child of the node it watches (the run's root node at the workflow level), flagged
``nodeFlag.hooked``, and is waited for before the step (or the run) ends.  A hook's own failure does not change
the step's phase; a failed workflow-level ``exit`` hook fails the run, as ``onExit`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from workflows.engine.frames import Frame, publish, resolve_artifact_args
from workflows.engine.kinds import control
from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.expressions import evaluate_bool
from workflows.engine.language.tags import substitute_all
from workflows.engine.state.nodes import FAILED, Node, add_child, epoch, failures

if TYPE_CHECKING:
    from workflows.engine.context import RunContext
    from workflows.engine.frames import Scope

Call = Callable[[Callable[[Node], None]], Awaitable[Node]]


def step_hooks(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A step's or task's hooks (the older ``onExit: TEMPLATE`` field counts as an ``exit`` hook)."""
    hooks = dict(item.get("hooks") or {})
    if item.get("onExit") and "exit" not in hooks:
        hooks["exit"] = {"template": item["onExit"]}
    return hooks


class Hooks:
    """The hooks of one step, task or run, and which of them already fired."""

    def __init__(self, run: RunContext, hooks: Mapping[str, dict[str, Any]], scope: Scope, owner: str) -> None:
        self.run, self.hooks, self.scope, self.owner = run, dict(hooks), scope, owner
        self.fired: set[str] = set()
        self.pending: list[asyncio.Future[Node]] = []

    def check(self, values: Mapping[str, str], frame: Frame, parent: Node | None, boundary: str | None) -> None:
        """Start every not-yet-fired hook whose expression is true now."""
        for name, hook in self.hooks.items():
            if name == "exit" or name in self.fired or not hook.get("expression"):
                continue
            try:
                due = evaluate_bool(hook["expression"], {**frame.scope(), **values})
            except ExpressionError:
                continue  # it names something not known yet (a status still to come)
            if due:
                self.fired.add(name)
                self.pending.append(asyncio.ensure_future(self.fire(name, hook, frame, parent, boundary)))

    async def fire(
        self, name: str, hook: Mapping[str, Any], frame: Frame, parent: Node | None, boundary: str | None
    ) -> Node:
        """Run one hook's template as a node under ``parent``."""
        node_name = f"{self.owner}.onExit" if name == "exit" else f"{self.owner}.hooks.{name}"
        invocation = {k: v for k, v in hook.items() if k in ("template", "templateRef", "inline")}
        try:
            arguments = substitute_all(hook.get("arguments") or {}, frame.scope())
            args = resolve_artifact_args(arguments, frame)
        except (ExpressionError, ValueError) as exc:
            args = {}
            self.run.log(parent or {"id": self.run.name}, f"hook {name}: {exc}")

        def link(node: Node) -> None:
            _hooked(node)
            if parent is not None:
                add_child(parent, node)

        return await self.run.execute_template(node_name, node_name, invocation, self.scope, args, boundary, link)

    async def settle(self) -> None:
        """Wait for the hooks that were started."""
        if self.pending:
            await asyncio.gather(*self.pending)
        self.pending = []


async def around_step(
    run: RunContext,
    item: Mapping[str, Any],
    frame: Frame,
    scope: Scope,
    boundary: str,
    call: Call,
    link: Callable[[Node], None],
) -> Node:
    """Run a step or task with its hooks: expression hooks while it runs and when it ends, then ``exit``."""
    hooks = Hooks(run, step_hooks(item), scope, "")
    holder: dict[str, Node] = {}

    def linked(node: Node) -> None:
        holder["node"] = node
        hooks.owner = node["name"]
        link(node)

    task = asyncio.ensure_future(call(linked))
    try:
        while not task.done():
            if "node" in holder:
                hooks.check(_status(item, holder["node"]), frame, holder["node"], boundary)
            await asyncio.wait([task], timeout=0.2)
        node = task.result()
        own = _published(frame, item, node)
        hooks.check(_status(item, node), own, node, boundary)
        if "exit" in hooks.hooks:
            hooks.pending.append(asyncio.ensure_future(hooks.fire("exit", hooks.hooks["exit"], own, node, boundary)))
        await hooks.settle()
    except asyncio.CancelledError:
        await _cancelled(task, *hooks.pending)
        if run.stopped == "stop" and "exit" in hooks.hooks and "node" in holder:  # a stop still runs exit handlers
            node = holder["node"]
            await hooks.fire("exit", hooks.hooks["exit"], _published(frame, item, node), node, boundary)
        raise
    return node


def _published(frame: Frame, item: Mapping[str, Any], node: Node) -> Frame:
    """The frame a step's own hooks see: the step's outputs under ``steps.NAME`` and ``tasks.NAME``."""
    own = Frame(dict(frame.params), dict(frame.artifacts), frame.shared, frame.shared_artifacts)
    for prefix in ("steps", "tasks"):
        publish(own, f"{prefix}.{item['name']}", [node], expanded=False)
    return own


async def _cancelled(*tasks: asyncio.Future[Any]) -> None:
    """Cancel these tasks and wait until each has ended."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _status(item: Mapping[str, Any], node: Node) -> dict[str, str]:
    return {f"{prefix}.{item['name']}.status": str(node["phase"]) for prefix in ("steps", "tasks")}


WORKFLOW_STATUS = {"Succeeded": "Succeeded", "Skipped": "Succeeded", "Omitted": "Succeeded", "Error": "Error"}


async def around_run(run: RunContext, scope: Scope, call: Awaitable[Node]) -> Node:
    """Run the entrypoint while the workflow's expression hooks fire; wait for every hook that fired."""
    hooks = Hooks(run, {k: v for k, v in (run.spec.get("hooks") or {}).items() if k != "exit"}, scope, run.name)
    frame = Frame({}, {}, run.globals, run.global_artifacts)
    task = asyncio.ensure_future(call)
    await asyncio.sleep(0)  # the root node exists once the entrypoint has started
    while not task.done():
        if run.name in run.nodes:
            hooks.check({"workflow.status": "Running"}, frame, run.nodes[run.name], None)
        await asyncio.wait([task], timeout=0.2)
    root = task.result()
    hooks.check({"workflow.status": WORKFLOW_STATUS.get(root["phase"], "Failed")}, frame, root, None)
    await hooks.settle()
    return root


async def exit_handler(run: RunContext, scope: Scope, phase: str, message: str | None) -> tuple[str, str | None]:
    """Run ``onExit`` (or the ``exit`` hook) with ``workflow.status``; return the run's final phase and message."""
    if run.stopped == "terminate":  # terminate skips the exit handler; stop runs it
        return "Failed", "Stopped with strategy 'Terminate'"
    exit_hook = (run.spec.get("hooks") or {}).get("exit")
    if run.spec.get("onExit"):
        invocation: dict[str, Any] = {"template": run.spec["onExit"]}
    elif exit_hook:
        invocation = {k: v for k, v in exit_hook.items() if k in ("template", "templateRef", "inline")}
    else:
        return phase, message
    run.globals["workflow.status"] = phase
    run.globals["workflow.failures"] = json.dumps(failures(run.nodes))
    run.globals["workflow.duration"] = f"{time.time() - epoch(run.status['startedAt']):.3f}"
    args = substitute_all((exit_hook or {}).get("arguments") or {}, run.globals) if not run.spec.get("onExit") else {}
    name = f"{run.name}.onExit"
    node = await control.unless_terminated(
        run, run.execute_template(name, name, invocation, scope, args, None, _hooked)
    )
    if node is None:
        return "Failed", "Stopped with strategy 'Terminate'"
    if node["phase"] in FAILED and phase == "Succeeded":
        return node["phase"], node.get("message") or f"exit handler {node['displayName']} {node['phase'].lower()}"
    return phase, message


def _hooked(node: Node) -> None:
    node["nodeFlag"] = {"hooked": True}
