"""Drift between a new batch and the training reference, per feature and for the labels.

- numbers: population stability index (PSI, 10 quantile bins of the reference) and the two-sample KS statistic;
- text: a KS test on token counts (length shift) and the share of tokens never seen in the reference (vocabulary);
- the label distribution: PSI over the classes.

Dates are reported but not judged (every month moves them).  The verdict compares each score with the
technique's thresholds (``drift:`` in ``technique.yaml``).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from models.contract import TechniqueSpec

EPS = 1e-4


def psi(reference: list[float], current: list[float], bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (quantile bins of the reference)."""
    import numpy as np

    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.allclose(cur, ref[0]) else 1.0
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(ref, edges)[0] / len(ref) + EPS
    actual = np.histogram(cur, edges)[0] / len(cur) + EPS
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def category_psi(reference: list[Any], current: list[Any]) -> float:
    """PSI over categories (classes present in either sample)."""
    ref, cur = Counter(map(str, reference)), Counter(map(str, current))
    total_ref, total_cur = sum(ref.values()), sum(cur.values())
    score = 0.0
    for key in set(ref) | set(cur):
        expected = ref[key] / total_ref + EPS
        actual = cur[key] / total_cur + EPS
        score += (actual - expected) * math.log(actual / expected)
    return score


def ks(reference: list[float], current: list[float]) -> float:
    """The two-sample Kolmogorov–Smirnov statistic."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(reference, current).statistic)


def _tokens(text: str) -> list[str]:
    return str(text).lower().split()


def text_scores(reference: list[str], current: list[str]) -> dict[str, float]:
    """Length shift (KS on token counts) and the out-of-vocabulary share of the current tokens."""
    vocabulary = {t for text in reference for t in _tokens(text)}
    tokens = [t for text in current for t in _tokens(text)]
    oov = sum(t not in vocabulary for t in tokens) / max(1, len(tokens))
    lengths = ks([len(_tokens(t)) for t in reference], [len(_tokens(t)) for t in current])
    return {"text_length_ks": lengths, "text_oov": oov}


def report(spec: TechniqueSpec, reference: Any, current: Any) -> dict[str, Any]:
    """Scores per feature and for the label, each against its threshold, and the overall verdict."""
    limits = spec.drift
    features: dict[str, dict[str, Any]] = {}
    for column, kind in spec.dataset.columns.items():
        if column == spec.target:
            continue
        ref, cur = list(reference[column]), list(current[column])
        if kind in ("number", "integer"):
            scores = {"psi": psi(ref, cur), "ks": ks(ref, cur)}
        elif kind == "string":
            scores = text_scores(ref, cur)
        else:
            features[column] = {"kind": kind, "scores": {}, "drifted": False, "note": "dates move every month"}
            continue
        breached = {k: v for k, v in scores.items() if v > getattr(limits, k)}
        features[column] = {"kind": kind, "scores": scores, "drifted": bool(breached), "breached": sorted(breached)}
    label = category_psi(list(reference[spec.target]), list(current[spec.target]))
    drifted = sorted([c for c, f in features.items() if f["drifted"]] + (["label"] if label > limits.label_psi else []))
    return {
        "technique": spec.name,
        "rows": {"reference": len(reference), "current": len(current)},
        "features": features,
        "label": {"psi": label, "drifted": label > limits.label_psi},
        "thresholds": limits.model_dump(),
        "drifted": bool(drifted),
        "drifted_features": drifted,
    }


def plot(result: dict[str, Any]) -> Any:
    """A bar chart of each score relative to its threshold (1.0 = at the threshold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, ratios = [], []
    for column, feature in result["features"].items():
        for name, value in feature["scores"].items():
            labels.append(f"{column}:{name}")
            ratios.append(value / result["thresholds"][name])
    labels.append("label:psi")
    ratios.append(result["label"]["psi"] / result["thresholds"]["label_psi"])
    fig, ax = plt.subplots(figsize=(8, max(3, len(labels) * 0.35)))
    ax.barh(labels, ratios, color=["tab:red" if r > 1 else "tab:blue" for r in ratios])
    ax.axvline(1.0, color="black", linestyle="--")
    ax.set_xlabel("score / threshold")
    ax.set_title(f"{result['technique']}: drift of the new batch ({'drifted' if result['drifted'] else 'stable'})")
    fig.tight_layout()
    return fig
