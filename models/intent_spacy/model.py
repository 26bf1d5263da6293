"""A scikit-learn-shaped wrapper around a spaCy text classifier, so that ctcd logs, gates and serves it like any model.

``fit`` trains spaCy's ``textcat`` (exclusive classes) from a blank English pipeline — no pretrained weights,
nothing downloaded — and keeps the epoch that scores best on a held-out validation share.  ``predict_proba``
returns the class scores in ``classes_`` order.  Pickling stores the pipeline as spaCy's own bytes.
"""

from __future__ import annotations

import random
from typing import Any

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "bow": {
        "@architectures": "spacy.TextCatBOW.v3",
        "exclusive_classes": True,
        "ngram_size": 2,
        "no_output_layer": False,
    },
    "ensemble": {
        "@architectures": "spacy.TextCatEnsemble.v2",
        "linear_model": {
            "@architectures": "spacy.TextCatBOW.v3",
            "exclusive_classes": True,
            "ngram_size": 2,
            "no_output_layer": False,
        },
        "tok2vec": {
            "@architectures": "spacy.Tok2Vec.v2",
            "embed": {
                "@architectures": "spacy.MultiHashEmbed.v2",
                "width": 64,
                "rows": [2000, 2000, 1000, 1000],
                "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                "include_static_vectors": False,
            },
            "encode": {
                "@architectures": "spacy.MaxoutWindowEncoder.v2",
                "width": 64,
                "window_size": 1,
                "maxout_pieces": 3,
                "depth": 2,
            },
        },
    },
}


def _pipeline(architecture: str, labels: list[str], length: int) -> Any:
    """A blank English pipeline with one untrained ``textcat`` whose hashed feature table has ``length`` rows.

    The optimizer updates the whole table (``length`` × classes weights) on every batch, so ``length`` and the
    batch size set the training time.
    """
    import copy

    import spacy

    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    model = copy.deepcopy(ARCHITECTURES[architecture])
    (model.get("linear_model") or model)["length"] = length
    nlp = spacy.blank("en")
    textcat: Any = nlp.add_pipe("textcat", config={"model": model})
    for label in labels:
        textcat.add_label(label)
    return nlp


def _estimator_base() -> tuple[type, ...]:
    from sklearn.base import BaseEstimator, ClassifierMixin

    return (ClassifierMixin, BaseEstimator)


class SpacyTextClassifier(*_estimator_base()):  # type: ignore[misc]
    """spaCy's text classifier behind ``fit`` / ``predict`` / ``predict_proba`` over a frame's ``text`` column.

    Args:
        architecture: ``bow`` (hashed unigram and bigram features, a linear layer) or ``ensemble`` (that plus a
            small CNN over the tokens).
        epochs: Passes over the training rows at most.
        patience: Stop after this many epochs without a better validation score.
        batch_size: Rows per update.
        length: Rows of the hashed feature table.
        learn_rate: Adam's learning rate.
        seed: Seeds the shuffling and the weights.
    """

    def __init__(
        self,
        architecture: str = "bow",
        epochs: int = 12,
        patience: int = 3,
        batch_size: int = 256,
        length: int = 2**14,
        learn_rate: float = 0.001,
        seed: int = 0,
    ) -> None:
        self.architecture, self.epochs, self.patience, self.seed = architecture, epochs, patience, seed
        self.batch_size, self.length, self.learn_rate = batch_size, length, learn_rate
        self.nlp: Any = None
        self.history: list[float] = []

    def fit(self, texts: list[str], labels: list[str], validation: tuple[list[str], list[str]]) -> SpacyTextClassifier:  # type: ignore[override]
        """Train, keeping the weights of the epoch with the best accuracy on ``validation`` (texts, labels)."""
        import numpy as np
        from spacy import util
        from spacy.training import Example

        util.fix_random_seed(self.seed)  # type: ignore[attr-defined]
        self.classes_ = np.unique(np.asarray(labels, dtype=object).astype(str))
        self.nlp = _pipeline(self.architecture, list(self.classes_), self.length)
        negatives = dict.fromkeys(map(str, self.classes_), 0.0)
        examples = [
            Example.from_dict(self.nlp.make_doc(text), {"cats": {**negatives, str(label): 1.0}})
            for text, label in zip(texts, labels, strict=True)
        ]
        optimizer = self.nlp.initialize(lambda: examples[:500])
        optimizer.learn_rate = self.learn_rate
        best, best_bytes, waited, shuffle = -1.0, b"", 0, random.Random(self.seed)
        for _ in range(self.epochs):
            shuffle.shuffle(examples)
            for batch in util.minibatch(examples, size=self.batch_size):  # type: ignore[no-untyped-call]
                self.nlp.update(batch, sgd=optimizer, drop=0.2)
            score = float((self.predict(validation[0]) == np.asarray(validation[1]).astype(str)).mean())
            self.history.append(score)
            if score > best:
                best, best_bytes, waited = score, self.nlp.to_bytes(), 0
            else:
                waited += 1
                if waited >= self.patience:
                    break
        self.nlp.from_bytes(best_bytes)
        return self

    def predict_proba(self, frame: Any) -> Any:
        """Class probabilities, one row per text, columns in ``classes_`` order."""
        import numpy as np

        texts = [str(t) for t in (frame["text"] if hasattr(frame, "columns") else frame)]
        scores = [doc.cats for doc in self.nlp.pipe(texts, batch_size=256)]
        proba = np.asarray([[cats[c] for c in self.classes_] for cats in scores], dtype=float)
        temperature = getattr(self, "temperature_", 1.0)  # models pickled before it was fitted have none
        if temperature == 1.0 or not len(proba):
            return proba
        from models.intent_classifier.classifier import softmax

        return softmax(np.log(np.clip(proba, 1e-12, None)), temperature)

    def predict(self, frame: Any) -> Any:
        """The most probable class of each text."""
        return self.classes_[self.predict_proba(frame).argmax(axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle spaCy's bytes, not its objects."""
        state = {k: v for k, v in self.__dict__.items() if k != "nlp"}
        state["nlp_bytes"] = self.nlp.to_bytes() if self.nlp is not None else b""
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the pipeline from its bytes."""
        raw = state.pop("nlp_bytes")
        self.__dict__.update(state)
        self.nlp = _pipeline(self.architecture, list(self.classes_), self.length).from_bytes(raw) if raw else None
