"""Seed statistics: mean ± std over seeds, and whether a difference is larger than the seed-to-seed spread.

- Both sides with >= 2 seeds: a two-sided Welch t-test (scipy.stats.ttest_ind, equal_var=False) and the
  Welch 95% confidence interval of the difference of means; a percentile bootstrap CI is given as well.
- One side with 1 seed, the other with >= 2: the single run is compared with the other side's spread
  (a prediction-interval t-test, df = n - 1; it assumes both sides have the same seed spread).
- 1 seed per side: nothing can be said; the verdict says so plainly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
NO_CONCLUSION = "no conclusion can be drawn: 1 seed per side"


@dataclass(frozen=True)
class Spread:
    """n values summarised: mean and sample standard deviation (ddof=1; NaN when n < 2)."""

    n: int
    mean: float
    std: float

    def text(self, digits: int = 4) -> str:
        """'0.4123 ± 0.0051' (n >= 2), '0.4123' (n == 1), '-' (n == 0)."""
        if self.n == 0 or not math.isfinite(self.mean):
            return "-"
        return f"{self.mean:.{digits}f}" + (f" ± {self.std:.{digits}f}" if self.n >= 2 else "")


def spread(values: Sequence[float]) -> Spread:
    """Mean ± std of the finite values (NaNs, e.g. runs without results, are left out)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return Spread(0, math.nan, math.nan)
    return Spread(int(v.size), float(v.mean()), float(v.std(ddof=1)) if v.size >= 2 else math.nan)


@dataclass(frozen=True)
class Verdict:
    """The comparison of one side with the baseline side.

    diff = mean(other) - mean(baseline); p two-sided (NaN when no test applies); ci the 95% interval of diff.
    """

    method: str  # 'welch', 'single-vs-spread', 'none'
    diff: float
    p: float
    ci: tuple[float, float] | None
    significant: bool | None  # None: no conclusion possible
    text: str
    bootstrap_ci: tuple[float, float] | None = None


def _clean(values: Sequence[float]) -> np.ndarray:
    return np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)


def welch_test(base: Sequence[float], other: Sequence[float]) -> tuple[float, float, float]:
    """(t, two-sided p, Welch-Satterthwaite df) for mean(other) - mean(base); needs >= 2 values per side."""
    a, b = _clean(base), _clean(other)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"Welch's t-test needs at least 2 values per side, got {a.size} and {b.size}")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:  # no spread at all: t is undefined; equal means -> p 1, different -> p 0
        d = b.mean() - a.mean()
        return (0.0 if d == 0 else math.copysign(math.inf, d)), (1.0 if d == 0 else 0.0), float(a.size + b.size - 2)
    r = sps.ttest_ind(b, a, equal_var=False)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return float(r.statistic), float(r.pvalue), float(df)


def welch_ci(base: Sequence[float], other: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of mean(other) - mean(base) with Welch's standard error and df."""
    a, b = _clean(base), _clean(other)
    _, _, df = welch_test(a, b)
    d, se = b.mean() - a.mean(), math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    h = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return float(d - h), float(d + h)


def single_vs_spread(single: float, group: Sequence[float], level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """(two-sided p, CI of single - mean(group)) for one run against a group of n >= 2 seeds.

    t = (x - mean) / (s * sqrt(1 + 1/n)), df = n - 1: is x outside where one more seed of the group would
    land? It assumes the single run's seed spread equals the group's.
    """
    g = _clean(group)
    if g.size < 2:
        raise ValueError(f"the group needs at least 2 seeds to estimate its spread, got {g.size}")
    d, s = single - g.mean(), g.std(ddof=1) * math.sqrt(1 + 1 / g.size)
    if s == 0:
        return (1.0 if d == 0 else 0.0), (float(d), float(d))
    p = float(2 * sps.t.sf(abs(d) / s, g.size - 1))
    h = float(sps.t.ppf(0.5 + level / 2, g.size - 1)) * s
    return p, (float(d - h), float(d + h))


def bootstrap_ci(base: Sequence[float], other: Sequence[float], level: float = 0.95, n_boot: int = 10000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(other) - mean(base): each side resampled with replacement (seeded).

    With 2-3 seeds per side there are few distinct resamples, so this interval is rough; prefer Welch's.
    """
    a, b = _clean(base), _clean(other)
    if a.size == 0 or b.size == 0:
        raise ValueError("bootstrap needs at least one value per side")
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, a.size, (n_boot, a.size))].mean(1)  # (n_boot,)
    mb = b[rng.integers(0, b.size, (n_boot, b.size))].mean(1)
    lo, hi = np.quantile(mb - ma, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


def compare(base: Sequence[float], other: Sequence[float], alpha: float = ALPHA) -> Verdict:
    """Is mean(other) - mean(base) larger than the seed-to-seed spread? A Verdict with the reasoning in words."""
    a, b = _clean(base), _clean(other)
    if a.size == 0 or b.size == 0:
        return Verdict("none", math.nan, math.nan, None, None, "no results to compare")
    d = float(b.mean() - a.mean())
    if a.size == 1 and b.size == 1:
        return Verdict("none", d, math.nan, None, None, NO_CONCLUSION)
    if a.size == 1 or b.size == 1:
        single, group, sign = (a[0], b, -1.0) if a.size == 1 else (b[0], a, 1.0)
        p, (lo, hi) = single_vs_spread(single, group)
        ci = (lo, hi) if sign > 0 else (-hi, -lo)
        sig = p < alpha
        n = group.size
        text = (f"{'larger than' if sig else 'within'} the spread of the {n} seeds on the other side "
                f"(p{_p(p)}; 1 seed on one side, so this assumes equal spread: run more seeds to be sure)")
        return Verdict("single-vs-spread", d, p, ci, sig, text, bootstrap_ci(a, b))
    _, p, _ = welch_test(a, b)
    if a.var() + b.var() == 0:  # every seed gave the same value on both sides
        text = ("no difference: every seed gave the same value on both sides" if d == 0 else
                "larger than the seed-to-seed spread, which is zero (every seed gave the same value)")
        return Verdict("welch", d, p, (d, d), d != 0, text, (d, d))
    ci = welch_ci(a, b)
    sig = p < alpha
    if sig:
        text = f"larger than the seed-to-seed spread (Welch p{_p(p)}, below {alpha:g})"
    else:
        text = f"not larger than the seed-to-seed spread (Welch p{_p(p)}): no evidence of a difference"
    return Verdict("welch", d, p, ci, sig, text, bootstrap_ci(a, b))


def _p(p: float) -> str:
    """p-value with its relation for text: '=0.0123' (3 significant digits), '<0.001' below 0.001."""
    return "<0.001" if p < 1e-3 else f"={p:.3g}"
