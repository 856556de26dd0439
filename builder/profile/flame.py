"""Flame graphs as SVG: one for a profile, or a differential one for two.

Written here rather than with Brendan Gregg's flamegraph.pl (Perl, not on
these machines): a few dozen lines of layout. Each frame's <title> is its
tooltip (name, weight, share), which every browser shows on hover. Frames are
coloured by group (groups.py), so "where did the time go" reads off the
colours; the differential graph keeps the candidate's widths and colours
each frame by how its share changed from the baseline (red: more, blue: less).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape

from . import groups
from .stacks import Profile

WIDTH = 1200
ROW = 17
MIN_FRACTION = 0.001  # frames narrower than 0.1% of the profile are left out
PALETTE = {
    "barrier and thread sync": "#e8594a",
    "matmul / vec-dot kernels": "#4c9a4c",
    "quantise activations": "#d9a63a",
    "memory and page faults": "#8a6fc2",
    "model loading": "#4a8fd0",
    groups.OTHER: "#b9b9b9",
}


@dataclass
class Node:
    name: str
    weight: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def tree(profile: Profile) -> Node:
    root = Node("all")
    for stack, weight in profile.stacks.items():
        root.weight += weight
        node = root
        for frame in stack:
            node = node.children.setdefault(frame, Node(frame))
            node.weight += weight
    return root


def _share(node: Node, total: int) -> float:
    return node.weight / total if total else 0.0


def _diff_colour(delta: float) -> str:
    """delta: the frame's share in the candidate minus in the baseline, in [-1, 1]."""
    strength = min(abs(delta) / 0.05, 1.0)  # 5 percentage points or more: full colour
    fade = int(235 - 135 * strength)
    return f"rgb(235,{fade},{fade})" if delta > 0 else f"rgb({fade},{fade},235)"


def _shares_by_path(root: Node, total: int, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], float]:
    out = {}
    for child in root.children.values():
        path = (*prefix, child.name)
        out[path] = _share(child, total)
        out.update(_shares_by_path(child, total, path))
    return out


def svg(profile: Profile, title: str, *, baseline: Profile | None = None, invert: bool = False) -> str:
    """The SVG text; with baseline, a differential graph (widths: profile, colours: change).

    invert: profile is the baseline and `baseline` the candidate, so what the candidate lost shows
    at the width it had (a frame gone from the candidate is invisible in the candidate's widths);
    colours still say the change from baseline to candidate.
    """
    root = tree(profile)
    total = root.weight
    before = _shares_by_path(tree(baseline), baseline.total) if baseline is not None else None
    rects: list[str] = []
    depth_max = 0

    def place(node: Node, x: float, depth: int, path: tuple[str, ...]) -> None:
        nonlocal depth_max
        for child in sorted(node.children.values(), key=lambda n: n.name):
            width = WIDTH * _share(child, total)
            if _share(child, total) >= MIN_FRACTION:
                here = (*path, child.name)
                depth_max = max(depth_max, depth)
                if before is None:
                    colour, extra = PALETTE[groups.group_of(here)], ""
                else:
                    delta = _share(child, total) - before.get(here, 0.0)
                    delta = -delta if invert else delta
                    colour, extra = _diff_colour(delta), f", {delta * 100:+.2f} points in the candidate"
                rects.append(_rect(child, x, depth, width, total, profile.unit, colour, extra))
                place(child, x, depth + 1, here)
            x += width

    place(root, 0.0, 0, ())
    height = (depth_max + 1) * ROW + 40
    # rows were placed from the top; flip so the root sits at the bottom, as flame graphs do
    body = "\n".join(_flip(r, height) for r in rects)
    note = "software event cpu-clock (no hardware counters on this machine)" if profile.unit == "ns" else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">\n'
        f'<text x="4" y="14" font-size="13">{escape(title)}</text>\n'
        f'<text x="4" y="28" fill="#666">{escape(note)} total {total:,} {profile.unit}</text>\n'
        f"{body}\n</svg>\n"
    )


def _rect(
    node: Node, x: float, depth: int, width: float, total: int, unit: str, colour: str, extra: str
) -> str:
    label = escape(node.name)
    tip = f"{label} ({node.weight:,} {unit}, {100 * node.weight / total:.2f}%{escape(extra)})"
    chars = int(width / 6.6)
    text = (
        label
        if len(node.name) <= chars
        else (escape(node.name[: max(chars - 2, 0)]) + ".." if chars > 3 else "")
    )
    return (
        f'<g><title>{tip}</title><rect x="{x:.2f}" y="@{depth}@" width="{max(width - 0.5, 0.1):.2f}" '
        f'height="{ROW - 1}" fill="{colour}"/><text x="{x + 2:.2f}" y="@{depth}@T">{text}</text></g>'
    )


def _flip(rect: str, height: int) -> str:
    def y(m: re.Match[str]) -> str:
        depth, is_text = int(m[1]), m[2] == "T"
        top = height - (depth + 1) * ROW
        return f"{top + 12 if is_text else top}"

    return re.sub(r"@(\d+)@(T?)", y, rect)
