"""What a user does to a run in flight, as Argo's CLI does: stop, terminate, retry.

``stop`` and ``terminate`` are small files in the run's folder, so the CLI can signal the worker that executes
the run: both end every running step (their processes are killed); ``stop`` still runs the exit handler,
``terminate`` does not.  A retried run keeps the outputs of its Succeeded steps and runs the others again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.engine.run import Run

STRATEGIES = ("stop", "terminate")
POLL = 0.25


def request(run_dir: Path, strategy: str) -> None:
    """Ask the worker of a run to stop or terminate it.

    Raises:
        ValueError: An unknown strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}")
    (run_dir / strategy).write_text("")


def requested(run_dir: Path) -> str | None:
    """The strategy a user asked for, if any (terminate wins)."""
    return next((s for s in reversed(STRATEGIES) if (run_dir / s).exists()), None)


async def until_requested(run_dir: Path) -> str:
    """Return once a stop or terminate is asked for."""
    while (strategy := requested(run_dir)) is None:
        await asyncio.sleep(POLL)
    return strategy


async def interruptible(run: Run, call: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
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


def reusable(previous: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The Succeeded pods of a previous attempt by node name, whose outputs a retry reuses."""
    nodes = (previous.get("status") or {}).get("nodes") or {}
    return {n["name"]: n for n in nodes.values() if n["type"] == "Pod" and n["phase"] == "Succeeded"}


def for_retry(workflow: dict[str, Any]) -> dict[str, Any]:
    """A failed run made Pending again, remembering which steps succeeded (``argo retry``)."""
    reused = reusable(workflow)
    workflow["status"] = {"phase": "Pending", "nodes": {}, "retriedFrom": reused}
    return workflow


def stopped_message(strategy: str | None) -> str:
    """The message of a node ended by a stop, terminate or the workflow's deadline."""
    if strategy:
        return f"Stopped with strategy '{strategy.capitalize()}'"
    return "terminated: the workflow exceeded its deadline"
