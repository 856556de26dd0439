"""`variant profile`: one bench case of each variant under its profiler, stored as a run beside the results.

A profile is a run of the results database like a benchmark's: its id names
the folder the files go to (.variant/profiles/<run id>/<variant>/), and its
measurements (time per group, page faults, context switches, and the case's
own tokens/s under the profiler) are rows `variant report` and `variant
compare` read like any other suite's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..bench import environment, limit
from ..bench.case import Case, Context, Target
from ..bench.profiles import Profile as RunProfile
from ..bench.runner import why_not
from ..bench.suites import MODEL_SUITES, SUITES
from ..errors import UserError
from ..host import iostat, topology
from ..layout import Layout
from ..models import support
from ..models.installed import Installed, held_all
from ..models.own import OwnModel
from ..results.report import RAW_PROFILE
from ..store import results
from ..store.results import Measurement
from ..tomlfile import suggest
from . import bpf, groups, write
from .record import MAIN, Recorder, tool_for
from .stacks import Profile

Say = Callable[[str], None]
CaseOf = Callable[[Context], tuple[Case, list[Target]]]  # the case to profile, and the models it reads
SUITE = results.PROFILED  # the suite its measurements are stored under


@dataclass(frozen=True)
class Profiled:
    variant: str
    case: str
    tool: str
    folder: Path
    events: dict[str, Profile]  # MAIN[tool] first
    measured: tuple[Measurement, ...]  # the case's own numbers, taken under the profiler

    @property
    def main(self) -> Profile:
        return self.events[MAIN[self.tool]]


@dataclass(frozen=True)
class ProfileRun:
    run_id: int
    folder: Path
    profiled: tuple[Profiled, ...]  # baseline first with --vs
    compared: tuple[Path, ...]  # with --vs: groups-vs.md, flame-vs.svg, flame-vs-baseline.svg


def pick(cases: list[Case], wanted: tuple[str, ...]) -> Case:
    """The case whose label holds every word of --case (generation before prompt when both fit)."""
    fits = [c for c in cases if set(wanted) <= set(c.label.split())]
    if not fits:
        labels = ", ".join(c.label for c in cases)
        raise UserError(f"--case {' '.join(wanted)!r} matches no case; the suite has: {labels}")
    tg = [c for c in fits if " tg " in f" {c.label} "]
    return (tg or fits)[0]


def measurements(p: Profiled) -> list[Measurement]:
    """What goes in the results database: time per group, event counts, the case's own numbers."""
    base = {"case": p.case, "tool": p.tool}
    metric = {"perf": "cpu_s", "bpf": "offcpu_s"}.get(p.tool, "traced_s")
    out = [
        Measurement(SUITE, metric, "s", {**base, "group": g}, write.seconds(w, p.main.unit), better="lower")
        for g, w in groups.shares(p.main).items()
    ]
    for name, prof in p.events.items():
        if name != MAIN[p.tool]:
            out.append(
                Measurement(SUITE, name.replace("-", "_"), prof.unit, base, prof.total, better="lower")
            )
    for m in p.measured:
        note = f"taken under {p.tool}: not comparable with an unprofiled run"
        out.append(dataclasses.replace(m, suite=SUITE, params={**m.params, **base}, note=note))
    return out


def _tracers(tool: str, inst: Installed, targets: list[Target], folder: Path) -> bpf.Tracers | None:
    if tool != "bpf":
        return None
    files = tuple(p for t in targets for p in t.files)
    disk = topology.storage(files[0]).disk if files else None
    known = disk is not None and disk in iostat.read_diskstats()
    return bpf.Tracers(folder, files, disk if known else None, bpf.programs_of(inst.bin))


def record_one(
    layout: Layout, inst: Installed, tool: str, case_of: CaseOf, threads: int, timeout: float,
    folder: Path, say: Say, memory_max: int | None = None,
) -> Profiled:  # fmt: skip
    """The case under tool; with memory_max, in a memory cgroup of that size, its model evicted first."""
    rec = Recorder(tool, folder)
    folder.mkdir(parents=True, exist_ok=True)
    run_profile = RunProfile(
        name=f"profile-{tool}", timeout=timeout, timeout_given=True, profiler=rec.prefix(),
        memory_max=memory_max,
    )  # fmt: skip
    with limit.limited(run_profile, say) as run_profile:
        ctx = Context(layout, run_profile, (threads,), say, insts=(inst,))
        case, targets = case_of(ctx)
        limit.start_cold(run_profile, targets)
        tracers = _tracers(tool, inst, targets, folder)
        say(f"{inst.name}: {case.label} under {tool}")
        with tracers.attached() if tracers else contextlib.nullcontext():
            measured = case.run(inst)
    if any(m.value is None for m in measured):
        raise UserError(
            f"{inst.name}: {case.label} did not finish within {timeout:g} s under {tool}; "
            "raise --timeout or profile fewer threads"
        )
    if tracers:
        base = measured[0].params if measured else {}
        figures = tracers.figures(bpf.passes_of(measured))
        measured += [Measurement(SUITE, n, u, base, v, better=b) for n, u, v, b in figures]
    events = tracers.fold() if tracers else rec.fold()
    raw = tracers.path("offcpu.txt") if tracers else rec.data
    if not events[MAIN[tool]].total:
        raise UserError(f"{inst.name}: {tool} recorded no {MAIN[tool]} sample in {raw}")
    if extras := rec.extras():
        say(f"{inst.name}: {tool}'s own views: {', '.join(extras)}")
    write.write(folder, f"{inst.name}: {case.label}", tool, events)
    return Profiled(inst.name, case.label, tool, folder, events, tuple(measured))


def _writable(out: Path) -> Path:
    """--out, created now: a folder that cannot be written is refused before anything runs."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".variant-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc})") from exc
    return out


def run(
    layout: Layout, names: list[str], *, vs: bool, tool: str | None, suite: str, wanted: tuple[str, ...],
    threads: int, type_: str, timeout: float, out: Path | None, command: str, say: Say,
    own: OwnModel | None = None, memory_max: int | None = None,
) -> ProfileRun:  # fmt: skip
    """Profile each of names (vs: two, the baseline first, and compare them) and store the run.

    Recorded into a staging folder; the run's rows and the folder are stored in one transaction
    once every variant is done, so a failed or interrupted profile leaves no run and no folder.
    """
    if suite not in SUITES:
        raise UserError(f'unknown suite "{suite}"' + suggest(suite, SUITES))
    if len(set(names)) != len(names):
        raise UserError(f"each variant is profiled once; got {' '.join(names)}")
    if out is not None:
        out = _writable(out)
    with held_all(layout, names) as insts:
        tools = []
        for inst in insts:  # every refusal before anything runs or is stored
            if why := why_not(suite, [inst]):
                raise UserError(f"{inst.name}: suite {suite} cannot run: {why}")
            tools.append(tool_for(str(inst.manifest.get("instrument", "none")), tool, inst.name))
            if own and (why := support.why_not(own, inst, support.known_types(layout, inst))):
                raise UserError(f"{inst.name} cannot run {own.label}: {why}")
        if vs and tools[0] != tools[1]:
            raise UserError(
                f"--vs compares profiles of one tool: {names[1]} is profiled with {tools[1]}, "
                f"{names[0]} with {tools[0]} (give --tool, or a baseline with the same instrument)"
            )

        def case_of(ctx: Context) -> tuple[Case, list[Target]]:
            chosen = dataclasses.replace(ctx, types=(type_,), own=(own,) if own else ())
            case = pick(SUITES[suite].make(chosen), wanted)
            return case, chosen.targets() if suite in MODEL_SUITES else []

        root = layout.profiles()
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=root))
        folder: Path | None = None
        try:
            done = [
                record_one(
                    layout, inst, chosen, case_of, threads, timeout, staging / inst.name, say, memory_max
                )
                for inst, chosen in zip(insts, tools, strict=True)
            ]
            compared: list[str] = []
            if vs:
                base, cand = done
                pair = (base.variant, base.main), (cand.variant, cand.main)
                compared = [f.name for f in write.write_vs(staging, cand.case, *pair)]
            with results.connect(layout.home / "results.sqlite") as con:
                try:
                    # the bench's explicit environment (bench/environment.py), with no profile env
                    env = environment.recorded({})
                    run_id = results.start_run(con, f"profile-{tools[0]}", command, env=env, commit=False)
                    for inst, p in zip(insts, done, strict=True):
                        for m in measurements(p):
                            results.record(con, run_id, inst.manifest, 0, m, commit=False)
                    folder = layout.profiles(run_id)
                    shutil.rmtree(folder, ignore_errors=True)  # an orphan of a database made anew
                    staging.rename(folder)
                    con.commit()
                except BaseException:
                    con.rollback()
                    raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
    assert folder is not None  # stored: the transaction above committed
    say(f"profile run {run_id}: {folder}")
    if out is not None:
        shutil.copytree(folder, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*RAW_PROFILE))
    done = [dataclasses.replace(p, folder=folder / p.variant) for p in done]
    return ProfileRun(run_id, folder, tuple(done), tuple(folder / n for n in compared))
