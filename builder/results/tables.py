"""compare.py's rows as Markdown, CSV or JSON: what `variant bench`, `compare`, `report` and PR.md print.

Where a row has a limit (share.py: a tg row's share of the memory bandwidth, a pp or ops row's of the
estimated arithmetic peak), the Markdown gains a column "of the limit" and notes under the table on
what its marks mean; CSV and JSON carry the figures.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..bench.stats import Summary
from .compare import Row, cell
from .share import Bound

NOTES = {
    "GB/s, ": "a tg row's share is of the best memory read bandwidth probed at its thread count (GB/s)",
    "!": "!: above the limit (the probe's best repetition, or the estimated peak): not a figure of it",
    "(fits in cache)": "(fits in cache): a token's bytes fit in the last-level cache: the share may not be "
    "of memory alone",
    "est.": "est.: the arithmetic peak is an estimate from the ISA and clock (`variant bandwidth`)",
}


def has_limits(rows: list[Row]) -> bool:
    """Whether a table of rows gets the "of the limit" column: a row of it has a limit (share.py)."""
    return any(b for r in rows for b in r.bounds)


def notes(cells: list[str]) -> list[str]:
    """What the marks the limit cells use mean."""
    text = " ".join(cells)
    return [note for mark, note in NOTES.items() if mark in text]


def notes_block(cells: list[str]) -> str:
    """notes() as a list under the table."""
    found = notes(cells)
    return "\n\n" + "\n".join(f"- {n}" for n in found) if found else ""


def _bound_cell(b: Bound | None) -> str:
    return b.cell() if b else "-"


def limit_cell(bounds: tuple[Bound | None, Bound | None]) -> str:
    """A pair's "of the limit" cell: the baseline's → the candidate's, or the one side that has one."""
    a, b = bounds
    if a and b:
        return f"{a.cell()} → {b.cell()}"
    return _bound_cell(a or b)


def render_single(rows: list[Row], name: str, fmt: str) -> str:
    """A one-variant table: median [min, max] per metric and case."""
    if fmt == "json":
        return json.dumps([as_dict(r, None, name) for r in rows], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["suite", "metric", "unit", "case", "better", "median", "min", "max", "achieved", "share"])
        for r in rows:
            w.writerow(
                [r.suite, r.metric, r.unit, r.case, r.better, *_triple(r.candidate), *_csv(r.bounds[1])]
            )
        return buf.getvalue()
    extra = has_limits(rows)
    lines = [f"| suite | metric | case | {name} |" + (" of the limit |" if extra else ""),
             "|---|---|---|---:|" + ("---|" if extra else "")]  # fmt: skip
    limits = []
    for r in rows:
        value = r.candidate.fmt() if r.candidate else "timeout"
        line = f"| {r.suite} | {r.metric} ({r.unit}, {r.better} is better) | {r.case} | {value} |"
        if extra:
            limits.append(_bound_cell(r.bounds[1]))
            line += f" {limits[-1]} |"
        lines.append(line)
    return "\n".join(lines) + notes_block(limits)


def render(rows: list[Row], baseline: str, candidate: str, fmt: str) -> str:
    if fmt == "json":
        return json.dumps([as_dict(r, baseline, candidate) for r in rows], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        head = ["suite", "metric", "unit", "case", "better"]
        for who in ("baseline", "candidate", "speedup"):
            head += [who, f"{who}_min", f"{who}_max"]
        w.writerow([*head, "verdict", "baseline_achieved", "baseline_share", "candidate_achieved",
                    "candidate_share"])  # fmt: skip
        for r in rows:
            speed = r.comparison.speedup if r.comparison else None
            triples = [*_triple(r.baseline), *_triple(r.candidate), *_triple(speed)]
            w.writerow([r.suite, r.metric, r.unit, r.case, r.better, *triples, r.verdict,
                        *_csv(r.bounds[0]), *_csv(r.bounds[1])])  # fmt: skip
        return buf.getvalue()
    extra = has_limits(rows)
    lines = [
        f"| suite | metric | case | {baseline} | {candidate} | speedup | verdict |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    if extra:
        lines = [lines[0] + " of the limit |", lines[1] + "---|"]
    limits = []
    for r in rows:
        base, cand = r.cells()
        ratio = r.comparison.speedup.fmt() if r.comparison else "-"
        metric = f"{r.metric} ({r.unit}, {r.better} is better)"
        case, verdict = cell(r.case), cell(r.verdict)
        line = f"| {r.suite} | {metric} | {case} | {base} | {cand} | {ratio} | {verdict} |"
        if extra:
            limits.append(limit_cell(r.bounds))
            line += f" {limits[-1]} |"
        lines.append(line)
    return "\n".join(lines) + notes_block(limits)


def _triple(s: Summary | None) -> list[str]:
    return ["", "", ""] if s is None else [f"{s.median:.6g}", f"{s.min:.6g}", f"{s.max:.6g}"]


def _csv(b: Bound | None) -> list[str]:
    if b is None:
        return ["", ""]
    return [f"{b.achieved.median:.6g}", "" if b.share is None else f"{b.share:.4f}"]


def as_dict(r: Row, baseline: str | None, candidate: str) -> dict[str, Any]:
    """One row for --format json; baseline None: a one-variant run, which has none."""

    def summ(s: Summary | None) -> dict[str, float] | None:
        return None if s is None else {"median": s.median, "min": s.min, "max": s.max, "n": s.n}

    a, b = r.bounds
    return {
        "suite": r.suite,
        "metric": r.metric,
        "unit": r.unit,
        "params": r.params,
        "better": r.better,
        "baseline": None if baseline is None else {"variant": baseline, **(summ(r.baseline) or {})},
        "candidate": {"variant": candidate, **(summ(r.candidate) or {})},
        "speedup": summ(r.comparison.speedup) if r.comparison else None,
        "verdict": r.verdict,
        "limit": {"baseline": a.as_dict() if a else None, "candidate": b.as_dict() if b else None}
        if a or b
        else None,
    }
