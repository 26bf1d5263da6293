"""Dataset validation against a technique's declared columns: bad data is rejected before anything trains.

Every error names the file, and where it applies the row (1-based data row; the header is line 1, so row
N is line N+1) and the column, plus what to do.  Validation never raises anything but
:class:`DatasetError` for bad data.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

from models import values
from models.contract import TechniqueSpec
from workflows.errors import CtcdError

MAX_FILE_BYTES = 256 * 2**20
JSON_LINES = (".jsonl", ".ndjson")
BINARY_CLASSES = ("0", "1")
BOM = "\ufeff"


class DatasetError(CtcdError, ValueError):
    """The data does not meet the technique's contract; the message says where and how to fix it."""


def parse(name: str, raw: bytes, spec: TechniqueSpec) -> Any:
    """Parse and validate one CSV or Parquet file of a technique's dataset.

    Args:
        name: The file's name or S3 URL, used in messages (``.parquet`` selects Parquet).
        raw: The file's bytes.
        spec: The technique's contract.

    Returns:
        A DataFrame with the declared columns, typed (numbers as float, integers as int, dates as strings).

    Raises:
        DatasetError: The file is empty, not UTF-8, has missing or extra columns, or a value of the wrong type.
    """
    if len(raw) > MAX_FILE_BYTES:
        raise DatasetError(
            f"{name}: {len(raw)} bytes is over the {MAX_FILE_BYTES >> 20} MiB limit; split it into batches"
        )
    if not raw.strip():
        raise DatasetError(f"{name}: the file is empty (no header, no rows); write a header line and data rows")
    if b"\x00" in raw and not name.endswith(".parquet"):
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise DatasetError(f"{name}: line {line} holds a NUL byte (0x00); remove it, it would cut the value short")
    if name.endswith(".parquet"):
        frame = _read_parquet(name, raw, spec)
    elif name.endswith(JSON_LINES):
        frame = _read_json_lines(name, raw, spec)
    else:
        frame = _read_csv(name, raw, spec)
    _check_columns(name, list(frame.columns), spec)
    if frame.empty:
        raise DatasetError(f"{name}: has a header but no data rows")
    return _typed(name, frame, spec)


def _read_csv(name: str, raw: bytes, spec: TechniqueSpec) -> Any:
    import pandas as pd

    text = _utf8(name, raw)
    _check_field_counts(name, text, spec)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DatasetError(f"{name}: not a readable CSV ({str(exc).strip()})") from exc


def _utf8(name: str, raw: bytes) -> str:
    """The file's text; a UTF-8 byte order mark at its start is dropped, as spreadsheet programs write one."""
    try:
        return raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"{name}: line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "re-save the file as UTF-8"
        ) from exc


def _check_field_counts(name: str, text: str, spec: TechniqueSpec) -> None:
    import csv

    try:
        rows = csv.reader(io.StringIO(text))
        header = next(rows, [])
        _check_columns(name, [h.strip() for h in header], spec)  # before pandas renames a duplicate to `x.1`
        for row, fields in enumerate(rows, start=1):
            if fields and len(fields) != len(header):
                raise DatasetError(
                    f"{name}: row {row} (line {row + 1}) has {len(fields)} fields but the header has {len(header)}; "
                    "quote values that contain commas"
                )
    except csv.Error as exc:
        raise DatasetError(f"{name}: not a readable CSV ({exc})") from exc


def _read_json_lines(name: str, raw: bytes, spec: TechniqueSpec) -> Any:
    """One JSON object per line; each value must be of its column's JSON kind, then it is typed like a CSV cell."""
    import pandas as pd

    rows = []
    for number, line in enumerate(_utf8(name, raw).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{name}: line {number} is not JSON ({exc}); write one object per line") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{name}: line {number} is a JSON {type(row).__name__}, not an object with the columns")
        kinds = spec.dataset.columns
        rows.append({str(k): _json_cell(name, number, str(k), v, kinds.get(str(k), "string")) for k, v in row.items()})
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return pd.DataFrame(rows, columns=columns).fillna("")


JSON_KINDS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "date": (str,),
    "number": (int, float, str),
    "integer": (int, str),
}


def _json_cell(name: str, line: int, column: str, value: Any, kind: str) -> str:
    """A JSON value as cell text: null is empty; an object, a list, a bool or a number for text is refused."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, JSON_KINDS[kind]):
        shown = json.dumps(value)[:40]
        raise DatasetError(
            f"{name}: line {line}, column {column!r}: {shown} is a JSON {type(value).__name__}, not a {kind} value; "
            f"write it as {'a JSON string' if kind in ('string', 'date') else 'a JSON number'}"
        )
    return value if isinstance(value, str) else repr(value)


def _read_parquet(name: str, raw: bytes, spec: TechniqueSpec) -> Any:
    """A Parquet file's declared columns as cell text, each column's Arrow type checked against its kind."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(raw))
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise DatasetError(f"{name}: not a readable Parquet file ({exc})") from exc
    cells = {}
    for field in table.schema:
        kind = spec.dataset.columns.get(field.name, "string")
        _check_arrow_type(name, field, kind)
        cells[field.name] = [_parquet_cell(v) for v in table.column(field.name).to_pylist()]
    return pd.DataFrame(cells, columns=table.schema.names)


def _check_arrow_type(name: str, field: Any, kind: str) -> None:
    import pyarrow as pa

    arrow = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    text = pa.types.is_string(arrow) or pa.types.is_large_string(arrow)
    fits = {
        "string": text,
        "integer": pa.types.is_integer(arrow),
        "number": pa.types.is_integer(arrow) or pa.types.is_floating(arrow),
        "date": text or pa.types.is_date(arrow) or pa.types.is_timestamp(arrow),
    }[kind]
    if not fits and not pa.types.is_null(arrow):  # a column of nulls only: each cell is empty
        raise DatasetError(
            f"{name}: column {field.name!r} is stored as Parquet {arrow}, but the technique declares it {kind}; "
            f"write it as {'text' if kind == 'string' else kind + ' values'}"
        )


def _parquet_cell(value: Any) -> str:
    from datetime import date

    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def _check_columns(name: str, columns: list[str], spec: TechniqueSpec) -> None:
    expected = list(spec.dataset.columns)
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if missing or extra or duplicated:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected column(s) {', '.join(extra)}")
        if duplicated:
            parts.append(f"duplicated column(s) {', '.join(duplicated)}")
        raise DatasetError(f"{name}: {'; '.join(parts)} (expected exactly: {', '.join(expected)})")


def _typed(name: str, frame: Any, spec: TechniqueSpec) -> Any:
    import pandas as pd

    out = pd.DataFrame(index=range(len(frame)))
    for column, kind in spec.dataset.columns.items():
        values = [str(v) for v in frame[column]]
        if column in spec.dataset.optional and kind == "string":
            out[column] = values
            continue
        out[column] = [_convert(name, row, column, kind, value) for row, value in enumerate(values, start=1)]
    if spec.problem == "binary":
        _check_binary(name, list(out[spec.target]), spec.target)
    return out


def _check_binary(name: str, values: list[Any], column: str) -> None:
    """A binary task's target holds only its two classes, 0 and 1."""
    for row, value in enumerate(values, start=1):
        if str(value) not in BINARY_CLASSES:
            raise DatasetError(
                f"{name}: row {row} (line {row + 1}), column {column!r}: {str(value)[:20]!r} is not a class of this "
                f"binary task (use 0 or 1)"
            )


def _convert(name: str, row: int, column: str, kind: str, value: str) -> Any:
    where = f"{name}: row {row} (line {row + 1}), column {column!r}"
    if not value.strip():
        raise DatasetError(f"{where}: is empty; every {kind} value is required")
    try:
        return values.parse(value, kind)
    except values.BadValue as exc:
        raise DatasetError(f"{where}: {exc}") from None


def check_classes(name: str, labels: Iterable[Any], minimum: int) -> None:
    """Every class must have at least ``minimum`` rows to be split into train and test and cross-validated.

    Raises:
        DatasetError: Naming each class that is too small.
    """
    counts: dict[Any, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    small = sorted((str(label), n) for label, n in counts.items() if n < minimum)
    if small:
        listed = ", ".join(f"{label!r} ({n} row{'s' if n != 1 else ''})" for label, n in small[:10])
        raise DatasetError(
            f"{name}: class(es) with fewer than {minimum} rows, too few to split: {listed}; "
            "add rows for them or remove them"
        )


def check_labels_seen(
    test_name: str, test_labels: Iterable[Any], train_labels: Iterable[Any], out_of_scope: str | None = None
) -> None:
    """Every label of the frozen test split must occur in the training data (out-of-scope rows need not).

    Raises:
        DatasetError: Naming the unseen labels.
    """
    unseen = sorted({str(x) for x in test_labels} - {str(x) for x in train_labels} - {out_of_scope})
    if unseen:
        raise DatasetError(
            f"{test_name}: label(s) {', '.join(map(repr, unseen[:10]))} never occur in the training data; "
            "add training rows for them"
        )
