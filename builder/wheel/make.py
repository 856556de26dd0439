"""`variant wheel`: variant -> patched tree -> staged sdist -> scikit-build-core -> checks -> --out.

The tree is the one `variant build` checks out (the variant's worktree at its
base with its series applied), under the same per-variant lock. The wheel is
built by pip with llama-cpp-python's own build backend (scikit-build-core),
without build isolation so no index is needed, through the shared ccache.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__, tempdirs
from ..build import configure as cmake
from ..build import pipeline
from ..ccache import ccache
from ..clock import now_iso
from ..errors import BuildError
from ..host import doctor
from ..layout import Layout
from ..lock import hold
from ..plan import plan as plan_mod
from ..progress import Progress
from ..run import live
from ..source import offline
from ..source import sources as sources_mod
from . import check, stage
from . import recipe as recipe_mod
from .recipe import Recipe

Say = Callable[[str], None]


@dataclass(frozen=True)
class Built:
    name: str
    wheel: Path
    record: dict[str, Any]  # also written beside the wheel as <wheel>.json


def resolve(layout: Layout, name: str, *, offline_only: bool = False, mtmd: bool = True) -> Recipe:
    """The wheel's recipe, or a UserError before anything is built (a fork, another pin)."""
    srcs = sources_mod.load_all(layout.sources_file)
    plan = plan_mod.make(layout, name, sources=srcs, offline=offline_only)
    pin = recipe_mod.check_source(plan, srcs)
    return recipe_mod.make(layout, plan, pin, mtmd=mtmd)


def _pip_wheel(recipe: Recipe, dest: Path, log_file: Path) -> Path:
    plan = recipe.plan
    argv = [
        sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "--no-build-isolation",
        "--disable-pip-version-check", "--wheel-dir", str(dest),
        *(a for s in recipe.settings() for a in ("-C", s)), str(recipe.staged),
    ]  # fmt: skip
    env = {**dict(plan.env), "CMAKE_ARGS": shlex.join(recipe.cmake_args()), "NINJA_STATUS": "[%f/%t] "}
    # pip runs the backend with this interpreter; its scripts (cmake, ninja) sit beside it.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    progress = Progress(f"{plan.name}: building the wheel")
    ccache.write_config(plan.ccache_env, plan.remote)  # the launcher in CMAKE_ARGS names it

    def on_line(line: str) -> None:
        cmake.show_step(progress, line)

    try:
        live(argv, log_file=log_file, env=env, inherit_env=False, on_line=on_line)
    finally:
        progress.close()
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"{plan.name}: pip wheel wrote {len(wheels)} wheels, expected one (log: {log_file})")
    return wheels[0]


def _publish(wheel: Path, out: Path, record: dict[str, Any]) -> Path:
    """The record, then the wheel, into out by rename: a wheel under its name always has its record."""
    out.mkdir(parents=True, exist_ok=True)
    final = out / wheel.name
    for data, name in ((record, final.name + ".json"), (None, final.name)):
        tmp = out / f".{name}.tmp"
        try:
            if data is None:
                shutil.copy2(wheel, tmp)
            else:
                tmp.write_text(json.dumps(data, indent=2) + "\n")
            os.replace(tmp, out / name)
        finally:
            tmp.unlink(missing_ok=True)
    return final


def build(layout: Layout, recipe: Recipe, out: Path, say: Say, *, offline_only: bool = False) -> Built:
    doctor.require(recipe.plan.requires, f"variant {recipe.plan.name}")
    # The wheel's own folder (staged sdist, build folder, log) for the whole build; the variant's
    # lock while its worktree is checked out and read, as `variant build` takes it.
    with hold(layout.lock(f"wheel-{recipe.plan.name}"), f"the wheel of {recipe.plan.name}", say=say):
        return _build_locked(layout, recipe, out, say, offline_only=offline_only)


def _build_locked(layout: Layout, recipe: Recipe, out: Path, say: Say, *, offline_only: bool) -> Built:
    name = recipe.plan.name
    started = time.monotonic()
    log_file = recipe.work / "wheel.log"
    recipe.work.mkdir(parents=True, exist_ok=True)
    log_file.write_text(f"# variant wheel {name}\n")
    opts = pipeline.Options(offline=offline_only)
    # The sdist is copied into a folder of the wheel's own as its sha256 is checked: the copy is
    # what is staged, whatever happens to the shared mirror or download cache it came from.
    with tempdirs.folder(recipe.work, "fetch", say) as private:
        sdist = offline.fetch(layout, recipe.plan.source, say, private)
        with hold(layout.lock(f"variant-{name}"), f"the build of {name}", say=say):
            checked, checkouts = pipeline.checkout(layout, recipe.plan, opts, log_file, say)
            # The plan with the origin really used (git, or the pinned sdist): its hash labels the wheel.
            recipe = dataclasses.replace(recipe, plan=checked)
            changed = stage.stage(recipe, sdist.path, checked.worktree, shown=sdist.origin)
    plan = recipe.plan
    say(f"{name}: {changed} file(s) of the staged sdist changed; building {recipe.version}")
    stats_log = Path(dict(plan.ccache_env).get("CCACHE_STATSLOG", recipe.work / "ccache-stats.log"))
    stats_log.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=recipe.work, prefix=".wheel-") as tmp:
        built = _pip_wheel(recipe, Path(tmp) / "out", log_file)
        libs = Path(tmp) / "libs"
        libs.mkdir()
        checks, holds = check.run(recipe, built, libs)
        bad = [c for c in checks if not c.ok]
        if bad:
            lines = "\n".join(f"  {c.name}: {c.detail}" for c in bad)
            raise BuildError(f"{name}: the wheel does not hold what the variant says; not written:\n{lines}")
        record = {
            **recipe.manifest(),
            **holds,
            "tree": checkouts[0].record(checked.branch),
            "verification": [c.as_dict() for c in checks],
            "ccache": {k: v for k, v in cmake.ccache_counts(stats_log).items() if k != "missed"},
            "build_seconds": round(time.monotonic() - started, 1),
            "built_at": now_iso(),
            "tool_version": __version__,
            "log": str(log_file),
        }
        path = _publish(built, out, record)
    return Built(name, path, record)
