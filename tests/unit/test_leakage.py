"""Test leakage: the frozen test split never enters training, and a batch is never added twice."""

from __future__ import annotations

import pandas as pd
import pytest

from models.contract import get
from workflows.training import leakage
from workflows.training.validation import DatasetError

INTENT = get("intent-classifier").spec
MATCHER = get("invoice-matcher").spec
TEST = pd.DataFrame({"text": ["Block my card", "what is my balance", "hello there"], "intent": ["a", "b", "c"]})


def test_the_same_question_in_other_case_and_spacing_is_the_same_input_whatever_its_label() -> None:
    batch = pd.DataFrame({"text": ["  block   MY card ", "new question"], "intent": ["other", "a"]})
    assert leakage.overlap_mask(batch, TEST, INTENT) == [True, False]


def test_a_batch_that_repeats_test_inputs_is_refused_naming_the_count_and_the_rows() -> None:
    batch = pd.concat([TEST, pd.DataFrame({"text": ["fresh"], "intent": ["a"]})], ignore_index=True)
    with pytest.raises(DatasetError, match=r"b\.csv: 3 rows \(row 1: 'Block my card', row 2: .*--drop-test-overlap"):
        leakage.check_batch("b.csv", batch, TEST, INTENT)


def test_drop_test_overlap_keeps_only_new_inputs_and_counts_the_rest() -> None:
    batch = pd.concat([TEST, pd.DataFrame({"text": ["fresh"], "intent": ["a"]})], ignore_index=True)
    kept, dropped = leakage.check_batch("b.csv", batch, TEST, INTENT, drop=True)
    assert dropped == 3 and list(kept["text"]) == ["fresh"]
    with pytest.raises(DatasetError, match="every row repeats an input of the frozen test split"):
        leakage.check_batch("b.csv", TEST, TEST, INTENT, drop=True)


def test_the_test_split_itself_sent_back_as_a_batch_is_refused() -> None:
    with pytest.raises(DatasetError, match="3 rows .* repeat inputs of the frozen test split"):
        leakage.check_batch("s3://ctcd-datasets/intents/test/frozen.csv", TEST, TEST, INTENT)


def test_inputs_of_several_columns_compare_together_and_the_target_plays_no_part() -> None:
    row = {
        "transfer_amount": 10.5,
        "invoice_amount": 10.5,
        "transfer_date": "2026-01-02",
        "invoice_due_date": "2026-01-01",
        "transfer_reference": "NF 123",
        "invoice_number": "123",
        "payer_name": "ACME",
        "customer_name": "Acme Ltda",
        "is_match": 1,
    }
    test = pd.DataFrame([row])
    relabelled = pd.DataFrame([{**row, "is_match": 0}, {**row, "invoice_amount": 11.0}])
    assert leakage.overlap_mask(relabelled, test, MATCHER) == [True, False]


def test_a_batch_with_exactly_the_rows_of_an_active_batch_in_any_order_is_refused() -> None:
    active = pd.DataFrame({"text": ["x", "y"], "intent": ["a", "b"]})
    with pytest.raises(DatasetError, match=r"again\.csv: holds exactly the rows of the active batch k/batch-0001"):
        leakage.check_not_duplicate("again.csv", active.iloc[::-1], [("k/batch-0001.csv", active)], INTENT)
    leakage.check_not_duplicate("more.csv", active.head(1), [("k/batch-0001.csv", active)], INTENT)


def test_training_drops_what_slipped_into_s3_around_ctcd_and_says_how_much() -> None:
    train = pd.DataFrame({"text": ["hello there", "new"], "intent": ["c", "a"]})
    kept, overlap = leakage.without_test_rows(train, TEST, INTENT)
    assert overlap == 1 and list(kept["text"]) == ["new"]
    assert leakage.without_test_rows(kept, TEST, INTENT)[1] == 0
