"""CLINC150 figures of the intent techniques: in-scope accuracy, hand-off, out-of-scope recall, training time.

Each technique is fit exactly as a training run fits it (its ``fit`` and its ``technique.yaml`` hyper-parameters)
on CLINC150's 15,100 train rows (100 of them out of scope, learned as a class whose prediction hands off), and on
train + val (18,200; cross-validation then does val's job).  Scores are on
the 4,500 in-scope test rows and the 1,000 out-of-scope test rows.  The hand-off threshold comes from the
technique's ``handoff`` target on its own validation predictions, never from the test split.  Peers run side by
side: logistic regression on the same TF-IDF features (this technique's model before), and the published
figures of the dataset's paper (Larson et al. 2019) and of Casanueva et al. 2020 on the same split.

Run: ``python -m tests.bench.clinc150 [--techniques intent-classifier intent-spacy] [--train-only]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from tests import clinc150

PUBLISHED = {"SVM, Larson et al. 2019": 0.910, "USE+ConveRT, Casanueva et al. 2020": 0.9336}


def _score(technique: Any, model: Any, validation: Any) -> dict[str, float]:
    from workflows.training import handoff
    from workflows.training.calibration import expected_calibration_error

    test, oos = clinc150.part("test"), clinc150.part("test", with_oos=True)
    proba = model.predict_proba(test)
    right = model.classes_[proba.argmax(axis=1)] == test["intent"].to_numpy()
    figures = {"in_scope_accuracy": float(right.mean()), "ece": expected_calibration_error(right, proba.max(axis=1))}
    if technique.spec.handoff is None:
        return figures
    threshold = handoff.choose(technique.spec.handoff, *validation, model.classes_).threshold
    everything = model.predict_proba(oos)
    selective = handoff.selective_metrics(
        oos["intent"], model.classes_[everything.argmax(axis=1)], everything.max(axis=1), threshold, clinc150.OOS
    )
    return {**figures, "threshold": threshold, **selective}


def _fit(name: str, train: Any) -> dict[str, Any]:
    from models.contract import get

    technique = get(name)
    rows = train  # out-of-scope rows included, as a training run fits them
    start = time.perf_counter()
    result = technique.fit(rows, {}, seed=0)
    seconds = time.perf_counter() - start
    figures = _score(technique, result.model, result.validation)
    return {"technique": name, "train_rows": len(rows), "fit_seconds": round(seconds, 1), **figures}


def _peer_logistic(train: Any) -> dict[str, Any]:
    """The TF-IDF technique's features with logistic regression (C=10, what it shipped with before)."""
    from sklearn.linear_model import LogisticRegression

    from models.intent_classifier import train as tfidf

    model = tfidf.build(1.0, 0)  # normalization, the same TF-IDF features, then the classifier swapped
    model.steps[-1] = ("classifier", LogisticRegression(C=10, max_iter=200, tol=1e-3))
    train = train[train["intent"] != clinc150.OOS]  # it learned the intents alone, as it shipped
    start = time.perf_counter()
    model.fit(train[["text"]], train["intent"])
    seconds = time.perf_counter() - start
    test = clinc150.part("test")
    accuracy = float((model.predict(test) == test["intent"]).mean())
    return {
        "technique": "peer: TF-IDF + logistic regression",
        "fit_seconds": round(seconds, 1),
        "in_scope_accuracy": accuracy,
    }


GOALS = {"in-scope accuracy": 0.940, "oos recall": 0.65, "hand-off cost": 0.01, "ece": 0.03, "fit seconds": 90.0}


def goals(results: list[dict[str, Any]]) -> list[str]:
    """Each technique's figures on the train split beside the goals (fit on train only)."""
    lines = ["goals on CLINC150's test split, fit on train only:"]
    for r in results:
        cost = r["in_scope_accuracy"] - r.get("in_scope_accuracy_with_handoff", r["in_scope_accuracy"])
        checks = [
            ("in-scope accuracy", r["in_scope_accuracy"], r["in_scope_accuracy"] >= GOALS["in-scope accuracy"]),
            ("oos recall", r.get("oos_recall", 0.0), r.get("oos_recall", 0.0) >= GOALS["oos recall"]),
            ("hand-off cost", cost, cost <= GOALS["hand-off cost"]),
            ("ece", r["ece"], r["ece"] <= GOALS["ece"]),
            ("fit seconds", r["fit_seconds"], r["fit_seconds"] <= GOALS["fit seconds"]),
        ]
        said = ", ".join(
            f"{name} {value:.3f} (goal {GOALS[name]}: {'met' if ok else 'missed'})" for name, value, ok in checks
        )
        lines.append(f"  {r['technique']}: {said}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--techniques", nargs="+", default=["intent-classifier", "intent-spacy"])
    parser.add_argument("--train-only", action="store_true", help="skip the train + val runs")
    args = parser.parse_args()
    if not clinc150.available():
        print("CLINC150 is missing from workflows/training/examples/", file=sys.stderr)
        return 2
    import pandas as pd

    print(f"cores: {os.cpu_count()}; CLINC150 test: 4,500 in-scope + 1,000 out-of-scope rows")
    train, val = clinc150.part("train", with_oos=True), clinc150.part("val", with_oos=True)
    splits = {"train": train}
    if not args.train_only:
        splits["train+val"] = pd.concat([train, val], ignore_index=True)
    results = []
    for split, frame in splits.items():
        for name in args.techniques:
            results.append({"split": split, **_fit(name, frame)})
            print(json.dumps(results[-1]), flush=True)
        results.append({"split": split, **_peer_logistic(frame)})
        print(json.dumps(results[-1]), flush=True)
    print("\n".join(goals([r for r in results if r["split"] == "train" and "ece" in r])))
    for paper, accuracy in PUBLISHED.items():
        print(f"published: {paper}: {accuracy:.2%} (train split)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MiB")
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "clinc150.json").write_text(json.dumps({"results": results, "published": PUBLISHED}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
