"""Evaluation of a parsed expression (:mod:`~workflows.engine.language.parser`) with expr-lang's typing rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.engine.language.errors import ExpressionError, Missing
from workflows.engine.language.parser import Node

Functions = Mapping[str, Callable[..., Any]]


@dataclass
class Evaluator:
    """Evaluates a parsed tree against variables and functions."""

    env: Mapping[str, Any]
    functions: Functions

    def run(self, node: Node, closure_item: Any = None, has_item: bool = False) -> Any:
        """Evaluate one node of the tree."""
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "var":
            return self.variable(node[1], closure_item, has_item)
        if kind == "list":
            return [self.run(n, closure_item, has_item) for n in node[1]]
        if kind == "map":
            return {k: self.run(v, closure_item, has_item) for k, v in node[1]}
        if kind == "get":
            return self.get(node, closure_item, has_item)
        if kind == "slice":
            base = self.run(node[1], closure_item, has_item)
            start = self.run(node[2], closure_item, has_item) if node[2] is not None else None
            end = self.run(node[3], closure_item, has_item) if node[3] is not None else None
            return base[start:end]
        if kind == "if":
            test = self.run(node[1], closure_item, has_item)
            return self.run(node[2] if _bool(test) else node[3], closure_item, has_item)
        if kind == "unary":
            return _unary(node[1], self.run(node[2], closure_item, has_item))
        if kind == "bin":
            return self.binary(node, closure_item, has_item)
        if kind == "call":
            return self.call(node, closure_item, has_item)
        if kind == "method":
            base = self.run(node[1], closure_item, has_item)
            args = [self.run(a, closure_item, has_item) for a in node[3]]
            if isinstance(base, Namespace):
                return _call(f"{base.name}.{node[2]}", base.member(node[2]), args)
            return _method(base, node[2])
        if kind == "closure":
            return lambda item: self.run(node[1], item, True)
        raise ExpressionError(f"cannot evaluate {kind}")

    def variable(self, name: str, item: Any, has_item: bool) -> Any:
        """Resolve a variable (``#`` inside a closure)."""
        if name == "#":
            if not has_item:
                raise ExpressionError("`#` is only defined inside a closure such as {# > 1}")
            return item
        if name in self.env:
            return self.env[name]
        if name in self.functions:
            return self.functions[name]
        raise Missing(name)

    def get(self, node: Node, item: Any, has_item: bool) -> Any:
        """Member or index access; nil for a missing key."""
        base = self.run(node[1], item, has_item)
        key = self.run(node[2], item, has_item)
        if base is None:
            return None
        if isinstance(base, Mapping):
            return base.get(key)
        if isinstance(base, list | str) and isinstance(key, int):
            try:
                return base[key]
            except IndexError as exc:
                raise ExpressionError(f"index {key} out of range (length {len(base)})") from exc
        if isinstance(base, Namespace):
            return base.member(str(key))
        raise ExpressionError(f"cannot read {key!r} from {type(base).__name__} {str(base)[:60]!r}")

    def binary(self, node: Node, item: Any, has_item: bool) -> Any:
        """A binary operator, short-circuiting ``&&``, ``||`` and ``??``."""
        op = node[1]
        left = self.run(node[2], item, has_item)
        if op == "&&":
            return _bool(left) and _bool(self.run(node[3], item, has_item))
        if op == "||":
            return _bool(left) or _bool(self.run(node[3], item, has_item))
        if op == "??":
            return left if left is not None else self.run(node[3], item, has_item)
        return binary(op, left, self.run(node[3], item, has_item))

    def call(self, node: Node, item: Any, has_item: bool) -> Any:
        """Call a function by name."""
        name, args = node[1], [self.run(a, item, has_item) for a in node[2]]
        function = self.functions.get(name)
        if function is None:
            target = self.env.get(name)
            if not callable(target):
                raise ExpressionError(f"unknown function {name}()")
            function = target
        return _call(name, function, args)


def _call(name: str, function: Callable[..., Any], args: list[Any]) -> Any:
    try:
        return function(*args)
    except ExpressionError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, AttributeError) as exc:
        raise ExpressionError(f"{name}(): {exc}") from exc


class Namespace:
    """A group of functions reached by member access, such as ``sprig.trim``."""

    def __init__(self, name: str, members: Functions) -> None:
        self.name, self.members = name, members

    def member(self, key: str) -> Callable[..., Any]:
        """The function a namespace holds under ``key``."""
        if key not in self.members:
            raise ExpressionError(f"unknown function {self.name}.{key}()")
        return self.members[key]


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ExpressionError(f"{value!r} is not a boolean")


def _unary(op: str, value: Any) -> Any:
    if op == "!":
        return not _bool(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ExpressionError(f"cannot apply {op} to {value!r}")
    return -value if op == "-" else value


def _numbers(left: Any, right: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))


def _equal(left: Any, right: Any) -> bool:
    if _numbers(left, right):
        return bool(left == right)
    return type(left) is type(right) and left == right or (left is None and right is None)


def binary(op: str, left: Any, right: Any) -> Any:
    """Apply one non-short-circuit binary operator with expr-lang's typing.

    Raises:
        ExpressionError: The operator does not apply to these operand types.
    """
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op in ("in", "not in"):
        found = (left in right) if isinstance(right, list | str | Mapping) else False
        return found if op == "in" else not found
    if op in ("matches", "contains", "startsWith", "endsWith"):
        if not isinstance(left, str) or not isinstance(right, str):
            raise ExpressionError(f"{op} needs strings, got {left!r} and {right!r}")
        return {
            "matches": lambda: re.search(right, left) is not None,
            "contains": lambda: right in left,
            "startsWith": lambda: left.startswith(right),
            "endsWith": lambda: left.endswith(right),
        }[op]()
    if op == "..":
        return list(range(int(left), int(right) + 1))
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if op == "+" and isinstance(left, list) and isinstance(right, list):
        return left + right
    if op in ("<", ">", "<=", ">=") and isinstance(left, str) and isinstance(right, str):
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    if not _numbers(left, right):
        raise ExpressionError(f"invalid operation: {left!r} {op} {right!r} (mismatched types)")
    return _arithmetic(op, left, right)


def _arithmetic(op: str, left: float, right: float) -> Any:
    if op in ("/", "%") and right == 0:
        raise ExpressionError(f"division by zero in {left} {op} {right}")
    table: dict[str, Callable[[], Any]] = {
        "+": lambda: left + right,
        "-": lambda: left - right,
        "*": lambda: left * right,
        "/": lambda: left / right,
        "%": lambda: int(left) % int(right),
        "**": lambda: float(left**right),
        "^": lambda: float(left**right),
        "<": lambda: left < right,
        ">": lambda: left > right,
        "<=": lambda: left <= right,
        ">=": lambda: left >= right,
    }
    return table[op]()


def _method(value: Any, name: str) -> Any:
    seconds = getattr(value, "total_seconds", None)
    if name == "Seconds" and seconds is not None:
        return seconds()
    raise ExpressionError(f"{type(value).__name__} has no method {name}()")
