"""Suspend templates, and suspending or resuming a whole run.

A ``suspend`` template with a ``duration`` waits that long; without one it waits until the run is resumed
(``ctcd runs resume``), which may supply the values of its ``valueFrom.supplied`` output parameters.
A suspended run (``ctcd runs suspend``) starts no new step until it is resumed.  Both are signalled by
small files in the run's folder, so any process (the CLI) can resume a run its worker executes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.engine.expr import parse_duration
from workflows.engine.frames import as_param
from workflows.engine.nodes import NodeError

if TYPE_CHECKING:
    from workflows.engine.run import Run

RESUME = "resume.json"
SUSPENDED = "suspended"
POLL = 0.25


def resume(run_dir: Path, values: Mapping[str, str] | None = None) -> None:
    """Resume a run: end its indefinite suspend nodes (with these output values) and un-suspend it."""
    (run_dir / SUSPENDED).unlink(missing_ok=True)
    tmp = run_dir / f".{RESUME}"
    tmp.write_text(json.dumps(dict(values or {})))
    tmp.replace(run_dir / RESUME)


def suspend_run(run_dir: Path) -> None:
    """Suspend a run: no new step starts until it is resumed."""
    (run_dir / SUSPENDED).write_text("")


async def while_suspended(run: Run) -> None:
    """Wait while the run is suspended."""
    while (run.dir / SUSPENDED).exists():
        await asyncio.sleep(POLL)


async def run_suspend(run: Run, node: dict[str, Any], tmpl: Mapping[str, Any]) -> None:
    """Wait for the duration, or until resumed; then set the supplied output parameters."""
    duration = (tmpl.get("suspend") or {}).get("duration")
    supplied: dict[str, str] = {}
    if duration not in (None, ""):
        await asyncio.sleep(parse_duration(duration))
    else:
        marker = run.dir / RESUME
        started = marker.stat().st_mtime_ns if marker.exists() else 0
        node["message"] = "waiting to be resumed: ctcd runs resume " + run.name
        run.touch()
        while not marker.exists() or marker.stat().st_mtime_ns == started:
            await asyncio.sleep(POLL)
        supplied = json.loads(marker.read_text() or "{}")
        node.pop("message", None)
    node["outputs"] = _outputs(tmpl, supplied)
    run.finish(node, "Succeeded")


def _outputs(tmpl: Mapping[str, Any], supplied: Mapping[str, str]) -> dict[str, Any]:
    params = []
    for param in (tmpl.get("outputs") or {}).get("parameters", []):
        value_from = param.get("valueFrom") or {}
        if param["name"] in supplied:
            params.append({"name": param["name"], "value": str(supplied[param["name"]])})
        elif "default" in value_from or "supplied" in value_from and "default" in param:
            params.append({"name": param["name"], "value": as_param(value_from.get("default", param.get("default")))})
        else:
            raise NodeError(f"outputs.parameters.{param['name']}: not supplied when resumed and has no default")
    return {"parameters": params} if params else {}
