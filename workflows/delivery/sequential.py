"""Always-valid confidence sequences: intervals that stay valid however often someone looks.

A canary or an A/B readout is read every few minutes, and acted on when it looks decided. A fixed-horizon
confidence interval (or p-value) read again and again is wrong far more often than its level says. A confidence
sequence holds at every sample size at once: with probability at least 1 - alpha, the true rate lies in the
interval at every n, so stopping whenever it excludes a value keeps the error rate at alpha.

Two sequences are used, and at each n the tighter of them (:func:`adaptive_rate`). The first is the two-sided
normal-mixture boundary of Robbins (1970), as stated for sub-Gaussian
observations by Howard, Ramdas, McAuliffe and Sekhon (2021, "Time-uniform, nonparametric, nonasymptotic confidence
sequences", eq. 14): for a sum S_n of n observations with sub-Gaussian variance proxy sigma^2 (1/4 for 0/1
outcomes), with V = n sigma^2,

    P(exists n: |S_n - n mu| >= sqrt((V + rho) log((V + rho) / (rho alpha^2)))) <= alpha.

``rho`` sets the sample size where the boundary is tightest (``TIGHTEST_AT`` rows). The second, empirical
Bernstein, adapts to the variance it sees (below). The difference of two arms uses each arm's interval at alpha/2
(a union bound), which needs no assumption about how traffic is split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

BERNOULLI_VARIANCE = 0.25
TIGHTEST_AT = 500


def rho_for(n: int, alpha: float, variance: float = BERNOULLI_VARIANCE) -> float:
    """The mixture parameter that makes the boundary tightest near ``n`` observations."""
    log_term = 2 * math.log(1 / alpha)
    return n * variance / (log_term + math.log(1 + log_term))


def radius(n: int, alpha: float, variance: float = BERNOULLI_VARIANCE, tightest_at: int = TIGHTEST_AT) -> float:
    """Half the width of the sequence's interval for a mean after ``n`` observations (inf before any)."""
    if n <= 0:
        return math.inf
    rho = rho_for(tightest_at, alpha, variance)
    v = n * variance
    return math.sqrt((v + rho) * math.log((v + rho) / (rho * alpha**2))) / n


@dataclass(frozen=True)
class Interval:
    """An estimate with its always-valid interval."""

    estimate: float
    low: float
    high: float
    n: int

    def excludes(self, value: float) -> bool:
        """Whether the interval lies wholly on one side of ``value``."""
        return self.low > value or self.high < value


def rate(successes: int, n: int, alpha: float) -> Interval:
    """A rate (accuracy, hand-off rate) with its confidence sequence at level 1 - alpha, clipped to [0, 1]."""
    if n == 0:
        return Interval(math.nan, 0.0, 1.0, 0)
    p, r = successes / n, radius(n, alpha)
    return Interval(p, max(0.0, p - r), min(1.0, p + r), n)


def difference(a: tuple[int, int], b: tuple[int, int], alpha: float) -> Interval:
    """``rate(a) - rate(b)`` with an always-valid interval at level 1 - alpha (each arm at alpha/2)."""
    first, second = rate(*a, alpha / 2), rate(*b, alpha / 2)
    if not first.n or not second.n:
        return Interval(math.nan, -1.0, 1.0, min(first.n, second.n))
    return Interval(
        first.estimate - second.estimate, first.low - second.high, first.high - second.low, min(first.n, second.n)
    )


def rows_needed(gap: float, alpha: float, have: int = 0, limit: int = 10_000_000) -> int:
    """Labelled rows per arm the difference's interval needs to be narrower than ``gap`` on each side (0 if it is)."""
    if gap <= 0:
        return limit
    n = max(1, have)
    while 2 * radius(n, alpha / 2) > gap and n < limit:
        n *= 2
    low, high = max(1, n // 2), n
    while low < high:
        middle = (low + high) // 2
        if 2 * radius(middle, alpha / 2) > gap:
            low = middle + 1
        else:
            high = middle
    return max(0, high - have)


# The empirical-Bernstein confidence sequence: it adapts to the variance it sees, so an arm that is right 97% of the
# time is decided on a fraction of the rows the worst-case (variance 1/4) boundary above needs.
#
# Predictable plug-in empirical Bernstein (PrPl-EB), Waudby-Smith and Ramdas (2023, "Estimating means of bounded
# random variables by betting", JRSS-B, Theorem 2), for observations in [0, 1] taken in an order that does not
# depend on their values (here: the order the answers were given):
#
#     mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1)               sigma2_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1)
#     lambda_t = min(sqrt(2 log(2/alpha) / (sigma2_{t-1} t log(1 + t))), 1/2)
#     psi(l) = (-log(1 - l) - l) / 4                        v_t = 4 (x_t - mu_{t-1})^2
#     C_t = sum lambda_i x_i / sum lambda_i  +-  (log(2/alpha) + sum v_i psi(lambda_i)) / sum lambda_i
#
# With probability at least 1 - alpha the mean lies in C_t at every t at once.
EB_LAMBDA_CAP = 0.5


def _eb_terms(x: Any, alpha: float) -> tuple[Any, Any]:
    """``(center, margin)`` of the PrPl-EB sequence after every observation of ``x`` (last axis is time)."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    t = np.arange(1, x.shape[-1] + 1, dtype=float)
    mean = (0.5 + np.cumsum(x, axis=-1)) / (t + 1)
    before = np.concatenate([np.full(x.shape[:-1] + (1,), 0.5), mean[..., :-1]], axis=-1)  # mu_{t-1}
    variance = (0.25 + np.cumsum((x - mean) ** 2, axis=-1)) / (t + 1)
    previous = np.concatenate([np.full(x.shape[:-1] + (1,), 0.25), variance[..., :-1]], axis=-1)
    log_term = math.log(2 / alpha)
    lam = np.minimum(np.sqrt(2 * log_term / (previous * t * np.log1p(t))), EB_LAMBDA_CAP)
    psi = (-np.log1p(-lam) - lam) / 4
    weight = np.cumsum(lam, axis=-1)
    center = np.cumsum(lam * x, axis=-1) / weight
    margin = (log_term + np.cumsum(4 * (x - before) ** 2 * psi, axis=-1)) / weight
    return center, margin


def eb_rate(outcomes: Any, alpha: float) -> Interval:
    """A rate of 0/1 outcomes, in the order they came, with its empirical-Bernstein sequence at 1 - alpha."""
    n = len(outcomes)
    if n == 0:
        return Interval(math.nan, 0.0, 1.0, 0)
    center, margin = _eb_terms(outcomes, alpha)
    estimate = float(sum(outcomes)) / n
    return Interval(estimate, max(0.0, float(center[-1] - margin[-1])), min(1.0, float(center[-1] + margin[-1])), n)


def eb_margin(n: int, variance: float, alpha: float) -> float:
    """The margin the sequence reaches after ``n`` rows whose variance is ``variance`` (for planning, not deciding)."""
    import numpy as np

    if n <= 0:
        return math.inf
    t = np.arange(1, n + 1, dtype=float)
    seen = np.concatenate([[0.25], np.full(n - 1, max(variance, 1e-4))])
    log_term = math.log(2 / alpha)
    lam = np.minimum(np.sqrt(2 * log_term / (seen * t * np.log1p(t))), EB_LAMBDA_CAP)
    psi = (-np.log1p(-lam) - lam) / 4
    return float((log_term + np.sum(4 * variance * psi)) / np.sum(lam))


def eb_rows_needed(gap: float, variances: tuple[float, float], alpha: float, have: int = 0) -> int:
    """Labelled rows per arm until two arms' margins (each at alpha/2) add up to less than ``gap`` (0 if they do)."""
    limit = 10_000_000
    if gap <= 0:
        return limit

    def wide(n: int) -> bool:
        return eb_margin(n, variances[0], alpha / 2) + eb_margin(n, variances[1], alpha / 2) > gap

    n = max(1, have)
    while wide(n) and n < limit:
        n *= 2
    low, high = max(1, n // 2), n
    while low < high:
        middle = (low + high) // 2
        if wide(middle):
            low = middle + 1
        else:
            high = middle
    return max(0, high - have)


def adaptive_rate(outcomes: Any, alpha: float) -> Interval:
    """The tighter of both sequences at every n, each at alpha/2 (a union bound keeps the intersection at 1 - alpha).

    The normal mixture is tighter near a rate of 1/2, the empirical Bernstein one near 0 or 1 (a model right 97% of
    the time); neither is chosen after looking, so the level holds.
    """
    n = len(outcomes)
    if n == 0:
        return Interval(math.nan, 0.0, 1.0, 0)
    worst = rate(int(sum(outcomes)), n, alpha / 2)
    adapted = eb_rate(outcomes, alpha / 2)
    return Interval(worst.estimate, max(worst.low, adapted.low), min(worst.high, adapted.high), n)


def adaptive_rows_needed(gap: float, variances: tuple[float, float], alpha: float, have: int = 0) -> int:
    """Labelled rows per arm until the difference of two :func:`adaptive_rate` intervals at alpha/2 is ``gap`` wide."""
    return min(rows_needed(gap, alpha / 2, have), eb_rows_needed(gap, variances, alpha / 2, have))
