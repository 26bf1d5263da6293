"""How a run ends early: a user's stop or terminate (:mod:`~workflows.engine.state.signals`), or its deadline.

Both end every running step (their processes are killed); ``stop`` still runs the exit handler, ``terminate``
does not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from workflows.engine.state.nodes import Node
from workflows.engine.state.signals import POLL, requested, until_requested

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


async def interruptible(run: RunContext, call: Awaitable[Node]) -> Node | None:
    """Await the entrypoint unless the user stops or terminates the run first; None when they did."""
    task = asyncio.ensure_future(call)
    watcher = asyncio.ensure_future(until_requested(run.dir))
    await asyncio.wait([task, watcher], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        watcher.cancel()
        return task.result()
    strategy = watcher.result()
    run.stopped = strategy
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    end_unfinished(run, strategy)
    return None


async def unless_terminated(run: RunContext, call: Awaitable[Node]) -> Node | None:
    """Await an exit handler unless the user terminates the run meanwhile (a stop lets it finish); None if so."""
    task = asyncio.ensure_future(call)
    while not task.done():
        if requested(run.dir) == "terminate":
            run.stopped = "terminate"
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            end_unfinished(run, "terminate")
            return None
        await asyncio.wait([task], timeout=POLL)
    return task.result()


def stopped_message(strategy: str | None, kind: str = "Pod") -> str:
    """Argo's message for a node ended by a stop or terminate (``strategy``) or by the workflow's deadline (None).

    A pod ended by a shutdown says ``workflow shutdown with strategy:  Stop`` (Argo's words, two spaces and all),
    any other node ``Stopped with strategy 'Stop'``; past the deadline every node says ``Step exceeded its deadline``.
    """
    if not strategy:
        return "Step exceeded its deadline"
    if kind == "Pod":
        return f"workflow shutdown with strategy:  {strategy.capitalize()}"
    return f"Stopped with strategy '{strategy.capitalize()}'"


def end_unfinished(run: RunContext, strategy: str | None) -> None:
    """Fail every node still Running or Pending, pods first, then their parents (naming a failed child)."""
    nodes = [n for n in run.nodes.values() if n["phase"] in ("Running", "Pending") and n["name"] != run.name]
    for node in sorted(nodes, key=lambda n: n["type"] != "Pod"):
        failed = [c for c in node.get("children", []) if run.nodes.get(c, {}).get("phase") in ("Failed", "Error")]
        message = f"child '{failed[0]}' failed" if failed and node["type"] != "Pod" else None
        run.finish(node, "Failed", message or stopped_message(strategy, node["type"]))
