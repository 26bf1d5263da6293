"""Fuzzing the dataset validator: every malformed file is refused with a DatasetError naming the file, never
a traceback of another kind.  ``CTCD_FUZZ_EXAMPLES`` raises the count (``make fuzz``)."""

from __future__ import annotations

import io
import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.contract import get
from workflows.training.validation import DatasetError, parse

SPEC = get("invoice-matcher").spec
COLUMNS = list(SPEC.dataset.columns)
EXAMPLES = int(os.environ.get("CTCD_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))

cells = st.one_of(
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers().map(str),
    st.sampled_from(["", "NaN", "inf", "-", "2026-13-45", "2026-01-01", "1e309", '"', "a,b", "\n", "\x00"]),
)
headers = st.one_of(
    st.just(COLUMNS),
    st.permutations(COLUMNS),
    st.lists(st.sampled_from([*COLUMNS, "extra", "", "is_match"]), max_size=12),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(headers)
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(header) + 2), max_size=8))
    text = ",".join(header) + "\n" + "\n".join(",".join(r) for r in rows)
    return draw(st.sampled_from([text.encode(), text.encode("utf-16"), text.encode()[: len(text) // 2]]))


def _parse(name: str, raw: bytes) -> None:
    try:
        frame = parse(name, raw, SPEC)
    except DatasetError as exc:
        assert name in str(exc) or "file is empty" in str(exc), str(exc)
        return
    assert list(frame.columns) == COLUMNS and len(frame) > 0  # accepted files are complete and typed


@pytest.mark.fuzz
@FUZZ
@given(csv_files())
def test_generated_csv_files_are_accepted_whole_or_refused_by_name(raw: bytes) -> None:
    _parse("s3://datasets/invoice-matcher/train/fuzz.csv", raw)


@pytest.mark.fuzz
@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_by_name(raw: bytes) -> None:
    _parse("fuzz.csv", raw)
    _parse("fuzz.parquet", raw)
    _parse("fuzz.parquet", b"PAR1" + raw + b"PAR1")


@pytest.mark.fuzz
@FUZZ
@given(st.lists(st.sampled_from(COLUMNS), max_size=len(COLUMNS)), st.integers(0, 5))
def test_parquet_with_missing_or_odd_columns_is_refused_by_name(columns: list[str], rows: int) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({c: ["x"] * rows for c in dict.fromkeys(columns)}).to_parquet(buffer)
    _parse("odd.parquet", buffer.getvalue())


@pytest.mark.parametrize("raw", [b"\xef\xbb\xbf" + ",".join(COLUMNS).encode(), b"\r\n\r\n", b",,,,\n,,,"])
def test_edge_files_are_refused_by_name(raw: bytes) -> None:
    with pytest.raises(DatasetError):
        parse("edge.csv", raw, SPEC)
