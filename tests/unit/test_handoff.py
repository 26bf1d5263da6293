"""The hand-off threshold: chosen on validation rows to meet its target, and what it does on a labelled split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.contract import HandoffSpec
from workflows.training import handoff

CLASSES = np.array(["a", "b"])


def _rows(confidences: list[float], correct: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Validation labels and two-class probabilities with the given top confidence and correctness."""
    proba = np.array([[c, 1 - c] for c in confidences])  # "a" is always the prediction
    labels = np.array(["a" if ok else "b" for ok in correct])
    return labels, proba


def test_target_accuracy_picks_the_lowest_threshold_that_reaches_it() -> None:
    # most confident first: right, right, right, wrong, right, wrong  -> cumulative accuracy 1, 1, 1, .75, .8, .67
    labels, proba = _rows([0.99, 0.95, 0.9, 0.8, 0.7, 0.6], [True, True, True, False, True, False])
    chosen = handoff.choose(HandoffSpec(target_accuracy=0.8), labels, proba, CLASSES)
    assert chosen.threshold == 0.7 and chosen.validation_coverage == pytest.approx(5 / 6)
    assert chosen.validation_accuracy == pytest.approx(0.8)
    strict = handoff.choose(HandoffSpec(target_accuracy=1.0), labels, proba, CLASSES)
    assert strict.threshold == 0.9 and "100.0% accuracy" in strict.reason


def test_target_coverage_answers_that_share() -> None:
    labels, proba = _rows([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.52, 0.51, 0.5], [True] * 10)
    chosen = handoff.choose(HandoffSpec(target_coverage=0.7), labels, proba, CLASSES)
    assert chosen.threshold == 0.55 and chosen.validation_coverage == pytest.approx(0.7)


def test_selective_metrics_count_out_of_scope_rows() -> None:
    truth = ["a", "a", "b", "oos", "oos"]
    predicted = ["a", "b", "b", "a", "a"]
    confidence = [0.9, 0.4, 0.8, 0.3, 0.95]
    values = handoff.selective_metrics(truth, predicted, confidence, 0.5, "oos")
    assert values["coverage"] == pytest.approx(3 / 5)
    assert values["answered_accuracy"] == pytest.approx(2 / 3)  # the answered oos row counts as wrong
    assert values["in_scope_accuracy_with_handoff"] == pytest.approx(2 / 3)
    assert values["oos_recall"] == pytest.approx(1 / 2)
    assert "oos_recall" not in handoff.selective_metrics(truth[:3], predicted[:3], confidence[:3], 0.5, "oos")


def test_risk_coverage_is_the_error_rate_of_the_most_confident_answers() -> None:
    coverage, risk = handoff.risk_coverage(["a", "b", "a"], ["a", "a", "a"], [0.9, 0.8, 0.7], None)
    assert list(coverage) == pytest.approx([1 / 3, 2 / 3, 1]) and list(risk) == pytest.approx([0, 0.5, 1 / 3])


def test_apply_hands_off_below_the_threshold_only() -> None:
    assert handoff.apply(["a", "b"], [0.2, 0.9], 0.5) == ["handoff", "b"]
    assert handoff.apply(["a", "b"], [0.2, 0.9], None) == ["a", "b"]


def test_a_spec_names_exactly_one_target() -> None:
    with pytest.raises(ValidationError, match="exactly one of target_accuracy or target_coverage"):
        HandoffSpec(target_accuracy=0.9, target_coverage=0.8)
    with pytest.raises(ValidationError, match="exactly one of target_accuracy or target_coverage"):
        HandoffSpec()
    with pytest.raises(ValueError, match="no in-scope validation rows"):
        handoff.choose(HandoffSpec(target_coverage=0.5), np.array([]), np.zeros((0, 2)), CLASSES)


def test_an_out_of_scope_answer_is_a_hand_off_whatever_its_confidence() -> None:
    truth = ["a", "oos", "oos", "b"]
    predicted = ["a", "oos", "a", "oos"]
    confidence = [0.9, 0.99, 0.3, 0.95]
    values = handoff.selective_metrics(truth, predicted, confidence, 0.5, "oos")
    assert values["coverage"] == pytest.approx(1 / 4) and values["oos_recall"] == 1.0
    assert values["in_scope_accuracy_with_handoff"] == pytest.approx(1 / 2)  # "b", answered oos, is handed off
    assert handoff.apply(predicted, confidence, 0.5, "oos") == ["a", "handoff", "handoff", "handoff"]
    coverage, risk = handoff.risk_coverage(truth, predicted, confidence, "oos")
    assert risk[0] == 0  # the confident out-of-scope answers (0.99, 0.95) rank last, not first


def test_the_threshold_is_chosen_on_in_scope_rows_with_out_of_scope_answers_ranked_last() -> None:
    classes = np.array(["a", "oos"])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [0.2, 0.8], [0.95, 0.05]])
    labels = np.array(["a", "a", "a", "a", "oos", "oos"])  # four in-scope rows, one of them answered oos
    spec = HandoffSpec(target_coverage=0.75, out_of_scope_label="oos")
    chosen = handoff.choose(spec, labels, proba, classes)
    assert chosen.threshold == 0.7 and chosen.validation_coverage == pytest.approx(3 / 4)
    assert chosen.metadata()["out_of_scope_label"] == "oos"
    every = handoff.choose(HandoffSpec(target_coverage=1.0, out_of_scope_label="oos"), labels, proba, classes)
    assert every.threshold == 0.0 and every.validation_coverage == pytest.approx(3 / 4)  # the oos answer hands off


def test_the_predictor_hands_off_an_out_of_scope_answer_and_says_why() -> None:
    from serving.predictor import Predictor

    predictor = Predictor("intents", "/nonexistent", "0" * 64)
    predictor.handoff = {"threshold": 0.5, "reason": "answers 98.0%", "out_of_scope_label": "oos"}
    columns = predictor._decide(["a", "oos", "b"], [0.9, 0.97, 0.2])
    assert columns["label"] == ["a", "handoff", "handoff"] and columns["candidate"] == ["a", "oos", "b"]
    assert columns["reason"][0] == "" and "out of scope ('oos', confidence 0.970)" in columns["reason"][1]
    assert "below the hand-off threshold 0.500" in columns["reason"][2]
    predictor.handoff = {"threshold": 0.5, "reason": "answers 98.0%"}  # a model registered before: no label
    assert predictor._decide(["oos"], [0.97])["label"] == ["oos"]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "oos"]), st.sampled_from(["a", "b", "oos"]), st.floats(0, 1)),
        min_size=1,
        max_size=30,
    ),
    threshold=st.floats(0, 1),
    oos=st.sampled_from(["oos", None]),
)
def test_serving_and_evaluation_hand_off_the_same_rows(
    rows: list[tuple[str, str, float]], threshold: float, oos: str | None
) -> None:
    from serving.predictor import Predictor

    truth, predicted, confidence = (list(column) for column in zip(*rows, strict=True))
    predictor = Predictor("intents", "/nonexistent", "0" * 64)
    predictor.handoff = {"threshold": threshold, "reason": "r", "out_of_scope_label": oos}
    served = predictor._decide(predicted, confidence)["label"]
    assert served == handoff.apply(predicted, confidence, threshold, oos)
    coverage = handoff.selective_metrics(truth, predicted, confidence, threshold, oos)["coverage"]
    assert coverage == pytest.approx(sum(label != handoff.HANDOFF for label in served) / len(rows))
