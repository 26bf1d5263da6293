"""The hand-off to a person: a confidence threshold chosen on validation data, and what it does on the test split.

A technique with ``handoff`` in its ``technique.yaml`` answers only when its confidence (the probability of the
predicted class) reaches a threshold; below it the prediction is ``handoff``.  The threshold is chosen on
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
    """

    threshold: float
    reason: str
    validation_coverage: float
    validation_accuracy: float

    def metadata(self) -> dict[str, Any]:
        """The MLmodel metadata entry the predictor reads."""
        return asdict(self)


def _confidence(labels: Any, proba: Any, classes: Any) -> tuple[Any, Any]:
    """Each row's confidence and whether its most probable class is right."""
    import numpy as np

    best = np.asarray(proba).argmax(axis=1)
    predicted = np.asarray(classes)[best]
    return np.asarray(proba).max(axis=1), predicted.astype(str) == np.asarray(labels).astype(str)


def choose(spec: HandoffSpec, labels: Any, proba: Any, classes: Any) -> Threshold:
    """The threshold that meets the spec's target on validation rows (labels and class probabilities).

    Raises:
        ValueError: There are no validation rows.
    """
    import numpy as np

    confidence, correct = _confidence(labels, proba, classes)
    if not len(confidence):
        raise ValueError("no validation rows to choose the hand-off threshold on")
    order = np.argsort(-confidence, kind="stable")
    ranked, hits = confidence[order], correct[order]
    accuracy = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    if spec.target_accuracy is not None:
        meets = np.flatnonzero(accuracy >= spec.target_accuracy)
        answered = int(meets.max()) + 1 if len(meets) else 1
        why = f"the lowest confidence whose answers reach {spec.target_accuracy:.1%} accuracy on validation data"
    else:
        answered = max(1, int(round(float(spec.target_coverage or 1) * len(ranked))))
        why = f"answers {spec.target_coverage:.1%} of validation questions"
    threshold = float(ranked[answered - 1])
    answered = int((confidence >= threshold).sum())
    return Threshold(
        threshold=round(threshold, 6),
        reason=why,
        validation_coverage=answered / len(confidence),
        validation_accuracy=float(correct[confidence >= threshold].mean()),
    )


def apply(labels: list[Any], confidence: list[float], threshold: float | None) -> list[Any]:
    """Labels with ``handoff`` where the confidence is below the threshold (all labels when there is none)."""
    if threshold is None:
        return list(labels)
    return [label if conf >= threshold else HANDOFF for label, conf in zip(labels, confidence, strict=True)]


def selective_metrics(
    truth: Any, predicted: Any, confidence: Any, threshold: float, out_of_scope: str | None
) -> dict[str, float]:
    """What the hand-off does on a labelled split.

    Returns:
        ``coverage`` (share answered), ``answered_accuracy`` (accuracy on answered rows, out-of-scope ones
        answered count as wrong), ``in_scope_accuracy_with_handoff`` (in-scope rows answered right, over all
        in-scope rows) and, when the split has out-of-scope rows, ``oos_recall`` (their share handed off).
    """
    import numpy as np

    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    answered = np.asarray(confidence) >= threshold
    oos = truth == out_of_scope if out_of_scope is not None else np.zeros(len(truth), dtype=bool)
    right = (truth == predicted) & ~oos
    values = {
        "coverage": float(answered.mean()),
        "answered_accuracy": float(right[answered].mean()) if answered.any() else 0.0,
        "in_scope_accuracy_with_handoff": float((right & answered)[~oos].mean()) if (~oos).any() else 0.0,
    }
    if oos.any():
        values["oos_recall"] = float((~answered[oos]).mean())
    return values


def risk_coverage(truth: Any, predicted: Any, confidence: Any, out_of_scope: str | None) -> tuple[Any, Any]:
    """Coverage and risk (error rate on answered rows) at every threshold, most confident first."""
    import numpy as np

    truth, predicted = np.asarray(truth).astype(str), np.asarray(predicted).astype(str)
    wrong = (truth != predicted) | (truth == out_of_scope if out_of_scope is not None else False)
    order = np.argsort(-np.asarray(confidence), kind="stable")
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
