"""What a task or step becomes before it runs: its loop items, its ``when``, and its arguments resolved."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from workflows.engine.frames import Frame, as_param
from workflows.engine.language.conditions import evaluate_when
from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.tags import TAG, substitute, substitute_all
from workflows.engine.state.nodes import ABSENT, NodeError

STRICT = ("inputs.", "tasks.", "steps.")


def loop_items(item: Mapping[str, Any]) -> list[Any] | None:
    """The items a task or step loops over (``withItems``, ``withParam``, ``withSequence``), or None."""
    if "withItems" in item:
        return list(item["withItems"])
    if "withParam" in item:
        try:
            value = json.loads(item["withParam"])
        except json.JSONDecodeError as exc:
            raise NodeError(f"withParam value could not be parsed as a JSON list: {item['withParam'][:200]}") from exc
        if not isinstance(value, list):
            raise NodeError(f"withParam value is not a JSON list: {item['withParam'][:200]}")
        return value
    if "withSequence" in item:
        return sequence_items(item["withSequence"])
    return None


def sequence_items(seq: Mapping[str, Any]) -> list[str]:
    """The items of a ``withSequence``: a count or an inclusive range, each formatted."""
    start = int(seq.get("start", 0))
    if "count" in seq:
        numbers = list(range(start, start + int(seq["count"])))
    else:
        end = int(seq.get("end", 0))
        numbers = list(range(start, end + 1)) if end >= start else list(range(start, end - 1, -1))
    fmt = seq.get("format")
    return [fmt % n if fmt else str(n) for n in numbers]


def item_label(item: Any) -> str:
    """An item as Argo shows it in a looped node's name."""
    if isinstance(item, dict):
        return ",".join(f"{k}:{item_label(v)}" for k, v in sorted(item.items()))
    return item if isinstance(item, str) else json.dumps(item)


def with_item(item_spec: Mapping[str, Any], item: Any, frame: Frame) -> dict[str, Any]:
    """A task or step with ``{{item}}`` (and ``{{item.KEY}}``) substituted for one item."""
    scope = {"item": as_param(item)}
    if isinstance(item, dict):
        scope.update({f"item.{k}": as_param(v) for k, v in item.items()})
    body = {k: v for k, v in item_spec.items() if k not in ("withItems", "withParam", "withSequence")}
    return dict(substitute_all(body, {**frame.scope(), **scope}, ("item",)))


def skip_unresolved(item: Mapping[str, Any], frame: Frame) -> dict[str, Any]:
    """A step or task without its hooks, and without arguments naming outputs a skipped step never had.

    Such an argument is dropped, so the consumer's input default then applies (Argo v4); the tag it named is kept
    under ``arguments.absent``, for the refusal when the consumer has no default.
    """
    body = {k: v for k, v in item.items() if k != "hooks"}
    params = (body.get("arguments") or {}).get("parameters")
    if not params or not frame.skipped:
        return body
    scope = frame.scope()

    def unresolved(value: Any) -> bool:
        refs = TAG.findall(str(value))
        return any(r not in scope and any(r.startswith(p + ".outputs.") for p in frame.skipped) for r in refs)

    kept = [p for p in params if not unresolved(p.get("value", ""))]
    absent = {p["name"]: TAG.findall(str(p.get("value", "")))[0] for p in params if unresolved(p.get("value", ""))}
    return {**body, "arguments": {**body["arguments"], "parameters": kept, "absent": absent}}


def expands(item: Mapping[str, Any]) -> bool:
    """Whether a task or step loops."""
    return any(k in item for k in ("withItems", "withParam", "withSequence"))


_UNRESOLVED = re.compile(r"failed to resolve \{\{(.+?)\}\}")


def resolved(item: Mapping[str, Any], frame: Frame, strict: tuple[str, ...]) -> dict[str, Any]:
    """A task or step with its tags substituted.

    An output of a skipped or omitted node that nothing defaults is refused in Argo's words.

    Raises:
        ExpressionError: A tag cannot be resolved.
    """
    try:
        return dict(substitute_all(skip_unresolved(item, frame), frame.scope(), strict))
    except ExpressionError as exc:
        match = _UNRESOLVED.search(str(exc))
        tag = match.group(1).strip() if match else ""
        if any(tag.startswith(f"{prefix}.outputs.") for prefix in frame.skipped):
            raise ExpressionError(ABSENT.format(tag=tag)) from exc
        raise


def skipped_by_when(item: Mapping[str, Any], frame: Frame) -> dict[str, Any] | None:
    """The task or step to skip when its ``when`` is false, decided before its arguments are resolved, as Argo does.

    None when it runs, loops (``when`` is then judged per item), or its ``when`` cannot be judged yet.
    """
    when = item.get("when")
    if not when or expands(item) or "{{item" in str(when):
        return None
    try:
        text = substitute(str(when), frame.scope(), STRICT)
        if evaluate_when(text):
            return None
    except ExpressionError:
        return None
    return {**{k: v for k, v in item.items() if k in ("name", "template", "templateRef", "inline")}, "when": text}
