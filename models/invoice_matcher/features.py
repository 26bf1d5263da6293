"""Pair features of a (transfer, invoice): amount gap, date gap, reference and name similarity."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from typing import Any

FEATURES = [
    "amount_diff",
    "amount_ratio",
    "date_gap_days",
    "reference_has_number",
    "reference_similarity",
    "name_similarity",
    "name_token_overlap",
]
_SUFFIXES = {"ltda", "sa", "s/a", "me", "eireli", "inc", "llc", "co", "corp"}


def _clean(text: Any) -> str:
    folded = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9 ]+", " ", folded)


def _tokens(text: Any) -> set[str]:
    return {t for t in _clean(text).split() if t not in _SUFFIXES}


def _digits(text: Any) -> str:
    return re.sub(r"\D", "", str(text))


def pair_features(frame: Any) -> Any:
    """The feature frame of a frame of pairs (raw columns as declared in ``technique.yaml``)."""
    import numpy as np
    import pandas as pd

    transfer, invoice = frame["transfer_amount"].astype(float), frame["invoice_amount"].astype(float)
    dates = ("transfer_date", "invoice_due_date")
    days = [np.asarray(frame[c].astype(str).str[:10], dtype="datetime64[D]") for c in dates]
    gap = pd.Series((days[0] - days[1]).astype(float), index=frame.index)  # days: no overflow across 1677…2262
    numbers = [_digits(n) for n in frame["invoice_number"]]
    references = [_clean(r) for r in frame["transfer_reference"]]
    payers, customers = list(frame["payer_name"]), list(frame["customer_name"])
    out = pd.DataFrame(index=frame.index)
    out["amount_diff"] = (transfer - invoice).abs()
    out["amount_ratio"] = transfer / invoice.replace(0, np.nan)
    out["date_gap_days"] = gap
    out["reference_has_number"] = [float(bool(n) and n in _digits(r)) for n, r in zip(numbers, references, strict=True)]
    out["reference_similarity"] = [
        SequenceMatcher(None, _digits(r)[-len(n) :] if n else "", n).ratio() if n else 0.0
        for n, r in zip(numbers, references, strict=True)
    ]
    out["name_similarity"] = [
        SequenceMatcher(None, _clean(p), _clean(c)).ratio() for p, c in zip(payers, customers, strict=True)
    ]
    out["name_token_overlap"] = [
        len(_tokens(p) & _tokens(c)) / max(1, len(_tokens(c))) for p, c in zip(payers, customers, strict=True)
    ]
    return out[FEATURES].replace([np.inf, -np.inf], np.nan)  # a ratio to a near-zero amount: unknown, not infinite
