"""Expected calibration error and the reliability diagram: exact on small cases, and its error by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from workflows.training.calibration import expected_calibration_error, reliability_plot


def test_ece_is_the_row_weighted_gap_per_bin() -> None:
    # bin (0.8667, 0.9333]: two rows at 0.9, one right -> gap 0.4; bin (0.6, 0.6667]: two rows at 0.6... 0.6 is in
    # (0.5333, 0.6]; one right of two -> gap 0.1. Weighted: (2 * 0.4 + 2 * 0.1) / 4 = 0.25.
    correct = [True, False, True, False]
    confidence = [0.9, 0.9, 0.6, 0.6]
    assert expected_calibration_error(correct, confidence) == pytest.approx(0.25)
    assert expected_calibration_error([True, True], [1.0, 1.0]) == 0.0
    assert expected_calibration_error([], []) == 0.0


def _simulate(rng: np.random.Generator, rows: int, bias: float) -> float:
    confidence = rng.uniform(0.3, 1.0, rows)
    correct = rng.random(rows) < np.clip(confidence - bias, 0, 1)
    return expected_calibration_error(correct, confidence)


def test_a_calibrated_model_passes_the_0_03_goal_and_an_overconfident_one_fails_it() -> None:
    """On 4,500 rows (CLINC150's in-scope test rows), 300 simulations each.

    A calibrated model exceeds ECE 0.03 in under 5% of runs (measured: 0.3%; the estimate has a noise floor of
    about 0.016 there, and on 2,500 rows of 0.022, where 9% of calibrated runs exceed 0.03); one whose
    confidence runs 5 points above its accuracy exceeds it in over 95% (measured: 99.7%).
    """
    rng = np.random.default_rng(7)
    calibrated = [_simulate(rng, 4500, 0.0) for _ in range(300)]
    overconfident = [_simulate(rng, 4500, 0.05) for _ in range(300)]
    assert np.mean(np.asarray(calibrated) > 0.03) < 0.05, np.percentile(calibrated, 95)
    assert np.mean(np.asarray(overconfident) > 0.03) > 0.95, np.percentile(overconfident, 5)


def test_the_reliability_diagram_names_its_ece() -> None:
    fig = reliability_plot([True, False, True, False], [0.9, 0.9, 0.6, 0.6], "m")
    assert fig.axes[0].get_title() == "m: ECE 0.250"
