"""Conditions in govaluate, the language Argo evaluates ``when`` in.

- ``when`` expressions (``heads == heads``, ``{{x}} > 5 && 'a' != 'b'``; bare words compare as strings).
- ``retryStrategy.expression`` over ``lastRetry``.
- ``depends`` logic (``A.Succeeded && (B.Failed || !C.Skipped)``) and the ``dependencies`` shorthand.

Argo evaluates ``when`` with govaluate and every other expression with expr-lang
(:mod:`~workflows.engine.language.parser`); the two differ (bare words, ``=~``), so each has its own parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.engine.language.errors import ExpressionError

# --- a small govaluate-style parser shared by `when` and `depends` -------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||==|!=|>=|<=|=~|!~|[()!<>])"
    r"|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\""
    r"|(?P<word>[A-Za-z0-9_.\-/:@+%*]+))"
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "op", "str", "word"
    text: str


def _tokenize(source: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    source = source.strip()
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot parse {source!r} at position {pos}")
        pos = match.end()
        if match.group("op"):
            tokens.append(_Tok("op", match.group("op")))
        elif match.group("sq") is not None or match.group("dq") is not None:
            tokens.append(_Tok("str", match.group("sq") if match.group("sq") is not None else match.group("dq")))
        elif match.group("word"):
            tokens.append(_Tok("word", match.group("word")))
    return tokens


class _Parser:
    """Precedence climbing: ``||`` < ``&&`` < comparisons < unary ``!``."""

    def __init__(self, source: str, resolve_word: Callable[[str], Any]) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.pos = 0
        self.resolve_word = resolve_word

    def parse(self) -> Any:
        if not self.tokens:
            raise ExpressionError("empty expression")
        value = self._or()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.pos].text!r} in {self.source!r}")
        return value

    def _peek(self) -> str | None:
        tok = self.tokens[self.pos] if self.pos < len(self.tokens) else None
        return tok.text if tok and tok.kind == "op" else None

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self.pos += 1
            right = self._and()
            left = _truthy(left) or _truthy(right)
        return left

    def _and(self) -> Any:
        left = self._cmp()
        while self._peek() == "&&":
            self.pos += 1
            right = self._cmp()
            left = _truthy(left) and _truthy(right)
        return left

    def _cmp(self) -> Any:
        left = self._unary()
        op = self._peek()
        if op in ("==", "!=", ">", "<", ">=", "<=", "=~", "!~"):
            self.pos += 1
            return _compare(op, left, self._unary())
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self.pos += 1
            return not _truthy(self._unary())
        if self._peek() == "(":
            self.pos += 1
            value = self._or()
            if self._peek() != ")":
                raise ExpressionError(f"missing ')' in {self.source!r}")
            self.pos += 1
            return value
        if self.pos >= len(self.tokens):
            raise ExpressionError(f"unexpected end of {self.source!r}")
        tok = self.tokens[self.pos]
        self.pos += 1
        if tok.kind == "str":
            return tok.text
        if tok.kind == "word":
            return self.resolve_word(tok.text)
        raise ExpressionError(f"unexpected {tok.text!r} in {self.source!r}")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true"
        raise ExpressionError(f"{value!r} is not a boolean")
    return bool(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("=~", "!~"):
        found = re.search(str(right), str(left)) is not None
        return found if op == "=~" else not found
    lnum, rnum = _number(left), _number(right)
    if lnum is not None and rnum is not None:
        a: Any = lnum
        b: Any = rnum
    else:
        a, b = _as_text(left), _as_text(right)
    if op in (">", "<", ">=", "<=") and isinstance(a, str):
        raise ExpressionError(f"cannot order non-numbers {left!r} {op} {right!r}")
    return bool({"==": a == b, "!=": a != b, ">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op])


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evaluate_when(expression: str) -> bool:
    """Evaluate a substituted ``when`` expression; bare words compare as strings.

    Raises:
        ExpressionError: The expression cannot be parsed or is not boolean.
    """
    return _truthy(_Parser(expression, lambda word: word).parse())


_LAST_RETRY = re.compile(r"asInt\(\s*lastRetry\.(\w+)\s*\)|lastRetry\.(\w+)")
LAST_RETRY_FIELDS = ("exitCode", "status", "duration", "message")


def evaluate_retry(expression: str, last: Mapping[str, str]) -> bool:
    """Evaluate a ``retryStrategy.expression`` over the last attempt (``lastRetry.exitCode/status/duration/message``).

    Raises:
        ExpressionError: An unknown ``lastRetry`` field, or an expression that cannot be parsed or is not boolean.
    """

    def value(match: re.Match[str]) -> str:
        field = match.group(1) or match.group(2)
        if field not in LAST_RETRY_FIELDS:
            raise ExpressionError(f"lastRetry.{field} is not one of {', '.join(LAST_RETRY_FIELDS)}")
        text = str(last.get(field, ""))
        return text if _number(text) is not None else "'" + text.replace("'", "") + "'"

    return evaluate_when(_LAST_RETRY.sub(value, expression))


# --- depends -----------------------------------------------------------------------------------------

RESULTS = (
    "Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "Completed", "AnySucceeded", "AllFailed",
)  # fmt: skip
_DEP_REF = re.compile(r"(?<![\w.\-])([A-Za-z0-9][\w\-]*)(?:\.(\w+))?")


def expand_depends(
    depends: str | None, dependencies: list[str] | None, continue_on: Mapping[str, Mapping[str, Any]]
) -> tuple[str, list[str]]:
    """Turn ``depends`` or ``dependencies`` into explicit logic and the list of tasks it names.

    A bare task name means ``(A.Succeeded || A.Skipped || A.Daemoned)``, widened by ``|| A.Failed`` /
    ``|| A.Errored`` when that task has ``continueOn`` for it, as Argo does.

    Args:
        depends: The task's ``depends`` string, if any.
        dependencies: The task's ``dependencies`` list, if any.
        continue_on: ``continueOn`` of each task in the DAG, by task name.

    Returns:
        The explicit logic (empty when the task depends on nothing) and the names it references.
    """
    if dependencies and not depends:
        depends = " && ".join(dependencies)
    if not depends:
        return "", []
    names: list[str] = []

    def repl(match: re.Match[str]) -> str:
        name, result = match.group(1), match.group(2)
        if name not in names:
            names.append(name)
        if result:
            if result not in RESULTS:
                raise ExpressionError(f"unknown task result {name}.{result} (use one of {', '.join(RESULTS)})")
            return match.group(0)
        options = [f"{name}.Succeeded", f"{name}.Skipped", f"{name}.Daemoned"]
        flags = continue_on.get(name) or {}
        if flags.get("failed"):
            options.append(f"{name}.Failed")
        if flags.get("error"):
            options.append(f"{name}.Errored")
        return "(" + " || ".join(options) + ")"

    return _DEP_REF.sub(repl, depends), names


def evaluate_depends(logic: str, results: Mapping[str, Mapping[str, bool]]) -> bool:
    """Evaluate explicit depends logic against each dependency's results (``{"A": {"Succeeded": True}}``)."""

    def resolve(word: str) -> bool:
        name, _, result = word.rpartition(".")
        if not name or name not in results:
            raise ExpressionError(f"unknown dependency {word!r} in depends {logic!r}")
        return bool(results[name].get(result, False))

    return _truthy(_Parser(logic, resolve).parse())


# --- durations ---------------------------------------------------------------------------------------
