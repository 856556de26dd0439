"""Figures that hold on a noisy shared machine: medians with spread, pairwise ratios, a verdict.

Each repetition runs A then B back to back (interleaved), so drift (a busy
neighbour, thermal state, page cache) hits both members of a pair alike. The
ratio is taken pair by pair; when the pairs' ratios straddle 1.0 the
difference is "within noise", whatever the medians say.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# The interval's coverage of the median, where the pairs are enough to reach it (calibrate.py).
CONFIDENCE = 0.95

# Units of time and rate: their verdicts read "faster"/"slower", others "better"/"worse".
TIMING_UNITS = {"ns", "us", "ms", "s", "s/token", "tokens/s", "GFLOPS"}


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    min: float
    max: float

    def fmt(self, digits: int = 3) -> str:
        return f"{_num(self.median, digits)} [{_num(self.min, digits)}, {_num(self.max, digits)}]"


@dataclass(frozen=True)
class Comparison:
    baseline: Summary
    candidate: Summary
    speedup: Summary  # > 1 means the candidate is better, whatever the metric's direction
    verdict: str  # "faster" / "slower" (or "better"/"worse"), or "within noise"
    interval: tuple[float, float] = (0.0, 0.0)  # the speedup's median, 95% distribution-free (median_ci)


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values")
    return Summary(len(values), statistics.median(values), min(values), max(values))


def compare(baseline: Sequence[float], candidate: Sequence[float], unit: str, better: str) -> Comparison:
    """Pairwise comparison; the lists are aligned by repetition (pair i ran together).

    better is "lower" (times, faults) or "higher" (throughput): the speedup is
    always > 1 when the candidate improves on the baseline.
    """
    n = min(len(baseline), len(candidate))
    if n == 0:
        raise ValueError("no pairs")
    pairs = list(zip(baseline[:n], candidate[:n], strict=True))
    ratios = [_ratio(a, b) if better == "lower" else _ratio(b, a) for a, b in pairs]
    speed = summarize(ratios)
    timing = unit in TIMING_UNITS
    if speed.min <= 1.0 <= speed.max:
        verdict = "within noise"
    elif speed.min > 1.0:
        verdict = "faster" if timing else "better"
    else:
        verdict = "slower" if timing else "worse"
    return Comparison(summarize(baseline[:n]), summarize(candidate[:n]), speed, verdict, median_ci(ratios))


def median_ci(values: Sequence[float]) -> tuple[float, float]:
    """[x(k), x(n+1-k)]: where the median lies with CONFIDENCE, for independent values of any
    distribution (the order statistics' coverage is binomial). Up to 8 values it is [min, max];
    from 9 on it leaves the most extreme ones out, which is what separates two medians measured
    on a noisy machine where single pairs range widely (see calibrate._figure)."""
    ordered = sorted(values)
    k = order_k(len(ordered))
    return ordered[k - 1], ordered[len(ordered) - k]


def order_k(n: int) -> int:
    """The largest k for which [x(k), x(n+1-k)] covers the median with CONFIDENCE; 1 if none does."""
    # [x(k), x(n+1-k)] misses the median when fewer than k of the n values fall on one side of it:
    # 2 * P(Binomial(n, 1/2) < k). below counts the 2**n sides' patterns with fewer than k below.
    k, below = 1, 0
    while k < (n + 1) // 2:
        below += math.comb(n, k - 1)
        if 1 - 2 * (below + math.comb(n, k)) / 2**n < CONFIDENCE:
            break
        k += 1
    return k


def _ratio(num: float, den: float) -> float:
    """num / den, where equal values (0 and 0 included) are exactly 1."""
    if num == den:
        return 1.0
    return num / den if den else float("inf")


def _num(x: float, digits: int) -> str:
    if x == float("inf"):
        return "inf"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"
