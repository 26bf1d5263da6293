"""InferenceGraph routing as KServe's router does it: Splitter by weight, Switch by a GJSON condition.

A Switch takes the first step whose ``condition`` finds something in the request body; when none does the
request is refused with 404, as KServe's router refuses it.  A step names a service (``serviceName``) or another
node (``nodeName``).  Conditions are a subset of GJSON, checked when a commit is applied (:func:`check`):

- ``@this`` (the whole body), a dotted path (``parameters.channel``);
- ``[@this].#(PATH OP VALUE)`` with ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` and a quoted string, a number,
  ``true``, ``false`` or ``null``.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from typing import Any

MAX_DEPTH = 16  # nodes one request may pass through (a cycle in the graph stops here)
PATH = r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"
QUERY = re.compile(rf"^\[@this\]\.#\(\s*({PATH})\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*\)$")
BARE = re.compile(rf"^(@this|{PATH})$")
MISSING = object()


class GraphError(ValueError):
    """A graph local serving cannot route: an unsupported condition, a missing node, a cycle."""


class NoRoute(LookupError):
    """No Switch step matched the request (KServe answers 404)."""


def _literal(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphError(f"condition value {text!r} is not a quoted string, number, true, false or null") from exc
    if isinstance(value, (list, dict)):
        raise GraphError(f"condition value {text!r} must be a string, number, true, false or null")
    return value


def _get(doc: Any, path: str) -> Any:
    for key in path.split("."):
        if isinstance(doc, dict) and key in doc:
            doc = doc[key]
        elif isinstance(doc, list) and key.isdigit() and int(key) < len(doc):
            doc = doc[int(key)]
        else:
            return MISSING
    return doc


def _compare(found: Any, op: str, value: Any) -> bool:
    if found is MISSING:
        return False
    if op in ("==", "!="):
        return (found == value and type(found) is type(value)) is (op == "==")
    comparable = isinstance(found, str) and isinstance(value, str)
    numeric = isinstance(found, (int, float)) and isinstance(value, (int, float))
    numeric = numeric and not isinstance(found, bool) and not isinstance(value, bool)
    if not (comparable or numeric):
        return False
    return bool({"<": found < value, "<=": found <= value, ">": found > value, ">=": found >= value}[op])


@lru_cache(maxsize=256)
def compile_condition(text: str) -> Any:
    """A function ``body -> bool`` for a GJSON condition (its ``.Exists()``).

    Raises:
        GraphError: The condition is outside the supported subset; the message shows the supported forms.
    """
    text = text.strip()
    bare = BARE.match(text)
    if bare:
        path = bare.group(1)
        return lambda doc: True if path == "@this" else _get(doc, path) is not MISSING
    query = QUERY.match(text)
    if not query:
        raise GraphError(
            f"condition {text!r} is not supported by local serving; use @this, a dotted path, or "
            '[@this].#(path=="value") with ==, !=, <, <=, >, >='
        )
    path, op, value = query.group(1), query.group(2), _literal(query.group(3))
    return lambda doc: _compare(_get(doc, path), op, value)


def check(graph: dict[str, Any]) -> None:
    """Refuse a graph local serving cannot route: its router types, Switch conditions and node names are checked.

    Raises:
        GraphError: The message names the node and step.
    """
    name = graph.get("metadata", {}).get("name", "?")
    nodes = graph.get("spec", {}).get("nodes", {})
    if "root" not in nodes:
        raise GraphError(f"InferenceGraph {name} has no root node")
    for node_name, node in nodes.items():
        if node.get("routerType") not in ("Splitter", "Switch"):
            raise GraphError(
                f"InferenceGraph {name} node {node_name}: local serving routes Splitter and Switch nodes, "
                f"not {node.get('routerType')!r}"
            )
        for step in node.get("steps", []):
            if node["routerType"] == "Switch":
                compile_condition(str(step.get("condition", "")))
            target = step.get("nodeName")
            if target is not None and target not in nodes:
                raise GraphError(f"InferenceGraph {name} node {node_name}: step names no node {target!r}")


def services(graph: dict[str, Any]) -> set[str]:
    """Every InferenceService a graph can send a request to."""
    nodes = graph.get("spec", {}).get("nodes", {})
    return {s["serviceName"] for n in nodes.values() for s in n.get("steps", []) if s.get("serviceName")}


def choose(graph: dict[str, Any], doc: Any, rng: random.Random) -> str:
    """The InferenceService that answers ``doc`` (the parsed request body), walking from the root node.

    Raises:
        NoRoute: A Switch node had no step whose condition matched.
        GraphError: A cycle, or a Splitter with no positive weight.
    """
    nodes = graph["spec"]["nodes"]
    node_name = "root"
    for _ in range(MAX_DEPTH):
        node = nodes[node_name]
        step = _split(node, rng) if node["routerType"] == "Splitter" else _switch(node, doc, node_name)
        if step.get("serviceName"):
            return str(step["serviceName"])
        node_name = step["nodeName"]
    raise GraphError(f"InferenceGraph {graph['metadata']['name']} loops: more than {MAX_DEPTH} nodes deep")


def pick(choices: list[tuple[int, Any]], rng: random.Random) -> Any:
    """A weighted random choice among ``(weight, value)`` pairs with positive weight (None when there is none)."""
    live = [(w, v) for w, v in choices if w > 0]
    if not live:
        return None
    return rng.choices([v for _, v in live], weights=[w for w, _ in live], k=1)[0]


def _split(node: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    step = pick([(int(s.get("weight", 0)), s) for s in node["steps"]], rng)
    if step is None:
        raise GraphError("a Splitter node has no step with a positive weight")
    return dict(step)


def _switch(node: dict[str, Any], doc: Any, node_name: str) -> dict[str, Any]:
    for step in node["steps"]:
        if compile_condition(str(step.get("condition", "")))(doc):
            return dict(step)
    raise NoRoute(f"None of the routes matched with the switch condition (node {node_name})")


def needs_body(graph: dict[str, Any]) -> bool:
    """Whether a graph has a Switch node (its routing reads the request body)."""
    return any(n.get("routerType") == "Switch" for n in graph.get("spec", {}).get("nodes", {}).values())
