"""Training of the invoice matcher: pair features, then histogram gradient boosting.

The learning rate is chosen by stratified cross-validation (average precision) on the training data only.
"""

from __future__ import annotations

from typing import Any

from models.contract import FitResult


def build(learning_rate: float, max_iter: int, seed: int) -> Any:
    """The served pipeline: a frame of raw pair columns in, match / no match out."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from models.invoice_matcher.features import pair_features

    booster = HistGradientBoostingClassifier(learning_rate=learning_rate, max_iter=max_iter, random_state=seed)
    return Pipeline([("features", FunctionTransformer(pair_features)), ("classifier", booster)])


def fit(frame: Any, hyperparameters: dict[str, Any], seed: int) -> FitResult:
    """Choose the learning rate by stratified k-fold cross-validation, then refit on all rows."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    grid = hyperparameters.get("learning_rate", [0.1])
    grid = [float(v) for v in (grid if isinstance(grid, list) else [grid])]
    max_iter = int(hyperparameters.get("max_iter", 200))
    folds = StratifiedKFold(n_splits=int(hyperparameters.get("cv_folds", 3)), shuffle=True, random_state=seed)
    x, y = frame.drop(columns=["is_match"]), frame["is_match"].astype(int)
    scores = {
        lr: float(cross_val_score(build(lr, max_iter, seed), x, y, cv=folds, scoring="average_precision").mean())
        for lr in grid
    }
    best = max(scores, key=lambda lr: scores[lr])
    model = build(best, max_iter, seed).fit(x, y)
    cv = {f"cv_average_precision_lr_{lr:g}": s for lr, s in scores.items()}
    cv["cv_average_precision"] = scores[best]
    return FitResult(model=model, params={"learning_rate": best, "max_iter": max_iter}, cv_scores=cv)
