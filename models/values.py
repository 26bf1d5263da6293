"""What a value of each declared column type may be: one rule for training data and for serving requests.

Validation accepts only what ``fit`` and ``predict`` can handle, so one accepted value can never stop later
training or answer a 500 at serving time:

- ``number``: a finite number whose magnitude is at most 2**53 (beyond it float64 no longer holds every
  integer, and sums and ratios of such values overflow to infinity);
- ``integer``: a whole number in the same range;
- ``date``: an ISO 8601 date (or date-time, whose date is kept) from 1677-09-22 to 2262-04-11, the range
  pandas' nanosecond timestamps hold;
- ``string``: text.

Text is parsed whole and exactly: no spaces around a number or a date, no ``1_000``, no digits outside ASCII.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime

MAX_MAGNITUDE = float(2**53)
FIRST_DATE = date(1677, 9, 22)
LAST_DATE = date(2262, 4, 11)
INTEGER = re.compile(r"[+-]?[0-9]+")
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
EXAMPLES = {"integer": "42", "number": "12.5", "date": "2026-01-31", "string": "text"}


class BadValue(ValueError):
    """A value its column type cannot hold; the message says why, without where (callers add that)."""


def _exact(text: str, kind: str) -> str:
    if text != text.strip():
        raise BadValue(f"{text[:60]!r} has spaces around it; write the {kind} alone, such as {EXAMPLES[kind]}")
    return text


def number(value: float, shown: str = "") -> float:
    """A finite number within ±2**53 (``shown``: the value as written, for the message).

    Raises:
        BadValue: Infinite, not a number, or too large.
    """
    shown = shown or repr(value)
    if not math.isfinite(value):
        raise BadValue(f"{shown[:60]} is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise BadValue(f"{shown[:60]} is larger than {MAX_MAGNITUDE:.0f} in magnitude, more than ctcd can train on")
    return float(value)


def parse_number(text: str) -> float:
    """A decimal number written whole (``12.5``, ``-3``, ``1e3``).

    Raises:
        BadValue: Not such a number, or outside :func:`number`'s range.
    """
    if not NUMBER.fullmatch(_exact(text, "number")):
        raise BadValue(f"{text[:60]!r} is not a number (such as 12.5)")
    return number(float(text), text)


def parse_integer(text: str) -> int:
    """A whole number written in ASCII digits.

    Raises:
        BadValue: Not such a number, or outside :func:`number`'s range.
    """
    if not INTEGER.fullmatch(_exact(text, "integer")):
        raise BadValue(f"{text[:60]!r} is not an integer (such as 42)")
    value = int(text)
    if abs(value) > MAX_MAGNITUDE:
        raise BadValue(f"{text[:60]!r} is larger than {MAX_MAGNITUDE:.0f} in magnitude, more than ctcd can train on")
    return value


def parse_date(text: str) -> str:
    """An ISO 8601 date, or a date-time whose date is kept, normalised to ``YYYY-MM-DD``.

    Raises:
        BadValue: Not such a date, or outside 1677-09-22 … 2262-04-11.
    """
    _exact(text, "date")
    try:
        parsed = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).date()
    except ValueError:
        raise BadValue(f"{text[:60]!r} is not an ISO date (such as 2026-01-31)") from None
    if not FIRST_DATE <= parsed <= LAST_DATE:
        raise BadValue(
            f"{text[:60]!r} is outside {FIRST_DATE} … {LAST_DATE}, the dates ctcd can train and serve on; "
            "write a real date, or leave the row out"
        )
    return parsed.isoformat()


def parse(text: str, kind: str) -> str | int | float:
    """Text typed by its column's declared kind (``string`` stays as it is).

    Raises:
        BadValue: The text is not a value of that kind.
    """
    if kind == "integer":
        return parse_integer(text)
    if kind == "number":
        return parse_number(text)
    if kind == "date":
        return parse_date(text)
    return text
