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
