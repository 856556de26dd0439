"""`--reps auto`: when a case's repetitions stop and what its calibration says; elapsed times are given."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping

import pytest

from builder.bench.calibrate import Calibration, Outcome, Target, parse_reps
from builder.errors import UserError

BASE, CAND = "upstream-gcc", "futex-gcc"


def drive(cal: Calibration, reps: Iterable[Mapping[str, float | None]], seconds: float = 1.0) -> Outcome:
    """Feed one tg_tps value per variant and repetition (higher is better), seconds per repetition."""
    for i, rep in enumerate(reps):
        for variant, value in rep.items():
            cal.add(variant, "tg_tps", value, "higher")
        if cal.end_rep((i + 1) * seconds):
            return cal.outcome()
    raise AssertionError("the calibration never stopped")


def pairs(ratios: Iterable[float], base: float = 100.0) -> Iterable[dict[str, float | None]]:
    return ({BASE: base, CAND: base * r} for r in ratios)


def test_steady_pairs_stop_at_the_least_number_of_pairs() -> None:
    cal = Calibration(Target(), [BASE, CAND], "e2e q8_0 tg t=2")
    out = drive(cal, pairs(itertools.cycle([1.04, 1.045, 1.038])))
    assert out.pairs == 3 and out.stop == "within ±3%" and out.paired and out.metric == "tg_tps"
    (fig,) = out.figures
    assert fig.name == CAND and fig.median == pytest.approx(1.04)
    assert fig.spread == pytest.approx(0.005 / 1.04)
    assert out.line == "e2e q8_0 tg t=2: 3 pairs, speedup 1.04 ±0.48% (within ±3%)"


def test_noisy_pairs_run_to_the_cap_of_pairs() -> None:
    cal = Calibration(Target(max_pairs=12), [BASE, CAND], "tg t=2")
    out = drive(cal, pairs(itertools.cycle([0.9, 1.1, 1.0, 1.2, 0.85])))
    assert out.pairs == 12 and out.stop == "cap of 12 pairs" and out.figures[0].spread > 0.03
    assert out.line.endswith("(cap of 12 pairs; target ±3%)")


def test_the_seconds_cap_stops_a_case_even_before_its_least_pairs() -> None:
    cal = Calibration(Target(max_seconds=600), [BASE, CAND], "load dio cold")
    out = drive(cal, pairs(itertools.cycle([0.9, 1.1])), seconds=250)
    assert out.pairs == 3 and out.stop == "cap of 600 s"
    slow = Calibration(Target(min_pairs=5, max_seconds=600), [BASE, CAND], "load dio cold")
    assert drive(slow, pairs(itertools.repeat(1.0)), seconds=400).pairs == 2


def test_one_outlier_is_left_out_once_the_pairs_allow_a_95_percent_interval() -> None:
    # [min, max] up to 8 pairs holds the 1.5; from 9 on the median's interval drops one pair per side.
    ratios = [1.0, 1.01, 1.5, 0.99, 1.0, 1.01, 0.99, 1.0, 1.0, 1.0]
    out = drive(Calibration(Target(), [BASE, CAND], "barrier t=2"), pairs(ratios))
    assert out.pairs == 9 and out.stop == "within ±3%" and out.figures[0].spread == pytest.approx(0.01)


def test_the_direction_follows_the_metric_and_lower_is_better_for_times() -> None:
    cal = Calibration(Target(), [BASE, CAND], "barrier t=2")
    for _ in range(3):
        cal.add(BASE, "ns_per_node", 1000.0, "lower")
        cal.add(CAND, "ns_per_node", 800.0, "lower")
        stopped = cal.end_rep(1.0)
    assert stopped and cal.outcome().figures[0].median == pytest.approx(1.25)


def test_the_primary_metric_decides_and_its_first_value_per_repetition_counts() -> None:
    # cpu_s is noisy and the later gflops of a repetition (another matrix shape) differ: neither counts.
    cal = Calibration(Target(), [BASE, CAND], "ops MUL_MAT")
    for i in range(3):
        for variant, value in ((BASE, 10.0), (CAND, 12.0)):
            cal.add(variant, "gflops", value, "higher")
            cal.add(variant, "gflops", value * (i + 1), "higher")
            cal.add(variant, "cpu_s", float(i * 7 + 1), "lower")
        stopped = cal.end_rep(1.0)
    out = cal.outcome()
    assert stopped and out.metric == "gflops" and out.figures[0].median == pytest.approx(1.2)


def test_a_timeout_ends_the_case_at_the_end_of_its_repetition() -> None:
    cal = Calibration(Target(), [BASE, CAND], "tg t=2")
    out = drive(cal, [{BASE: 100.0, CAND: 110.0}, {BASE: 100.0, CAND: None}, {BASE: 100.0, CAND: 110.0}])
    assert out.pairs == 2 and out.stop == "timed out"
    assert out.line == "tg t=2: 2 pairs, speedup 1.1 ±0% (timed out)"
    first = drive(Calibration(Target(), [BASE, CAND], "tg t=2"), [{BASE: None, CAND: None}])
    assert first.pairs == 1 and first.metric is None and first.line == "tg t=2: 1 pair, no values (timed out)"


def test_a_case_that_records_nothing_stops_after_one_repetition() -> None:
    out = drive(Calibration(Target(), [BASE, CAND], "faults dio"), [{}, {}])
    assert out.pairs == 1 and out.stop == "nothing measured" and not out.figures


def test_one_variant_calibrates_on_its_own_values() -> None:
    steady = drive(Calibration(Target(), [BASE], "barrier t=2"), ({BASE: v} for v in (100.0, 101.0, 99.0)))
    assert steady.pairs == 3 and not steady.paired and steady.stop == "within ±3%"
    assert steady.line == "barrier t=2: 3 runs, tg_tps 100 ±1% (within ±3%)"
    noisy = drive(
        Calibration(Target(max_pairs=6), [BASE], "barrier t=2"), ({BASE: v} for v in (90.0, 110.0) * 3)
    )
    assert (
        noisy.pairs == 6 and noisy.stop == "cap of 6 runs" and noisy.figures[0].spread == pytest.approx(0.1)
    )


def test_a_candidate_alone_with_values_is_calibrated_on_its_own_and_named() -> None:
    # The baseline has no such load mode: nothing to pair, the candidate's own values decide.
    only: list[dict[str, float | None]] = [{CAND: 50.0}] * 5
    out = drive(Calibration(Target(), [BASE, CAND], "load uring cold"), only)
    assert out.pairs == 3 and not out.paired and [f.name for f in out.figures] == [CAND]
    assert out.line == f"load uring cold: 3 pairs, tg_tps {CAND} 50 ±0% (within ±3%)"


def test_every_candidate_must_be_within_the_target() -> None:
    other = "hugepage-gcc"
    reps = ({BASE: 100.0, CAND: 104.0, other: v} for v in itertools.cycle([80.0, 120.0, 100.0]))
    out = drive(Calibration(Target(max_pairs=7), [BASE, CAND, other], "tg t=2"), reps)
    assert out.stop == "cap of 7 pairs" and [f.name for f in out.figures] == [CAND, other]
    assert out.figures[0].spread == 0 and out.figures[1].spread == pytest.approx(0.2)
    assert out.line.startswith(f"tg t=2: 7 pairs, speedup {CAND} 1.04 ±0%, {other} 1 ±20% (")


def test_a_spread_without_a_scale_never_counts_as_within() -> None:
    # A faults count going from 0 to something: the ratio is infinite, the spread too.
    cal = Calibration(Target(max_pairs=3), [BASE, CAND], "faults default")
    out = drive(cal, [{BASE: 0.0, CAND: 0.0}, {BASE: 1.0, CAND: 1.0}, {BASE: 0.0, CAND: 5.0}])
    assert out.stop == "cap of 3 pairs" and math.isinf(out.figures[0].spread)


def test_the_outcome_before_the_end_says_the_target() -> None:
    cal = Calibration(Target(), [BASE, CAND], "tg t=2")
    assert cal.outcome().pairs == 0 and cal.outcome().stop is None
    for value in (100.0, 104.0):
        cal.add(BASE if value == 100.0 else CAND, "tg_tps", value, "higher")
    assert not cal.end_rep(1.0)
    assert cal.outcome().line == "tg t=2: 1 pair, speedup 1.04 ±0% (target ±3%)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5),
        (" 12 ", 12),
        ("auto", Target()),
        ("auto:2%", Target(spread=0.02)),
        ("auto:2.5%,min=5,max=50,900s", Target(0.025, 5, 50, 900.0)),
        ("auto:max=10, 60s", Target(max_pairs=10, max_seconds=60.0)),
    ],
)
def test_parse_reps_reads_counts_and_targets(text: str, expected: int | Target) -> None:
    assert parse_reps(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "expected a whole number of repetitions"),
        ("-3", "expected a whole number"),
        ("five", "expected a whole number"),
        ("auto:", '"" in "auto:" is none of'),
        ("auto:2", '"2" in "auto:2" is none of N%'),
        ("auto:fast=1", "is none of"),
        ("auto:0%", "above 0%"),
        ("auto:100%", "below 100%"),
        ("auto:min=1", "at least 2"),
        ("auto:max=2", r"max in .* must be at least min \(3\)"),
        ("auto:min=8,max=5", r"at least min \(8\)"),
        ("auto:0s", "seconds"),
        ("auto:2%,3%", "gives the spread twice"),
    ],
)
def test_parse_reps_names_the_option_and_what_it_expects(text: str, says: str) -> None:
    with pytest.raises(UserError, match="^--reps: .*" + says):
        parse_reps(text)


def test_the_target_reads_as_a_percentage() -> None:
    assert Target().text() == "±3%" and Target(spread=0.0125).text() == "±1.25%"
