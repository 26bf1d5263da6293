"""What a user asks of a run in flight, as small files in the run's folder.

Any process (the CLI) can signal the worker that executes a run: ``stop`` and ``terminate`` end every running
step (``stop`` still runs the exit handler, ``terminate`` does not); ``suspended`` holds back new steps until a
``resume``, which may carry the values of suspend templates' supplied outputs.  A retried run keeps the outputs
of its Succeeded steps and runs the others again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

POLL = 0.25


RESUME = "resume.json"


SUSPENDED = "suspended"


def resume(run_dir: Path, values: Mapping[str, str] | None = None) -> None:
    """Resume a run: end its indefinite suspend nodes (with these output values) and un-suspend it."""
    (run_dir / SUSPENDED).unlink(missing_ok=True)
    tmp = run_dir / f".{RESUME}"
    tmp.write_text(json.dumps(dict(values or {})))
    tmp.replace(run_dir / RESUME)


def suspend_run(run_dir: Path) -> None:
    """Suspend a run: no new step starts until it is resumed."""
    (run_dir / SUSPENDED).write_text("")


async def while_suspended(run_dir: Path) -> None:
    """Wait while the run is suspended."""
    while (run_dir / SUSPENDED).exists():
        await asyncio.sleep(POLL)


STRATEGIES = ("stop", "terminate")


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


def reusable(previous: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The Succeeded pods of a previous attempt by node name, whose outputs a retry reuses."""
    nodes = (previous.get("status") or {}).get("nodes") or {}
    return {n["name"]: n for n in nodes.values() if n["type"] == "Pod" and n["phase"] == "Succeeded"}


def for_resubmit(previous: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """The Succeeded pods of a previous run, renamed for a new run ``name`` (``argo resubmit --memoized``)."""
    old = previous["metadata"]["name"]
    return {
        name + node_name[len(old) :]: {**node, "originalPod": node["id"]}
        for node_name, node in reusable(previous).items()
        if node_name.startswith(old) and not node_name.startswith(f"{old}.onExit")
    }


def for_retry(workflow: dict[str, Any]) -> dict[str, Any]:
    """A failed run made Pending again, remembering which steps succeeded (``argo retry``)."""
    reused = reusable(workflow)
    workflow["status"] = {"phase": "Pending", "nodes": {}, "retriedFrom": reused}
    return workflow
