"""`variant report`: a Markdown report (Jinja2) and one PNG plot per suite, from stored results."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..bench import environment, stats
from ..errors import UserError
from ..layout import Layout
from ..publish import manifest as manifest_file
from ..store import results
from ..tomlfile import suggest
from . import compare, questions, roofline, share, skips, tables
from .cases import Keep, matches, model_filter, skip_notes
from .hardware import hardware_lines
from .plot import plot, was_skipped

# The profilers' own data in a profile's folder (`variant profile`): large, read with perf or uftrace.
RAW_PROFILE = ("perf.data*", "uftrace.data")
# What a report takes from a profile's folder: what a person reads (not the raw data, folded stacks,
# or uftrace's Chrome trace, which can be hundreds of megabytes).
READABLE_ONLY = shutil.ignore_patterns(*RAW_PROFILE, "*folded.txt", "trace.json")

Say = Callable[[str], None]


def _code(text: str) -> str:
    """text as a code span inside a Markdown table cell: fenced past its own backticks, pipes escaped."""
    text = text.replace("\n", "\\n")  # a line break would end the table
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def record_lines(run: sqlite3.Row | Mapping[str, Any]) -> list[str]:
    """The run's hardware record (hardware_lines; none: not recorded), as lines of an indented code block.

    A record may come from another machine's export: a line break inside a value would end the block.
    """
    hw = results.run_hardware(run)
    return [" ".join(line.splitlines()) for line in hardware_lines(hw)] if hw else []


def hardware(run: dict[str, Any]) -> dict[str, Any]:
    """The run's hardware table: host, bench profile, the environment its benchmarks ran in, the machine."""
    env = results.run_env(run)
    return {
        "host": str(run["host"]).replace("|", "/"),
        "profile": _code(str(run["profile"])),
        "env": " ".join(_code(f"{k}={v}") for k, v in sorted(env.items())) if env else environment.show(env),
        "recorded": env is not None,
        "lines": record_lines(run),
    }


def _case(params: str) -> str:
    return compare.cell(compare.case_text(json.loads(params)))


def _template(name: str) -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("builder.results", "templates"),
        undefined=StrictUndefined,
        # A block tag's own line leaves nothing behind, so table rows stay adjacent:
        # a blank line inside a Markdown table ends it.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(name)


def write_questions(layout: Layout, names: list[str], out: Path, say: Say) -> Path:
    """One section per question of questions.toml (all, or those named), from its newest stored run."""
    asked = questions.load(layout.root / "questions.toml")
    for n in names:
        if n not in asked:
            raise UserError(f'unknown question "{n}"' + suggest(n, asked))
    out.mkdir(parents=True, exist_ok=True)
    with results.connect(layout.home / "results.sqlite") as con:
        sections = [_answer(con, asked[n], out) for n in (names or list(asked))]
    report = out / "report.md"
    report.write_text(_template("questions.md.j2").render(sections=sections).rstrip("\n") + "\n")
    open_ = [s["q"].name for s in sections if s["run"] is None]
    say(
        f"report: {report} ({len(sections) - len(open_)} answered"
        + (f"; no run yet: {', '.join(open_)})" if open_ else ")")
    )
    return report


def write(
    layout: Layout, variants: list[str], out: Path, say: Say, run_id: int | None = None,
    models: Sequence[str] = (),
) -> Path:  # fmt: skip
    """The report of one run (default: the newest that measured every variant); models: only their cases."""
    names = compare.variants_of(variants)  # the entries may be VARIANT:FORMAT
    with results.connect(layout.home / "results.sqlite") as con:
        if run_id is None:
            run_id = results.latest_run_with(con, names, None)
        if run_id is None:
            raise UserError(f"no stored run measured all of {', '.join(names)}; run `variant bench` first")
        run = dict(con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
        rows = results.rows(con, run_id, names, None)
        keep = model_filter(models, [json.loads(r["params"]) for r in rows], [run_id])
        rows = [r for r in rows if keep(json.loads(r["params"]))]
        suites = sorted({r["suite"] for r in rows})
        out.mkdir(parents=True, exist_ok=True)
        baseline = variants[0]
        rendered = [_suite(con, s, rows, variants, baseline, run_id, out, keep=keep) for s in suites]
    only = sorted({compare.shown(p)["model"] for r in rows if "model" in (p := json.loads(r["params"]))})
    manifests = [m for v in names if (m := manifest_file.read(layout, v)) is not None]
    profiled = _profiles(run, layout.profiles(run_id), names, out)
    text = _template("report.md.j2").render(
        variants=variants, run=run, hardware=hardware(run), manifests=manifests, baseline=baseline,
        suites=rendered, profiles=profiled, only=only if models else [],
    )  # fmt: skip
    report = out / "report.md"
    report.write_text(text)
    plots = sum(1 for s in rendered if s["plot"])
    say(f"report: {report} ({len(rendered)} suites, {plots} plots)")
    return report


def _profiles(run: dict[str, Any], stored: Path, names: list[str], out: Path) -> dict[str, Any] | None:
    """A `variant profile` run's readable files (flame graphs, tables) copied beside the report."""
    if not str(run["profile"]).startswith("profile-") or not stored.is_dir():
        return None  # a benchmark run, or a profile folder without its run (a database made anew)
    found = []
    for v in names:
        summary = stored / v / "profile.json"
        if not summary.is_file():
            continue
        s = json.loads(summary.read_text())
        shutil.copytree(stored / v, out / "profiles" / v, dirs_exist_ok=True, ignore=READABLE_ONLY)
        total = s["total"] or 1
        shares = {g: 100 * w / total for g, w in s["groups"].items()}
        found.append({"variant": v, "title": s["title"], "event": s["event"], "shares": shares})
    if not found:
        return None
    vs_file = stored / "vs.json"
    vs = json.loads(vs_file.read_text()) if vs_file.is_file() else None
    if vs is not None and {vs["baseline"], vs["candidate"]} <= {f["variant"] for f in found}:
        for name in ("flame-vs.svg", "flame-vs-baseline.svg", "groups-vs.md"):
            shutil.copy2(stored / name, out / "profiles" / name)
    else:
        vs = None  # the comparison needs both of its variants in the report
    return {"variants": found, "groups": list(found[0]["shares"]), "vs": vs}


def _suite(
    con: sqlite3.Connection,
    suite: str,
    rows: list[sqlite3.Row],
    variants: list[str],
    baseline: str,
    run_id: int,
    out: Path,
    name: str | None = None,
    keep: Keep | None = None,
) -> dict[str, Any]:
    """A suite's section (or a question's, named name): plot, table of medians, pairwise comparisons.

    rows are the run's (keep: --model's choice of cases, which the pairwise comparisons take too).
    """
    mine = [r for r in rows if r["suite"] == suite]
    groups, facts = share.split(compare.grouped(mine, variants))
    hw = compare.hardware_of(con, run_id)
    skipped = skips.skips(mine)
    png = out / f"{name or suite}.png"
    if groups:  # a suite whose every case was skipped has no figure to plot
        plot(png, f"{name} ({suite})" if name else suite, groups, variants, skipped)
    table, limits = [], []
    for key, by_variant in sorted(groups.items()):
        _s, metric, unit, params, better = key
        cells = []
        for v in variants:
            vals = [x for x in by_variant.get(v, {}).values() if x is not None]
            if vals:
                summary = stats.summarize(vals)
                limit = share.bound(key, v, summary, facts, hw)
                limits.append(limit.cell() if limit else "")
                cells.append(summary.fmt() + (f" · {limits[-1]}" if limit else ""))
            elif was_skipped(skipped, v, json.loads(params)):
                cells.append("skipped")
            else:  # figures without a value timed out; no entry at all: never ran (a format it cannot run)
                cells.append("timeout" if by_variant.get(v) else "-")
        table.append(
            {"metric": metric, "unit": unit, "better": better, "case": _case(params), "cells": cells}
        )
    comparisons = []
    for other in variants[1:]:
        _, pairs = compare.pair_rows(con, baseline, other, suite, run_id)
        pairs = [p for p in pairs if keep is None or keep(p.params)]
        comparisons.append(
            {"title": f"{other} vs {baseline}:", "table": tables.render(pairs, baseline, other, "md")}
        )
    roof = out / f"{name or suite}-roofline.png"
    drawn = roofline.plot(roof, name or suite, roofline.points(groups, facts, variants), hw, variants)
    return {"name": suite, "plot": png.name if groups else None, "rows": table, "notes": tables.notes(limits),
            "roofline": roof.name if drawn else None,
            "skips": skip_notes(mine, variants), "comparisons": comparisons}  # fmt: skip


def _newest(
    con: sqlite3.Connection, variants: list[str], suite: str, model: str | None, limit: int | None = None
) -> tuple[int | None, list[sqlite3.Row]]:
    """The newest run of variants in suite, and its rows; with a model, the newest that measured it.

    limit: the question's --memory-max; only a run under that memory limit (none: under none) answers.
    """
    query = "SELECT DISTINCT run_id FROM measurements WHERE suite = ? ORDER BY run_id DESC"
    for (run_id,) in con.execute(query, (suite,)).fetchall():
        run = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if run is None or _limit_of(results.run_hardware(run)) != limit:
            continue
        rows = results.rows(con, run_id, variants, suite)
        if not set(variants) <= {r["variant"] for r in rows}:
            continue
        if model is None or any(matches(model, json.loads(r["params"])) for r in rows):
            return run_id, rows
    return None, []


def _limit_of(hw: dict[str, Any] | None) -> int | None:
    """The memory limit of a run's hardware record; a record of any other shape (an import) has none."""
    limit = hw.get("memory_limit") if isinstance(hw, dict) else None
    bytes_ = limit.get("bytes") if isinstance(limit, dict) else None
    return bytes_ if isinstance(bytes_, int) and not isinstance(bytes_, bool) else None


def _answer(con: sqlite3.Connection, q: questions.Question, out: Path) -> dict[str, Any]:
    """A question's section, from the newest run that measured its variants in its suite (and its model)."""
    variants = compare.variants_of(list(q.entries))
    run_id, rows = _newest(con, variants, q.suite, q.model, q.memory_max)
    if run_id is None:
        return {"q": q, "command": q.command, "run": None}
    run = dict(con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
    keep = model_filter((q.model,), [json.loads(r["params"]) for r in rows], (run_id,)) if q.model else None
    rows = [r for r in rows if keep is None or keep(json.loads(r["params"]))]
    section = _suite(con, q.suite, rows, list(q.entries), q.entries[0], run_id, out, q.name, keep)
    return {**section, "q": q, "command": q.command, "run": run, "hardware": hardware(run)}
