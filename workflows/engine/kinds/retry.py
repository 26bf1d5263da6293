"""``retryStrategy``: attempts as child nodes, retry policies, conditional retries and backoff."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from workflows.engine.language.conditions import evaluate_retry
from workflows.engine.language.durations import parse_duration
from workflows.engine.language.errors import ExpressionError
from workflows.engine.state.nodes import Node, node_type

if TYPE_CHECKING:
    from workflows.engine.context import RunContext
    from workflows.engine.frames import Scope


MAX_DURATION = "Max duration limit exceeded"  # Argo's words, when the time is already up
BACKOFF_PAST_MAX = "Backoff would exceed max duration limit"  # and when waiting would pass it


async def retry(run: RunContext, node: Node, tmpl: dict[str, Any], scope: Scope, boundary: str | None) -> Node:
    """Run a template with a ``retryStrategy``: one child node per attempt, with backoff between them."""
    strategy = tmpl["retryStrategy"]
    limit = int(strategy.get("limit", 0))
    policy = strategy.get("retryPolicy") or ("Always" if strategy.get("expression") else "OnFailure")  # Argo's default
    backoff = strategy.get("backoff") or {}
    started = time.monotonic()
    child: Node = {}
    for attempt in range(limit + 1):
        child = run.new_node(
            f"{node['name']}({attempt})",
            f"{node['displayName']}({attempt})",
            node_type(tmpl),
            tmpl["name"],
            boundary,
        )
        node["children"].append(child["id"])
        child["nodeFlag"] = {"retried": True}  # Argo flags every attempt of a retry node
        await run.run_body(child, tmpl, scope, attempt)
        if child.get("daemoned") and child["phase"] == "Running":  # a ready daemon: the Retry node is daemoned too
            node["daemoned"], node["podIP"] = True, child.get("podIP", "")  # `tasks.X.ip` reaches the serving attempt
            run.touch()
            return node
        if child["phase"] == "Succeeded" or attempt == limit or not should_retry(policy, child["phase"]):
            break
        if strategy.get("expression") and not _expression_allows(run, strategy["expression"], child, started):
            break
        delay = parse_duration(backoff.get("duration")) * float(backoff.get("factor", 1)) ** attempt
        if backoff.get("cap"):
            delay = min(delay, parse_duration(backoff["cap"]))
        max_duration = parse_duration(backoff.get("maxDuration"))
        if max_duration and time.monotonic() - started + delay > max_duration:
            past = time.monotonic() - started > max_duration
            run.finish(node, child["phase"], MAX_DURATION if past else BACKOFF_PAST_MAX)
            node["outputs"] = child.get("outputs", {})
            return node
        run.log(child, f"attempt {attempt} {child['phase']}; retrying in {delay:.2f}s ({policy})")
        await asyncio.sleep(delay)
    if child.get("outputs"):
        node["outputs"] = child["outputs"]
    exhausted = child["phase"] != "Succeeded" and limit > 0 and len(node["children"]) > limit
    return run.finish(node, child["phase"], "No more retries left" if exhausted else child.get("message"))


def _expression_allows(run: RunContext, expression: str, child: Node, started: float) -> bool:
    """Argo's conditional retry: retry only while the expression over ``lastRetry`` holds."""
    last = {
        "exitCode": (child.get("outputs") or {}).get("exitCode", "-1"),
        "status": child["phase"],
        "duration": str(round(time.monotonic() - started)),
        "message": child.get("message", ""),
    }
    try:
        allowed = evaluate_retry(expression, last)
    except ExpressionError as exc:
        run.log(child, f"retryStrategy.expression {expression!r}: {exc}; not retrying")
        return False
    if not allowed:
        run.log(child, f"retryStrategy.expression {expression!r} is false for exit code {last['exitCode']}")
    return allowed


def should_retry(policy: str, phase: str) -> bool:
    """Whether a retry policy retries a node that ended in this phase."""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return phase == "Failed"
    return phase == "Error"  # OnError, OnTransientError
