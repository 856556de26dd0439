"""What makes a version good or bad in a bisect: a metric against the good build, the greedy text,
or a command's exit status.

A metric is measured the way `variant bench --vs GOOD` measures it: the good
build and the candidate interleaved, the pairs calibrated (--reps auto), and
decided on the ratio of each pair: bad when the median speedup is below
1 - threshold. When the median's 95% interval straddles that line the case is measured
once more with twice the pairs (asv and pyperf do the same: more samples
where the difference is near the noise), and the decision says it was close.
A command follows `git bisect run`: exit 0 is good, 125 cannot be tested (skip),
anything else is bad.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..bench import calibrate, profiles
from ..bench import runner as bench_mod
from ..bench.suites import METRIC_CASES, METRICS, SUITES
from ..errors import UserError
from ..layout import Layout
from ..models import models
from ..models.installed import held
from ..results import compare
from ..run import capture
from ..smoke import smoke
from ..store import results
from ..tomlfile import suggest

Say = Callable[[str], None]
SKIP_EXIT = 125  # git bisect run's "cannot test this commit"


@dataclass(frozen=True)
class Test:
    kind: str  # "metric", "smoke" or "run"
    suite: str = ""
    metric: str = ""
    case: tuple[str, ...] = ()  # words the case must contain
    threads: int | None = None
    threshold: float = 0.05
    argv: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "metric":
            where = " ".join(self.case) + (f" t={self.threads}" if self.threads else "")
            return f"{self.suite}:{self.metric}{' (' + where.strip() + ')' if where.strip() else ''}, " \
                   f"bad below {1 - self.threshold:.2f}x of good"  # fmt: skip
        return "greedy text equal to good's" if self.kind == "smoke" else f"`{shlex.join(self.argv)}` exits 0"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "suite": self.suite, "metric": self.metric, "case": list(self.case),
                "threads": self.threads, "threshold": self.threshold, "argv": list(self.argv)}  # fmt: skip


@dataclass(frozen=True)
class Step:
    label: str
    verdict: str  # "good", "bad" or "skip"
    why: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.label, "verdict": self.verdict, "why": self.why, "figures": self.figures}


def parse(metric: str | None, case: str | None, threads: int | None, threshold: float, smoke_: bool,
          run: str | None) -> Test:  # fmt: skip
    given = [k for k, v in (("--metric", metric), ("--smoke", smoke_), ("--run", run)) if v]
    if len(given) != 1:
        got = ", ".join(given) or "none"
        raise UserError(f"give one of --metric SUITE:METRIC, --smoke or --run 'ARGV' (got {got})")
    if not 0 < threshold < 100:
        raise UserError(f"--threshold: expected a percentage above 0 and below 100, got {threshold}")
    if not metric and (extra := [k for k, v in (("--case", case), ("--threads", threads)) if v]):
        raise UserError(f"{' and '.join(extra)}: only with --metric (they pick the case it is read from)")
    if run:
        argv = tuple(shlex.split(run))
        if not argv:
            raise UserError("--run: expected a command, got nothing")
        return Test("run", argv=argv)
    if smoke_:
        return Test("smoke")
    assert metric is not None
    suite, sep, name = metric.partition(":")
    if not sep or not name:
        raise UserError(f'--metric: expected SUITE:METRIC such as e2e:tg_tps, got "{metric}"')
    if suite not in SUITES:
        raise UserError(f'--metric: unknown suite "{suite}"' + suggest(suite, SUITES))
    if suite in METRICS and name not in METRICS[suite]:
        raise UserError(f'--metric: suite {suite} has no metric "{name}"' + suggest(name, METRICS[suite])
                        + f" (it measures {', '.join(METRICS[suite])})")  # fmt: skip
    return Test("metric", suite, name, tuple((case or "").split()), threads, threshold / 100)


def judge(layout: Layout, good: str, this: str, test: Test, say: Say) -> Step:
    """this build (NAME@VERSION) against the good one, both installed."""
    label = this.partition("@")[2]
    if test.kind == "run":
        return _run(layout, this, label, test)
    if test.kind == "smoke":
        return _smoke(layout, good, this, label, say)
    return _metric(layout, good, this, label, test, say)


def _run(layout: Layout, this: str, label: str, test: Test) -> Step:
    with held(layout, this) as inst:
        # The command finds this version's programs first on PATH, as a user would run them.
        env = {**inst.env(), "PATH": f"{inst.bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        res = capture(list(test.argv), env=env, check=False, timeout=3600)
    tail = (res.stdout + res.stderr).strip().splitlines()[-1:] or [""]
    code = res.returncode
    verdict = "good" if code == 0 else "skip" if code == SKIP_EXIT else "bad"
    return Step(label, verdict, f"exit {code}" + (f": {tail[0][:120]}" if tail[0] else ""), {"exit": code})


def _smoke(layout: Layout, good: str, this: str, label: str, say: Say) -> Step:
    model = models.ensure(layout.home / "models", models.spec_for("tiny", "f16"), say)
    with held(layout, good) as g, held(layout, this) as t:
        gc, gtext = smoke.greedy(g, model)
        if not gc.ok:
            raise UserError(f"{good}: the good build's greedy decode failed: {gc.detail}")
        tc, ttext = smoke.greedy(t, model)
    if not tc.ok:
        return Step(label, "bad", f"greedy decode failed: {tc.detail}", {"text": ""})
    if ttext == gtext:
        return Step(label, "good", f"greedy text identical ({len(ttext)} chars)", {"text": ttext[:200]})
    at = smoke.first_difference(gtext, ttext)
    why = f"greedy text differs at char {at}: {gtext[at : at + 20]!r} vs {ttext[at : at + 20]!r}"
    return Step(label, "bad", why, {"text": ttext[:200], "first_difference": at})


def _metric(layout: Layout, good: str, this: str, label: str, test: Test, say: Say) -> Step:
    row, run_id = measured(layout, good, this, test, say)
    line = 1 - test.threshold
    cmp_ = row.comparison
    assert cmp_ is not None
    close = cmp_.interval[0] <= line <= cmp_.interval[1]
    if close:
        more = 2 * cmp_.speedup.n
        say(f"bisect: {label}: the median's interval straddles {line:.2f}x; measuring again, {more} pairs")
        again = calibrate.Target(min_pairs=more, max_pairs=max(more, calibrate.Target().max_pairs))
        row, run_id = measured(layout, good, this, test, say, again)
        cmp_ = row.comparison
        assert cmp_ is not None
    s = cmp_.speedup
    verdict = "bad" if s.median < line else "good"
    lo, hi = cmp_.interval
    why = (f"{test.metric} {cmp_.candidate.median:.4g} vs {cmp_.baseline.median:.4g} {row.unit}: "
           f"{s.median:.3f}x (95% CI [{lo:.3f}, {hi:.3f}]) over {s.n} pairs"
           + (" (close: measured twice)" if close else ""))  # fmt: skip
    figures = {"good": cmp_.baseline.median, "this": cmp_.candidate.median, "unit": row.unit,
               "speedup": s.median, "low": s.min, "high": s.max, "ci": [lo, hi], "pairs": s.n, "run": run_id,
               "case": row.case}  # fmt: skip
    return Step(label, verdict, why, figures)


def measured(
    layout: Layout, good: str, this: str, test: Test, say: Say, reps: calibrate.Target | None = None
) -> tuple[compare.Row, int]:
    """this against good, interleaved, in a new run: the test's row and the run id."""
    reps = reps or calibrate.Target()
    word = METRIC_CASES.get((test.suite, test.metric))
    run_id = bench_mod.run(
        layout, [this], baseline=good, suites=(test.suite,), reps=reps,
        threads=(test.threads,) if test.threads else (), profile=profiles.Profile(),
        command=f"variant bisect ({test.describe()})", say=say, only=(word,) if word else (),
    )  # fmt: skip
    with results.connect(layout.home / "results.sqlite") as con:
        # each entry with its run: NAME@VERSION whose version is all digits is not read as a run
        _, rows = compare.pair_rows(con, f"{good}@{run_id}", f"{this}@{run_id}", test.suite)
    return pick(rows, test), run_id


def pick(rows: list[compare.Row], test: Test) -> compare.Row:
    """The one row of the metric whose case has every word asked for; a UserError naming the cases."""
    mine = [r for r in rows if r.metric == test.metric]
    if not mine:
        have = sorted({r.metric for r in rows if r.metric != "-"})
        raise UserError(f'suite {test.suite} has no metric "{test.metric}"' + suggest(test.metric, have)
                        + f" (it measures: {', '.join(have) or 'nothing here'})")  # fmt: skip
    words = (*test.case, *((f"threads={test.threads}",) if test.threads else ()))
    wanted = [r for r in mine if all(w in r.case.split() for w in words) and r.comparison is not None]
    if len(wanted) != 1:
        cases = "; ".join(r.case for r in mine)
        how = "none has" if not wanted else f"{len(wanted)} have"
        raise UserError(f"{test.suite}:{test.metric}: {how} the words {list(words)} "
                        f"(cases: {cases}); narrow it with --case WORDS or --threads N")  # fmt: skip
    return wanted[0]
