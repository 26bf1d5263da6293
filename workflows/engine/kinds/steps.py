"""Steps templates: groups run in order, the steps of a group in parallel, with loops and ``continueOn``."""

from __future__ import annotations

import asyncio
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
from workflows.engine.items import expands, item_label, loop_items, resolved, skipped_by_when, with_item
from workflows.engine.language.errors import ExpressionError
from workflows.engine.state.nodes import EMPTY_LOOP, FAILED, Node, NodeError, add_child, continues, failed_children

if TYPE_CHECKING:
    from workflows.engine.context import RunContext
    from workflows.engine.frames import Scope


async def run_steps(run: RunContext, node: Node, tmpl: dict[str, Any], scope: Scope) -> None:
    """Run a steps template: each group in order, the steps of a group in parallel."""
    frame = Frame({}, {}, run.globals, run.global_artifacts)
    frame.params.update({f"inputs.parameters.{p['name']}": p["value"] for p in input_params(tmpl)})
    frame.artifacts.update(input_artifacts(tmpl))
    limiter = parallelism_limiter(tmpl)
    previous: list[Node] = []
    for index, group in enumerate(tmpl["steps"]):
        gnode = run.new_node(f"{node['name']}[{index}]", f"[{index}]", "StepGroup", tmpl["name"], node["id"])
        for parent in previous or [node]:
            parent["children"].append(gnode["id"])
        runs = [_run_step(run, gnode, step, frame, scope, limiter) for step in group]
        results = await asyncio.gather(*runs)
        previous = [n for nodes in results for n in nodes]
        failed = [n for n, step in _step_nodes(results, group) if n["phase"] in FAILED and not continues(step, n)]
        run.finish(gnode, "Failed" if failed else "Succeeded", failed_children(tmpl, failed[0]) if failed else None)
        for step, nodes in zip(group, results, strict=True):
            publish(frame, f"steps.{step['name']}", nodes, expanded=expands(step))
        if failed:
            run.finish(node, "Failed", failed_children(tmpl, failed[0]))
            return
    node["outputs"] = template_outputs(tmpl, frame)
    run.finish(node, "Succeeded")


async def _run_step(
    run: RunContext,
    group: Node,
    step: dict[str, Any],
    frame: Frame,
    scope: Scope,
    limiter: asyncio.Semaphore | None,
) -> list[Node]:
    try:
        step = skipped_by_when(step, frame) or {**resolved(step, frame, ("inputs.", "steps.")), **_hooks(step)}
        items = loop_items(step)
    except (ExpressionError, NodeError) as exc:
        skipped = run.new_node(f"{group['name']}.{step['name']}", step["name"], "Skipped", "", group["boundaryID"])
        add_child(group, skipped)
        return [run.finish(skipped, "Error", str(exc))]
    if items == []:  # Argo's node for a loop over nothing
        empty = run.new_node(f"{group['name']}.{step['name']}", step["name"], "Skipped", "", group["boundaryID"])
        add_child(group, empty)
        empty["outputs"] = skipped_outputs(run.engine.library, step, scope)
        return [run.finish(empty, "Skipped", EMPTY_LOOP)]
    expansions = (
        [(step["name"], step)]
        if items is None
        else [(f"{step['name']}({i}:{item_label(item)})", with_item(step, item, frame)) for i, item in enumerate(items)]
    )
    calls = [
        run.invoke(
            f"{group['name']}.{label}",
            label,
            s,
            scope,
            frame,
            limiter,
            group["boundaryID"],
            lambda n: add_child(group, n),
        )
        for label, s in expansions
    ]
    return list(await asyncio.gather(*calls))


def _step_nodes(results: list[list[Node]], group: list[dict[str, Any]]) -> list[tuple[Node, dict[str, Any]]]:
    return [(node, step) for step, nodes in zip(group, results, strict=True) for node in nodes]


def _hooks(item: dict[str, Any]) -> dict[str, Any]:
    """A step's hooks, kept unsubstituted: they are resolved when they fire, with the step's own outputs."""
    return {k: item[k] for k in ("hooks",) if k in item}
