"""Text normalization with spaCy's blank English tokenizer (no model download needed)."""

from __future__ import annotations

import unicodedata
from typing import Any

_NLP: Any = None


def _nlp() -> Any:
    global _NLP
    if _NLP is None:
        import spacy

        _NLP = spacy.blank("en")
    return _NLP


def _fold(text: Any) -> str:
    return unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()


def normalize_many(texts: Any) -> list[str]:
    """Normalized utterances, joined back with single spaces.

    spaCy token norms (``can't`` -> ``can not``), lower case, accents folded, punctuation and spaces dropped.
    """
    docs = _nlp().tokenizer.pipe(_fold(t) for t in texts)
    return [" ".join(t.norm_ for t in doc if not (t.is_punct or t.is_space)) for doc in docs]


def normalize_frame(frame: Any) -> list[str]:
    """Normalize the ``text`` column of a frame (or any sequence of strings)."""
    texts = frame["text"] if hasattr(frame, "columns") else frame
    return normalize_many(texts)
