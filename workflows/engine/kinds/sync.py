"""Synchronization: a run or a node waits, Pending, for its mutexes and semaphores, and says whom it waits for.

As in Argo's ``status.synchronization``, each lock held is listed under ``holding`` with its holder (the
workflow's name, or the node's id), and a lock waited for under ``waiting`` with whoever holds it now; the
node's (or run's) message is Argo's: ``Waiting for default/Mutex/m lock. Lock status: 0/1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workflows.engine.state.locks import Need, requirements
from workflows.engine.state.nodes import Node, now

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


@dataclass
class Held:
    """Locks one holder holds, to release together."""

    holder: str
    needs: list[Need]
    fds: list[int]


async def hold(run: RunContext, sync: dict[str, Any] | None, node: Node | None) -> Held:
    """Hold the locks of a synchronization block; the run (or node) is Pending while it waits."""
    holder = node["id"] if node is not None else run.name
    if not sync:
        return Held(holder, [], [])
    needs = requirements(sync, run.engine.objects.lookup, run.wf["metadata"].get("namespace") or "default")

    def waiting(need: Need, holders: list[str]) -> None:
        message = f"Waiting for {need.key} lock. Lock status: 0/{need.limit}"
        if node is not None:
            node["phase"], node["message"] = "Pending", message
        else:
            run.status.update(phase="Pending", message=message)
        _record(run, "waiting", need, holders)
        run.touch()

    fds = await run.engine.locks.acquire(needs, holder, waiting)
    for need in needs:
        _forget(run, "waiting", need)
        _record(run, "holding", need, [holder])
    if node is not None and node.get("phase") == "Pending":  # it waited: it starts now
        node["phase"], node["startedAt"] = "Running", now()
        node.pop("message", None)
    run.touch()
    return Held(holder, needs, fds)


def release(run: RunContext, held: Held) -> None:
    """Let go of the locks and take them off ``status.synchronization``."""
    run.engine.locks.release(held.fds)
    for need in held.needs:
        _forget(run, "holding", need, held.holder)
    run.touch()


def _entries(run: RunContext, part: str, need: Need) -> list[dict[str, Any]]:
    block = run.status.setdefault("synchronization", {}).setdefault(need.kind, {})
    entries: list[dict[str, Any]] = block.setdefault(part, [])
    return entries


def _record(run: RunContext, part: str, need: Need, holders: list[str]) -> None:
    entries = _entries(run, part, need)
    entries[:] = [e for e in entries if e.get(need.kind) != need.key]
    if need.kind == "mutex":
        entries.append({"mutex": need.key, "holder": holders[0] if holders else ""})
    else:
        entries.append({"semaphore": need.key, "holders": holders})


def _forget(run: RunContext, part: str, need: Need, holder: str | None = None) -> None:
    entries = _entries(run, part, need)
    kept = []
    for entry in entries:
        if entry.get(need.kind) != need.key:
            kept.append(entry)
        elif holder is not None and need.kind == "semaphore" and entry["holders"] != [holder]:
            kept.append({**entry, "holders": [h for h in entry["holders"] if h != holder]})
        elif holder is not None and need.kind == "mutex" and entry["holder"] != holder:
            kept.append(entry)
    entries[:] = kept
    block = run.status["synchronization"]
    if not entries:
        del block[need.kind][part]
    if not block[need.kind]:
        del block[need.kind]
    if not block:
        del run.status["synchronization"]
