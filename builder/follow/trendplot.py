"""`variant history`'s figure: the metric across versions with its spread, steps marked, and the
ratio to the pinned build below (asv's graph of one benchmark across commits)."""

from __future__ import annotations

import json
from pathlib import Path

from ..bench.stats import Summary
from . import trend
from .probe import Test
from .trend import Point

COLOURS = {"better": "tab:green", "worse": "tab:red"}


def plot(path: Path, points: list[Point], test: Test, ref: str, unit: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = list(range(len(points)))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(6.0, 0.55 * len(points) + 2), 6.5), sharex=True, height_ratios=(3, 2)
    )
    done = [(x, p) for x, p in zip(xs, points, strict=True) if p.value is not None and p.ratio is not None]
    for ax, which, label in (
        (top, "value", f"{test.metric} ({unit})"),
        (bottom, "ratio", f"ratio to {ref}\n(>1 better; 95% CI of the median)"),
    ):
        figs: list[tuple[int, Summary, str]] = [(x, getattr(p, which), p.step) for x, p in done]
        # values: their min-max; ratios: where their median lies (95%), what a step is judged on
        bars = {x: (s.min, s.max) for x, s, _ in figs} if which == "value" else \
            {x: p.ci or (p.ratio.min, p.ratio.max) for x, p in done if p.ratio}  # fmt: skip
        meds = [s.median for _, s, _ in figs]
        low = [s.median - bars[x][0] for x, s, _ in figs]
        high = [bars[x][1] - s.median for x, s, _ in figs]
        ax.errorbar([x for x, _, _ in figs], meds, yerr=[low, high], fmt="o-", capsize=3, color="tab:blue")
        for x, s, step in figs:
            if step:
                ax.plot([x], [s.median], marker="v" if step == "worse" else "^", markersize=12,
                        color=COLOURS[step], zorder=5)  # fmt: skip
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for x, p in zip(xs, points, strict=True):
        if p.value is None:
            top.text(x, 0.03, "skipped", transform=top.get_xaxis_transform(), rotation=90, color="dimgray",
                     ha="center", va="bottom", fontsize=8)  # fmt: skip
        elif p.step:
            top.annotate(f"step: {p.step}", (x, p.value.median), textcoords="offset points", xytext=(-10, 0),
                         ha="right", va="center", color=COLOURS[p.step], fontsize=8)  # fmt: skip
    bottom.axhline(1.0, color="gray", linewidth=0.8)
    bottom.axhspan(1 - test.threshold, 1 + test.threshold, color="gray", alpha=0.1)
    bottom.set_xticks(xs, [p.version.label for p in points], rotation=45, ha="right")
    top.set_title(f"{ref}: {test.suite}:{test.metric} across upstream versions\n(median and min-max of "
                  "each version's repetitions)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(folder: Path, points: list[Point], test: Test, ref: str) -> dict[str, Path]:
    """history.md, history.json and history.png in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"md": folder / "history.md", "json": folder / "history.json", "png": folder / "history.png"}
    paths["md"].write_text(trend.table(points, test, ref) + "\n")
    unit = next((p.unit for p in points if p.unit), "")
    data = {"reference": ref, "test": test.as_dict(), "unit": unit, "points": [p.as_dict() for p in points]}
    paths["json"].write_text(json.dumps(data, indent=1) + "\n")
    plot(paths["png"], points, test, ref, unit)
    return paths
