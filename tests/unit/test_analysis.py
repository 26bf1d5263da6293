"""The canary analysis's rule: conditions parsed (never evaluated), fail over pass over inconclusive, the steps."""

from __future__ import annotations

import math

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
