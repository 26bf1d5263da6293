"""Suspend templates.

A ``suspend`` template with a ``duration`` waits that long; without one it waits until the run is resumed
(``ctcd runs resume``, signalled through :mod:`~workflows.engine.state.signals`), which may supply the values
of its ``valueFrom.supplied`` output parameters.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workflows.engine.frames import as_param
from workflows.engine.language.durations import parse_duration
from workflows.engine.state.nodes import Node, NodeError, Outputs, Parameter, parameter
from workflows.engine.state.signals import POLL, RESUME

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


async def run_suspend(run: RunContext, node: Node, tmpl: Mapping[str, Any]) -> None:
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


NOT_SUPPLIED = "raw output parameter '{name}' has not been set and does not have a default value"  # Argo's words


def unsupplied(workflow: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """Argo's refusal of a resume, for each supplied output of a waiting suspend node with no value and no default."""
    templates = {t["name"]: t for t in (workflow.get("spec") or {}).get("templates", [])}
    problems = []
    for node in ((workflow.get("status") or {}).get("nodes") or {}).values():
        if node.get("type") != "Suspend" or node.get("phase") != "Running":
            continue
        for param in ((templates.get(node.get("templateName", "")) or {}).get("outputs") or {}).get("parameters", []):
            value_from = param.get("valueFrom") or {}
            if "supplied" in value_from and "default" not in value_from and param["name"] not in values:
                problems.append(
                    f"raw output parameter '{param['name']}' has not been set and does not have a default value"
                )
    return problems


def _outputs(tmpl: Mapping[str, Any], supplied: Mapping[str, str]) -> Outputs:
    params: list[Parameter] = []
    for param in (tmpl.get("outputs") or {}).get("parameters", []):
        value_from = param.get("valueFrom") or {}
        if param["name"] in supplied:
            params.append(parameter(param["name"], str(supplied[param["name"]]), {}))
        elif "default" in value_from or "supplied" in value_from and "default" in param:
            params.append(parameter(param["name"], as_param(value_from.get("default", param.get("default"))), {}))
        else:
            raise NodeError(f"outputs.parameters.{param['name']}: not supplied when resumed and has no default")
    return {"parameters": params} if params else {}
