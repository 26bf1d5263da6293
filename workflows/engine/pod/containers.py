"""``containerSet`` templates: several containers in one pod.

They share its volumes and start as their ``dependencies`` complete.  Each container is a ``Container`` node
under the pod; the pod's result is the output of the container named ``main``.  The set's ``retryStrategy``
(``retries``, ``duration``) runs a failed container again inside the pod, as Argo's executor does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.engine.language.durations import parse_duration
from workflows.engine.pod.spawn import spawn_container
from workflows.engine.state.nodes import Node, NodeError, add_child, now

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


async def run_set(
    run: RunContext, pod: Node, tmpl: Mapping[str, Any], mapping: Mapping[str, str], node_dir: Path
) -> tuple[int, str]:
    """Run every container of the set in dependency order; return the pod's exit code and ``main``'s output."""
    containers = {c["name"]: c for c in tmpl["containerSet"]["containers"]}
    for name, body in containers.items():
        for dep in body.get("dependencies") or []:
            if dep not in containers:
                raise NodeError(f"containerSet: container {name!r} depends on unknown container {dep!r}")
    shared = tmpl["containerSet"].get("volumeMounts") or []
    results: dict[str, tuple[int, str]] = {}
    done: dict[str, asyncio.Event] = {name: asyncio.Event() for name in containers}

    async def one(name: str) -> None:
        body = {**containers[name], "volumeMounts": [*shared, *(containers[name].get("volumeMounts") or [])]}
        for dep in body.get("dependencies") or []:
            await done[dep].wait()
        node = run.new_node(f"{pod['name']}.{name}", name, "Container", str(pod["templateName"]), pod.get("boundaryID"))
        add_child(pod, node)
        failed_dep = [d for d in body.get("dependencies") or [] if results[d][0] != 0]
        if failed_dep:
            results[name] = (1, "")
            run.finish(node, "Omitted", f"dependency {failed_dep[0]} failed")
        else:
            node["startedAt"] = now()
            results[name] = await _attempts(run, node, body, mapping, node_dir, tmpl["containerSet"])
            code = results[name][0]
            run.finish(node, "Succeeded" if code == 0 else "Failed", None if code == 0 else f"exit code {code}")
        done[name].set()

    await asyncio.gather(*(one(name) for name in containers))
    code = next((c for c, _ in results.values() if c != 0), 0)
    return code, results.get("main", (0, ""))[1]


async def _attempts(
    run: RunContext,
    node: Node,
    body: Mapping[str, Any],
    mapping: Mapping[str, str],
    node_dir: Path,
    container_set: Mapping[str, Any],
) -> tuple[int, str]:
    """Run one container, again up to ``retryStrategy.retries`` times while it fails, ``duration`` apart."""
    strategy = container_set.get("retryStrategy") or {}
    retries, pause = int(str(strategy.get("retries", 0))), parse_duration(strategy.get("duration") or 0)
    for attempt in range(retries):
        code, stdout = await spawn_container(run, node, body, mapping, node_dir)
        if code == 0:
            return code, stdout
        run.log(node, f"exit code {code}: retry {attempt + 1} of {retries} in {pause:g}s (containerSet retryStrategy)")
        await asyncio.sleep(pause)
    return await spawn_container(run, node, body, mapping, node_dir)
