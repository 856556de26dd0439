"""`variant bench`: run the suites over installed variants, interleaved, into the results database.

Every repetition runs each variant once, in turn (A B A B ...), so drift hits
all of them alike; stats.py turns the pairs into ratios and a noise verdict.
Every benchmark process gets an explicit environment (environment.py): the
profile's env and --env, recorded with the run, and none of the caller's
OMP_*, GGML_*, LD_PRELOAD... (named when set).
"""

from __future__ import annotations

import sqlite3
import time

from ..errors import CommandError, UserError
from ..host import bandwidth as probe_mod
from ..host import peak, topology
from ..layout import Layout
from ..models import support
from ..models.installed import Installed, held_all
from ..models.own import OwnModel
from ..patch import series as patches
from ..progress import ticking
from ..source import sources
from ..store import results
from ..tomlfile import suggest
from . import calibrate, environment, limit, profiles
from .case import DEFAULT_LOAD_MODES, Case, Context, Say
from .profiles import Profile
from .suites import MODEL_SUITES, SUITES


def suites_for(insts: list[Installed], layout: Layout) -> tuple[str, ...]:
    """The suites the variants' patch series declare (series.toml bench); all of them if none do."""
    wanted: list[str] = []
    for inst in insts:
        for p in inst.manifest.get("patches", []):
            sdir = layout.patches_dir / p["series"]
            if (sdir / "series.toml").is_file():
                s = patches.load(
                    layout.patches_dir,
                    p["series"],
                    inst.manifest["source"]["name"],
                    referenced_from=sdir / "series.toml",
                    key="bench",
                )
                wanted += [b for b in s.bench if b in SUITES]
    return tuple(dict.fromkeys(wanted)) or tuple(n for n, s in SUITES.items() if s.default)


def why_not(suite: str, insts: list[Installed]) -> str | None:
    """Why a suite cannot run on these variants (one of them built none of its programs), or None.

    An interleaved run compares every variant on every case, so a suite runs on
    all of them or on none: ik_llama.cpp has no test-barrier, and a run of
    ik-gcc against upstream-gcc skips the barrier suite instead of failing in it.
    """
    programs = SUITES[suite].programs
    lacking = [i.name for i in insts if not any((i.bin / p).is_file() for p in programs)]
    if not lacking:
        return None
    return f"{', '.join(lacking)} built none of {', '.join(programs)} (the variant's targets)"


def _skips(
    layout: Layout, insts: list[Installed], own: tuple[OwnModel, ...], say: Say
) -> tuple[tuple[str, str, str], ...]:
    """(variant, model identity, reason) for every variant that cannot run one of the user's models."""
    out = []
    for inst in insts:
        known = support.known_types(layout, inst)
        if not known:
            say(f"{inst.name}: cannot read which tensor types its source defines; its models are not checked")
        for m in own:
            if why := support.why_not(m, inst, known):
                say(f"{inst.name} skips {m.label}: {why}")
                out.append((inst.name, m.identity, why))
    return tuple(out)


# The suites whose tg rows are set against the memory bandwidth (results/share.py).
GENERATING = ("e2e", "formats")


def _limits(layout: Layout, profile: Profile, threads: list[int], say: Say) -> dict[str, object]:
    """The hardware record's limits: the bandwidth probe at these thread counts, the arithmetic peak."""
    out: dict[str, object] = {"peak": peak.estimate()}
    if threads:
        try:
            found = probe_mod.probes(layout.home, sorted(set(threads)), say, cpus=profile.cpus or "")
        except (probe_mod.NoProbe, CommandError) as exc:  # no compiler, too little memory: no shares
            say(f"no bandwidth probe, so no shares of it: {exc}")
            return out
        out |= probe_mod.record(found)
        say("memory bandwidth: " + ", ".join(f"t={p.threads} {p.figures()['read']['median']:.1f} GB/s"
                                             for p in found))  # fmt: skip
    return out


def _generating(cases: list[Case]) -> list[int]:
    """The thread counts of the tg cases that will run (after --only's choice): the probe's."""
    words = [c.label.split() for c in cases if c.suite in GENERATING]
    return [int(w[2:]) for ws in words if "tg" in ws for w in ws if w.startswith("t=") and w[2:].isdigit()]


def _paddings(layout: Layout, insts: list[Installed]) -> tuple[tuple[str, int], ...]:
    """Each variant's source's kv-padding; a source no longer in sources.toml: the default."""
    if not layout.sources_file.is_file():  # variants installed from elsewhere: nothing to say otherwise
        return ()
    srcs = sources.load_all(layout.sources_file)
    named = ((i.name, srcs.get(i.manifest["source"]["name"])) for i in insts)
    return tuple((name, s.kv_padding) for name, s in named if s is not None)


def run(
    layout: Layout,
    names: list[str],
    *,
    baseline: str | None,
    suites: tuple[str, ...],
    reps: int | calibrate.Target,
    threads: tuple[int, ...],
    profile: Profile,
    command: str,
    say: Say,
    load_modes: tuple[str, ...] = DEFAULT_LOAD_MODES,
    layers: int | None = None,
    recipe: str | None = None,
    types: tuple[str, ...] = ("q8_0",),
    own: tuple[OwnModel, ...] = (),
    allow_swap: bool = False,
    drop_caches: bool = False,
    calibrated: list[str] | None = None,
    only: tuple[str, ...] = (),
    probe_bandwidth: bool = True,
) -> int:
    """Run the suites, interleaving the variants in every repetition; return the run id.

    probe_bandwidth: probe the memory bandwidth at the tg cases' thread counts (host/bandwidth.py, once per
    machine), so the tables show each tg row's share of it.

    only: words every case's label must have ("tg", "t=2"): one case of a suite, as bisect and
    history measure one metric.

    calibrated: with --reps auto, each case's outcome (its pairs, spread, why it stopped) is added here.
    """
    order = list(dict.fromkeys(([baseline] if baseline else []) + names))
    with held_all(layout, order) as insts:
        suites = suites or suites_for(insts, layout)
        for s in suites:
            if s not in SUITES:
                raise UserError(f'unknown suite "{s}"' + suggest(s, SUITES))
        profiles.check(profile)
        env = dict(profile.env)
        if dropped := environment.dropped(env):
            shown = " ".join(f"{k}={v}" for k, v in dropped.items())
            say(
                f"not passed to the benchmarks: {shown} (give --env NAME=VALUE, or the profile's env, to set "
                "one: it is then recorded with the run)"
            )
        skipped = {s: why for s in suites if (why := why_not(s, insts))}
        for s, why in skipped.items():
            say(f"skipping suite {s}: {why}")
        suites = tuple(s for s in suites if s not in skipped)
        if not suites:
            raise UserError("no suite can run on " + ", ".join(order) + ": every one was skipped (above)")
        if own and (ignored := [s for s in suites if s not in MODEL_SUITES]):
            say(f"--model: suites {', '.join(ignored)} run on their own models, not on the given ones")
        topo = topology.topology()
        say(f"machine: {topology.describe(topo)}")
        if note := profiles.numa_note(profile, len(topo.nodes)):
            say(note)
        skips = _skips(layout, insts, own, say) if own else ()
        with limit.limited(profile, say) as profile:
            cases: list[Case] = []
            model_ctxs: list[Context] = []
            for s in suites:
                suite = SUITES[s]
                ctx = Context(
                    layout,
                    profile,
                    threads or profile.threads or topology.default_threads(topo, suite.oversubscribe),
                    say,
                    load_modes,
                    layers,
                    tuple(insts),
                    recipe,
                    types,
                    own,
                    skips,
                    tuple(profile.numa_args()),
                    allow_swap,
                    drop_caches,
                    _paddings(layout, insts),
                )
                cases += [c for c in suite.make(ctx) if all(w in c.label.split() for w in only)]
                if s in MODEL_SUITES:
                    model_ctxs.append(ctx)
            if only and not cases:
                raise UserError(f"no case of {', '.join(suites)} has the words {' '.join(only)} in its label")
            models = limit.targets(model_ctxs) if profile.cgroup else []
            limit.start_cold(profile, models)
            hardware = topology.hardware([m.path for m in own] or [layout.home / "models"])
            hardware |= limit.record(profile, models)
            hardware |= _limits(layout, profile, _generating(cases) if probe_bandwidth else [], say)
            with results.connect(layout.home / "results.sqlite") as con, profiles.competing_load(profile):
                run_id = results.start_run(
                    con, profile.name, command, env=environment.recorded(env), hardware=hardware
                )
                try:
                    for i, case in enumerate(cases, 1):
                        outcome = _measure(con, run_id, case, insts, reps, f"[{i}/{len(cases)}]", say)
                        if outcome is not None and calibrated is not None:
                            calibrated.append(outcome)
                except UserError:
                    results.discard_run(con, run_id)  # bad input (a limit too low): nothing stored
                    raise
        return run_id


def _measure(
    con: sqlite3.Connection, run_id: int, case: Case, insts: list[Installed],
    reps: int | calibrate.Target, where: str, say: Say,
) -> str | None:  # fmt: skip
    """One case, interleaved: a fixed number of repetitions, or (--reps auto) until the speedup settles.

    Returns --reps auto's outcome line (pairs, spread, why it stopped); None for fixed repetitions.
    """
    cal = (
        calibrate.Calibration(reps, [i.name for i in insts], case.label)
        if isinstance(reps, calibrate.Target)
        else None
    )
    t0 = time.monotonic()
    rep = 0
    while True:
        for inst in insts:
            of = f"/{reps}" if isinstance(reps, int) else ""
            say(f"{where} {case.label} rep {rep + 1}{of} {inst.name}")
            with ticking(say, f"{case.label} {inst.name}"):
                measured = case.run(inst)
            for m in measured:
                results.record(con, run_id, inst.manifest, rep, m)
                # a skip is not run (not a timeout); a fact is the same every repetition: nothing to settle
                if (
                    cal is not None
                    and not m.note.startswith(results.SKIPPED)
                    and m.metric not in results.FACTS
                ):
                    cal.add(inst.name, m.metric, m.value, m.better)
        rep += 1
        if cal is None:
            if isinstance(reps, int) and rep >= reps:
                return None
        elif cal.end_rep(time.monotonic() - t0):
            line = cal.outcome().line
            say(f"{where} {line}")
            return line
