"""``{{...}}`` tags: Argo's fasttemplate substitution, and ``{{= ...}}`` expression tags.

Whitespace inside the braces is trimmed, as Argo does.  A tag under a strict prefix (``inputs.``, ``tasks.``…)
that is not known is an error; others are left as they are, for a later pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from workflows.engine.language.errors import ExpressionError, Missing
from workflows.engine.language.evaluator import Evaluator
from workflows.engine.language.expressions import compiled, variables
from workflows.engine.language.functions import FUNCTIONS, to_string

TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
STRICT_PREFIXES = ("inputs.", "tasks.", "steps.", "workflow.", "item")


def substitute(text: str, scope: Mapping[str, str], strict_prefixes: tuple[str, ...] = ()) -> str:
    """Replace ``{{name}}`` tags found in ``scope``.

    Args:
        text: The string to fill in.
        scope: Tag names (``inputs.parameters.x``) to values.
        strict_prefixes: Tags with these prefixes must be in scope.

    Returns:
        The string with every known tag replaced.

    Raises:
        ExpressionError: A tag with a strict prefix is not in scope.
    """

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in scope:
            return scope[name]
        if strict_prefixes and name.startswith(strict_prefixes):
            raise ExpressionError(f"failed to resolve {{{{{name}}}}}")
        return match.group(0)

    if "{{=" in text:
        text = expand_tags(text, scope, tuple(p.rstrip(".") for p in strict_prefixes))
    return TAG.sub(repl, text)


def substitute_all(value: Any, scope: Mapping[str, str], strict_prefixes: tuple[str, ...] = ()) -> Any:
    """Apply :func:`substitute` to every string inside a JSON-like value."""
    if isinstance(value, str):
        return substitute(value, scope, strict_prefixes)
    if isinstance(value, list):
        return [substitute_all(v, scope, strict_prefixes) for v in value]
    if isinstance(value, dict):
        return {k: substitute_all(v, scope, strict_prefixes) for k, v in value.items()}
    return value


def _tag_end(text: str, start: int) -> int:
    """The index of the ``}}`` closing the expression tag opened at ``start`` (quotes and braces respected)."""
    depth, quote, i = 0, "", start + 3
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0 and text.startswith("}}", i):
                return i
            depth -= 1
        i += 1
    raise ExpressionError(f"unterminated expression tag in {text[start : start + 60]!r}")


def expand_tags(text: str, scope: Mapping[str, Any], strict: tuple[str, ...] = ()) -> str:
    """Replace every ``{{= expr}}`` tag whose variables are known.

    A tag naming an unknown variable whose root is in ``strict`` (``inputs``, ``tasks``…) is an error; any other
    is left for a later pass.

    Raises:
        ExpressionError: A tag cannot be evaluated (or, with ``strict``, names an unknown variable).
    """
    out, pos = [], 0
    env: dict[str, Any] | None = None
    while (start := text.find("{{=", pos)) != -1:
        end = _tag_end(text, start)
        source = text[start + 3 : end]
        env = variables(scope) if env is None else env
        try:
            value = Evaluator(env, FUNCTIONS).run(compiled(source))
        except Missing as exc:
            if exc.name in strict:
                raise ExpressionError(f"failed to evaluate {{{{={source.strip()}}}}}: {exc}") from exc
            out.append(text[pos : end + 2])
        except ExpressionError as exc:
            raise ExpressionError(f"failed to evaluate {{{{={source.strip()}}}}}: {exc}") from exc
        else:
            out.append(text[pos:start] + to_string(value))
        pos = end + 2
    out.append(text[pos:])
    return "".join(out)
