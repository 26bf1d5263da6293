"""Scoring a model on the frozen test split: the primary metric, per-class metrics, calibration, plots, a report."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, NamedTuple

from models.contract import TechniqueSpec
from workflows.training import calibration

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_\-. :/]")
MAX_METRIC_NAME = 250


def metric_names(prefix: str, labels: Iterable[Any]) -> dict[str, str]:
    """A valid, distinct MLflow metric name for each label: ``prefix`` + the label in MLflow's alphabet.

    MLflow allows only ASCII letters, digits and ``_ - . : /`` and spaces.  Accents are dropped
    (``é`` → ``e``), anything else becomes ``_``; a label that had to change, or that would collide with
    another, gets a short hash of the original so that no two labels share a name.

    Returns:
        ``{label: metric name}``, in the order given (log it next to the metrics to read them back).
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for label in map(str, labels):
        ascii_ = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
        clean = _NOT_ALLOWED.sub("_", ascii_).strip() or "_"
        name = f"{prefix}{clean}"[:MAX_METRIC_NAME]
        if clean != label or name in taken:
            suffix = "_" + hashlib.sha256(label.encode()).hexdigest()[:8]
            name = f"{prefix}{clean}"[: MAX_METRIC_NAME - len(suffix)] + suffix
        taken.add(name)
        names[label] = name
    return names


class Answers(NamedTuple):
    """A model's answers on a labelled split, computed once and read by every metric and plot.

    Attributes:
        truth: The true labels, row by row.
        predicted: The model's labels.
        proba: The class probabilities, columns in ``classes`` order.
        classes: The model's classes.
        scoped: True for the rows that are not labelled out of scope.
    """

    truth: Any
    predicted: Any
    proba: Any
    classes: list[Any]
    scoped: Any

    def in_scope(self) -> Answers:
        """The same answers on the in-scope rows only."""
        keep = self.scoped
        return Answers(self.truth[keep], self.predicted[keep], self.proba[keep], self.classes, self.scoped[keep])


def predictions(spec: TechniqueSpec, model: Any, frame: Any) -> tuple[Any, Any]:
    """Predicted labels and class probabilities for the feature columns of ``frame``."""
    features = frame[spec.feature_columns()]
    return model.predict(features), model.predict_proba(features)


def answers(spec: TechniqueSpec, model: Any, frame: Any) -> Answers:
    """The model's answers on every row of ``frame`` (one pass of the model)."""
    import numpy as np

    predicted, proba = predictions(spec, model, frame)
    truth = np.asarray(frame[spec.target])
    label = spec.out_of_scope_label()
    scoped = np.ones(len(truth), dtype=bool) if label is None else truth.astype(str) != label
    return Answers(truth, np.asarray(predicted), np.asarray(proba), list(model.classes_), scoped)


def score(spec: TechniqueSpec, model: Any, test: Any, threshold: float | None = None) -> dict[str, Any]:
    """The test metrics of a model (see :func:`score_answers`)."""
    return score_answers(spec, answers(spec, model, test), threshold)


def score_answers(spec: TechniqueSpec, every: Answers, threshold: float | None = None) -> dict[str, Any]:
    """The test metrics of a model's answers: the primary one under ``metric`` plus the others of its problem.

    The classification metrics are over in-scope rows; with a hand-off ``threshold`` the selective ones
    (coverage, answered accuracy, out-of-scope recall) are over every row.

    Returns:
        ``{"metric": float, "metrics": {name: float}, "per_class": {label: {precision, recall, f1, support}}}``

    Raises:
        ValueError: The primary metric is a hand-off one and the model has no threshold.
    """
    from sklearn import metrics as m

    y, predicted, proba, classes, _ = every.in_scope()
    values: dict[str, float] = {
        "accuracy": float(m.accuracy_score(y, predicted)),
        "f1_macro": float(m.f1_score(y, predicted, average="macro")),
    }
    if spec.problem == "binary":
        positive = proba[:, classes.index(1)]
        values.update(
            roc_auc=float(m.roc_auc_score(y, positive)),
            average_precision=float(m.average_precision_score(y, positive)),
            brier=float(m.brier_score_loss(y, positive)),
        )
    values["log_loss"] = float(m.log_loss(y, proba, labels=classes))
    values["ece"] = calibration.expected_calibration_error(predicted == y, proba.max(axis=1))
    if threshold is not None:
        values.update(selective(spec, every, threshold))
    if spec.metric.name not in values:
        raise ValueError(f"{spec.name}: metric {spec.metric.name!r} needs a model with a hand-off threshold")
    report = m.classification_report(y, predicted, output_dict=True, zero_division=0)
    per_class = {str(k): v for k, v in report.items() if k not in ("accuracy", "macro avg", "weighted avg")}
    return {"metric": values[spec.metric.name], "metrics": values, "per_class": per_class}


def selective(spec: TechniqueSpec, every: Answers, threshold: float) -> dict[str, float]:
    """Coverage, answered accuracy and out-of-scope recall of the hand-off on every row."""
    from workflows.training import handoff

    label = spec.out_of_scope_label()
    return handoff.selective_metrics(every.truth, every.predicted, every.proba.max(axis=1), threshold, label)


def reliability_plot(spec: TechniqueSpec, every: Answers) -> Any:
    """The reliability diagram of the top-class confidence on the in-scope rows."""
    scoped = every.in_scope()
    correct = scoped.predicted == scoped.truth
    return calibration.reliability_plot(correct, scoped.proba.max(axis=1), f"{spec.name} on the frozen test split")


def risk_coverage_plot(spec: TechniqueSpec, every: Answers, threshold: float) -> Any:
    """The risk-coverage curve of the answers on every row, the threshold marked."""
    from workflows.training import handoff

    label = spec.out_of_scope_label()
    return handoff.plot(every.truth, every.predicted, every.proba.max(axis=1), threshold, label, spec.name)


def plot(spec: TechniqueSpec, every: Answers) -> Any:
    """A confusion matrix (multiclass) or a calibration curve (binary) of the in-scope answers, as a figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay

    scoped = every.in_scope()
    if spec.problem == "binary":
        fig, ax = plt.subplots(figsize=(6, 6))
        positive = scoped.proba[:, scoped.classes.index(1)]
        CalibrationDisplay.from_predictions(scoped.truth, positive, n_bins=10, ax=ax, name=spec.name)
        ax.set_title(f"{spec.name}: calibration on the frozen test split")
        return fig
    labels = _readable_labels(scoped.truth, scoped.predicted, scoped.classes)
    classes = len(labels)
    size = min(24, max(8, classes // 3))
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        scoped.truth,
        scoped.predicted,
        labels=labels,
        ax=ax,
        include_values=classes <= 20,
        values_format=".2f",
        xticks_rotation="vertical",
        normalize="true",
        colorbar=False,
    )
    some = "" if classes == len(scoped.classes) else f"\nthe {classes} most confused of {len(scoped.classes)} classes"
    ax.set_title(f"{spec.name}: confusion matrix (row-normalized) on the frozen test split{some}")
    font = max(4.0, min(10.0, 900 / max(classes, 1) / 3))  # 150 classes still fit, one label per row
    ax.set_xticks(ax.get_xticks(), [_short(t.get_text()) for t in ax.get_xticklabels()], rotation=90, fontsize=font)
    ax.set_yticks(ax.get_yticks(), [_short(t.get_text()) for t in ax.get_yticklabels()], fontsize=font)
    fig.tight_layout()
    return fig


READABLE_CLASSES = 30


def most_confused(every: Answers, top: int = 50) -> Any:
    """The pairs of in-scope classes mixed up most: true, predicted, rows, share of the true class."""
    import pandas as pd

    scoped = every.in_scope()
    frame = pd.DataFrame({"true": [str(t) for t in scoped.truth], "predicted": [str(p) for p in scoped.predicted]})
    sizes = frame["true"].value_counts()
    wrong = frame[frame["true"] != frame["predicted"]]
    pairs = wrong.groupby(["true", "predicted"]).size().rename("rows").reset_index()
    pairs["share_of_true"] = (pairs["rows"] / pairs["true"].map(sizes)).round(4)
    return pairs.sort_values(["rows", "share_of_true"], ascending=False).head(top).reset_index(drop=True)


def _readable_labels(truth: Any, predicted: Any, classes: list[Any]) -> list[Any]:
    """Every class when few; else the classes of the most frequent confusions, up to ``READABLE_CLASSES``."""
    if len(classes) <= READABLE_CLASSES:
        return classes
    from collections import Counter

    counts = Counter((t, p) for t, p in zip(truth, predicted, strict=True) if t != p)
    chosen: list[Any] = []
    for (t, p), _ in counts.most_common():
        for label in (t, p):
            if label in classes and label not in chosen and len(chosen) < READABLE_CLASSES:
                chosen.append(label)
    return sorted(chosen, key=str) or classes[:READABLE_CLASSES]


def _short(label: str, limit: int = 32) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
