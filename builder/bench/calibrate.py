"""`--reps auto`: repeat a case's interleaved pairs until its speedup is known to a target spread, or a cap.

As pyperf calibrates its runs and hyperfine sets a minimum of them, a case is
repeated (baseline then each candidate, as with a fixed --reps) until the
speedup of every candidate over the baseline lies within ±target of its
median, at least `min_pairs` times and at most `max_pairs` times or
`max_seconds` of the case. The decision reads the case's primary metric: the
first one recorded with a value (pp_tps, tg_tps, ns_per_node, load_ms...).
With one variant there is nothing to pair, and its own values are calibrated.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UserError
from .stats import _num, _ratio, order_k


@dataclass(frozen=True)
class Target:
    """When `--reps auto` stops; written `auto[:ITEM,...]`, see parse_reps."""

    spread: float = 0.03  # half-width of the median's interval, relative to the median
    min_pairs: int = 3  # the least for a stop within the spread; the caps below stop sooner
    max_pairs: int = 30
    max_seconds: float = 600.0  # per case, read after each repetition: the last one may run past it

    def text(self) -> str:
        return f"±{self.spread * 100:.3g}%"


REPS_SYNTAX = 'a whole number of repetitions, or "auto", or e.g. "auto:2%,min=5,max=50,900s"'


def parse_reps(text: str) -> int | Target:
    """--reps: "5" is 5 repetitions; "auto" is Target(); "auto:" takes items separated by commas.

    An item is the target spread ("2%"), the seconds a case may take ("900s"),
    or the least and most pairs ("min=5", "max=50"); those left out keep
    Target's defaults.
    """
    text = text.strip()
    if re.fullmatch(r"\d+", text) and int(text) >= 1:
        return int(text)
    if text == "auto":
        return Target()
    if not text.startswith("auto:"):
        raise UserError(f'--reps: expected {REPS_SYNTAX}, got "{text}"')
    given: dict[str, float] = {}
    for item in text.removeprefix("auto:").split(","):
        found = re.fullmatch(r"(?:(min|max)=(\d+))|(?:(\d+(?:\.\d+)?)(%|s))", item.strip())
        if not found:
            raise UserError(f'--reps: "{item}" in "{text}" is none of N%, Ns, min=N, max=N ({REPS_SYNTAX})')
        key = found[1] or {"%": "spread", "s": "seconds"}[found[4]]
        if key in given:
            raise UserError(f'--reps: "{text}" gives the {key} twice')
        given[key] = float(found[2] or found[3]) / (100 if key == "spread" else 1)
    default = Target()
    target = Target(
        given.get("spread", default.spread),
        int(given.get("min", default.min_pairs)),
        int(given.get("max", default.max_pairs)),
        given.get("seconds", default.max_seconds),
    )
    if not 0 < target.spread < 1:
        raise UserError(f'--reps: the spread in "{text}" must be above 0% and below 100%')
    if target.min_pairs < 2:
        raise UserError(f'--reps: min in "{text}" must be at least 2 (one pair has no spread)')
    if target.max_pairs < target.min_pairs:
        raise UserError(f'--reps: max in "{text}" must be at least min ({target.min_pairs})')
    if target.max_seconds <= 0:
        raise UserError(f'--reps: the seconds in "{text}" must be above 0')
    return target


@dataclass(frozen=True)
class Figure:
    name: str  # the candidate (its speedup over the baseline), or the variant (its own values)
    n: int
    median: float
    spread: float  # the median's interval's half-width, relative (inf where it has no scale)

    def text(self) -> str:
        spread = "inf" if math.isinf(self.spread) else _pct(self.spread)
        return f"{_num(self.median, 3)} ±{spread}"


@dataclass(frozen=True)
class Outcome:
    label: str
    target: Target
    variants: tuple[str, ...]  # baseline first
    pairs: int  # repetitions run: pairs of baseline and candidates, or runs of the one variant
    metric: str | None  # the primary metric, once one was recorded with a value
    paired: bool  # figures are speedups; else each variant's own values (nothing to pair them with)
    figures: tuple[Figure, ...]
    # Why it stopped, None while it runs: "within ±3%", "cap of 30 pairs" (or runs, of one variant),
    # "cap of 600 s", "timed out", "nothing measured".
    stop: str | None

    @property
    def line(self) -> str:
        """E.g. "e2e q8_0 tg t=2: 7 pairs, speedup 1.04 ±2.1% (within ±3%)", for progress and verdicts."""
        count = f"{self.pairs} {_word(self.variants)}{'' if self.pairs == 1 else 's'}"
        # Each figure is named, unless the case has only one: the candidate's, or the one variant's.
        named = len(self.variants) > (2 if self.paired else 1)
        figures = ", ".join(f"{f.name} {f.text()}" if named else f.text() for f in self.figures)
        if figures:
            figures = ("speedup " if self.paired else f"{self.metric} ") + figures
        if self.stop is None:
            why = f"target {self.target.text()}"
        elif self.stop.startswith("cap"):
            why = f"{self.stop}; target {self.target.text()}"
        else:
            why = self.stop
        return f"{self.label}: {count}, {figures or 'no values'} ({why})"


class Calibration:
    """A case's repetitions under `--reps auto`: add its measurements, end each repetition, read the outcome.

    variants are in the runner's order, baseline first. Per repetition and
    variant, the first value of the primary metric counts (the ops case
    records one per matrix shape: the first shape stands for the case).
    """

    def __init__(self, target: Target, variants: Sequence[str], label: str) -> None:
        if not variants:
            raise ValueError("no variants")
        self.target = target
        self.variants = tuple(variants)
        self.label = label
        self.metric: str | None = None
        self.better = "lower"
        self.reps: list[dict[str, float]] = [{}]  # the primary metric's value per variant, per repetition
        self.timed_out = False
        self.stop: str | None = None

    def add(self, variant: str, metric: str, value: float | None, better: str) -> None:
        """A measurement of the current repetition; a value of None is a timeout and ends the case."""
        if value is None:
            self.timed_out = True
            return
        if self.metric is None:
            self.metric, self.better = metric, better
        if metric == self.metric:
            self.reps[-1].setdefault(variant, value)

    def end_rep(self, elapsed_s: float) -> bool:
        """Close the repetition, after elapsed_s seconds of the case; True when no more should run."""
        ran = len(self.reps)
        figures = self._figures()[1]
        t = self.target
        if self.timed_out:
            # A timeout would recur on every repetition: repeating costs the most and says nothing.
            self.stop = "timed out"
        elif not figures:
            # A case that recorded nothing (a load mode no variant has) will record nothing again.
            self.stop = "nothing measured"
        elif all(f.n >= t.min_pairs and f.spread <= t.spread for f in figures):
            self.stop = f"within {t.text()}"
        elif ran >= t.max_pairs:
            self.stop = f"cap of {t.max_pairs} {_word(self.variants)}s"
        elif elapsed_s >= t.max_seconds:
            self.stop = f"cap of {t.max_seconds:g} s"
        if self.stop is None:
            self.reps.append({})
        return self.stop is not None

    def outcome(self) -> Outcome:
        """Where the case stands: after end_rep returned True, why it stopped and its figures."""
        paired, figures = self._figures()
        ran = len(self.reps) if self.stop else len(self.reps) - 1
        return Outcome(
            self.label, self.target, self.variants, ran, self.metric, paired, tuple(figures), self.stop
        )

    def _figures(self) -> tuple[bool, list[Figure]]:
        """Each candidate's speedup over the pairs where both ran; else each variant's own values.

        The fallback covers one variant alone and a case whose baseline records
        nothing (a load mode only the candidate's programs have).
        """
        base, *candidates = self.variants
        speedups = []
        for c in candidates:
            # stats.compare's direction: above 1 when the candidate is better.
            ratios = [
                _ratio(r[base], r[c]) if self.better == "lower" else _ratio(r[c], r[base])
                for r in self.reps
                if base in r and c in r
            ]
            if ratios:
                speedups.append(_figure(c, ratios))
        if speedups:
            return True, speedups
        own = [(v, [r[v] for r in self.reps if v in r]) for v in self.variants]
        return False, [_figure(v, values) for v, values in own if values]


def _figure(name: str, values: Sequence[float]) -> Figure:
    """The median and the half-width of its distribution-free interval, relative to it.

    Why this interval, rather than the median ± 1.96 * 1.2533 * stdev / sqrt(n)
    of a normal sample: a benchmark's noise is one-sided and heavy-tailed (a
    busy neighbour only ever slows a run down), so one outlier inflates the
    stdev and the normal approximation, which with 3 pairs would need Student's
    4.30 rather than 1.96, says little. The order statistics [x(k), x(n+1-k)]
    cover the median with a probability known from the binomial alone, for
    independent pairs of any distribution. Up to 8 pairs the interval is [min,
    max], the range stats.compare's verdict reads, so a case never stops
    "within" a spread its verdict shows wider (with 3 to 5 pairs it covers the
    median 75% to 94% of the time, the most that so few pairs can); from 9 pairs
    on it leaves the most extreme pairs out, one a side at first.
    """
    ordered = sorted(values)
    n = len(ordered)
    k = order_k(n)
    lo, hi, med = ordered[k - 1], ordered[n - k], statistics.median(ordered)
    if lo == hi:
        return Figure(name, n, med, 0.0)
    if med == 0 or math.isinf(lo) or math.isinf(hi):
        return Figure(name, n, med, math.inf)  # a spread relative to nothing, or to no finite number
    return Figure(name, n, med, max(hi - med, med - lo) / abs(med))


def _word(variants: Sequence[str]) -> str:
    """What a repetition is: a pair of baseline and candidates, or a run of the one variant."""
    return "pair" if len(variants) > 1 else "run"


def _pct(x: float) -> str:
    return f"{x * 100:.2g}%" if x < 0.1 else f"{x * 100:.0f}%"
