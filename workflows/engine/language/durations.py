"""Durations as Argo writes them: ``10s``, ``1m30s``, ``500ms`` or a number of seconds."""

from __future__ import annotations

import re

from workflows.engine.language.errors import ExpressionError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(value: str | int | float | None) -> float:
    """Seconds in an Argo duration (``10``, ``10s``, ``1m30s``, ``500ms``, ``2h``).

    Raises:
        ExpressionError: The value is not a duration.
    """
    if value is None or value == "":
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ExpressionError(f"{value!r} is not a duration such as 10s, 1m30s or 500ms")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)
