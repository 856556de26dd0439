"""`variant profile`: one bench case of a variant under its profiler, written out as files a person reads.

For each variant: folded stacks, a flame graph, the groups table (where did
the time go) and the top functions by self and total time. With a baseline
(`--vs`), the groups side by side and a differential flame graph of the
candidate against the baseline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..bench.case import Case, Context
from ..bench.installed import Installed, held
from ..bench.profiles import Profile as RunProfile
from ..bench.runner import why_not
from ..bench.suites import SUITES
from ..errors import UserError
from ..layout import Layout
from ..tomlfile import suggest
from . import flame, groups
from .record import Recorder, tool_for
from .stacks import Profile

Say = Callable[[str], None]
TIMEOUT = 600.0  # a profiled run is slower than a measured one (uftrace: much slower)


@dataclass(frozen=True)
class Profiled:
    variant: str
    case: str
    tool: str
    folder: Path
    profile: Profile


def pick(cases: list[Case], wanted: tuple[str, ...]) -> Case:
    """The one case whose label holds every word of --case (generation before prompt when both fit)."""
    fits = [c for c in cases if all(w in c.label.split() or w in c.label for w in wanted)]
    if not fits:
        labels = ", ".join(c.label for c in cases)
        raise UserError(f"no case matches {' '.join(wanted)!r}; the suite has: {labels}")
    tg = [c for c in fits if " tg " in f" {c.label} "]
    return (tg or fits)[0]


def record_one(
    layout: Layout, inst: Installed, tool: str, suite: str, wanted: tuple[str, ...], threads: int,
    folder: Path, say: Say,
) -> Profiled:  # fmt: skip
    rec = Recorder(tool, folder)
    folder.mkdir(parents=True, exist_ok=True)
    run_profile = RunProfile(name=f"profile-{tool}", timeout=TIMEOUT, profiler=rec.prefix())
    ctx = Context(layout, run_profile, (threads,), say, insts=(inst,))
    case = pick(SUITES[suite].make(ctx), wanted)
    say(f"{inst.name}: {case.label} under {tool}")
    case.run(inst)
    prof = rec.fold()
    write(folder, f"{inst.name}: {case.label}", prof)
    for name in rec.extras():
        say(f"{inst.name}: {folder / name}")
    return Profiled(inst.name, case.label, tool, folder, prof)


def groups_table(named: list[tuple[str, Profile]]) -> str:
    head = "| group | " + " | ".join(n for n, _ in named) + " |\n|---|" + "---:|" * len(named) + "\n"
    shares = [(groups.shares(p), p.total) for _, p in named]
    names = list(shares[0][0])
    rows = [f"| {g} | " + " | ".join(f"{100 * s[g] / t:.1f}%" if t else "-" for s, t in shares) + " |"
            for g in names]  # fmt: skip
    return head + "\n".join(rows) + "\n"


def top_table(p: Profile, n: int = 15) -> str:
    out = "| function | self | total |\n|---|---:|---:|\n"
    for f in groups.top(p, n):
        out += (
            f"| `{f.name}` | {100 * f.self_weight / p.total:.1f}% | {100 * f.total_weight / p.total:.1f}% |\n"
        )
    return out


def write(folder: Path, title: str, p: Profile) -> None:
    (folder / "folded.txt").write_text(p.folded())
    (folder / "flame.svg").write_text(flame.svg(p, title))
    events = "cpu-clock, a software event (no hardware counters here)" if p.unit == "ns" else p.unit
    (folder / "groups.md").write_text(f"# {title}\n\nWeights: {events}.\n\n" + groups_table([("share", p)]))
    (folder / "top.md").write_text(f"# {title}: top functions by self time\n\n" + top_table(p))
    summary = {"title": title, "unit": p.unit, "total": p.total, "groups": groups.shares(p)}
    (folder / "profile.json").write_text(json.dumps(summary, indent=1) + "\n")


def run(
    layout: Layout, names: list[str], *, tool: str | None, suite: str, wanted: tuple[str, ...],
    threads: int, out: Path, say: Say,
) -> list[Profiled]:  # fmt: skip
    if suite not in SUITES:
        raise UserError(f'unknown suite "{suite}"' + suggest(suite, SUITES))
    done = []
    for name in names:
        with held(layout, name) as inst:
            why = why_not(suite, [inst])
            if why:
                raise UserError(f"{name}: suite {suite} cannot run: {why}")
            chosen = tool_for(str(inst.manifest.get("instrument", "none")), tool, name)
            done.append(record_one(layout, inst, chosen, suite, wanted, threads, out / name, say))
    if len(done) == 2:
        base, cand = done
        (out / "groups-vs.md").write_text(
            f"# {cand.case}: {cand.variant} vs {base.variant}\n\n"
            + groups_table([(base.variant, base.profile), (cand.variant, cand.profile)])
        )
        title = f"{cand.variant} vs {base.variant}: {cand.case} (red: more of the time, blue: less)"
        (out / "flame-vs.svg").write_text(flame.svg(cand.profile, title, baseline=base.profile))
    return done
