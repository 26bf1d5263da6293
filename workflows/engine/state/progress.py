"""Argo's progress: ``N/M`` on every node and on the run.

An executable node (a pod, a container of a set, an HTTP or suspend node) counts ``0/1`` until it succeeds, is
skipped or omitted (``1/1``), unless its step reported its own progress by writing ``N/M`` to the file that
``ARGO_PROGRESS_FILE`` names; any other node sums its children, and the run sums every executable node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflows.engine.state.nodes import Node

EXECUTABLE = ("Pod", "Container", "HTTP", "Suspend", "Plugin")
_PROGRESS = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse(text: str) -> tuple[int, int] | None:
    """``N/M`` as a pair, or None when it is not a valid progress (M > 0 and N <= M)."""
    match = _PROGRESS.match(text)
    if not match:
        return None
    done, total = int(match.group(1)), int(match.group(2))
    return (done, total) if 0 < total and done <= total else None


def reported(path: Path) -> str | None:
    """The last valid progress a step wrote to its progress file, if any."""
    try:
        lines = path.read_text().strip().splitlines()
    except OSError:
        return None
    last = lines[-1] if lines else ""
    return last.strip() if parse(last) else None


def update(status: dict[str, Any]) -> None:
    """Set ``progress`` on each node and on the run, as Argo's controller does."""
    nodes: Mapping[str, Node] = status.get("nodes") or {}
    done = total = 0
    for node in nodes.values():
        if node["type"] not in EXECUTABLE:
            continue
        own = parse(node.get("progress", "")) or (0, 1)
        if node["phase"] in ("Succeeded", "Skipped", "Omitted"):
            own = (own[1], own[1])
        node["progress"] = f"{own[0]}/{own[1]}"
        done, total = done + own[0], total + own[1]
    for node in nodes.values():
        if node["type"] not in EXECUTABLE:
            summed = _sum(nodes, node, set())
            if summed[1]:
                node["progress"] = f"{summed[0]}/{summed[1]}"
    status["progress"] = f"{done}/{total}"


def _sum(nodes: Mapping[str, Node], node: Node, seen: set[str]) -> tuple[int, int]:
    done = total = 0
    for child_id in node.get("children", []):
        child = nodes.get(child_id)
        if child is None or child_id in seen:
            continue
        seen.add(child_id)
        below = _sum(nodes, child, seen)
        own = parse(child.get("progress", "")) if child["type"] in EXECUTABLE else None
        done, total = done + below[0] + (own or (0, 0))[0], total + below[1] + (own or (0, 0))[1]
    return done, total
