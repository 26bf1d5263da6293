"""How a run ends early: a user's stop or terminate (:mod:`~workflows.engine.state.signals`), or its deadline.

Both end every running step (their processes are killed); ``stop`` still runs the exit handler, ``terminate``
does not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from workflows.engine.state.signals import until_requested

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


async def interruptible(run: RunContext, call: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
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
    for node in run.nodes.values():
        if node["phase"] in ("Running", "Pending"):
            run.finish(node, "Failed", f"Stopped with strategy '{strategy.capitalize()}'")
    return None


def stopped_message(strategy: str | None) -> str:
    """The message of a node ended by a stop, terminate or the workflow's deadline."""
    if strategy:
        return f"Stopped with strategy '{strategy.capitalize()}'"
    return "terminated: the workflow exceeded its deadline"
