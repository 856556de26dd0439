"""`variant history`: a metric of one variant at each upstream version, as asv draws a benchmark.

Each version is built as NAME@VERSION (its series applied, through the shared
cache) and measured interleaved with the variant at its pin, in the same run:
a point is both the version's own figure and its ratio to the reference, so
points taken on different days still line up. A run already stored for the
same two builds (the same hashes, on this host) is reused instead of measured
again. A step is marked where two neighbouring points' ratio ranges do not
overlap and their medians differ by more than the threshold.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from typing import Any

from ..bench.profiles import Profile
from ..bench.stats import Summary
from ..build import pipeline
from ..errors import UserError
from ..layout import Layout
from ..models.installed import held
from ..results import compare
from ..source import versions
from ..source.versions import Version
from ..store import results
from . import probe
from .bisect import across, build_version
from .probe import Say, Test


@dataclass(frozen=True)
class Point:
    version: Version
    state: str  # "measured", "reused" or "skipped"
    why: str = ""
    value: Summary | None = None  # the version's figure
    ratio: Summary | None = None  # against the pinned build, > 1 better
    run: int | None = None
    build_seconds: float | None = None  # of the build installed for it
    hit_rate: float | None = None  # ccache's, in that build
    step: str = ""  # "better" or "worse" beyond noise, against the previous measured point
    unit: str = ""
    ci: tuple[float, float] | None = None  # where the ratio's median lies, 95% (stats.median_ci)

    def as_dict(self) -> dict[str, Any]:
        def fig(s: Summary | None) -> dict[str, float] | None:
            return None if s is None else {"median": s.median, "min": s.min, "max": s.max, "n": s.n}

        ratio = fig(self.ratio)
        if ratio is not None and self.ci is not None:
            ratio |= {"ci_low": self.ci[0], "ci_high": self.ci[1]}
        return {
            "version": self.version.label, "date": self.version.date, "state": self.state, "why": self.why,
            "value": fig(self.value), "ratio": ratio, "run": self.run,
            "build_seconds": self.build_seconds, "ccache_hit_rate": self.hit_rate, "step": self.step,
        }  # fmt: skip


def pick_every(line: list[Version], every: int) -> list[Version]:
    """Every every-th version from the first, and the last always."""
    if every < 1:
        raise UserError(f"--every: expected 1 or more, got {every}")
    chosen = line[::every]
    return chosen if chosen[-1] is line[-1] else [*chosen, line[-1]]


def run(
    layout: Layout, variant: str, test: Test, *, start: str | None, end: str | None, every: int,
    offline: bool, say: Say,
) -> tuple[list[Point], str]:  # fmt: skip
    """The points, oldest first, and the reference they are measured against."""
    plan, hist = across(layout, variant, "give the variant itself (its versions are --from and --to)",
                        offline=offline, say=say)  # fmt: skip
    src = plan.source
    if hist is None and start is None:
        raise UserError(f"{src.name} has no history.toml entries: give --from REF (a tag or commit)")
    pinned = versions.pinned_entry(src, hist) if hist else None
    first = start or (hist.entries[0].version if hist else "")
    last = end or (pinned.version if pinned else src.commit)
    a = versions.resolve(layout, src, first, hist, fetch=not offline, say=say)
    b = versions.resolve(layout, src, last, hist, fetch=not offline, say=say)
    chosen = pick_every(versions.line(layout, src, a, b, hist), every)
    say(f"history: {variant} at {len(chosen)} versions, {chosen[0].label} to {chosen[-1].label}")
    pipeline.build(layout, variant, pipeline.Options(offline=offline), say)  # the reference
    points: list[Point] = []
    for i, v in enumerate(chosen, 1):
        name = f"{variant}@{v.label}"
        say(f"history: [{i}/{len(chosen)}] {name}")
        why, _ = build_version(layout, name, offline, say)
        points.append(Point(v, "skipped", why) if why else _point(layout, variant, name, v, test, say))
    return mark_steps(points, test.threshold), variant


def _point(layout: Layout, ref: str, name: str, v: Version, test: Test, say: Say) -> Point:
    with held(layout, name) as inst, held(layout, ref) as base:
        mine, theirs = inst.manifest, base.manifest
    cc = mine.get("ccache") or {}
    hits, looked = cc.get("hits") or 0, (cc.get("hits") or 0) + (cc.get("misses") or 0)
    cost = {"build_seconds": mine.get("build_seconds"), "hit_rate": hits / looked if looked else None}
    with results.connect(layout.home / "results.sqlite") as con:
        for run_id in stored_runs(con, [(ref, str(theirs["hash"])), (name, str(mine["hash"]))], test.suite):
            try:
                rows = compare.pair_rows(con, f"{ref}@{run_id}", f"{name}@{run_id}", test.suite)[1]
                row = probe.pick(rows, test)
            except UserError:
                continue
            say(f"history: {name}: reusing run {run_id}")
            return _from_row(v, "reused", row, run_id, cost)
    row, run_id = probe.measured(layout, ref, name, test, say)
    return _from_row(v, "measured", row, run_id, cost)


def _from_row(v: Version, state: str, row: compare.Row, run_id: int, cost: dict[str, Any]) -> Point:
    c = row.comparison
    assert c is not None
    return Point(v, state, "", c.candidate, c.speedup, run_id, cost["build_seconds"], cost["hit_rate"],
                 unit=row.unit, ci=c.interval)  # fmt: skip


def stored_runs(con: sqlite3.Connection, builds: list[tuple[str, str]], suite: str) -> list[int]:
    """Runs of this host, under the default profile, that measured every (variant, hash) in suite,
    newest first."""
    common: set[int] | None = None
    for variant, digest in builds:
        query = "SELECT run_id FROM measurements WHERE variant = ? AND hash = ? AND suite = ?"
        found = {r[0] for r in con.execute(query, (variant, digest, suite))}
        common = found if common is None else common & found
    if not common:
        return []
    marks = ",".join("?" * len(common))
    # the default profile, as history measures: a run beside a CPU hog or under a limit is no point
    query = (f"SELECT id FROM runs WHERE id IN ({marks}) AND host = ? AND profile = ? "
             "ORDER BY started DESC, id DESC")  # fmt: skip
    args = [*sorted(common), results.host_description(), Profile().name]
    return [int(r[0]) for r in con.execute(query, args)]


def mark_steps(points: list[Point], threshold: float) -> list[Point]:
    """Each measured point against the previous measured one: a step when the intervals of their
    ratios' medians part and the medians differ by more than threshold.

    The intervals, not the pairs' min-max: tg at 2 threads on 2 CPUs ranges ±40% pair to pair
    here while its median is known to ±5%, and a range that wide would hide any step.
    """
    out, prev = [], None
    for p in points:
        if p.ratio is None or p.ci is None:
            out.append(p)
            continue
        step = ""
        if prev is not None and prev.ratio is not None and prev.ci is not None:
            change = p.ratio.median / prev.ratio.median - 1
            if p.ci[0] > prev.ci[1] and change > threshold:
                step = "better"
            elif p.ci[1] < prev.ci[0] and -change > threshold:
                step = "worse"
        new = dataclasses.replace(p, step=step)
        out.append(new)
        prev = new
    return out


def table(points: list[Point], test: Test, ref: str) -> str:
    rows = [f"| version | date | {test.metric} (median [min, max]) | vs {ref} (median [95% CI]) "
            "| step | build s | ccache hits | |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for p in points:
        value = p.value.fmt() if p.value else "-"
        ratio = f"{p.ratio.median:.3f}x [{p.ci[0]:.3f}, {p.ci[1]:.3f}]" if p.ratio and p.ci else "-"
        hits = f"{p.hit_rate:.0%}" if p.hit_rate is not None else "-"
        secs = f"{p.build_seconds:g}" if p.build_seconds is not None else "-"
        note = p.why or (f"run {p.run}" + (" (reused)" if p.state == "reused" else ""))
        cells = (p.version.label, p.version.date, value, ratio, p.step, secs, hits, note)
        rows.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(rows)
