"""Dataset validation: every failure names the file, row and column, and nothing else escapes."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from models.contract import get
from workflows.training.validation import DatasetError, check_classes, check_labels_seen, parse

INTENT = get("intent-classifier").spec
MATCHER = get("invoice-matcher").spec
GOOD_MATCH_ROW = "10.5,10.5,2026-01-02,2026-01-01,NF 123,123,ACME,Acme Ltda,1\n"
MATCH_HEADER = (
    "transfer_amount,invoice_amount,transfer_date,invoice_due_date,transfer_reference,invoice_number,"
    "payer_name,customer_name,is_match\n"
)


def test_a_good_file_parses_typed() -> None:
    frame = parse("m.csv", (MATCH_HEADER + GOOD_MATCH_ROW).encode(), MATCHER)
    assert frame.loc[0, "transfer_amount"] == 10.5 and frame.loc[0, "is_match"] == 1
    assert frame.loc[0, "transfer_date"] == "2026-01-02"


def test_empty_file() -> None:
    with pytest.raises(DatasetError, match=r"^e\.csv: the file is empty"):
        parse("e.csv", b"  \n", INTENT)


def test_header_only() -> None:
    with pytest.raises(DatasetError, match=r"h\.csv: has a header but no data rows"):
        parse("h.csv", b"text,intent\n", INTENT)


def test_missing_and_extra_columns() -> None:
    with pytest.raises(DatasetError, match=r"c\.csv: missing column\(s\) intent; unexpected column\(s\) label"):
        parse("c.csv", b"text,label\nhi,greet\n", INTENT)


def test_wrong_type_names_row_and_column() -> None:
    bad = MATCH_HEADER + GOOD_MATCH_ROW + GOOD_MATCH_ROW.replace("10.5,10.5", "ten,10.5")
    with pytest.raises(
        DatasetError, match=r"t\.csv: row 2 \(line 3\), column 'transfer_amount': 'ten' is not a number"
    ):
        parse("t.csv", bad.encode(), MATCHER)


def test_bad_date_and_integer() -> None:
    with pytest.raises(DatasetError, match=r"column 'transfer_date': '2026-13-45' is not an ISO date"):
        parse("d.csv", (MATCH_HEADER + GOOD_MATCH_ROW.replace("2026-01-02", "2026-13-45")).encode(), MATCHER)
    with pytest.raises(DatasetError, match=r"column 'is_match': 'yes' is not an integer"):
        parse("i.csv", (MATCH_HEADER + GOOD_MATCH_ROW.replace(",1\n", ",yes\n")).encode(), MATCHER)


def test_empty_required_value_but_optional_column_may_be_empty() -> None:
    with pytest.raises(DatasetError, match=r"row 1 \(line 2\), column 'text': is empty"):
        parse("x.csv", b"text,intent\n ,greet\n", INTENT)
    frame = parse("o.csv", (MATCH_HEADER + GOOD_MATCH_ROW.replace("NF 123", "")).encode(), MATCHER)
    assert frame.loc[0, "transfer_reference"] == ""


def test_non_utf8_names_the_line() -> None:
    raw = "text,intent\nhello,greet\n".encode() + "olá,greet\n".encode("latin-1")
    with pytest.raises(DatasetError, match=r"u\.csv: line 3 is not valid UTF-8 \(byte 0xe1"):
        parse("u.csv", raw, INTENT)


def test_parquet_is_read_and_checked() -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"text": ["block my card"], "intent": ["block_credit_card"]}).to_parquet(buffer)
    assert parse("p.parquet", buffer.getvalue(), INTENT).loc[0, "intent"] == "block_credit_card"
    with pytest.raises(DatasetError, match=r"b\.parquet: not a readable Parquet file"):
        parse("b.parquet", b"not parquet at all", INTENT)


def test_json_lines_are_read_and_checked_like_csv() -> None:
    raw = b'{"text": "block my card", "intent": "block_credit_card"}\n\n{"intent": "greet", "text": "42"}\n'
    frame = parse("u.jsonl", raw, INTENT)
    assert list(frame["text"]) == ["block my card", "42"] and list(frame.columns) == ["text", "intent"]
    with pytest.raises(DatasetError, match=r"b\.jsonl: line 2 is not JSON"):
        parse("b.jsonl", b'{"text": "a", "intent": "b"}\n{"text": \n', INTENT)
    with pytest.raises(DatasetError, match=r"c\.ndjson: missing column\(s\) intent"):
        parse("c.ndjson", b'{"text": "a"}\n', INTENT)


def test_too_small_class() -> None:
    with pytest.raises(DatasetError, match=r"fewer than 3 rows, too few to split: 'rare' \(1 row\)"):
        check_classes("train", ["a", "a", "a", "rare"], 3)


def test_labels_unseen_in_train() -> None:
    with pytest.raises(DatasetError, match=r"test\.csv: label\(s\) 'new_intent' never occur in the training data"):
        check_labels_seen("test.csv", ["a", "new_intent"], ["a", "b"])


def test_garbage_bytes_never_raise_anything_but_dataset_error() -> None:
    for raw in (b"\x00\x01\x02", b'"unterminated,quote\n', b"text,intent\n" + b"a,b,c,d\n" * 3, b"\xff\xfe\x00"):
        with pytest.raises(DatasetError):
            parse("g.csv", raw, INTENT)


@pytest.mark.parametrize("share", [0.0, 1.0, -0.2, 1.5])
def test_a_test_fraction_must_leave_train_and_test_rows(share: float) -> None:
    from workflows.training.datasets import FrozenTest

    with pytest.raises(DatasetError, match=rf"--test-fraction {share}: give a share between 0 and 1"):
        FrozenTest(fraction=share)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('{"nested": 1}', r"\{\"nested\": 1\} is a JSON dict, not a string value"),
        ("[1, 2]", r"\[1, 2\] is a JSON list, not a string value"),
        ("1.5", r"1\.5 is a JSON float, not a string value; write it as a JSON string"),
        ("true", r"true is a JSON bool, not a string value"),
    ],
)
def test_json_lines_take_only_text_for_a_text_column(value: str, why: str) -> None:
    with pytest.raises(DatasetError, match=rf"n\.jsonl: line 1, column 'text': {why}"):
        parse("n.jsonl", f'{{"text": {value}, "intent": "greet"}}\n'.encode(), INTENT)


@pytest.mark.parametrize("column", [[1, 2], [1.5, 2.5], [b"x", b"y"], [True, False]])
def test_parquet_refuses_numbers_bytes_or_bools_in_a_text_column(column: list[object]) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"text": ["a", "b"], "intent": column}).to_parquet(buffer)
    with pytest.raises(DatasetError, match=r"q\.parquet: column 'intent' is stored as Parquet .*declares it string"):
        parse("q.parquet", buffer.getvalue(), INTENT)


def test_parquet_numbers_and_dates_are_typed_and_nulls_are_empty() -> None:
    row = {"transfer_amount": 10.5, "invoice_amount": 11, "transfer_date": pd.Timestamp("2026-01-02")}
    frame = pd.DataFrame(
        [
            {
                **row,
                "invoice_due_date": "2026-01-01",
                "transfer_reference": None,
                "invoice_number": "1",
                "payer_name": "A",
                "customer_name": "A",
                "is_match": 1,
            }
        ]
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    parsed = parse("m.parquet", buffer.getvalue(), MATCHER)
    assert parsed.loc[0, "transfer_date"] == "2026-01-02" and parsed.loc[0, "transfer_reference"] == ""
    assert parsed.loc[0, "invoice_amount"] == 11.0


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("10.5,10.5", " 12.5 ,10.5", r"' 12\.5 ' has spaces around it"),
        ("2026-01-02", "9999-12-31", r"'9999-12-31' is outside 1677-09-22 … 2262-04-11"),
        ("2026-01-02", "1200-01-01", r"'1200-01-01' is outside"),
        ("10.5,10.5", "1e300,10.5", r"1e300 is larger than 9007199254740992 in magnitude"),
        ("10.5,10.5", "１,10.5", r"'１' is not a number"),
    ],
)
def test_only_values_that_training_and_serving_can_handle_are_accepted(old: str, new: str, why: str) -> None:
    with pytest.raises(DatasetError, match=rf"v\.csv: row 1 \(line 2\), column '\w+': {why}"):
        parse("v.csv", (MATCH_HEADER + GOOD_MATCH_ROW.replace(old, new)).encode(), MATCHER)


def test_a_utf8_byte_order_mark_is_accepted_in_csv_and_json_lines() -> None:
    assert list(parse("b.csv", "\ufefftext,intent\nhi,greet\n".encode(), INTENT).columns) == ["text", "intent"]
    assert parse("b.jsonl", '\ufeff{"text": "hi", "intent": "greet"}\n'.encode(), INTENT).loc[0, "text"] == "hi"
