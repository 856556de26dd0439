"""`variant build`: spec -> source -> patches -> configure -> build -> verify -> publish.

Each step is a plain function of the plan; this module only sequences them,
holds the per-variant lock and writes the manifest.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__, redact
from ..ccache import ccache
from ..clock import now_iso
from ..errors import BuildError, UserError
from ..host import doctor
from ..layout import Layout
from ..lock import hold
from ..patch import apply as patches
from ..plan import deps as deps_mod
from ..plan import plan as plan_mod
from ..plan import repro
from ..plan.plan import Plan
from ..publish import publish as install
from ..publish import runtime
from ..run import live
from ..source import mirror as sources
from ..source import sources as sources_mod
from ..source import versions
from ..tomlfile import suggest
from ..verify import commands, elf, features, provenance, verify
from . import configure as cmake

Say = Callable[[str], None]


class TargetMissing(UserError):
    """The spec names a target the tree does not have (at another upstream version: not buildable)."""


@dataclass(frozen=True)
class Options:
    offline: bool = False
    force: bool = False
    jobs: int | None = None
    lock_timeout: float | None = None


@dataclass(frozen=True)
class Outcome:
    name: str
    action: str  # "up to date" or "built"
    path: Path
    manifest: dict[str, Any]


def build(layout: Layout, name: str, opts: Options, say: Say) -> Outcome:
    plan = plan_mod.make(layout, name, offline=opts.offline)
    name = plan.name  # NAME@VERSION in its one spelling (a version, or 12 hex digits)
    if not opts.force and install.status(layout, name, plan.hash) == "up to date":
        return _up_to_date(layout, plan)
    doctor.require(plan.requires, f"variant {name}")
    with hold(layout.lock(f"variant-{name}"), f"the build of {name}", timeout=opts.lock_timeout, say=say):
        # Whoever held the lock may just have built the very same thing.
        if not opts.force and install.status(layout, name, plan.hash) == "up to date":
            return _up_to_date(layout, plan)
        install.check_place(layout, name)  # before minutes of building, not at the publish
        return _build_locked(layout, plan, opts, say)


def _up_to_date(layout: Layout, plan: Plan) -> Outcome:
    manifest = install.read_manifest(layout, plan.name) or {}
    return Outcome(plan.name, "up to date", layout.dist / plan.name, manifest)


def _check_targets(plan: Plan, known: cmake.Targets) -> None:
    """Unknown targets are a spec error: say so before spending minutes on a build."""
    where = plan.variant.origin("targets")
    for i, target in enumerate(plan.variant.targets):
        if target not in known:
            raise TargetMissing(
                f'{where}: targets[{i}]: no target "{target}" in {plan.source.name}' + suggest(target, known)
            )
        if known[target][0] != "EXECUTABLE":
            raise TargetMissing(f'{where}: targets[{i}]: "{target}" is a {known[target][0]}, not a program')


def _artifacts(plan: Plan, known: cmake.Targets) -> list[Path]:
    files = [a for t in plan.variant.targets for a in known[t][1]]
    if plan.option("BUILD_SHARED_LIBS") == "ON":
        # Published beside the programs, where their $ORIGIN rpath finds them.
        files += [a for kind, arts in known.values() if kind == "SHARED_LIBRARY" for a in arts]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise BuildError(f"{plan.name}: the build finished but these artifacts are missing: {missing}")
    return list(dict.fromkeys(files))


def _build_locked(layout: Layout, plan: Plan, opts: Options, say: Say) -> Outcome:
    started = time.monotonic()
    phases: dict[str, float] = {}
    mark = started

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 2)
        mark = now

    log_file = layout.build_log(plan.name)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(f"# variant build {plan.name}  hash {plan.hash}\n")

    plan, checkouts = checkout(layout, plan, opts, log_file, say)
    built = [
        deps_mod.ensure(layout, d, tc=plan.toolchain, cmake=plan.cmake, env=dict(plan.env),
                        offline=opts.offline, log_file=log_file, say=say)
        for d in plan.deps
    ]  # fmt: skip
    plan = dataclasses.replace(plan, deps=tuple(d for d, _ in built))
    deps_built = [record for _, record in built]
    phase("source")

    remote_record = ccache.check(plan.remote, plan.name, say) if plan.remote else None
    if remote_record and remote_record["state"] != "used":
        plan = dataclasses.replace(
            plan, remote=None, ccache_env=ccache.without_remote(plan.ccache_env, plan.remote)
        )
    stats_log = dict(plan.ccache_env).get("CCACHE_STATSLOG")
    if stats_log:
        Path(stats_log).unlink(missing_ok=True)
    cmake.configure(plan, log_file, say)
    targets = cmake.codemodel_targets(plan.build_dir)
    _check_targets(plan, targets)
    phase("configure")
    ledger = cmake.build(plan, log_file, jobs=opts.jobs)
    phase("build")
    files = _artifacts(plan, targets)
    say(f"{plan.name}: verifying {len(files)} artifact(s)")
    cache = commands.cache(plan.build_dir)
    flags = commands.config_flags(plan, cache)
    facts = [elf.read(f) for f in files]
    checks = verify.require(
        plan,
        [
            *verify.artifacts(plan, facts, commands.wants_debug_info(flags), layout.work_root),
            features.kernels(plan, facts),
            features.series_code(plan, files),
            commands.options(plan, cache),
            commands.compile_commands(plan, flags),
            *(provenance.patch_commits(plan, c) for c in checkouts),
            provenance.warnings_in_patches(plan, checkouts, ledger, layout.work_root),
        ],
    )
    phase("verify")
    seconds = round(time.monotonic() - started, 1)
    counts = cmake.ccache_counts(Path(stats_log), plan.build_dir) if stats_log else {}
    if remote_record is not None:
        counts["remote"] = ccache.outcome(remote_record, counts, plan.name, say)
    manifest = {
        **{k: v for k, v in plan.describe().items() if k not in ("configure", "build")},
        "source": {**plan.source.identity(), **checkouts[0].record(plan.branch)},
        "nested": [
            {"path": c.tree.path, **c.tree.source.identity(), **c.record(plan.branch)} for c in checkouts[1:]
        ],
        "deps": deps_built,
        "commands": {
            "configure": redact.argv(plan.configure_argv()),
            "build": plan.build_argv(opts.jobs),
        },
        "verification": [c.as_dict() for c in checks],
        "build_seconds": seconds,
        # `variant build --check` replaces it with "checked DATE" or "differs: FILES" (build/check.py)
        "reproducible": "unchecked",
        "phases": phases,
        "ccache": counts,
        "built_at": now_iso(),
        "tool_version": __version__,
        "log": str(log_file),
    }
    extra = runtime.files(plan)
    path = install.publish(layout, plan.name, plan.hash, files, manifest, extra)
    return Outcome(plan.name, "built", path, install.read_manifest(layout, plan.name) or manifest)


def checkout(
    layout: Layout, plan: Plan, opts: Options, log_file: Path, say: Say
) -> tuple[Plan, list[provenance.Checkout]]:
    """Every tree in its worktree at base + its series; the plan with the origins really used."""
    trees, done = [], []
    if plan.version is not None and plan.version.entry is not None:
        # A history snapshot: imported with the others' tags and grafts (source/versions.py).
        src = plan.trees[0].source
        hist = versions.histories(layout, sources_mod.load_all(layout.sources_file))[src.name]
        versions.ensure(layout, src, hist, [plan.version.entry], say)
    for tree in plan.trees:
        base = sources.ensure_base(layout, tree.source, offline=opts.offline, say=say)
        if base.origin != tree.origin:
            # The remote could not be reached after all: the tree, and so the hash, is the fallback's.
            tree = dataclasses.replace(tree, origin=base.origin)
        wt = tree.worktree(plan.worktree)
        sources.ensure_worktree(layout, tree.source, wt, plan.branch, base, say)
        head = patches.apply(wt, plan.branch, base.commit, tree.series, say)
        trees.append(tree)
        done.append(provenance.Checkout(tree, wt, base, head))
    epoch = repro.source_date_epoch(done[0].worktree, done[0].base.commit)
    plan = dataclasses.replace(plan, trees=tuple(trees), epoch=epoch)
    if plan.source.submodules:
        sources.update_submodules(plan.worktree)
    for step in plan.source.prebuild:
        argv = [a.replace("{python}", sys.executable) for a in step]
        live(argv, cwd=plan.worktree, log_file=log_file, env=plan.build_env(), inherit_env=False)
    return plan, done
