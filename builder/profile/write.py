"""The files a profiled variant leaves: folded stacks, flame graphs, the groups and top-functions tables.

Each event gets its folded stacks and a flame graph (perf: cpu-clock, page
faults, context switches; uftrace: traced time); the groups table (where did
the time go) is drawn from the tool's main event, since the groups partition
CPU time, and the other events are counted beside it with where they happened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import flame, groups
from .record import MAIN
from .stacks import Profile

WHAT = {
    "perf": "perf record: cpu-clock sampled at 999 Hz, and every page fault and context switch, each with "
    "its frame-pointer call stack. Software events only: the VMs this runs on have no hardware counters "
    "(cycles, instructions, cache misses), and the same events everywhere keep profiles comparable.",
    "bpf": "BPF, system-wide while the case ran: offcputime's off-CPU stacks of the variant's programs "
    "(time blocked: waiting for a page from disk, a lock, the scheduler), biolatency's block I/O "
    "latency histogram and the pages brought into the page cache for the model's files (biolatency.txt, "
    "cache.txt; offcpu.txt is the raw output).",
    "uftrace": "uftrace record -t 5us: the entry and exit of every call of 5 us or more (the hooks "
    "-finstrument-functions adds; a shorter call's time stays in its caller). Times are wall time "
    "summed over threads, so a thread waiting in a function counts as time in it.",
}
EVENT_FILES = {
    "cpu-clock": "", "time": "", "off-cpu": "", "page-faults": "faults.", "context-switches": "switches."
}  # fmt: skip


def amount(weight: float, unit: str) -> str:
    """A weight as a person reads it: ns and us as seconds, counts as counts."""
    if unit in ("ns", "us"):
        return f"{seconds(weight, unit):.3f} s"
    return f"{weight:,.0f} {unit}"


def seconds(weight: float, unit: str) -> float:
    return weight / (1e9 if unit == "ns" else 1e6 if unit == "us" else 1.0)


def groups_table(named: list[tuple[str, Profile]]) -> str:
    """Each group's share of each profile (and its time), in GROUPS order, "other" last."""
    head = "| group | " + " | ".join(n for n, _ in named) + " |\n|---|" + "---:|" * len(named) + "\n"
    shares = [(groups.shares(p), p) for _, p in named]
    rows = []
    for g in shares[0][0]:
        cells = [
            f"{100 * s[g] / p.total:.1f}% ({amount(s[g], p.unit)})" if p.total else "-" for s, p in shares
        ]
        rows.append(f"| {g} | " + " | ".join(cells) + " |")
    total = "| total | " + " | ".join(amount(p.total, p.unit) for _, p in shares) + " |"
    return head + "\n".join([*rows, total]) + "\n"


def top_table(p: Profile, n: int = 15) -> str:
    out = "| function | self | total |\n|---|---:|---:|\n"
    for f in groups.top(p, n):
        out += (
            f"| `{f.name}` | {100 * f.self_weight / p.total:.1f}% | {100 * f.total_weight / p.total:.1f}% |\n"
        )
    return out


def events_table(events: dict[str, Profile]) -> str:
    out = "| event | total | where the threads were (the frame that entered the kernel, or the leaf) |\n"
    out += "|---|---:|---|\n"
    for name, p in events.items():
        user = groups.user_side(p)
        where = ", ".join(
            f"`{f.name}` {100 * f.self_weight / p.total:.0f}%" for f in groups.top(user, 3) if f.self_weight
        )
        out += f"| {name} | {amount(p.total, p.unit)} | {where or '-'} |\n"
    return out


def write(folder: Path, title: str, tool: str, events: dict[str, Profile]) -> dict[str, Any]:
    """Every file of one profile into folder; returns the summary also written as profile.json."""
    main = events[MAIN[tool]]
    folder.mkdir(parents=True, exist_ok=True)
    for name, p in events.items():
        stem = EVENT_FILES.get(name, f"{name}.")
        (folder / f"{stem}folded.txt").write_text(p.folded())
        (folder / f"{stem or 'flame.'}svg").write_text(flame.svg(p, f"{title} ({name})"))
    intro = f"# {title}\n\n{WHAT[tool]}\n\n"
    (folder / "groups.md").write_text(
        intro + f"## Where the {MAIN[tool]} went\n\n" + groups_table([("share", main)])
        + "\n## Events\n\n" + events_table(events)
    )  # fmt: skip
    top = f"# {title}: top functions by self time\n\n## {MAIN[tool]}\n\n" + top_table(main)
    for name, p in events.items():
        if name != MAIN[tool] and p.total:
            top += f"\n## {name}, by the frame that entered the kernel\n\n" + top_table(
                groups.user_side(p), 10
            )
    (folder / "top.md").write_text(top)
    summary = {
        "title": title,
        "tool": tool,
        "event": MAIN[tool],
        "unit": main.unit,
        "total": main.total,
        "groups": groups.shares(main),
        "events": {name: {"unit": p.unit, "total": p.total} for name, p in events.items()},
        "files": sorted(f.name for f in folder.iterdir() if f.suffix in (".svg", ".md", ".txt", ".json")),
    }
    (folder / "profile.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def write_vs(folder: Path, case: str, base: tuple[str, Profile], cand: tuple[str, Profile]) -> list[Path]:
    """The groups side by side, and two differential flame graphs coloured by the change from base to
    cand (red: a larger share of the time, blue: smaller): one at the candidate's widths (what grew),
    one at the baseline's (what shrank, including frames the candidate no longer has)."""
    title = f"{case}: {cand[0]} vs {base[0]}"
    # which is which, for `variant report` (its variants may come in another order)
    (folder / "vs.json").write_text(
        json.dumps({"baseline": base[0], "candidate": cand[0], "case": case}) + "\n"
    )
    table = folder / "groups-vs.md"
    table.write_text(f"# {title}\n\n" + groups_table([base, cand]))
    grew, shrank = folder / "flame-vs.svg", folder / "flame-vs-baseline.svg"
    colours = "red: a larger share in the candidate, blue: smaller"
    grew.write_text(flame.svg(cand[1], f"{title}, at {cand[0]}'s widths ({colours})", baseline=base[1]))
    shrank.write_text(
        flame.svg(base[1], f"{title}, at {base[0]}'s widths ({colours})", baseline=cand[1], invert=True)
    )
    return [table, grew, shrank]
