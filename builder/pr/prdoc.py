"""PR.md for `variant patch export`: what a llama.cpp reviewer asks of a performance PR, from stored runs.

PR.md follows llama.cpp's pull-request template (upstream.py): its title is in the
`<module> : <title>` form (patch.export.pr_title), its Overview is the series' own
notes from series.toml, and everything the tool writes goes under Additional
information; the other sections are the template's, for the author to fill.
The numbers are never measured here: they come from the results database,
from the newest run that measured a variant carrying the series (with the
series' current patch files, by sha256) against a baseline without it; the
tables take the shape of llama.cpp's scripts/compare-llama-bench.py (one row
per case, baseline and candidate side by side, the speedup), with each
figure's median [min, max] over the repetitions and the pairwise noise
verdict, each table naming the CPU from its run's hardware record. The tests
section runs the smoke checks on the installed candidate and, for a series that
changes ggml/, its test-backend-ops (backendops.py).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..layout import Layout
from ..patch import export as export_mod
from ..patch.series import Series
from ..publish import manifest as manifest_file
from ..results import compare, tables
from ..results.report import record_lines
from ..smoke import smoke
from ..store import results
from . import backendops, upstream

Say = Callable[[str], None]
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "sha_ni")  # fmt: skip


@dataclass(frozen=True)
class Pair:
    run_id: int
    baseline: str
    candidate: str
    suites: tuple[str, ...]
    current: bool  # the candidate ran with the series' current patch files
    command: str
    host: str
    started: str
    hardware: tuple[str, ...]  # the run's hardware record, as lines (none: not recorded)
    cpu: str  # the CPU model from that record, or NO_CPU


NO_CPU = "CPU not recorded"


def run_cpu(run: sqlite3.Row) -> str:
    """The CPU model in a stored run's hardware record (a record from elsewhere may lack it, or be odd)."""
    model = (results.run_hardware(run) or {}).get("cpu_model")
    return " ".join(model.split()) if isinstance(model, str) and model.strip() else NO_CPU


def patch_marks(series: Series) -> set[str]:
    """How results.record names this series' current files: series/file@sha256[:12]."""
    return {f"{series.name}/{p.path.name}@{p.sha256[:12]}" for p in series.patches}


def find_pairs(con: sqlite3.Connection, series: Series, run_ids: list[int] | None) -> list[Pair]:
    """Per suite, the newest stored run with a candidate carrying the series and a baseline without."""
    marks = patch_marks(series)
    query = "SELECT DISTINCT run_id, variant, patches, suite FROM measurements ORDER BY run_id DESC"
    seen: dict[int, dict[str, tuple[set[str], set[str]]]] = {}
    for r in con.execute(query):
        entry = seen.setdefault(r["run_id"], {}).setdefault(
            r["variant"], (set(json.loads(r["patches"])), set())
        )
        entry[1].add(r["suite"])
    pairs: list[Pair] = []
    covered: set[str] = set()
    for run_id in sorted(seen, reverse=True):
        if run_ids and run_id not in run_ids:
            continue
        variants = seen[run_id]
        cands = [v for v, (p, _) in variants.items() if any(x.startswith(f"{series.name}/") for x in p)]
        bases = [v for v, (p, _) in variants.items() if not any(x.startswith(f"{series.name}/") for x in p)]
        for cand in cands:
            cpatches, csuites = variants[cand]
            mine = {x for x in cpatches if x.startswith(f"{series.name}/")}
            rest = cpatches - mine
            base = next((b for b in bases if variants[b][0] == rest), bases[0] if bases else None)
            if base is None:
                continue
            suites = tuple(sorted((csuites & variants[base][1]) - (set() if run_ids else covered)))
            if not suites:
                continue
            covered |= set(suites)
            run = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            pairs.append(Pair(run_id, base, cand, suites, mine == marks, run["command"], run["host"],
                              run["started"], tuple(record_lines(run)), run_cpu(run)))  # fmt: skip
            break
    return pairs


def _test_name(params: dict[str, Any]) -> str:
    if "n_prompt" in params and "n_gen" in params:
        return f"pp{params['n_prompt']}" if params["n_prompt"] else f"tg{params['n_gen']}"
    return ""


def table(rows: list[compare.Row], baseline: str, candidate: str) -> str:
    """compare-llama-bench.py's shape: the case's columns, baseline, candidate, speedup (+ verdict).

    A user's model is one column, "label (about)", never its identity; what it is comes from its GGUF
    header, so every cell is escaped (compare.cell).
    """
    found = dict.fromkeys(k for r in rows for k in compare.shown(r.params))
    keys: list[str] = [k for k in ("model", "threads") if k in found]
    keys += [k for k in found if k not in (*keys, "n_prompt", "n_gen")]
    test = any(_test_name(r.params) for r in rows)
    unit = rows[0].unit
    head = [k.replace("_", " ").capitalize() for k in keys] + (["Test"] if test else [])
    head += [f"{unit} {baseline}", f"{unit} {candidate}", "Speedup", "Verdict"]
    limited = tables.has_limits(rows)
    lines = [
        "| " + " | ".join(head + (["Of the limit"] if limited else [])) + " |",
        "|" + "|".join([":---"] * (len(head) - 4) + ["---:"] * 3 + [":---"] * (2 if limited else 1)) + "|",
    ]
    limits = []
    for r in rows:
        case = compare.shown(r.params)
        cells = [str(case.get(k, "")) for k in keys] + ([_test_name(r.params)] if test else [])
        cells += r.cells()
        cells += [r.comparison.speedup.fmt() if r.comparison else "-", r.verdict]
        if limited:
            limits.append(tables.limit_cell(r.bounds))
            cells.append(limits[-1])
        lines.append("| " + " | ".join(map(compare.cell, cells)) + " |")
    return "\n".join(lines) + tables.notes_block(limits)


def hardware(manifest: dict[str, Any] | None) -> list[tuple[str, str]]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            info.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    mem = next((ln.split()[1] for ln in _lines("/proc/meminfo") if ln.startswith("MemTotal:")), "")
    out = [
        ("CPU", info.get("model name", platform.processor() or "?")),
        ("CPUs", f"{os.cpu_count()} logical ({info.get('cpu cores', '?')} cores per socket reported)"),
        ("ISA", " ".join(f for f in ISA_FLAGS if f in flags) or "-"),
        ("Memory", f"{int(mem) / 1048576:.1f} GiB" if mem else "?"),
        ("Kernel", f"{platform.system()} {platform.release()} ({platform.version()})"),
        ("THP", f"enabled: {_thp('enabled')}; defrag: {_thp('defrag')}"),
    ]
    if manifest:
        tc = manifest.get("toolchain", {})
        out.append(("Compiler", f"{tc.get('cxx_version', '?')} ({tc.get('cxx', '?')})"))
        opts = manifest.get("cmake", {})
        out.append(("Build", f"{manifest.get('build_type')}, GGML_OPENMP={opts.get('GGML_OPENMP', 'ON')}"))
    return out


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _thp(name: str) -> str:
    text = " ".join(_lines(f"/sys/kernel/mm/transparent_hugepage/{name}"))
    return next((w[1:-1] for w in text.split() if w.startswith("[")), text or "?")


def write(
    layout: Layout, pkg: export_mod.Package, say: Say, *, run_ids: list[int] | None, tests: bool
) -> tuple[Path, list[int]]:
    """Write DIR/PR.md for an exported package; returns its path and the run ids it used."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    series = pkg.series
    with results.connect(layout.home / "results.sqlite") as con:
        pairs = find_pairs(con, series, run_ids)
        perf = []
        for pair in pairs:
            for suite in pair.suites:
                _, rows = compare.pair_rows(con, pair.baseline, pair.candidate, suite, pair.run_id)
                by_metric: dict[str, list[compare.Row]] = {}
                for r in rows:
                    by_metric.setdefault(r.metric, []).append(r)
                # compare's row for a model neither variant could run: no metric, what it is and the reasons
                if none_ran := by_metric.pop("-", []):
                    why = "\n".join(
                        f"- {compare.cell(str(compare.shown(r.params)['model']))}: {compare.cell(r.verdict)}"
                        for r in none_ran
                    )
                    perf.append({"title": f"{suite}: not run", "pair": pair, "table": why})
                for metric, mrows in by_metric.items():
                    reps = max((r.comparison.speedup.n for r in mrows if r.comparison), default=0)
                    what = f"{mrows[0].unit}, {mrows[0].better} is better"
                    title = f"{suite}: {metric} ({what}), {reps} repetitions"
                    perf.append(
                        {"title": title, "pair": pair, "table": table(mrows, pair.baseline, pair.candidate)}
                    )
    candidate = pairs[0].candidate if pairs else None
    manifest = manifest_file.read(layout, candidate) if candidate else None
    checks = []
    ops = None
    if tests and candidate and manifest:
        checks = smoke.smoke(layout, [candidate], pairs[0].baseline, say)
        if backendops.needed(pkg.paths):
            ops = backendops.run(layout, candidate, say)
    carried = {f"{p['series']}/{p['file']}@{p['sha256'][:12]}" for p in (manifest or {}).get("patches", [])}
    installed_current = patch_marks(series) <= carried
    env = Environment(loader=PackageLoader("builder.pr", "templates"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    used = sorted({p.run_id for p in pairs})
    text = env.get_template("pr.md.j2").render(
        s=series, pkg=pkg, pairs=pairs, perf=perf, checks=checks, tests=tests, manifest=manifest,
        hardware=hardware(manifest), files=[f.name for f in pkg.files[1:]], runs=used,
        installed_current=installed_current, template=upstream.read(pkg.mirror, pkg.base),
        ggml=backendops.needed(pkg.paths), ops=ops, ops_command=backendops.COMMAND, n_ops=len(backendops.OPS),
    )  # fmt: skip
    path = pkg.out / "PR.md"
    path.write_text(text)
    say(f"PR.md: {path} (runs {', '.join(map(str, used)) or 'none'})")
    return path, used


def export(
    layout: Layout,
    name: str,
    source: str,
    out: Path,
    *,
    branch: str | None,
    run_ids: list[int] | None,
    tests: bool,
    offline: bool,
    say: Say,
) -> tuple[export_mod.Package, Path, list[int]]:
    """The whole package: patches, cover letter, branch and revision (patch.export), then PR.md."""
    pkg = export_mod.export(layout, name, source, out, branch=branch, offline=offline, say=say)
    path, used = write(layout, pkg, say, run_ids=run_ids, tests=tests)
    marker = out / export_mod.MARKER
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "pr": path.name, "runs": used}, indent=1) + "\n")
    return pkg, path, used
