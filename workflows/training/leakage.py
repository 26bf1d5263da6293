"""Test leakage: no row of the frozen test split ever enters training, and no batch is added twice.

Two rows are the same input when the contract's input columns (every column but the target) agree after
normalisation: text is case-folded and its whitespace collapsed, other values compare as their typed text. The
label plays no part: a test question sent back with another label still scores the model on a question it was
trained on. :func:`check_batch` refuses a batch that repeats a test input (or drops those rows, when asked) and a
batch whose content equals an active batch; :func:`without_test_rows` is the training side's last line of defence.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from models.contract import TechniqueSpec
from workflows.training.validation import DatasetError

SPACES = re.compile(r"\s+")
SHOWN = 3


def _normal(value: Any, kind: str) -> str:
    text = str(value)
    return SPACES.sub(" ", text).strip().casefold() if kind == "string" else text


def input_keys(frame: Any, spec: TechniqueSpec) -> list[str]:
    """One digest per row of its normalised input columns (the target left out)."""
    columns = spec.feature_columns()
    kinds = [spec.dataset.columns[c] for c in columns]
    rows = frame[columns].itertuples(index=False, name=None)
    return [
        hashlib.sha256("\x1f".join(_normal(v, k) for v, k in zip(row, kinds, strict=True)).encode()).hexdigest()
        for row in rows
    ]


def overlap_mask(frame: Any, test: Any, spec: TechniqueSpec) -> list[bool]:
    """For each row of ``frame``: whether its input is one of the test split's."""
    frozen = set(input_keys(test, spec))
    return [key in frozen for key in input_keys(frame, spec)]


@dataclass(frozen=True)
class Overlap:
    """How many rows of a batch repeat a test input, and the first few of them (their 1-based row numbers)."""

    rows: int
    first: list[tuple[int, str]]

    def describe(self) -> str:
        """``N row(s) (row 3: 'how do i …', …)``."""
        shown = ", ".join(f"row {n}: {text!r}" for n, text in self.first)
        more = ", …" if self.rows > len(self.first) else ""
        return f"{self.rows} row{'s' if self.rows != 1 else ''} ({shown}{more})"


def find_overlap(frame: Any, test: Any, spec: TechniqueSpec) -> tuple[Overlap, list[bool]]:
    """The rows of ``frame`` whose input is in ``test``, described, and the mask that finds them."""
    mask = overlap_mask(frame, test, spec)
    columns = spec.feature_columns()
    numbers = [n for n, hit in enumerate(mask, start=1) if hit]
    first = [(n, _preview(frame.iloc[n - 1][columns])) for n in numbers[:SHOWN]]
    return Overlap(len(numbers), first), mask


def _preview(row: Any) -> str:
    text = " | ".join(str(v) for v in row)
    return text if len(text) <= 60 else text[:57] + "…"


def check_batch(name: str, frame: Any, test: Any, spec: TechniqueSpec, drop: bool = False) -> tuple[Any, int]:
    """Refuse (or, with ``drop``, remove) the rows of a new batch that repeat an input of the frozen test split.

    Args:
        name: The batch's file name, for the message.
        frame: The validated batch.
        test: The frozen (or being frozen) test split.
        spec: The technique's contract (its input columns).
        drop: Drop the overlapping rows instead of refusing the batch.

    Returns:
        The batch without test inputs, and how many rows were dropped.

    Raises:
        DatasetError: The batch repeats test inputs and ``drop`` is off, or nothing is left after dropping them.
    """
    overlap, mask = find_overlap(frame, test, spec)
    if not overlap.rows:
        return frame, 0
    if not drop:
        raise DatasetError(
            f"{name}: {overlap.describe()} repeat inputs of the frozen test split; a model trained on them would be "
            "scored on questions it has seen, and the gate could be fooled",
            hint="remove those rows, or add the file with --drop-test-overlap to leave them out",
        )
    kept = frame[[not hit for hit in mask]].reset_index(drop=True)
    if kept.empty:
        raise DatasetError(f"{name}: every row repeats an input of the frozen test split; nothing is left to add")
    return kept, overlap.rows


def content_digest(frame: Any, spec: TechniqueSpec) -> str:
    """A digest of a batch's rows as a set: the same rows, in any order, give the same digest."""
    columns = list(spec.dataset.columns)
    rows = sorted("\x1f".join(map(str, row)) for row in frame[columns].itertuples(index=False, name=None))
    return hashlib.sha256("\x1e".join(rows).encode()).hexdigest()


def check_not_duplicate(name: str, frame: Any, active: Iterable[tuple[str, Any]], spec: TechniqueSpec) -> None:
    """Refuse a batch whose rows are exactly those of an active batch.

    Raises:
        DatasetError: Naming the batch it repeats.
    """
    digest = content_digest(frame, spec)
    for key, other in active:
        if content_digest(other, spec) == digest:
            raise DatasetError(
                f"{name}: holds exactly the rows of the active batch {key}; adding it again would count them twice",
                hint="add only new rows",
            )


def without_test_rows(train: Any, test: Any, spec: TechniqueSpec) -> tuple[Any, int]:
    """The training frame without rows whose input is in the test split, and how many there were (0 by construction).

    Adds refuse such rows, so this finds none unless a file was written to S3 around ``ctcd data add``.
    """
    mask = overlap_mask(train, test, spec)
    hits = sum(mask)
    if not hits:
        return train, 0
    return train[[not hit for hit in mask]].reset_index(drop=True), hits
