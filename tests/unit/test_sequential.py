"""The readout's always-valid intervals, checked by simulation: looking often does not raise the error rate.

Many simulated sequences of labelled answers, read at every peek: with no real difference between two arms, the
share of sequences whose difference interval ever excludes 0 (a wrong rollout or rollback) stays at most alpha,
and a fixed-horizon interval read the same way is shown to exceed it. ``CTCD_FUZZ_EXAMPLES`` raises the count.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.delivery import sequential

ALPHA = 0.05
SEQUENCES, ROWS = 1500, 3000
EXAMPLES = max(4, int(os.environ.get("CTCD_FUZZ_EXAMPLES", "200")) // 40)
SIM = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _radius(n: np.ndarray, alpha: float) -> np.ndarray:
    return np.array([sequential.radius(int(k), alpha) for k in n])


def _wrong_share(p_a: float, p_b: float, every: int, seed: int, fixed: bool = False) -> float:
    rng = np.random.default_rng(seed)
    peeks = np.arange(every, ROWS + 1, every)
    a = rng.random((SEQUENCES, ROWS)) < p_a
    b = rng.random((SEQUENCES, ROWS)) < p_b
    rate_a, rate_b = a.cumsum(axis=1)[:, peeks - 1] / peeks, b.cumsum(axis=1)[:, peeks - 1] / peeks
    if fixed:  # a 95% z-interval for the difference, read at every peek
        half = 1.96 * np.sqrt((rate_a * (1 - rate_a) + rate_b * (1 - rate_b)) / peeks)
    else:
        half = 2 * _radius(peeks, ALPHA / 2)
    wrong = np.abs(rate_a - rate_b) > half
    return float(wrong.any(axis=1).mean())


@pytest.mark.fuzz
@SIM
@given(p=st.floats(0.05, 0.95), every=st.sampled_from([1, 10, 50, 200]), seed=st.integers(0, 2**16))
def test_with_no_real_difference_peeking_decides_wrongly_at_most_alpha(p: float, every: int, seed: int) -> None:
    assert _wrong_share(p, p, every, seed) <= ALPHA


def test_the_same_peeking_with_a_fixed_horizon_interval_is_wrong_far_more_often() -> None:
    assert _wrong_share(0.5, 0.5, 10, seed=1, fixed=True) > 2 * ALPHA  # why a confidence sequence is used


def test_a_real_difference_is_found() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(3000) < 0.92, rng.random(3000) < 0.80
    gap = sequential.difference((int(a.sum()), a.size), (int(b.sum()), b.size), ALPHA)
    assert gap.low > 0 and gap.excludes(0)


def test_one_rate_covers_the_truth_at_every_n_with_probability_1_minus_alpha() -> None:
    rng = np.random.default_rng(5)
    hits = rng.random((SEQUENCES, ROWS)) < 0.3
    n = np.arange(1, ROWS + 1)
    means = hits.cumsum(axis=1) / n
    outside = np.abs(means - 0.3) > _radius(n, ALPHA)
    assert outside.any(axis=1).mean() <= ALPHA


def test_rows_needed_shrinks_the_interval_to_the_gap() -> None:
    need = sequential.rows_needed(0.05, ALPHA)
    assert 2 * sequential.radius(need, ALPHA / 2) <= 0.05 < 2 * sequential.radius(need - 1, ALPHA / 2)
    assert sequential.rows_needed(0.05, ALPHA, have=need) == 0
    assert math.isinf(sequential.radius(0, ALPHA)) and sequential.rate(0, 0, ALPHA).high == 1.0


def _adaptive_bounds(hits: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sequential.adaptive_rate`'s bounds after every row of every sequence (vectorised)."""
    n = np.arange(1, hits.shape[1] + 1)
    means = hits.cumsum(axis=1) / n
    worst = _radius(n, alpha / 2)
    center, margin = sequential._eb_terms(hits, alpha / 2)
    return np.maximum(means - worst, center - margin), np.minimum(means + worst, center + margin)


@pytest.mark.fuzz
@SIM
@given(p=st.floats(0.02, 0.98), every=st.sampled_from([1, 10, 50, 200]), seed=st.integers(0, 2**16))
def test_the_adaptive_interval_decides_wrongly_at_most_alpha_with_no_real_difference(
    p: float, every: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    peeks = np.arange(every, ROWS + 1, every) - 1
    a, b = rng.random((SEQUENCES, ROWS)) < p, rng.random((SEQUENCES, ROWS)) < p
    (low_a, high_a), (low_b, high_b) = _adaptive_bounds(a, ALPHA / 2), _adaptive_bounds(b, ALPHA / 2)
    wrong = (low_a - high_b > 0) | (high_a - low_b < 0)
    assert wrong[:, peeks].any(axis=1).mean() <= ALPHA


def test_the_adaptive_interval_covers_a_rate_near_one_and_is_far_narrower_there() -> None:
    rng = np.random.default_rng(8)
    hits = rng.random((SEQUENCES, ROWS)) < 0.97
    low, high = _adaptive_bounds(hits, ALPHA)
    assert ((low > 0.97) | (high < 0.97)).any(axis=1).mean() <= ALPHA
    eb = sequential.adaptive_rate(list(hits[0, :2000]), ALPHA)
    assert (eb.high - eb.low) < 0.5 * 2 * sequential.radius(2000, ALPHA)  # under half the worst-case width
    one = sequential.adaptive_rate(list(hits[0, :2000]), ALPHA)
    assert one.low == pytest.approx(low[0, 1999]) and one.high == pytest.approx(high[0, 1999])


def test_rows_needed_are_fewer_where_the_variance_is_small() -> None:
    near_one = sequential.adaptive_rows_needed(0.05, (0.97 * 0.03, 0.97 * 0.03), ALPHA)
    halfway = sequential.adaptive_rows_needed(0.05, (0.25, 0.25), ALPHA)
    assert near_one < halfway / 3
    width = sequential.eb_margin(near_one, 0.97 * 0.03, ALPHA / 4) * 2
    assert width <= 0.05 < sequential.eb_margin(near_one - 1, 0.97 * 0.03, ALPHA / 4) * 2
