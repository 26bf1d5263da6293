"""The error of an expression that cannot be parsed or evaluated."""

from __future__ import annotations

from workflows.errors import CtcdError


class ExpressionError(CtcdError, ValueError):
    """An expression or tag could not be evaluated; the message quotes it."""


class Missing(ExpressionError):
    """A variable the expression names is not (yet) known; the tag can be evaluated later."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown variable {name!r}")
