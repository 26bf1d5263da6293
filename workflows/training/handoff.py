"""The hand-off to a person: a confidence threshold chosen on validation data, and what it does on the test split.

A technique with ``handoff`` in its ``technique.yaml`` answers only when its confidence (the probability of the
predicted class) reaches a threshold; below it the prediction is ``handoff``.  Rows labelled with the spec's
``out_of_scope_label`` are learned as a class of their own, and a prediction of that class is a hand-off too,
whatever its confidence (on CLINC150 that hands off 67% of out-of-scope questions at the same cost in in-scope
accuracy as the threshold alone, which handed off 61%).  The threshold is chosen on the in-scope rows of
out-of-fold predictions of the training data, never on the frozen test split: the lowest threshold whose
answered questions reach ``target_accuracy``, or the one that answers ``target_coverage`` of them.  The
registered model carries it in its MLmodel metadata (``ctcd_handoff``), which the predictor reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from models.contract import HandoffSpec

HANDOFF = "handoff"


@dataclass(frozen=True)
class Threshold:
    """A chosen threshold and what it gave on the validation rows.

    Attributes:
        threshold: Answer when the confidence is at least this.
        reason: Why this value (shown with every hand-off).
        validation_coverage: Share of validation rows answered.
        validation_accuracy: Accuracy on the answered validation rows.
        out_of_scope_label: The class whose prediction is always a hand-off (None when there is none).
    """

    threshold: float
    reason: str
    validation_coverage: float
    validation_accuracy: float
    out_of_scope_label: str | None = None

    def metadata(self) -> dict[str, Any]:
        """The MLmodel metadata entry the predictor reads."""
        return asdict(self)


def answered(predicted: Any, confidence: Any, threshold: float, out_of_scope: str | None) -> Any:
    """Which rows are answered: confident enough, and not predicted out of scope."""
    import numpy as np

    keep = np.asarray(confidence) >= threshold
    return keep if out_of_scope is None else keep & (np.asarray(predicted).astype(str) != out_of_scope)


def _ranked_confidence(predicted: Any, confidence: Any, out_of_scope: str | None) -> Any:
    """Confidence for ranking rows: a prediction of the out-of-scope class ranks below every other."""
    import numpy as np

    confidence = np.asarray(confidence, dtype=float)
    if out_of_scope is None:
        return confidence
    return np.where(np.asarray(predicted).astype(str) == out_of_scope, -1.0, confidence)


def choose(spec: HandoffSpec, labels: Any, proba: Any, classes: Any) -> Threshold:
    """The threshold that meets the spec's target on the in-scope validation rows (labels and probabilities).

    Raises:
        ValueError: There are no in-scope validation rows.
    """
    import numpy as np

    oos = spec.out_of_scope_label
    labels, proba = np.asarray(labels).astype(str), np.asarray(proba)
    scoped = labels != oos if oos is not None else np.ones(len(labels), dtype=bool)
    predicted = np.asarray(classes).astype(str)[proba.argmax(axis=1)][scoped]
    confidence = proba.max(axis=1)[scoped]
    correct = predicted == labels[scoped]
    if not len(confidence):
        raise ValueError("no in-scope validation rows to choose the hand-off threshold on")
    ranking = _ranked_confidence(predicted, confidence, oos)
    order = np.argsort(-ranking, kind="stable")
    ranked, hits = ranking[order], correct[order]
    accuracy = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    if spec.target_accuracy is not None:
        meets = np.flatnonzero(accuracy >= spec.target_accuracy)
        count = int(meets.max()) + 1 if len(meets) else 1
        why = f"the lowest confidence whose answers reach {spec.target_accuracy:.1%} accuracy on validation data"
    else:
        count = max(1, int(round(float(spec.target_coverage or 1) * len(ranked))))
        why = f"answers {spec.target_coverage:.1%} of validation questions"
    threshold = max(0.0, float(ranked[count - 1]))
    kept = answered(predicted, confidence, threshold, oos)
    return Threshold(
        threshold=round(threshold, 6),
        reason=why,
        validation_coverage=float(kept.mean()),
        validation_accuracy=float(correct[kept].mean()) if kept.any() else 0.0,
        out_of_scope_label=oos,
    )


def apply(
    labels: list[Any], confidence: list[float], threshold: float | None, out_of_scope: str | None = None
) -> list[Any]:
    """Labels with ``handoff`` where the confidence is below the threshold or the label is out of scope.

    All labels stay when there is no threshold.
    """
    if threshold is None:
        return list(labels)
    kept = answered(labels, confidence, threshold, out_of_scope)
    return [label if keep else HANDOFF for label, keep in zip(labels, kept, strict=True)]


def selective_metrics(
    truth: Any, predicted: Any, confidence: Any, threshold: float, out_of_scope: str | None
) -> dict[str, float]:
    """What the hand-off does on a labelled split (a row is answered when confident enough and not out of scope).

    Returns:
        ``coverage`` (share answered), ``answered_accuracy`` (accuracy on answered rows, out-of-scope ones
        answered count as wrong), ``in_scope_accuracy_with_handoff`` (in-scope rows answered right, over all
        in-scope rows) and, when the split has out-of-scope rows, ``oos_recall`` (their share handed off).
    """
    import numpy as np

    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    kept = answered(predicted, confidence, threshold, out_of_scope)
    oos = truth == out_of_scope if out_of_scope is not None else np.zeros(len(truth), dtype=bool)
    right = (truth == predicted) & ~oos
    values = {
        "coverage": float(kept.mean()),
        "answered_accuracy": float(right[kept].mean()) if kept.any() else 0.0,
        "in_scope_accuracy_with_handoff": float((right & kept)[~oos].mean()) if (~oos).any() else 0.0,
    }
    if oos.any():
        values["oos_recall"] = float((~kept[oos]).mean())
    return values


def risk_coverage(truth: Any, predicted: Any, confidence: Any, out_of_scope: str | None) -> tuple[Any, Any]:
    """Coverage and risk (error rate on answered rows) at every threshold, most confident first."""
    import numpy as np

    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    wrong = (truth != predicted) | (truth == out_of_scope if out_of_scope is not None else False)
    order = np.argsort(-_ranked_confidence(predicted, confidence, out_of_scope), kind="stable")
    errors = np.cumsum(wrong[order])
    answered = np.arange(1, len(order) + 1)
    return answered / len(order), errors / answered


def plot(truth: Any, predicted: Any, confidence: Any, threshold: float, out_of_scope: str | None, name: str) -> Any:
    """The risk-coverage curve with the chosen threshold marked, as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coverage, risk = risk_coverage(truth, predicted, confidence, out_of_scope)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot(coverage, risk, label=name)
    chosen = selective_metrics(truth, predicted, confidence, threshold, out_of_scope)
    ax.scatter(
        [chosen["coverage"]],
        [1 - chosen["answered_accuracy"]],
        color="red",
        zorder=3,
        label=f"threshold {threshold:.3f}",
    )
    ax.set_xlabel("coverage (share of questions answered)")
    ax.set_ylabel("risk (error rate on answered questions)")
    ax.set_title(f"{name}: risk-coverage on the frozen test split")
    ax.legend()
    fig.tight_layout()
    return fig
