"""The canary analysis's rule: conditions parsed (never evaluated), fail over pass over inconclusive, the steps."""

from __future__ import annotations

import math
from typing import Any

import pytest

from workflows.delivery import analysis

SPEC = analysis.DEFAULT_SPEC


@pytest.mark.parametrize(
    ("found", "decision"),
    [
        ({"accuracy-difference": {"low": 0.01, "high": 0.2}, "errors-5xx": {"value": 0.0}}, "pass"),
        ({"accuracy-difference": {"low": -0.3, "high": -0.01}, "errors-5xx": {"value": 0.0}}, "fail"),
        ({"accuracy-difference": {"low": 0.01, "high": 0.2}, "errors-5xx": {"value": 0.2}}, "fail"),
        ({"accuracy-difference": {"low": -0.1, "high": 0.1}, "errors-5xx": {"value": 0.0}}, "inconclusive"),
        ({"accuracy-difference": {}, "errors-5xx": {"value": math.nan}}, "inconclusive"),
    ],
)
def test_fail_wins_then_pass_needs_every_metric(found: dict[str, dict[str, float]], decision: str) -> None:
    assert analysis.decide(SPEC, found).decision == decision


@pytest.mark.parametrize("text", ["low >= 1 or True", "__import__('os')", "low = 1", "", "x >= abc"])
def test_only_simple_comparisons_are_conditions(text: str) -> None:
    with pytest.raises(analysis.AnalysisError, match="must read <figure> <op> <number>"):
        analysis.condition(text)


def test_steps_lead_to_a_rollout() -> None:
    assert [analysis.next_step([20, 50, 100], p) for p in (10, 20, 50, 90)] == [20, 50, None, None]


def test_an_inconclusive_round_is_announced_and_a_quiet_technique_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.delivery import canary, notify
    from workflows.settings import Settings

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(notify, "send", lambda url, message: sent.append(message) or True)
    rounds = [
        canary.Round(
            "intent-classifier", "staging", "inconclusive", "v3 stays at 20%", "accuracy-difference inconclusive"
        ),
        canary.Round("invoice-matcher", "staging", "none", "no live canary", ""),
    ]
    canary.announce(Settings(), rounds)
    (message,) = sent
    assert "intent-classifier" in message["text"] and "inconclusive" in message["text"]
    assert {"title": "action", "value": "v3 stays at 20%", "short": True} in message["attachments"][0]["fields"]


def test_the_readout_s_figures_and_chart_for_mlflow() -> None:
    from workflows.delivery import readout_run

    arm = {
        "service": "intent-classifier", "model_version": "2", "requests": 10, "errors_5xx": 0.0, "p50_ms": 2.0,
        "p99_ms": 9.0, "handoff_rate": 0.1, "mean_confidence": 0.8, "label_shift": float("nan"), "labelled": 5,
        "accuracy": 0.8, "accuracy_low": 0.3, "accuracy_high": 1.0,
    }  # fmt: skip
    found = {
        "name": "intents",
        "namespace": "ctcd-staging",
        "task": "intents",
        "arms": [arm, {**arm, "model_version": "3"}],
    }
    found["differences"] = [
        {
            "arm": "intent-classifier v3",
            "accuracy_difference": 0.0,
            "low": -0.7,
            "high": 0.7,
            "more_labelled_rows_needed": 400,
        }
    ]
    flat = readout_run.metrics(found)
    assert (
        flat["intent-classifier_v2.accuracy_low"] == 0.3 and "intent-classifier_v2.label_shift" not in flat
    )  # NaN left out
    assert flat["difference.intent-classifier_v3.more_labelled_rows_needed"] == 400
    figure = readout_run.chart(found)
    assert [a.get_title() for a in figure.axes] == ["accuracy on confirmed labels (95% CS)", "hand-off rate"]


WORSE = {"accuracy-difference": {"low": -0.3, "high": -0.01}, "errors-5xx": {"value": 0.0}}
UNDECIDED = {"accuracy-difference": {"low": -0.1, "high": 0.1}, "errors-5xx": {"value": 0.0}}


def _with(**limits: Any) -> dict[str, Any]:
    metrics = [{**SPEC["metrics"][0], **limits}, SPEC["metrics"][1]]
    return {**SPEC, "metrics": metrics}


def test_a_failure_limit_lets_a_metric_fail_once_before_it_rolls_back() -> None:
    first = analysis.decide(_with(failureLimit=1), WORSE)
    assert first.decision == "inconclusive" and "failure 1 of 1 allowed" in first.evidence()
    assert first.measured["accuracy-difference"] == "fail"  # kept as the step's history
    second = analysis.decide(_with(failureLimit=1), WORSE, [first.measured])
    assert second.decision == "fail" and "accuracy-difference failed" in second.evidence()


def test_count_and_inconclusive_limit_hand_an_undecided_step_to_a_person() -> None:
    rounds: list[dict[str, str]] = []
    for _ in range(2):
        verdict = analysis.decide(_with(count=3), UNDECIDED, rounds)
        assert verdict.decision == "inconclusive" and not verdict.escalation
        rounds.append(verdict.measured)
    third = analysis.decide(_with(count=3), UNDECIDED, rounds)
    assert third.escalation == "accuracy-difference measured 3 times (count 3) without a decision"
    strict = analysis.decide(_with(inconclusiveLimit=0), UNDECIDED)
    assert strict.escalation == "accuracy-difference inconclusive 1 times (inconclusiveLimit 0)"
    assert not analysis.decide(
        _with(count=1), {**UNDECIDED, "accuracy-difference": {"low": 0.0, "high": 0.1}}
    ).escalation


@pytest.mark.parametrize(
    ("metric", "why"),
    [
        ({"name": "m", "count": -1}, "count must be a whole number"),
        ({"name": "m", "failureLimit": "2"}, "failureLimit must be a whole number"),
        ({"name": "m", "inconclusiveLimit": True}, "inconclusiveLimit must be a whole number"),
        ({"name": "m", "interval": "ten minutes"}, r"interval 'ten minutes' must read <number><s\|m\|h>"),
    ],
)
def test_bad_limits_are_named(metric: dict[str, Any], why: str) -> None:
    with pytest.raises(analysis.AnalysisError, match=why):
        analysis.check_limits(metric)


def test_intervals_read_as_argo_durations() -> None:
    assert [analysis.seconds(x) for x in ("30s", "10m", "2h")] == [30, 600, 7200]
