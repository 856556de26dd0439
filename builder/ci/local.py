"""`variant matrix run`: one runner's jobs of the matrix, on this machine, in order.

Each job does what its CI job does: build its variants back to back (baselines first, so the
siblings hit the compile cache), smoke them, and bench them together in one short run (stored in
.variant/results.sqlite like any bench). The summary has one row per built variant: build, smoke,
bench, build time and the compile cache's hit rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..bench import profiles
from ..bench import runner as bench_mod
from ..build import pipeline
from ..errors import VariantError
from ..layout import Layout
from ..smoke import smoke as smoke_mod
from .matrix import Job
from .runners import Config

Say = Callable[[str], None]


@dataclass
class Row:
    job: str
    variant: str
    build: str = "skipped"  # built | up to date | FAILED | skipped
    smoke: str = "-"  # ok | FAIL | -
    bench: str = "-"  # run N | FAIL | -
    seconds: float = 0.0  # the build's wall time
    hits: int = 0
    misses: int = 0
    error: str = ""

    @property
    def failed(self) -> bool:
        return any(x.startswith("FAIL") for x in (self.build, self.smoke, self.bench))

    @property
    def hit_rate(self) -> str:
        total = self.hits + self.misses
        return f"{self.hits / total:.0%} ({self.hits}/{total})" if total else "-"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit_rate": self.hit_rate, "failed": self.failed}


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def run_job(
    layout: Layout, config: Config, job: Job, opts: pipeline.Options, say: Say, keep_going: bool = False
) -> list[Row]:
    """Build the job's variants in order, then smoke them and bench them in one run.

    Without keep_going the first failed build ends the job (the rest stays "skipped")."""
    rows = [Row(job.name, name) for name in job.build]
    built: list[str] = []
    for row in rows:
        started = time.monotonic()
        try:
            out = pipeline.build(layout, row.variant, opts, say)
        except VariantError as exc:
            row.build, row.error = "FAILED", _short(exc)
            row.seconds = round(time.monotonic() - started, 1)
            say(f"matrix: {job.name}: {row.variant}: build failed: {row.error}")
            if not keep_going:
                return rows
            continue
        row.build = out.action
        row.seconds = round(time.monotonic() - started, 1)
        if out.action == "built":
            cc = out.manifest.get("ccache") or {}
            row.hits, row.misses = cc.get("hits", 0), cc.get("misses", 0)
        built.append(row.variant)
    if not built:
        return rows
    by_name = {r.variant: r for r in rows}
    try:
        checks = smoke_mod.smoke(layout, built, None, say)
        for name in built:
            ok = all(c.ok for c in checks if c.variant == name)
            by_name[name].smoke = "ok" if ok else "FAIL"
            if not ok:
                failed = next(c for c in checks if c.variant == name and not c.ok)
                by_name[name].error = f"smoke: {failed.binary}: {failed.detail}"
    except VariantError as exc:
        for name in built:
            by_name[name].smoke, by_name[name].error = "FAIL", f"smoke: {_short(exc)}"
    try:
        run_id = bench_mod.run(
            layout,
            built,
            baseline=None,
            suites=config.bench_suites,
            reps=config.bench_reps,
            threads=(),
            profile=profiles.load(layout.root, "default"),
            command=f"variant matrix run: job {job.name}: variant bench {' '.join(built)}",
            say=say,
        )
        for name in built:
            by_name[name].bench = f"run {run_id}"
    except VariantError as exc:
        for name in built:
            by_name[name].bench = "FAIL"
            by_name[name].error = by_name[name].error or f"bench: {_short(exc)}"
    return rows


def run(
    layout: Layout, config: Config, jobs: list[Job], opts: pipeline.Options, keep_going: bool, say: Say
) -> list[Row]:
    rows: list[Row] = []
    for i, job in enumerate(jobs):
        say(f"matrix: job {i + 1}/{len(jobs)} {job.name}: {' '.join(job.build)}")
        rows += run_job(layout, config, job, opts, say, keep_going)
        if not keep_going and any(r.failed for r in rows):
            rows += [Row(j.name, name) for j in jobs[i + 1 :] for name in j.build]
            break
    return rows


def table(rows: list[Row]) -> str:
    head = ("job", "variant", "build", "smoke", "bench", "time", "cache hits")
    body = [
        (r.job, r.variant, r.build, r.smoke, r.bench, f"{r.seconds:.1f} s" if r.seconds else "-", r.hit_rate)
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
    lines = [
        "  ".join(x.ljust(w) for x, w in zip(line, widths, strict=False)).rstrip() for line in (head, *body)
    ]
    built = [r for r in rows if r.build == "built"]
    total = sum(r.seconds for r in built)
    hits, misses = sum(r.hits for r in built), sum(r.misses for r in built)
    rate = f"{hits / (hits + misses):.0%}" if hits + misses else "-"
    lines.append(
        f"total build time {total:.1f} s over {len(built)} build(s); "
        f"cache hits {rate} ({hits}/{hits + misses})"
    )
    failed = [r for r in rows if r.failed]
    for r in failed:
        lines.append(f"FAILED {r.job} {r.variant}: {r.error}")
    return "\n".join(lines)
