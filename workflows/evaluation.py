"""Scoring a model on the frozen test split: the primary metric, per-class metrics, a plot and a JSON report."""

from __future__ import annotations

from typing import Any

from models.contract import TechniqueSpec


def predictions(spec: TechniqueSpec, model: Any, frame: Any) -> tuple[Any, Any]:
    """Predicted labels and class probabilities for the feature columns of ``frame``."""
    features = frame[spec.feature_columns()]
    return model.predict(features), model.predict_proba(features)


def score(spec: TechniqueSpec, model: Any, test: Any) -> dict[str, Any]:
    """The test metrics of a model: the primary one under ``metric`` plus the others of its task.

    Returns:
        ``{"metric": float, "metrics": {name: float}, "per_class": {label: {precision, recall, f1, support}}}``
    """
    from sklearn import metrics as m

    y = test[spec.target]
    predicted, proba = predictions(spec, model, test)
    values: dict[str, float] = {
        "accuracy": float(m.accuracy_score(y, predicted)),
        "f1_macro": float(m.f1_score(y, predicted, average="macro")),
    }
    if spec.task == "binary":
        positive = proba[:, list(model.classes_).index(1)]
        values.update(
            roc_auc=float(m.roc_auc_score(y, positive)),
            average_precision=float(m.average_precision_score(y, positive)),
            brier=float(m.brier_score_loss(y, positive)),
        )
    values["log_loss"] = float(m.log_loss(y, proba, labels=model.classes_))
    report = m.classification_report(y, predicted, output_dict=True, zero_division=0)
    per_class = {str(k): v for k, v in report.items() if k not in ("accuracy", "macro avg", "weighted avg")}
    return {"metric": values[spec.metric.name], "metrics": values, "per_class": per_class}


def plot(spec: TechniqueSpec, model: Any, test: Any) -> Any:
    """A confusion matrix (multiclass) or a calibration curve (binary), as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay

    predicted, proba = predictions(spec, model, test)
    if spec.task == "binary":
        fig, ax = plt.subplots(figsize=(6, 6))
        CalibrationDisplay.from_predictions(test[spec.target], proba[:, 1], n_bins=10, ax=ax, name=spec.name)
        ax.set_title(f"{spec.name}: calibration on the frozen test split")
        return fig
    size = max(8, len(model.classes_) // 4)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        test[spec.target],
        predicted,
        ax=ax,
        include_values=False,
        xticks_rotation="vertical",
        normalize="true",
        colorbar=False,
    )
    ax.set_title(f"{spec.name}: confusion matrix (row-normalized) on the frozen test split")
    fig.tight_layout()
    return fig
