"""The technique contract and the two shipped techniques' generators."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.contract import Technique, TechniqueSpec, UnknownTechnique, _check_tasks, discover, get, load_spec
from models.intent_classifier.generate import intents
from workflows.training.validation import parse


def test_the_techniques_are_discovered_from_their_folders() -> None:
    assert sorted(discover()) == ["intent-classifier", "intent-spacy", "invoice-matcher"]
    assert get("invoice-matcher").spec.metric.direction == "maximize"


def test_two_techniques_of_one_task_share_its_dataset() -> None:
    assert get("intent-classifier").dataset == get("intent-spacy").dataset == "intents"
    assert get("invoice-matcher").dataset == "invoice-matcher"  # no task: its own


def test_techniques_of_one_task_must_agree_on_data_and_signature(tmp_path: Path) -> None:
    base = get("intent-classifier").spec
    other = base.model_copy(update={"name": "other", "target": "text"})
    found = {t.name: t for t in (Technique(base, "a"), Technique(other, "b"))}
    with pytest.raises(
        ValueError, match="'intent-classifier' and 'other' solve task 'intents' but declare different 'target'"
    ):
        _check_tasks(found)


def test_a_hand_off_metric_needs_a_hand_off(tmp_path: Path) -> None:
    spec = get("invoice-matcher").spec.model_dump()
    spec["metric"] = {"name": "coverage", "direction": "maximize"}
    with pytest.raises(ValueError, match="metric 'coverage' needs a handoff section"):
        TechniqueSpec.model_validate(spec)
    spec["handoff"] = {"target_coverage": 0.9}
    spec["metric"] = {"name": "oos_recall", "direction": "maximize"}
    with pytest.raises(ValueError, match="metric 'oos_recall' needs handoff.out_of_scope_label"):
        TechniqueSpec.model_validate(spec)


def test_unknown_technique_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownTechnique,
        match=r"unknown technique 'intent' \(known: intent-classifier, intent-spacy, invoice-matcher\)",
    ):
        get("intent")


def test_spec_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "technique.yaml"
    path.write_text("name: Bad_Name\n")
    with pytest.raises(ValueError, match=rf"{path}: .*DNS-1123"):
        load_spec(path)


@pytest.mark.parametrize("name", ["intent-classifier", "intent-spacy", "invoice-matcher"])
def test_generated_data_meets_the_contract_and_is_deterministic(name: str) -> None:
    technique = get(name)
    first = technique.generate(300, seed=3, batch=0)
    assert list(first.columns) == list(technique.spec.dataset.columns)
    parse(f"{name}.csv", first.to_csv(index=False).encode(), technique.spec)
    assert first.equals(technique.generate(300, seed=3, batch=0))
    assert not first.equals(technique.generate(300, seed=3, batch=1))


def test_intent_generator_covers_about_80_intents() -> None:
    labels = intents()
    assert 75 <= len(labels) <= 85 and len(set(labels)) == len(labels)
    frame = get("intent-classifier").generate(10000, seed=0)
    assert frame["intent"].nunique() == len(labels)
    assert frame["text"].nunique() > 7000  # varied, not a handful of templates


def test_matcher_generator_has_hard_negatives() -> None:
    frame = get("invoice-matcher").generate(600, seed=1)
    assert 0.3 < frame["is_match"].mean() < 0.4
    same_customer = frame[frame["payer_name"].str.upper() == frame["customer_name"].str.upper()]
    assert (same_customer["is_match"] == 0).any()  # the same customer's other invoices are negatives


def test_the_intent_classifier_s_shared_fold_features_give_scikit_learn_s_out_of_fold_scores() -> None:
    """Fitting each fold's features once for every candidate C must score as refitting them per C does."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import Pipeline

    from models.intent_classifier import train
    from models.intent_classifier.classifier import SoftmaxSVC
    from models.intent_classifier.features import normalize_many
    from models.intent_classifier.generate import generate

    frame = generate(600, seed=1, batch=0)
    texts = np.asarray(normalize_many(frame["text"]), dtype=object)
    labels = np.asarray(frame["intent"])
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    shared = train._out_of_fold_scores(texts, labels, [0.25, 1.0], folds, seed=0, dims=0)
    for c in (0.25, 1.0):
        per_c = Pipeline([("tfidf", train._features(0)), ("classifier", SoftmaxSVC(C=c, seed=0))])
        expected = cross_val_predict(per_c, texts, labels, cv=folds, method="decision_function")
        np.testing.assert_allclose(shared[c], expected, rtol=1e-9, atol=1e-9)
