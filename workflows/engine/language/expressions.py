"""Where Argo evaluates expressions: ``{{= ...}}`` tags in any string, and whole expressions over a run's values.

The variables are the tags a template could use (``inputs.parameters.x``, ``tasks.A.outputs.result``,
``workflow.name``, ``item``…), nested at their dots as Argo does, so ``tasks['flip-coin'].outputs.result``
and ``inputs.parameters["should-print"]`` both work.  An expression naming a variable that is not known yet
(``tasks`` while a DAG is still being bound) is left for later, unless the caller says it must resolve now.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.evaluator import Evaluator
from workflows.engine.language.functions import FUNCTIONS, to_string
from workflows.engine.language.parser import Node, parse


@lru_cache(maxsize=2048)
def compiled(source: str) -> Node:
    """The parsed tree of an expression (cached: the same tags recur in every loop item)."""
    return parse(source)


def variables(scope: Mapping[str, Any], artifacts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Flat tag names nested at their dots; a name's children win over its own JSON-string value."""
    env: dict[str, Any] = {}
    for key in sorted({**scope, **(artifacts or {})}, key=lambda k: k.count(".")):
        value = (artifacts or {}).get(key, scope.get(key))
        parts = key.split(".")
        node = env
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = value
    return env


def evaluate(source: str, scope: Mapping[str, Any], artifacts: Mapping[str, Any] | None = None) -> Any:
    """Evaluate one expression over a scope of tag values.

    Raises:
        Missing: It names a variable the scope does not have.
        ExpressionError: It cannot be parsed or evaluated.
    """
    return Evaluator(variables(scope, artifacts), FUNCTIONS).run(compiled(source))


def evaluate_bool(source: str, scope: Mapping[str, Any], artifacts: Mapping[str, Any] | None = None) -> bool:
    """Evaluate an expression that must be true or false (a hook's, a retry's).

    Raises:
        ExpressionError: It is not boolean, or cannot be evaluated.
    """
    value = evaluate(source, scope, artifacts)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ExpressionError(f"expression {source!r} evaluated to {value!r}, not true or false")


def render(value: Any) -> str:
    """An expression's value as a parameter string."""
    return to_string(value) if not isinstance(value, dict | list) else json.dumps(value, separators=(",", ":"))
