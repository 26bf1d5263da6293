"""The functions Argo's expressions can call: expr-lang's builtins, Argo's own, and the sprig ones under ``sprig.``.

Argo adds ``asInt``, ``asFloat``, ``string``, ``toJson`` and ``jsonpath``; ``sprig.NAME`` reaches the sprig
template functions Argo's docs and examples use (strings, numbers, lists, dates, base64).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from workflows.engine.language.durations import parse_duration
from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.evaluator import Namespace


def _predicate(function: Any) -> Callable[[Any], Any]:
    if not callable(function):
        raise ExpressionError("expected a closure such as {# > 1}")
    return function  # type: ignore[no-any-return]


def _seq(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    raise ExpressionError(f"expected an array, got {value!r}")


def as_int(value: Any) -> int:
    """Argo's ``asInt``: a number or numeric string as an integer."""
    if isinstance(value, bool):
        raise ExpressionError(f"asInt: {value!r} is not a number")
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            return int(float(str(value).strip()))
        except ValueError as exc:
            raise ExpressionError(f"asInt: {value!r} is not a number") from exc


def as_float(value: Any) -> float:
    """Argo's ``asFloat``: a number or numeric string as a float."""
    try:
        return float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError as exc:
        raise ExpressionError(f"asFloat: {value!r} is not a number") from exc


def to_string(value: Any) -> str:
    """A value as Argo prints it: strings as they are, whole floats without ``.0``, the rest as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, timedelta):
        return f"{value.total_seconds()}s"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return json.dumps(value, separators=(",", ":"))


def to_json(value: Any) -> str:
    """``toJson``: compact JSON."""
    return json.dumps(value, separators=(",", ":"), default=to_string)


def jsonpath(document: Any, path: str) -> Any:
    """Argo's ``jsonpath(json, path)``: one value for a plain path, a list for wildcards, slices and filters."""
    from jsonpath_ng.ext.parser import parse as parse_path

    data = json.loads(document) if isinstance(document, str) else document
    expression = path.replace("&&", "&").replace("||", "|")
    try:
        matches = [m.value for m in parse_path(expression).find(data)]
    except Exception as exc:  # jsonpath_ng raises its own parse errors
        raise ExpressionError(f"jsonpath {path!r}: {exc}") from exc
    if re.search(r"\[\*\]|\[\?|\[[-\d]*:[-\d]*\]|\.\.", path):
        return matches
    if not matches:
        raise ExpressionError(f"jsonpath {path!r} matched nothing")
    return matches[0]


def _closure_builtins() -> dict[str, Callable[..., Any]]:
    def each(items: Any, fn: Any) -> list[Any]:
        return [_predicate(fn)(x) for x in _seq(items)]

    return {
        "map": each,
        "filter": lambda items, fn: [x for x in _seq(items) if _predicate(fn)(x) is True],
        "all": lambda items, fn: all(_predicate(fn)(x) is True for x in _seq(items)),
        "any": lambda items, fn: any(_predicate(fn)(x) is True for x in _seq(items)),
        "none": lambda items, fn: not any(_predicate(fn)(x) is True for x in _seq(items)),
        "one": lambda items, fn: sum(_predicate(fn)(x) is True for x in _seq(items)) == 1,
        "count": lambda items, fn=None: sum(
            (fn is None and bool(x)) or (fn and _predicate(fn)(x) is True) for x in _seq(items)
        ),
        "find": lambda items, fn: next((x for x in _seq(items) if _predicate(fn)(x) is True), None),
        "findIndex": lambda items, fn: next((i for i, x in enumerate(_seq(items)) if _predicate(fn)(x) is True), -1),
        "sortBy": lambda items, fn: sorted(_seq(items), key=_predicate(fn)),
        "groupBy": lambda items, fn: _group(_seq(items), _predicate(fn)),
    }


def _group(items: Iterable[Any], fn: Callable[[Any], Any]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(to_string(fn(item)), []).append(item)
    return groups


def _builtins() -> dict[str, Callable[..., Any]]:
    return {
        "len": lambda v: len(v),
        "abs": lambda v: abs(v),
        "int": as_int,
        "float": as_float,
        "string": to_string,
        "trim": lambda s, chars=None: s.strip(chars),
        "trimPrefix": lambda s, p: s.removeprefix(p),
        "trimSuffix": lambda s, p: s.removesuffix(p),
        "upper": lambda s: s.upper(),
        "lower": lambda s: s.lower(),
        "split": lambda s, sep, n=-1: s.split(sep, n - 1 if n > 0 else -1),
        "join": lambda items, sep="": sep.join(to_string(x) for x in _seq(items)),
        "replace": lambda s, old, new: s.replace(old, new),
        "repeat": lambda s, n: s * n,
        "indexOf": lambda s, sub: s.find(sub),
        "hasPrefix": lambda s, p: s.startswith(p),
        "hasSuffix": lambda s, p: s.endswith(p),
        "keys": lambda m: list(m),
        "values": lambda m: list(m.values()),
        "first": lambda v: _seq(v)[0] if _seq(v) else None,
        "last": lambda v: _seq(v)[-1] if _seq(v) else None,
        "sum": lambda v: sum(_seq(v)),
        "max": lambda *v: max(v[0] if len(v) == 1 and isinstance(v[0], list) else v),
        "min": lambda *v: min(v[0] if len(v) == 1 and isinstance(v[0], list) else v),
        "reverse": lambda v: list(reversed(_seq(v))),
        "concat": lambda *arrays: [x for a in arrays for x in _seq(a)],
        "uniq": lambda v: list(dict.fromkeys(_seq(v))),
        "flatten": lambda v: [y for x in _seq(v) for y in (_seq(x) if isinstance(x, list) else [x])],
        "sort": lambda v: sorted(_seq(v)),
        "toJSON": to_json,
        "fromJSON": json.loads,
        "toBase64": lambda s: base64.b64encode(s.encode()).decode(),
        "fromBase64": lambda s: base64.b64decode(s).decode(),
        "now": lambda: datetime.now(UTC),
        "duration": lambda text: timedelta(seconds=_duration(text)),
        "date": _to_date,
    }


def _duration(text: str) -> float:
    return parse_duration(text)


def _to_date(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    text = str(value).strip().replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ExpressionError(f"{value!r} is not a date") from exc


_GO_LAYOUT = [
    ("2006", "%Y"),
    ("January", "%B"),
    ("Jan", "%b"),
    ("Monday", "%A"),
    ("Mon", "%a"),
    ("MST", "%Z"),
    ("01", "%m"),
    ("02", "%d"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("06", "%y"),
    ("PM", "%p"),
    ("-0700", "%z"),
]


def go_date(layout: str, value: Any) -> str:
    """Sprig's ``date LAYOUT TIME`` with Go's reference-time layout (``2006-01-02``)."""
    pattern = "|".join(re.escape(g) for g, _ in _GO_LAYOUT)
    strf = re.sub(pattern, lambda m: dict(_GO_LAYOUT)[m.group(0)], layout)
    return _to_date(value).strftime(strf)


def _number(value: Any) -> float:
    return value if isinstance(value, int | float) else as_float(value)


def _int_result(value: float) -> Any:
    return int(value) if float(value).is_integer() else value


def _sprig() -> dict[str, Callable[..., Any]]:
    return {
        "trim": lambda s: str(s).strip(),
        "upper": lambda s: str(s).upper(),
        "lower": lambda s: str(s).lower(),
        "title": lambda s: str(s).title(),
        "replace": lambda old, new, s: str(s).replace(old, new),
        "contains": lambda sub, s: sub in str(s),
        "hasPrefix": lambda p, s: str(s).startswith(p),
        "hasSuffix": lambda p, s: str(s).endswith(p),
        "trimPrefix": lambda p, s: str(s).removeprefix(p),
        "trimSuffix": lambda p, s: str(s).removesuffix(p),
        "repeat": lambda n, s: str(s) * int(n),
        "substr": lambda start, end, s: str(s)[int(start) : int(end)],
        "trunc": lambda n, s: str(s)[: int(n)],
        "quote": lambda s: json.dumps(to_string(s)),
        "squote": lambda s: f"'{to_string(s)}'",
        "splitList": lambda sep, s: str(s).split(sep),
        "join": lambda sep, items: sep.join(to_string(x) for x in _seq(items)),
        "toString": to_string,
        "toJson": to_json,
        "fromJson": json.loads,
        "b64enc": lambda s: base64.b64encode(str(s).encode()).decode(),
        "b64dec": lambda s: base64.b64decode(str(s)).decode(),
        "atoi": as_int,
        "int": as_int,
        "int64": as_int,
        "float64": as_float,
        "add": lambda *v: _int_result(sum(as_int(x) for x in v)),
        "sub": lambda a, b: as_int(a) - as_int(b),
        "mul": lambda *v: _product(v),
        "div": lambda a, b: as_int(a) // as_int(b),
        "mod": lambda a, b: as_int(a) % as_int(b),
        "max": lambda *v: max(as_int(x) for x in v),
        "min": lambda *v: min(as_int(x) for x in v),
        "addf": lambda *v: sum(_number(x) for x in v),
        "default": lambda fallback, value=None: value if value not in (None, "", [], {}, 0, False) else fallback,
        "empty": lambda value: value in (None, "", [], {}, 0, False),
        "ternary": lambda yes, no, test: yes if test else no,
        "list": lambda *v: list(v),
        "dict": lambda *v: {str(v[i]): v[i + 1] for i in range(0, len(v) - 1, 2)},
        "has": lambda needle, items: needle in _seq(items),
        "uniq": lambda items: list(dict.fromkeys(_seq(items))),
        "first": lambda items: _seq(items)[0],
        "last": lambda items: _seq(items)[-1],
        "append": lambda items, v: [*_seq(items), v],
        "regexMatch": lambda pattern, s: re.search(pattern, str(s)) is not None,
        "date": go_date,
        "now": lambda: datetime.now(UTC),
        "toDate": lambda layout, value: _to_date(value),
    }


def _product(values: Iterable[Any]) -> int:
    result = 1
    for value in values:
        result *= as_int(value)
    return result


def table() -> dict[str, Any]:
    """Every function by the name an expression calls it with (sprig's as the ``sprig`` namespace)."""
    functions: dict[str, Any] = {**_builtins(), **_closure_builtins()}
    functions.update({"asInt": as_int, "asFloat": as_float, "toJson": to_json, "jsonpath": jsonpath})
    functions["sprig"] = Namespace("sprig", _sprig())
    return functions


FUNCTIONS = table()
