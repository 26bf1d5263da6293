"""Argo's expression language (expr-lang), parsed and evaluated without Python's ``eval``.

This is what ``{{= ...}}`` tags, ``valueFrom.expression``, ``fromExpression``, hook ``expression`` and
``retryStrategy.expression`` are written in: literals (numbers, strings, ``true``/``false``/``nil``, arrays,
maps), member and index access (``tasks['flip-coin'].outputs.result``, ``a?.b``, ``a[1:3]``), the ternary
``?:``, nil-coalescing ``??``, ``in``/``not in``, ``matches``/``contains``/``startsWith``/``endsWith``,
arithmetic, comparisons, ``&&``/``and``, ``||``/``or``, ``!``/``not``, ranges ``1..3`` and closures
``{# > 1}`` for ``map``/``filter``/``all``/``any``.  This module parses; :mod:`~workflows.engine.language.evaluator`
evaluates, with the functions of :mod:`~workflows.engine.language.functions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from workflows.engine.language.errors import ExpressionError

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
            raise ExpressionError(f"cannot parse {source.strip()!r} at {source[pos : pos + 12]!r}")
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
    """A Pratt parser producing a small tuple tree: ``("lit", v)``, ``("var", name)``, ``("bin", op, a, b)``."""

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
        """The token ``ahead`` positions on."""
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self, text: str | None = None) -> Tok:
        """Consume one token (which must be ``text`` when given)."""
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
        """Parse an expression binding tighter than ``power``."""
        left = self.prefix()
        while True:
            if self.peek().text == "|" and power == 0:  # the pipe, lowest of all: `x | f(y)` is `f(x, y)`
                self.take("|")
                call = self.take()
                if call.kind != "name" or self.peek().text != "(":
                    raise ExpressionError(f"a pipe needs a function call after '|' in {self.source!r}")
                self.take("(")
                left = ("call", call.text, [left, *self.items(")")])
                continue
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
        """Parse what can start an expression."""
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
        """A literal name, a call or a variable."""
        if text in ("true", "false"):
            return ("lit", text == "true")
        if text == "nil":
            return ("lit", None)
        if self.peek().text == "(":
            self.take("(")
            return ("call", text, self.items(")"))
        return ("var", text)

    def items(self, close: str) -> list[Node]:
        """Comma-separated expressions up to ``close``."""
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
                pairs.append(
                    (
                        _unquote(key.text) if key.kind == "str" else key.text,
                        self.expression(0) if self.take(":") else None,
                    )
                )
                if self.peek().text != ",":
                    break
                self.take(",")
            self.take("}")
            return ("map", pairs)
        body = self.expression(0)
        self.take("}")
        return ("closure", body)

    def postfix(self, node: Node) -> Node:
        """Member access, method calls and indexing after a primary."""
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
        """An index ``[i]`` or a slice ``[a:b]``."""
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
