"""Always-valid confidence sequences: intervals that stay valid however often someone looks.

A canary or an A/B readout is read every few minutes, and acted on when it looks decided. A fixed-horizon
confidence interval (or p-value) read again and again is wrong far more often than its level says. A confidence
sequence holds at every sample size at once: with probability at least 1 - alpha, the true rate lies in the
interval at every n, so stopping whenever it excludes a value keeps the error rate at alpha.

The sequence used is the two-sided normal-mixture boundary of Robbins (1970), as stated for sub-Gaussian
observations by Howard, Ramdas, McAuliffe and Sekhon (2021, "Time-uniform, nonparametric, nonasymptotic confidence
sequences", eq. 14): for a sum S_n of n observations with sub-Gaussian variance proxy sigma^2 (1/4 for 0/1
outcomes), with V = n sigma^2,

    P(exists n: |S_n - n mu| >= sqrt((V + rho) log((V + rho) / (rho alpha^2)))) <= alpha.

``rho`` sets the sample size where the boundary is tightest (``TIGHTEST_AT`` rows). The difference of two arms
uses each arm's sequence at alpha/2 (a union bound), which needs no assumption about how traffic is split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
