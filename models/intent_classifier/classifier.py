"""A linear SVM whose scores become probabilities through a softmax with one fitted temperature.

A linear SVM on TF-IDF features is the stronger linear model for intents (CLINC150: 92.8% against 91.9% for
logistic regression), but it has no probabilities.  ``predict_proba`` is the softmax of its decision scores
times ``temperature``, a single number fitted on out-of-fold scores to minimise the log loss, so confidences are
comparable across rows and the hand-off threshold can be chosen on them.
"""

from __future__ import annotations

from typing import Any


def softmax(scores: Any, temperature: float) -> Any:
    """Row-wise softmax of ``scores * temperature``."""
    import numpy as np

    z = np.asarray(scores, dtype=float) * temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(scores: Any, labels: Any, classes: Any) -> float:
    """The temperature that minimises the log loss of ``softmax(scores * t)`` on held-out rows."""
    import numpy as np
    from scipy.optimize import minimize_scalar

    index = {c: i for i, c in enumerate(classes)}
    truth = np.asarray([index[y] for y in labels])

    def loss(t: float) -> float:
        proba = softmax(scores, t)
        return float(-np.log(np.clip(proba[np.arange(len(truth)), truth], 1e-12, None)).mean())

    return float(minimize_scalar(loss, bounds=(0.1, 100.0), method="bounded").x)


def _base() -> tuple[type, ...]:
    from sklearn.base import BaseEstimator, ClassifierMixin

    return (ClassifierMixin, BaseEstimator)


class SoftmaxSVC(*_base()):  # type: ignore[misc]
    """``LinearSVC`` with ``predict_proba`` (the softmax of its scores at a fitted temperature).

    Args:
        C: The SVM's regularization (smaller is stronger).
        temperature: Multiplies the decision scores before the softmax.
        seed: The SVM's random state.
    """

    def __init__(self, C: float = 0.5, temperature: float = 1.0, seed: int = 0) -> None:  # noqa: N803 (sklearn's name)
        self.C, self.temperature, self.seed = C, temperature, seed

    def fit(self, features: Any, labels: Any) -> SoftmaxSVC:
        """Fit the SVM."""
        from sklearn.svm import LinearSVC

        self.svm_ = LinearSVC(C=self.C, random_state=self.seed).fit(features, labels)
        self.classes_ = self.svm_.classes_
        return self

    def decision_function(self, features: Any) -> Any:
        """The SVM's score for each class (two columns for two classes, as for more)."""
        import numpy as np

        scores = self.svm_.decision_function(features)
        return scores if scores.ndim == 2 else np.column_stack([-scores, scores])

    def predict_proba(self, features: Any) -> Any:
        """Class probabilities, columns in ``classes_`` order."""
        return softmax(self.decision_function(features), self.temperature)

    def predict(self, features: Any) -> Any:
        """The highest-scoring class."""
        return self.classes_[self.decision_function(features).argmax(axis=1)]
