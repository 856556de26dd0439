"""`variant bench`: run the suites over installed variants, interleaved, into the results database.

Every repetition runs each variant once, in turn (A B A B ...), so drift hits
all of them alike; stats.py turns the pairs into ratios and a noise verdict.
"""

from __future__ import annotations

from ..errors import UserError
from ..layout import Layout
from ..patch import series as patches
from ..tomlfile import suggest
from . import profiles, results
from .case import DEFAULT_LOAD_MODES, Case, Context, Say
from .installed import Installed, held_all
from .profiles import Profile
from .suites import SUITES


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
    return tuple(dict.fromkeys(wanted)) or tuple(SUITES)


def run(
    layout: Layout,
    names: list[str],
    *,
    baseline: str | None,
    suites: tuple[str, ...],
    reps: int,
    threads: tuple[int, ...],
    profile: Profile,
    command: str,
    say: Say,
    load_modes: tuple[str, ...] = DEFAULT_LOAD_MODES,
    layers: int | None = None,
) -> int:
    """Run the suites, interleaving the variants in every repetition; return the run id."""
    order = list(dict.fromkeys(([baseline] if baseline else []) + names))
    with held_all(layout, order) as insts:
        suites = suites or suites_for(insts, layout)
        for s in suites:
            if s not in SUITES:
                raise UserError(f'unknown suite "{s}"' + suggest(s, SUITES))
        profiles.check(profile)
        cases: list[Case] = []
        for s in suites:
            suite = SUITES[s]
            ctx = Context(
                layout,
                profile,
                threads or profile.threads or suite.default_threads(),
                say,
                load_modes,
                layers,
            )
            cases += suite.make(ctx)
        total = len(cases) * reps * len(insts)
        done = 0
        with results.connect(layout.home / "results.sqlite") as con, profiles.competing_load(profile):
            run_id = results.start_run(con, profile.name, command)
            for case in cases:
                for rep in range(reps):
                    for inst in insts:
                        done += 1
                        say(f"[{done}/{total}] {case.label} rep {rep + 1}/{reps} {inst.name}")
                        for m in case.run(inst):
                            results.record(con, run_id, inst.manifest, rep, m)
        return run_id
