"""CLINC150 (Larson et al., EMNLP 2019; CC BY 3.0), the real intent data the tests and benchmarks use.

The dataset ships inside the package (:mod:`workflows.training.examples`).  Its parts become frames with the ``intents``
task's columns (``text``, ``intent``); out-of-scope utterances get the label ``oos``.  ``subset`` keeps a fixed,
seeded choice of intents and rows per intent so that ``make test`` stays quick; the benchmark uses everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflows.training import examples

OOS = examples.OOS
part = examples.part
subset = examples.subset


def available() -> bool:
    """Whether the dataset is there: it ships inside the package."""
    return examples.CLINC150.is_file()


def write_csv(frame: Any, path: Path) -> Path:
    """Write a frame as the CSV a user would bring."""
    frame.to_csv(path, index=False)
    return path
