"""Training of the intent classifier: spaCy-normalized text, word and character TF-IDF, logistic regression.

The regularization strength is chosen by stratified cross-validation on the training data only.  The
normalization step is stateless, so it runs once before cross-validation; the served model is one Pipeline
from a frame with a ``text`` column to intents (with probabilities for the confidence).
"""

from __future__ import annotations

from typing import Any

from models.contract import FitResult


def _vectorize_and_classify(c: float, seed: int) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(3, 4), min_df=3, max_features=20000, sublinear_tf=True
                ),
            ),
        ]
    )
    classifier = LogisticRegression(C=c, max_iter=200, tol=1e-3, random_state=seed)
    return Pipeline([("tfidf", features), ("classifier", classifier)])


def build(c: float, seed: int) -> Any:
    """The served pipeline: a frame with a ``text`` column in, intents out."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from models.intent_classifier.features import normalize_frame

    inner = _vectorize_and_classify(c, seed)
    return Pipeline([("normalize", FunctionTransformer(normalize_frame)), *inner.steps])


def fit(frame: Any, hyperparameters: dict[str, Any], seed: int) -> FitResult:
    """Choose C by stratified k-fold cross-validation on the training rows, then refit on all of them.

    The out-of-fold class probabilities of the chosen C are returned as the validation predictions (the
    hand-off threshold is chosen on them).
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from models.intent_classifier.features import normalize_many

    grid = hyperparameters.get("C", [8.0])
    grid = [float(c) for c in (grid if isinstance(grid, list) else [grid])]
    folds = StratifiedKFold(n_splits=int(hyperparameters.get("cv_folds", 3)), shuffle=True, random_state=seed)
    texts, labels = normalize_many(frame["text"]), np.asarray(frame["intent"])
    classes = np.unique(labels)
    out_of_fold = {
        c: cross_val_predict(
            _vectorize_and_classify(c, seed), texts, labels, cv=folds, n_jobs=2, method="predict_proba"
        )
        for c in grid
    }
    scores = {c: float((classes[p.argmax(axis=1)] == labels).mean()) for c, p in out_of_fold.items()}
    best = max(scores, key=lambda c: scores[c])
    model = build(best, seed).fit(frame[["text"]], labels)
    cv = {f"cv_accuracy_C_{c:g}": s for c, s in scores.items()}
    cv["cv_accuracy"] = scores[best]
    return FitResult(
        model=model,
        params={"C": best, "cv_folds": folds.n_splits},
        cv_scores=cv,
        validation=(labels, out_of_fold[best]),
    )
