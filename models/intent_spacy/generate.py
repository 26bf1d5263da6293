"""Sample data: the ``intents`` task's utterances, shared with every technique of that task."""

from __future__ import annotations

from typing import Any


def generate(rows: int, seed: int = 0, batch: int = 0) -> Any:
    """The same sample utterances as the task's other techniques (they share one dataset)."""
    from models.intent_classifier.generate import generate as utterances

    return utterances(rows, seed, batch)
