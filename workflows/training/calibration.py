"""How far a model's confidences can be trusted: expected calibration error and a reliability diagram.

The hand-off sends a question to a person when the model's confidence (the probability of its top class) is
below a threshold, so the threshold is only as good as the confidences.  Both figures are of that top-class
confidence, on the in-scope rows of the frozen test split:

- **ECE** (expected calibration error; Guo et al., 2017): confidences are put in 15 equal-width bins; ECE is
  the mean over bins of |accuracy − mean confidence|, each bin weighted by its share of rows.  0 is perfect.
  It is an estimate: with n rows its sampling error is of order sqrt(1/n) per bin, which is why few, wide bins
  are used (``tests/unit/test_calibration.py`` checks a calibrated simulation scores near 0).
- the **reliability diagram**: each bin's accuracy against its mean confidence, with the diagonal of a
  perfectly calibrated model and the share of rows per bin.
"""

from __future__ import annotations

from typing import Any

BINS = 15


def _bins(correct: Any, confidence: Any, bins: int) -> list[tuple[float, float, int]]:
    """``(mean confidence, accuracy, rows)`` of each non-empty equal-width bin of (0, 1]."""
    import numpy as np

    correct, confidence = np.asarray(correct, dtype=float), np.asarray(confidence, dtype=float)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    found = []
    for b in range(bins):
        inside = index == b
        if inside.any():
            found.append((float(confidence[inside].mean()), float(correct[inside].mean()), int(inside.sum())))
    return found


def expected_calibration_error(correct: Any, confidence: Any, bins: int = BINS) -> float:
    """ECE of top-class confidences: the row-weighted mean gap between each bin's accuracy and confidence.

    Args:
        correct: Per row, whether the top class was right.
        confidence: Per row, the top class's probability.
        bins: Equal-width bins over (0, 1].
    """
    found = _bins(correct, confidence, bins)
    rows = sum(n for _, _, n in found)
    return float(sum(n * abs(acc - conf) for conf, acc, n in found) / rows) if rows else 0.0


def reliability_plot(correct: Any, confidence: Any, title: str, bins: int = BINS) -> Any:
    """The reliability diagram as a matplotlib figure, its ECE in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = _bins(correct, confidence, bins)
    rows = sum(n for _, _, n in found) or 1
    fig, (ax, share) = plt.subplots(2, 1, figsize=(6, 7), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot([c for c, _, _ in found], [a for _, a, _ in found], marker="o", label="model")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}: ECE {expected_calibration_error(correct, confidence, bins):.3f}")
    ax.legend(loc="upper left")
    share.bar([c for c, _, _ in found], [n / rows for _, _, n in found], width=1 / bins)
    share.set_xlabel("confidence of the top class")
    share.set_ylabel("share of rows")
    fig.tight_layout()
    return fig
