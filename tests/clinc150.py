"""CLINC150 (Larson et al., EMNLP 2019; CC BY 3.0), the real intent data the tests and benchmarks use.

The dataset sits in ``shared/data/clinc150/`` beside the project.  Its parts become frames with the ``intents``
task's columns (``text``, ``intent``); out-of-scope utterances get the label ``oos``.  ``subset`` keeps a fixed,
seeded choice of intents and rows per intent so that ``make test`` stays quick; the benchmark uses everything.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

HOME = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clinc150"
OOS = "oos"


def available() -> bool:
    """Whether the dataset is beside the project."""
    return (HOME / "data_full.json").is_file()


@lru_cache(maxsize=1)
def _raw() -> dict[str, list[list[str]]]:
    return dict(json.loads((HOME / "data_full.json").read_text()))


def part(name: str, with_oos: bool = False) -> Any:
    """One part (``train``, ``val`` or ``test``) as a frame; ``with_oos`` appends its out-of-scope rows."""
    import pandas as pd

    rows = list(_raw()[name]) + (list(_raw()[f"oos_{name}"]) if with_oos else [])
    return pd.DataFrame(rows, columns=["text", "intent"])


def subset(frame: Any, intents: int, per_intent: int, seed: int = 0, oos_rows: int = 0) -> Any:
    """A fixed choice of ``intents`` intents (``per_intent`` rows each) plus ``oos_rows`` out-of-scope rows."""
    import pandas as pd

    chosen = sorted(random.Random(seed).sample(sorted(set(frame["intent"]) - {OOS}), intents))
    kept = [
        frame[frame["intent"] == i].sample(min(per_intent, int((frame["intent"] == i).sum())), random_state=seed)
        for i in chosen
    ]
    oos = frame[frame["intent"] == OOS]
    if oos_rows:
        kept.append(oos.sample(min(oos_rows, len(oos)), random_state=seed))
    return pd.concat(kept, ignore_index=True)


def write_csv(frame: Any, path: Path) -> Path:
    """Write a frame as the CSV a user would bring."""
    frame.to_csv(path, index=False)
    return path
