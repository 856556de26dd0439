"""The report's roofline: each tg and pp figure as GFLOPS over FLOPs per byte, under the machine's roofs.

A point is a variant's median on one case: its FLOPs per token (2 per weight
element multiplied) over the bytes a token reads (a generated token reads every
weight; a prompt token a 1/n_prompt share of them, the batch reading them once),
and its GFLOPS (FLOPs per token x tokens/s). The roofs are the run's: the probe's
read bandwidth at each thread count (GFLOPS = GB/s x FLOPs per byte, the
slanted lines) and the estimated peak (host/peak.py; f32 and int8, dashed,
marked as estimates). Generation sits on the slanted roof when it streams at the
bandwidth's pace; prompt processing far to the right, under the flat ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bench import stats
from ..host import peak as peak_mod
from . import share

METRICS = ("tg_tps", "pp_tps")


@dataclass(frozen=True)
class Point:
    variant: str
    metric: str  # tg_tps or pp_tps
    threads: int
    intensity: float  # FLOPs per byte read
    gflops: float


def points(groups: dict[share.Key, Any], facts: share.Facts, variants: Sequence[str]) -> list[Point]:
    """Every tg and pp median that has both facts (runs from before them have none: no point)."""
    out = []
    for key, by_variant in sorted(groups.items()):
        suite, metric, _, params_json, _ = key
        if metric not in METRICS:
            continue
        threads = json.loads(params_json).get("threads")
        for v in variants:
            mine = facts.get((suite, params_json, v), {})
            vals = [x for x in by_variant.get(v, {}).values() if x is not None]
            flops, nbytes = mine.get("flops_per_token"), mine.get("bytes_per_token")
            if not vals or not flops or not nbytes or not isinstance(threads, int):
                continue
            tps = stats.summarize(vals).median
            out.append(Point(v, metric, threads, flops / nbytes, flops * tps / 1e9))
    return out


def plot(
    path: Path, title: str, found: list[Point], hw: dict[str, Any] | None, variants: Sequence[str]
) -> bool:
    """The roofline PNG; False (nothing written) without a point."""
    if not found:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [p.intensity for p in found]
    lo, hi = min(xs) / 2, max(xs) * 2
    # the roofs in greys, the variants in colours: the best read of each thread count (share.py's limit)
    for i, t in enumerate(sorted({p.threads for p in found})):
        bw = share.probe(hw, t)
        if bw is not None:
            grey = str(0.15 + 0.2 * (i % 4))
            label = f"read {bw.max:.1f} GB/s, t={t}"
            ax.plot([lo, hi], [bw.max * lo, bw.max * hi], lw=1, color=grey, label=label)
    record = hw.get("peak") if isinstance(hw, dict) else None
    if isinstance(record, dict):
        tops: dict[float, str] = {}
        for kind in ("f32", "f16", "int8"):  # f16 only where it has a rate of its own (native half FMAs)
            top = peak_mod.gflops(record, "q8_0" if kind == "int8" else kind, None)
            if top and top not in tops:
                tops[top] = kind
        for top, kind in tops.items():
            ax.axhline(top, ls=":", lw=1, color="gray")
            ax.text(hi, top, f" {kind} peak (est., all cores) {top:.0f}", va="bottom", ha="right", fontsize=8)
    markers = {"tg_tps": "o", "pp_tps": "s"}
    colors = {v: f"C{i % 10}" for i, v in enumerate(variants)}
    for p in found:
        ax.scatter(
            p.intensity, p.gflops, marker=markers[p.metric], color=colors.get(p.variant, "k"), zorder=3
        )
        ax.annotate(f"t={p.threads}", (p.intensity, p.gflops), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    for v in variants:
        if any(p.variant == v for p in found):
            ax.scatter([], [], color=colors[v], label=v)
    ax.scatter([], [], marker="o", color="k", label="tg (a generated token)")
    ax.scatter([], [], marker="s", color="k", label="pp (a prompt token)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("FLOPs per byte read")
    ax.set_ylabel("GFLOPS")
    ax.set_title(f"{title}: roofline", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
