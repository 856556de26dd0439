"""The report's figures: one PNG per suite, small multiples of medians with min-max whiskers."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..bench import stats
from . import compare


def labels(params: list[dict[str, Any]]) -> list[str]:
    """Case labels showing only the parameters that vary between the cases of a panel."""
    params = [compare.shown(p) for p in params]
    keys = [
        k for k in dict.fromkeys(k for p in params for k in p) if len({str(p.get(k)) for p in params}) > 1
    ]
    return [" ".join(f"{k}={p.get(k)}" for k in keys) or "all" for p in params]


Skipped = Collection[tuple[str, str]]  # (variant, model identity): skips.skips' keys


def was_skipped(skipped: Skipped, variant: str, params: dict[str, Any]) -> bool:
    return (compare.entry(variant)[0], str(params.get("model_id"))) in skipped


def plot(path: Path, suite: str, groups: dict[tuple[str, str, str, str, str], dict[str, compare.Series]],
         variants: list[str], skipped: Skipped = ()) -> None:  # fmt: skip
    """Small multiples: one panel per metric, cases along x, variants side by side, min-max whiskers.

    A case where a variant timed out gets a red "timeout" mark instead of an
    empty bar (which would read as the best result), one it skipped (a model's
    types it has no kernel for) a grey "skipped" mark; panels whose values span
    more than 30x use a log scale so that small cases stay visible.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics: dict[tuple[str, str, str], list[tuple[dict[str, Any], dict[str, compare.Series]]]] = {}
    for (_s, metric, unit, params, better), by_variant in sorted(groups.items()):
        metrics.setdefault((metric, unit, better), []).append((json.loads(params), by_variant))
    n = len(metrics)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    most_cases = max(len(c) for c in metrics.values())
    panel_w = max(4.5, 0.45 * most_cases * len(variants) + 1.5)
    fig, axes = plt.subplots(rows, cols, figsize=(panel_w * cols, 3.8 * rows), squeeze=False)
    width = 0.8 / max(len(variants), 1)
    for ax, ((metric, unit, better), cases) in zip(axes.flat, metrics.items(), strict=False):
        finite: list[float] = []
        for i, v in enumerate(variants):
            meds, lo, hi, xs = [], [], [], []
            marks: list[tuple[float, str, str]] = []
            for j, (case, by_variant) in enumerate(cases):
                x = j + (i - (len(variants) - 1) / 2) * width
                vals = [val for val in by_variant.get(v, {}).values() if val is not None]
                if not vals:
                    if was_skipped(skipped, v, case):
                        marks.append((x, "skipped", "dimgray"))
                    elif by_variant.get(v):
                        marks.append((x, "timeout", "red"))
                    continue
                s = stats.summarize(vals)
                xs.append(x)
                meds.append(s.median)
                lo.append(s.median - s.min)
                hi.append(s.max - s.median)
                finite += [val for val in vals if val > 0]
            # the baseline (the first) is hatched and named so in the legend
            label, hatch = (f"{v} (baseline)", "//") if i == 0 else (v, None)
            ax.bar(xs, meds, width, yerr=[lo, hi], capsize=3, label=label, hatch=hatch)
            for x, what, color in marks:
                # x in data units, y as a fraction of the axes: visible on log scales too.
                ax.text(x, 0.02, f"{v}: {what}", transform=ax.get_xaxis_transform(), rotation=90,
                        ha="center", va="bottom", color=color, fontsize=8, fontweight="bold")  # fmt: skip
        if finite and max(finite) / min(finite) > 30:
            ax.set_yscale("log")
        ax.set_xlim(-0.5, len(cases) - 0.5)  # room for timeout and skipped marks, which draw no bar
        ax.set_xticks(range(len(cases)))
        # a user's model says what it is: wrapped, its label stays inside the figure
        ticks = [textwrap.fill(label, 30) for label in labels([p for p, _ in cases])]
        ax.set_xticklabels(ticks, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"{metric} ({better} is better)", fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{suite}: median, whiskers min-max", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
