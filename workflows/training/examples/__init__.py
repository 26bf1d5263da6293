"""Example data that ships with ctcd: CLINC150, real customer-style utterances for the ``intents`` task.

CLINC150 (Larson et al., "An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction", EMNLP
2019) is licensed CC BY 3.0 (``CLINC150-LICENSE`` beside this file); it ships here gzipped, unchanged. Its parts
become frames with the task's columns (``text``, ``intent``); out-of-scope utterances get the label ``oos``.
``ctcd data example clinc150 DIR`` writes the files the README's walkthrough adds.
"""

from __future__ import annotations

import gzip
import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

CLINC150 = Path(__file__).with_name("clinc150.json.gz")
OOS = "oos"


@lru_cache(maxsize=1)
def clinc150() -> dict[str, list[list[str]]]:
    """The "full" split of CLINC150: ``train``, ``val``, ``test`` and their ``oos_*`` parts, ``[text, intent]``."""
    return dict(json.loads(gzip.decompress(CLINC150.read_bytes())))


def part(name: str, with_oos: bool = False) -> Any:
    """One part (``train``, ``val`` or ``test``) as a frame; ``with_oos`` appends its out-of-scope rows."""
    import pandas as pd

    raw = clinc150()
    rows = list(raw[name]) + (list(raw[f"oos_{name}"]) if with_oos else [])
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


def write(folder: Path, intents: int = 150) -> tuple[Path, Path]:
    """``train.csv`` (train and val, with their out-of-scope rows) and ``test.jsonl`` (test, with its own).

    Args:
        folder: Where to write (created when missing).
        intents: How many of the 150 intents to keep (a fixed, seeded choice; fewer train faster).
    """
    import pandas as pd

    train = pd.concat([part("train", True), part("val", True)], ignore_index=True)
    test = part("test", True)
    if intents < 150:
        keep = set(subset(train, intents, 1)["intent"]) | {OOS}
        train, test = train[train["intent"].isin(keep)], test[test["intent"].isin(keep)]
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    test.to_json(folder / "test.jsonl", orient="records", lines=True, force_ascii=False)
    return folder / "train.csv", folder / "test.jsonl"
