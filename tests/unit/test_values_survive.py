"""Every value that validation accepts survives ``fit`` and ``predict``, and serving accepts it too.

Hypothesis draws extreme but possibly valid cells (numbers up to the bound, dates at pandas' edges, any text), writes
them into a real CSV next to ordinary generated rows, and sends the file through validation. A file that is accepted
must train, and the model must score the extreme rows with finite probabilities; serving's request check takes
the same values. ``CTCD_FUZZ_EXAMPLES`` raises the count (``make fuzz``).
"""

from __future__ import annotations

import math
import os
from datetime import datetime, time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import values
from models.contract import get
from serving.predictor import _check_value
from workflows.training import datasets
from workflows.training.validation import DatasetError, parse

EXAMPLES = max(6, int(os.environ.get("CTCD_FUZZ_EXAMPLES", "200")) // 25)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
MATCHER, INTENT = get("invoice-matcher"), get("intent-classifier")
BOUND = values.MAX_MAGNITUDE

numbers = st.one_of(
    st.floats(min_value=-BOUND, max_value=BOUND, allow_nan=False).map(repr),
    st.sampled_from([f"{BOUND:.0f}", f"-{BOUND:.0f}", "0", "1e-300", "-0.0", "4e15", "0.000001"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),  # some are refused: that is allowed
)
dates = st.one_of(
    st.dates(values.FIRST_DATE, values.LAST_DATE).map(lambda d: d.isoformat()),
    st.dates(values.FIRST_DATE, values.LAST_DATE).map(lambda d: datetime.combine(d, time(23, 59, 59)).isoformat()),
    st.sampled_from(["1677-09-21", "2262-04-12", "9999-12-31", "0001-01-01"]),  # refused
)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40)


def _survives(technique: object, base: pd.DataFrame, extreme: pd.DataFrame, hyperparameters: dict[str, object]) -> None:
    spec = technique.spec  # type: ignore[attr-defined]
    raw = datasets.frame_to_csv(pd.concat([base, extreme], ignore_index=True))
    try:
        frame = parse("fuzz.csv", raw, spec)
    except DatasetError:
        return  # refused by name: nothing reaches training
    result = technique.fit(frame, hyperparameters, seed=0)  # type: ignore[attr-defined]
    rows = frame.tail(len(extreme))[spec.feature_columns()]
    proba = result.model.predict_proba(rows)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)
    kinds = {f.name: f.type for f in spec.serving.inputs}
    for row, record in enumerate(rows.to_dict("records")):
        for name, value in record.items():
            _check_value(value, kinds[name], row, name)  # serving takes what training took (raises otherwise)


@pytest.mark.fuzz
@FUZZ
@given(st.lists(st.tuples(numbers, numbers, dates, dates, texts), min_size=1, max_size=4))
def test_accepted_invoice_values_train_and_predict(cells: list[tuple[str, str, str, str, str]]) -> None:
    base = MATCHER.generate(120, seed=5)
    extreme = pd.DataFrame(
        [
            {
                **base.iloc[i % len(base)].to_dict(),
                "transfer_amount": a,
                "invoice_amount": b,
                "transfer_date": d1,
                "invoice_due_date": d2,
                "payer_name": text,
            }
            for i, (a, b, d1, d2, text) in enumerate(cells)
        ]
    )
    _survives(MATCHER, base, extreme, {"cv_folds": 2, "learning_rate": 0.1, "max_iter": 20})


@pytest.mark.fuzz
@FUZZ
@given(st.lists(texts, min_size=1, max_size=4))
def test_accepted_utterances_train_and_predict(utterances: list[str]) -> None:
    base = INTENT.generate(150, seed=5)
    base = base[base["intent"].isin(base["intent"].value_counts().head(8).index)].reset_index(drop=True)
    extreme = pd.DataFrame({"text": utterances, "intent": [base["intent"].iloc[0]] * len(utterances)})
    _survives(INTENT, base, extreme, {"cv_folds": 2, "C": 1.0})


def test_the_bounds_are_where_float64_and_pandas_stop() -> None:
    assert values.number(BOUND) == BOUND and math.ulp(BOUND) == 2.0
    assert pd.Timestamp(values.FIRST_DATE.isoformat()) and pd.Timestamp(values.LAST_DATE.isoformat())
    with pytest.raises(values.BadValue, match="outside"):
        values.parse_date("2262-04-12")
