"""Smoke checks that a fork's own kernels really ran and computed what the reference computes.

For a source with a model recipe ([NAME.smoke] models): the same weights in the
kernels' format and in a plain one (models/forkmodels.py); perplexity of both
on a fixed text must agree within the recipe's stated tolerance, and a
cpu-clock profile (perf: software events, which every VM has) of a generation
with the kernels' format must put samples in the kernel functions the source
names ([NAME.kernels]).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..layout import Layout
from ..models import forkmodels
from ..models.installed import Installed
from ..run import capture, measure
from ..source.sources import Source
from .smokecheck import Check

Say = Callable[[str], None]
# "Final estimate: PPL = 618.47" (ik_llama.cpp: "... PPL over 4 chunks for n_ctx=128 = 470.28")
PPL = re.compile(r"Final estimate: PPL[^\n]*= ([0-9.]+|nan|inf)", re.I)
PERF_LINE = re.compile(r"^\s*([0-9.]+)%\s+(?:\S+\s+)?\[[.k]\]\s+(.*)$")
COLUMNS = re.compile(r"\s{2,}")


def enabled(inst: Installed, option: str) -> bool:
    value = (inst.manifest.get("cmake") or {}).get(option, "OFF")
    return option == "*" or str(value).upper() in ("ON", "TRUE", "1", "YES", "Y")


def perplexity(inst: Installed, model: Path, text: Path) -> tuple[float | None, str]:
    argv = [inst.tool("llama-perplexity"), "-m", str(model), "-f", str(text), "-c", "128", "-b", "128",
            "--chunks", "4", "-t", "2"]  # fmt: skip
    res = measure(argv, env=inst.runtime_env(), timeout=900)
    found = PPL.search(res.stdout + res.stderr)
    if res.returncode != 0 or not found:
        return None, (res.stderr or res.stdout)[-800:]
    return float(found[1]), ""


def perf_rows(report: str) -> list[tuple[float, str]]:
    """(percent, symbol) of `perf report --stdio --sort symbol` lines."""
    # A symbol may hold single spaces (C++ templates); columns after it are set off by several.
    return [(float(m[1]), COLUMNS.split(m[2].strip())[0]) for line in report.splitlines()
            if (m := PERF_LINE.match(line))]  # fmt: skip


def kernel_share(inst: Installed, model: Path, prefixes: tuple[str, ...]) -> tuple[float, str, str]:
    """(% of cpu-clock samples of a generation in functions starting with prefixes, the top one, problem)."""
    perf = shutil.which("perf")
    if perf is None:
        return 0.0, "", "perf is not installed (apt-get install -y linux-perf)"
    with tempfile.TemporaryDirectory(prefix="variant-perf-") as tmp:
        data = Path(tmp) / "perf.data"
        bench = [inst.tool("llama-bench"), "-m", str(model), "-p", "0", "-n", "16", "-t", "1", "-r", "1"]
        rec = measure([perf, "record", "-q", "-e", "cpu-clock", "-F", "999", "-o", str(data), "--", *bench],
                      env=inst.runtime_env(), timeout=900)  # fmt: skip
        if rec.returncode != 0:
            return 0.0, "", f"perf record failed ({rec.returncode}): {(rec.stderr or rec.stdout)[-400:]}"
        rep = capture([perf, "report", "-i", str(data), "--stdio", "--no-children", "--sort", "symbol", "-q"],
                      check=False, timeout=300)  # fmt: skip
    rows = perf_rows(rep.stdout)
    ours = [(pct, sym) for pct, sym in rows if sym.startswith(prefixes)]
    top = max(ours, default=(0.0, ""))[1]
    return (
        sum(pct for pct, _ in ours),
        top,
        "" if rows else f"perf report gave no samples: {rep.stderr[-300:]}",
    )


def checks(layout: Layout, src: Source, inst: Installed, say: Say) -> list[Check]:
    recipe = forkmodels.recipe_for(inst, src.models)
    on = enabled(inst, recipe.kernel_option)
    files = forkmodels.ensure(layout, inst, recipe, say)
    fmt = recipe.format_for(on)
    text = layout.home / "models" / "perplexity.txt"
    text.parent.mkdir(parents=True, exist_ok=True)
    text.write_text(forkmodels.perplexity_text())
    out = []
    got, err = perplexity(inst, files[fmt], text)
    ref, ref_err = perplexity(inst, files[recipe.reference], text)
    if got is None or ref is None:
        out.append(Check(inst.name, "llama-perplexity", False, f"{fmt} vs {recipe.reference}: no perplexity",
                         tail=err or ref_err))  # fmt: skip
    else:
        rel = abs(got - ref) / ref
        ok = rel <= recipe.tolerance
        detail = (f"{fmt} (kernels) {got:.2f} vs {recipe.reference} {ref:.2f}, the same weights: "
                  f"{rel:.2%} apart (tolerance {recipe.tolerance:.0%}: {recipe.why})")  # fmt: skip
        out.append(Check(inst.name, "llama-perplexity", ok, detail))
    prefixes = tuple(p for option, syms in src.kernels if enabled(inst, option) for p in syms)
    if prefixes:
        share, top, problem = kernel_share(inst, files[fmt], prefixes)
        if problem:
            out.append(Check(inst.name, "perf", False, f"cannot show the kernels ran: {problem}"))
        else:
            detail = (f"{share:.1f}% of cpu-clock samples of a {fmt} generation in the fork's kernels "
                      f"({', '.join(prefixes)}); most in {top or '-'}")  # fmt: skip
            out.append(Check(inst.name, "perf", share > 0, detail))
    return out
