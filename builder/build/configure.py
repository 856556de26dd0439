"""CMake configure and Ninja build of one variant, with progress and a kept log."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..ccache import ccache
from ..plan import repro
from ..plan.plan import Plan
from ..progress import Progress
from ..run import live
from ..verify import warnings
from ..verify.warnings import NINJA_STATUS

Say = Callable[[str], None]


def _compiler_args(argv: list[str]) -> list[str]:
    """What a build folder cannot switch in place: the cmake binary, generator and compilers."""
    return argv[:1] + [
        a for a in argv if a.startswith(("-DCMAKE_C_COMPILER=", "-DCMAKE_CXX_COMPILER=", "-G"))
    ]


RECORD = "variant-configure.json"


def configure(plan: Plan, log_file: Path, say: Say) -> None:
    """Configure the build folder; fresh whenever anything configure reads has changed.

    CMake keeps every -D it was ever given in CMakeCache.txt: a key removed from
    [cmake] (GGML_SANITIZE_THREAD, say) would silently stay on. So when the
    command line or the environment differ from the last configure, the cache
    is thrown away (`--fresh`); objects whose compile command did not change
    are still not rebuilt (Ninja compares commands).
    """
    argv = plan.configure_argv()
    inputs = {"argv": argv, "env": plan.build_env()}
    record = plan.build_dir / RECORD
    before = json.loads(record.read_text()) if record.is_file() else None
    if isinstance(before, list):  # written by recipe 1: the argv alone
        before = {"argv": before, "env": None}
    # CMake cannot switch compilers in place: a changed toolchain gets a clean folder.
    if before is not None and _compiler_args(before["argv"]) != _compiler_args(argv):
        say(f"{plan.name}: cmake or compiler changed, starting from an empty build folder")
        shutil.rmtree(plan.build_dir)
    # No record beside a cache: the last configure died half-way; start from scratch too.
    fresh = (plan.build_dir / "CMakeCache.txt").is_file() and before != inputs
    plan.build_dir.mkdir(parents=True, exist_ok=True)
    repro.write_include(plan.build_dir.parent, plan.path_flags())
    request_codemodel(plan.build_dir)
    how = " afresh (the configure inputs changed)" if fresh else ""
    say(f"{plan.name}: configuring ({plan.variant.build_type}, {plan.toolchain.spec.name}){how}")
    record.unlink(missing_ok=True)
    # CMake's compiler checks compile through the launcher too: the store's config file first.
    ccache.write_config(plan.ccache_env, plan.remote)
    live([*argv, "--fresh"] if fresh else argv, log_file=log_file, env=plan.build_env(), inherit_env=False)
    record.write_text(json.dumps(inputs, indent=1))


def show_step(progress: Progress, line: str) -> None:
    """Ninja's "[done/total] description" status line (NINJA_STATUS set so) as progress; others ignored."""
    m = NINJA_STATUS.match(line.strip())
    if m:
        progress.update(int(m[1]), int(m[2]), m[3].rsplit("/", 1)[-1])


def build(plan: Plan, log_file: Path, *, jobs: int | None = None) -> dict[str, list[list[str]]]:
    """Run Ninja; return the warnings ledger (verify/warnings.py) with this build's steps merged in."""
    progress = Progress(f"{plan.name}: building")
    collected = warnings.Collector()

    def on_line(line: str) -> None:
        collected.line(line)
        show_step(progress, line)

    env = {**plan.build_env(), "NINJA_STATUS": "[%f/%t] "}
    ccache.write_config(plan.ccache_env, plan.remote)  # the launcher names it (CCACHE_CONFIGPATH)
    try:
        live(plan.build_argv(jobs), log_file=log_file, env=env, inherit_env=False, on_line=on_line)
    finally:
        progress.close()
        # Steps that ran before a failure count too: their objects will not be compiled again.
        ledger = warnings.update(plan.build_dir, collected)
    return ledger


def ccache_counts(stats_log: Path, build_dir: Path | None = None) -> dict[str, Any]:
    """Hits and misses of this build, from ccache's per-build stats log.

    The log holds one block per compiler call: a "# file" line, then counters.
    The files that missed are listed too (relative to build_dir's parent when
    given): they say what a change really cost.
    """
    # remote_hits: hits served by the remote store (a subset of hits); remote_errors: compiles
    # whose remote store failed or timed out (ccache went on with the local cache).
    counts: dict[str, Any] = {"hits": 0, "misses": 0, "other": 0, "remote_hits": 0, "remote_errors": 0}
    counts["missed"] = []
    if not stats_log.is_file():
        return counts
    blocks: list[tuple[str, set[str]]] = []
    for line in stats_log.read_text(errors="replace").splitlines():
        if line.startswith("#"):
            blocks.append((line[1:].strip(), set()))
        elif line.strip() and blocks:
            blocks[-1][1].add(line.strip())
    for source, block in blocks:
        counts["remote_hits"] += "remote_storage_hit" in block
        counts["remote_errors"] += bool(block & {"remote_storage_error", "remote_storage_timeout"})
        if block & {"direct_cache_hit", "preprocessed_cache_hit"}:
            counts["hits"] += 1
        elif "cache_miss" in block:
            counts["misses"] += 1
            counts["missed"].append(_relative_source(source, build_dir))
        else:
            counts["other"] += 1  # preprocessing only, linking, uncacheable calls
    return counts


def _relative_source(source: str, build_dir: Path | None) -> str:
    """ccache logs paths as the compiler got them: relative to the build folder
    under base_dir, absolute otherwise. Say them relative to the variant's folder."""
    if build_dir is None:
        return source
    path = Path(os.path.normpath(build_dir / source))
    return str(path.relative_to(build_dir.parent)) if path.is_relative_to(build_dir.parent) else str(path)


# --- CMake File API: which targets exist and where their artifacts land --------


def request_codemodel(build_dir: Path) -> None:
    query = build_dir / ".cmake" / "api" / "v1" / "query"
    query.mkdir(parents=True, exist_ok=True)
    (query / "codemodel-v2").touch()


Targets = dict[str, tuple[str, tuple[Path, ...]]]


def codemodel_targets(build_dir: Path) -> Targets:
    """Target name -> (type, artifact paths), from the reply to request_codemodel()."""
    reply = build_dir / ".cmake" / "api" / "v1" / "reply"
    indexes = sorted(reply.glob("index-*.json"))
    if not indexes:
        return {}
    index = json.loads(indexes[-1].read_text())
    model_file = index["reply"]["codemodel-v2"]["jsonFile"]
    model = json.loads((reply / model_file).read_text())
    targets: Targets = {}
    for config in model["configurations"]:
        for ref in config["targets"]:
            data = json.loads((reply / ref["jsonFile"]).read_text())
            arts = tuple(
                (Path(a["path"]) if Path(a["path"]).is_absolute() else build_dir / a["path"])
                for a in data.get("artifacts", [])
            )
            targets[data["name"]] = (data["type"], arts)
    return targets
