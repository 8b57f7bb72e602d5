"""The Beta distribution's CDF and quantiles, exact enough for credible intervals (no SciPy).

A stage attempt succeeds or fails; with a uniform prior, s successes in n
attempts give the posterior Beta(1 + s, 1 + n - s). The regularised incomplete
beta function is evaluated by its continued fraction (Lentz's method), the
quantiles by bisection.
"""

from __future__ import annotations

import math

_EPS = 1e-14
_TINY = 1e-300


def _cf(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def cdf(x: float, a: float, b: float) -> float:
    """P(X <= x) for X ~ Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _cf(a, b, x) / a
    return 1.0 - front * _cf(b, a, 1.0 - x) / b


def quantile(q: float, a: float, b: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def posterior(successes: int, attempts: int) -> tuple[float, float]:
    """The (a, b) of the posterior after `successes` of `attempts`, from a uniform prior."""
    return 1.0 + successes, 1.0 + attempts - successes


def interval(successes: int, attempts: int, level: float = 0.95) -> tuple[float, float]:
    a, b = posterior(successes, attempts)
    tail = (1.0 - level) / 2
    return quantile(tail, a, b), quantile(1.0 - tail, a, b)


def prob_above(threshold: float, successes: int, attempts: int) -> float:
    """P(success rate > threshold | the data)."""
    a, b = posterior(successes, attempts)
    return 1.0 - cdf(threshold, a, b)
