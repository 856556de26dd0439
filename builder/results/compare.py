"""`variant compare`: baseline vs candidate from stored results, in the style of
llama.cpp's compare-llama-bench.py (one row per metric and case, with the speedup)."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..bench import stats
from ..bench.observe import QUIET_WHEN_ZERO
from ..bench.stats import Comparison, Summary
from ..errors import UserError
from ..store import results
from . import share, skips
from .share import Bound

# NAME@VERSION, VERSION made like a name (spec.variant.check_name)
VERSIONED = re.compile(r"[^@:]+@[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Row:
    suite: str
    metric: str
    unit: str
    params: dict[str, Any]
    better: str
    baseline: Summary | None
    candidate: Summary | None
    comparison: Comparison | None
    verdict: str
    bounds: tuple[Bound | None, Bound | None] = (None, None)  # baseline's, candidate's (share.py)

    @property
    def case(self) -> str:
        return case_text(self.params)

    def cells(self) -> tuple[str, str]:
        """Baseline and candidate as table cells: a side without figures timed out, or never ran the case."""
        absent = "-" if self.verdict.startswith("only ") else "timeout"
        if results.SKIPPED.strip() in self.verdict:
            absent = "skipped"
        base, cand = self.baseline, self.candidate
        return (base.fmt() if base else absent, cand.fmt() if cand else absent)


def shown(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a table or a plot shows: a user's model as "label (about)", no identity.

    A user's model is measured with params {"model": label, "model_id": identity,
    "model_about": what it is} (models/own.py); --format json keeps all three.
    """
    out = {k: v for k, v in params.items() if k not in ("model_id", "model_about")}
    if "model_about" in params:
        out["model"] = f"{params['model']} ({params['model_about']})"
    return out


def case_text(params: dict[str, Any]) -> str:
    """A case as a table shows it (shown): a user's model by label and what it is."""
    return " ".join(f"{k}={v}" for k, v in shown(params).items())


def cell(text: str) -> str:
    """text as one Markdown table cell or list item: what a user's model is comes from its GGUF header,
    and a | or line break of its own there would end the row (or the item)."""
    return " ".join(text.splitlines()).replace("|", "\\|")


Series = dict[int, float | None]  # rep -> value (None: timed out)


def entry(text: str) -> tuple[str, str | None, int | None]:
    """ "VARIANT[:FORMAT][@RUN]": one variant's figures, only those of one model format, from one run.

    A format entry compares kernels inside one build (tmac-clang:i4 against
    tmac-clang:q4_0) or across builds on the same weights (upstream-clang:q4_0);
    the format leaves the case, so the entries' rows pair up by everything else.
    A run entry takes the figures of a stored run (another machine's, imported):
    futex-gcc@3 against futex-gcc@7 joins the two runs' cases, a user's model by its identity.
    Only digits make a run: upstream-gcc@0.3.30 is the variant at another upstream version
    (upstream-gcc@0.3.30@7 is its figures in run 7).
    """
    head, at, run = text.rpartition("@")
    if not at or not run.isdigit():
        # no run: an @ followed by more than digits is a version (upstream-gcc@0.3.30, NAME@VERSION)
        head, run = text, ""
    variant, _, fmt = head.partition(":")
    if "@" in fmt or ("@" in variant and not VERSIONED.fullmatch(variant)):
        raise UserError(
            f'"{text}": expected VARIANT[@VERSION][:FORMAT][@RUN], a run id being digits '
            "(variant results list shows them)"
        )
    return variant, (fmt or None), (int(run) if run else None)


def variants_of(entries: list[str]) -> list[str]:
    return list(dict.fromkeys(entry(e)[0] for e in entries))


def _key(params: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """A user's model is joined by its identity, not its label: runs from two catalogues line up.

    The first label seen for an identity names the model in the rows.
    """
    mid = params.get("model_id")
    if mid is None:
        return params
    return {**params, "model": labels.setdefault(str(mid), str(params.get("model")))}


def grouped(
    rows: list[sqlite3.Row], entries: list[str] | None = None
) -> dict[tuple[str, str, str, str, str], dict[str, Series]]:
    """(suite, metric, unit, params, better) -> variant (or entry) -> rep -> value.

    Skipped cells (results.SKIPPED notes) hold no figure and are left out: skips.py reads them.
    """
    out: dict[tuple[str, str, str, str, str], dict[str, Series]] = defaultdict(lambda: defaultdict(dict))
    wanted = [(e, *entry(e)) for e in entries] if entries else None
    labels: dict[str, str] = {}
    for r in rows:
        if skips.skipped(r):
            continue
        params = _key(json.loads(r["params"]), labels)
        if wanted is None:
            key = json.dumps(params, sort_keys=True)
            out[(r["suite"], r["metric"], r["unit"], key, r["better"])][r["variant"]][r["rep"]] = r["value"]
            continue
        for label, variant, fmt, run in wanted:
            if variant != r["variant"] or (fmt is not None and params.get("format") != fmt):
                continue
            if run is not None and run != r["run_id"]:
                continue
            key = json.dumps(
                {k: v for k, v in params.items() if k != "format"} if fmt else params, sort_keys=True
            )
            out[(r["suite"], r["metric"], r["unit"], key, r["better"])][label][r["rep"]] = r["value"]
    if wanted is not None:
        _check_entries(rows, out, wanted)
    return {k: v for k, v in out.items() if not _quiet(k[1], v)}


def _quiet(metric: str, by_variant: dict[str, Series]) -> bool:
    """An I/O figure that is zero for every variant and repetition: nothing to show (observe.py)."""
    if metric not in QUIET_WHEN_ZERO:
        return False
    return all(not v for series in by_variant.values() for v in series.values())


def _check_entries(
    rows: list[sqlite3.Row], out: dict[tuple[str, str, str, str, str], dict[str, Series]],
    wanted: list[tuple[str, str, str | None, int | None]],
) -> None:  # fmt: skip
    formats = [f for _, _, f, _ in wanted]
    if any(f is None for f in formats) and any(f is not None for f in formats):
        raise UserError(
            "give every entry a format (VARIANT:FORMAT) or none: " + ", ".join(e for e, *_ in wanted)
        )
    seen = {label for by in out.values() for label in by}
    for label, variant, fmt, _ in wanted:
        if label not in seen and fmt is not None:
            measured = sorted(
                {json.loads(r["params"]).get("format") for r in rows if r["variant"] == variant} - {None}
            )
            raise UserError(f'{label}: the run has no measurement of {variant} with format "{fmt}" '
                            f"(formats measured: {', '.join(measured) or 'none'})")  # fmt: skip


def _summary(values: list[float]) -> Summary | None:
    return stats.summarize(values) if values else None


def pair_rows(
    con: sqlite3.Connection, baseline: str, candidate: str, suite: str | None, run_id: int | None = None
) -> tuple[int, list[Row]]:
    variants = variants_of([baseline, candidate])
    runs = [entry(e)[2] for e in (baseline, candidate)]
    if run_id is None and None in runs:
        run_id = results.latest_run_with(con, variants, suite)
        if run_id is None:
            what = f" in suite {suite}" if suite else ""
            raise UserError(
                f"no stored run measured both {baseline} and {candidate}{what}; run `variant bench` first"
            )
    rows: list[sqlite3.Row] = []
    for run in dict.fromkeys(r if r is not None else run_id for r in runs):
        assert run is not None
        rows += results.rows(con, run, variants, suite)
    apart = len({r if r is not None else run_id for r in runs}) > 1  # two runs: pairs were not interleaved
    groups, facts = share.split(grouped(rows, [baseline, candidate]))
    hw = [hardware_of(con, r if r is not None else run_id) for r in runs]
    out = []
    for key, by_variant in sorted(groups.items()):
        s, metric, unit, params, better = key
        a, b = by_variant.get(baseline, {}), by_variant.get(candidate, {})
        if not a or not b:
            # a case only one of them runs (T-MAC's i4, a load mode a series adds): its figures, no ratio
            who, ran = (candidate, b) if b else (baseline, a)
            only = _summary([v for v in ran.values() if v is not None])
            label, side = (candidate, 1) if b else (baseline, 0)
            limit = share.bound(key, label, only, facts, hw[side]) if only else None
            row = Row(s, metric, unit, json.loads(params), better, only if ran is a else None,
                      only if ran is b else None, None, f"only {who} runs it",
                      (limit, None) if side == 0 else (None, limit))  # fmt: skip
            absent = entry(baseline if ran is b else candidate)[0]
            if why := skips.skips(rows).get((absent, str(row.params.get("model_id")))):
                row = dataclasses.replace(row, verdict=f"{absent} skipped: {why}")
            out.append(row)
            continue
        reps = sorted(set(a) & set(b))
        both = [(x, y) for r in reps if (x := a[r]) is not None and (y := b[r]) is not None]
        pa, pb = [x for x, _ in both], [y for _, y in both]
        sa = _summary([v for v in a.values() if v is not None])
        sb = _summary([v for v in b.values() if v is not None])
        cmp_ = stats.compare(pa, pb, unit, better) if pa else None
        if cmp_ is not None:
            verdict = cmp_.verdict + (" (two runs, not interleaved)" if apart else "")
        elif sa is None and sb is not None:
            verdict = "candidate finished, baseline timed out"
        elif sb is None and sa is not None:
            verdict = "candidate timed out"
        else:
            verdict = "both timed out"
        bounds = (share.bound(key, baseline, sa, facts, hw[0]) if sa else None,
                  share.bound(key, candidate, sb, facts, hw[1]) if sb else None)  # fmt: skip
        out.append(Row(s, metric, unit, json.loads(params), better, sa, sb, cmp_, verdict, bounds))
    measured = {(r.suite, str(r.params.get("model_id"))) for r in out}
    for s, model, why in skips.unrun(rows, measured, variants_of([baseline, candidate])):
        out.append(Row(s, "-", "", model, "higher", None, None, None, why))
    return run_id if run_id is not None else next(r for r in runs if r is not None), out


def single_rows(con: sqlite3.Connection, name: str, run_id: int) -> list[Row]:
    """One variant's figures from a run: a bench without a second variant to compare."""
    out = []
    groups, facts = share.split(grouped(results.rows(con, run_id, [name], None)))
    hw = hardware_of(con, run_id)
    for key, by_variant in sorted(groups.items()):
        s, metric, unit, params, better = key
        summary = _summary([v for v in by_variant.get(name, {}).values() if v is not None])
        verdict = "measured" if summary else "timed out"
        limit = share.bound(key, name, summary, facts, hw) if summary else None
        out.append(
            Row(s, metric, unit, json.loads(params), better, None, summary, None, verdict, (None, limit))
        )
    return out


def hardware_of(con: sqlite3.Connection, run_id: int | None) -> dict[str, Any] | None:
    """A run's hardware record (its probe and peak: share.py), or None."""
    run = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    return results.run_hardware(run) if run is not None else None
