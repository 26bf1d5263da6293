"""Argo's expression language (expr-lang), parsed and evaluated without Python's ``eval``.

This is what ``{{= ...}}`` tags, ``valueFrom.expression``, ``fromExpression``, hook ``expression`` and
``retryStrategy.expression`` are written in: literals (numbers, strings, ``true``/``false``/``nil``, arrays,
maps), member and index access (``tasks['flip-coin'].outputs.result``, ``a?.b``, ``a[1:3]``), the ternary
``?:``, nil-coalescing ``??``, ``in``/``not in``, ``matches``/``contains``/``startsWith``/``endsWith``,
arithmetic, comparisons, ``&&``/``and``, ``||``/``or``, ``!``/``not``, ranges ``1..3`` and closures
``{# > 1}`` for ``map``/``filter``/``all``/``any``.  Functions live in :mod:`~workflows.engine.functions`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.engine.expr import ExpressionError


class Missing(ExpressionError):
    """A variable the expression names is not (yet) known; the tag can be evaluated later."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown variable {name!r}")


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?|0x[0-9a-fA-F]+)"
    r"|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`)"
    r"|(?P<name>[A-Za-z_$][\w$]*|#\w*)"
    r"|(?P<op>\?\?|\?\.|\.\.|\*\*|==|!=|<=|>=|&&|\|\||[-+*/%^<>!?:.,()\[\]{}|]))"
)
_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass(frozen=True)
class Tok:
    """One token: its kind (``num``, ``str``, ``name``, ``op``, ``end``) and text."""

    kind: str
    text: str


def tokenize(source: str) -> list[Tok]:
    """Split an expression into tokens.

    Raises:
        ExpressionError: A character that starts no token.
    """
    tokens, pos = [], 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN.match(source, pos)
        if not match:
            raise ExpressionError(f"cannot parse {source.strip()!r} at {source[pos:pos + 12]!r}")
        pos = match.end()
        kind = match.lastgroup or "op"
        text = match.group(kind)
        if kind == "name" and text in _WORD_OPS:
            kind, text = "op", _WORD_OPS[text]
        tokens.append(Tok(kind, text))
    tokens.append(Tok("end", ""))
    return tokens


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])


# Binding powers of the infix operators (higher binds tighter).
_INFIX = {
    "??": 5,
    "||": 10,
    "&&": 20,
    "==": 30,
    "!=": 30,
    "<": 30,
    ">": 30,
    "<=": 30,
    ">=": 30,
    "in": 30,
    "matches": 30,
    "contains": 30,
    "startsWith": 30,
    "endsWith": 30,
    "..": 35,
    "+": 40,
    "-": 40,
    "*": 50,
    "/": 50,
    "%": 50,
    "**": 60,
    "^": 60,
}
Node = tuple[Any, ...]


class Parser:
    """A Pratt parser producing a small tuple tree: ``("lit", v)``, ``("var", name)``, ``("bin", op, a, b)``…"""

    def __init__(self, source: str) -> None:
        self.source = source.strip()
        self.tokens = tokenize(self.source)
        self.pos = 0

    def parse(self) -> Node:
        """Parse the whole expression.

        Raises:
            ExpressionError: The expression is not valid.
        """
        if self.tokens[0].kind == "end":
            raise ExpressionError("empty expression")
        tree = self.expression(0)
        if self.peek().kind != "end":
            raise ExpressionError(f"unexpected {self.peek().text!r} in {self.source!r}")
        return tree

    def peek(self, ahead: int = 0) -> Tok:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self, text: str | None = None) -> Tok:
        tok = self.peek()
        if text is not None and tok.text != text:
            raise ExpressionError(f"expected {text!r} but found {tok.text or 'the end'!r} in {self.source!r}")
        self.pos += 1
        return tok

    def _infix_op(self) -> str | None:
        tok = self.peek()
        if tok.kind == "op" and tok.text in _INFIX:
            return tok.text
        if tok.kind == "name" and tok.text in _INFIX:
            return tok.text
        if tok.kind == "op" and tok.text == "!" and self.peek(1).text == "in":
            return "not in"
        return None

    def expression(self, power: int) -> Node:
        left = self.prefix()
        while True:
            if self.peek().text == "?" and power <= 1:
                self.take("?")
                then = self.expression(0)
                self.take(":")
                left = ("if", left, then, self.expression(1))
                continue
            op = self._infix_op()
            if op is None or _INFIX.get(op.replace("not ", ""), 30) <= power:
                return left
            self.take()
            if op == "not in":
                self.take("in")
            right_power = _INFIX[op.replace("not ", "")] - (1 if op in ("**", "^", "??") else 0)
            left = ("bin", op, left, self.expression(right_power))

    def prefix(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            value: Any = int(tok.text, 16) if tok.text.startswith("0x") else tok.text
            if isinstance(value, str):
                value = float(value) if ("." in value or "e" in value.lower()) else int(value)
            return self.postfix(("lit", value))
        if tok.kind == "str":
            return self.postfix(("lit", _unquote(tok.text)))
        if tok.kind == "name":
            return self.postfix(self.name(tok.text))
        if tok.text in ("!", "-", "+"):
            return ("unary", tok.text, self.expression(55))
        if tok.text == "(":
            inner = self.expression(0)
            self.take(")")
            return self.postfix(inner)
        if tok.text == "[":
            return self.postfix(("list", self.items("]")))
        if tok.text == "{":
            return self.postfix(self.brace())
        if tok.text == ".":  # `.field` inside a closure means `#.field`
            return self.postfix(("get", ("var", "#"), ("lit", self.take().text), False))
        raise ExpressionError(f"unexpected {tok.text or 'end'!r} in {self.source!r}")

    def name(self, text: str) -> Node:
        if text in ("true", "false"):
            return ("lit", text == "true")
        if text == "nil":
            return ("lit", None)
        if self.peek().text == "(":
            self.take("(")
            return ("call", text, self.items(")"))
        return ("var", text)

    def items(self, close: str) -> list[Node]:
        found: list[Node] = []
        while self.peek().text != close:
            found.append(self.expression(0))
            if self.peek().text != ",":
                break
            self.take(",")
        self.take(close)
        return found

    def brace(self) -> Node:
        """A map literal ``{a: 1, 'b': 2}`` or a closure ``{# > 1}``."""
        first, second = self.peek(), self.peek(1)
        if first.text == "}" or (first.kind in ("name", "str", "num") and second.text == ":"):
            pairs = []
            while self.peek().text != "}":
                key = self.take()
                pairs.append((_unquote(key.text) if key.kind == "str" else key.text, self.expression(0) if self.take(":") else None))
                if self.peek().text != ",":
                    break
                self.take(",")
            self.take("}")
            return ("map", pairs)
        body = self.expression(0)
        self.take("}")
        return ("closure", body)

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.peek()
            if tok.text in (".", "?."):
                self.take()
                name = self.take()
                if name.kind not in ("name", "num"):
                    raise ExpressionError(f"expected a field name after {tok.text!r} in {self.source!r}")
                if self.peek().text == "(":  # a method call such as `.Seconds()` on a value
                    self.take("(")
                    node = ("method", node, name.text, self.items(")"))
                else:
                    node = ("get", node, ("lit", name.text), tok.text == "?.")
            elif tok.text == "[":
                self.take("[")
                node = self.index(node)
            else:
                return node

    def index(self, node: Node) -> Node:
        start = None if self.peek().text == ":" else self.expression(0)
        if self.peek().text == ":":
            self.take(":")
            end = None if self.peek().text == "]" else self.expression(0)
            self.take("]")
            return ("slice", node, start, end)
        self.take("]")
        return ("get", node, start, False)


def parse(source: str) -> Node:
    """Parse an expression into its tree (see :class:`Parser`)."""
    return Parser(source).parse()


Functions = Mapping[str, Callable[..., Any]]


@dataclass
class Evaluator:
    """Evaluates a parsed tree against variables and functions."""

    env: Mapping[str, Any]
    functions: Functions

    def run(self, node: Node, closure_item: Any = None, has_item: bool = False) -> Any:
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
        if key not in self.members:
            raise ExpressionError(f"unknown function {self.name}.{key}()")
        return self.members[key]


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
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
