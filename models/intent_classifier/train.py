"""Training of the intent classifier: normalized text, TF-IDF and pretrained embeddings, a linear SVM.

The features are spaCy-normalized word and character TF-IDF with WordLlama sentence embeddings beside them
(:mod:`.embeddings`, shipped inside the ``wordllama`` wheel).

The regularization strength is chosen by stratified cross-validation on the training data only, and the
softmax temperature that turns the SVM's scores into probabilities is fitted on the same out-of-fold scores.
The normalization step is stateless, so it runs once before cross-validation, and the features do not depend
on the regularization, so each fold's are fitted once and every candidate SVM is fitted on them.  The served
model is one Pipeline from a frame with a ``text`` column to intents (with probabilities for the confidence).
"""

from __future__ import annotations

from typing import Any

from models.contract import FitResult


def _features(dims: int = 64) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    from models.intent_classifier.embeddings import Embeddings

    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), min_df=3, max_features=20000, sublinear_tf=True)
    parts: list[tuple[str, Any]] = [("words", words), ("chars", chars)]
    if dims:  # 0 leaves the pretrained embeddings out (TF-IDF alone: a faster, weaker model)
        parts.append(("wordllama", Embeddings(scale=1.0, dims=dims)))
    return FeatureUnion(parts)


def _out_of_fold_scores(texts: Any, labels: Any, grid: list[float], folds: Any, seed: int, dims: int) -> Any:
    """Each candidate C's out-of-fold SVM scores, columns in ``np.unique(labels)`` order.

    A class missing from a fold's training rows scores far below every other on that fold's held-out rows.
    """
    import numpy as np

    from models.intent_classifier.classifier import SoftmaxSVC

    classes = np.unique(labels)
    scores = {c: np.full((len(labels), len(classes)), -1e3) for c in grid}
    for fitted, held in folds.split(texts, labels):
        features = _features(dims)
        train, test = features.fit_transform(texts[fitted]), features.transform(texts[held])
        for c in grid:
            svm = SoftmaxSVC(C=c, seed=seed).fit(train, labels[fitted])
            scores[c][np.ix_(held, np.searchsorted(classes, svm.classes_))] = svm.decision_function(test)
    return scores


def build(c: float, seed: int, temperature: float = 1.0, dims: int = 64) -> Any:
    """The served pipeline: a frame with a ``text`` column in, intents out."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from models.intent_classifier.classifier import SoftmaxSVC
    from models.intent_classifier.features import normalize_frame

    return Pipeline(
        [
            ("normalize", FunctionTransformer(normalize_frame)),
            ("tfidf", _features(dims)),
            ("classifier", SoftmaxSVC(C=c, temperature=temperature, seed=seed)),
        ]
    )


def fit(frame: Any, hyperparameters: dict[str, Any], seed: int) -> FitResult:
    """Choose C by stratified k-fold cross-validation on the training rows, then refit on all of them.

    The out-of-fold scores of the chosen C fit the softmax temperature; their probabilities are returned as
    the validation predictions (the hand-off threshold is chosen on them).
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from models.intent_classifier.classifier import fit_temperature, softmax
    from models.intent_classifier.features import normalize_many

    grid = hyperparameters.get("C", [0.5])
    grid = [float(c) for c in (grid if isinstance(grid, list) else [grid])]
    folds = StratifiedKFold(n_splits=int(hyperparameters.get("cv_folds", 3)), shuffle=True, random_state=seed)
    texts, labels = np.asarray(normalize_many(frame["text"]), dtype=object), np.asarray(frame["intent"])
    dims = int(hyperparameters.get("embedding_dims", 64))
    classes = np.unique(labels)
    scores = _out_of_fold_scores(texts, labels, grid, folds, seed, dims)
    accuracy = {c: float((classes[s.argmax(axis=1)] == labels).mean()) for c, s in scores.items()}
    best = max(accuracy, key=lambda c: accuracy[c])
    temperature = fit_temperature(scores[best], labels, classes)
    model = build(best, seed, temperature, dims).fit(frame[["text"]], labels)
    cv = {f"cv_accuracy_C_{c:g}": a for c, a in accuracy.items()}
    cv["cv_accuracy"] = accuracy[best]
    return FitResult(
        model=model,
        params={"C": best, "cv_folds": folds.n_splits, "temperature": round(temperature, 4), "embedding_dims": dims},
        cv_scores=cv,
        validation=(labels, softmax(scores[best], temperature)),
    )
