"""Build dependencies: another project configured, built and installed before a variant (T-MAC).

A dependency is a source with role = "dependency": pinned like any other, its
own patch series applied, built with the variant's compilers into a prefix
under .variant/deps/<name>-<hash>/ once per hash and reused by every variant
that needs it. Its hash (source, origin, patches, options, compilers, CMake,
environment) goes into the variant's; its prefix reaches the variant's CMake
through the -D options it exports ({prefix} in sources.toml).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import RECIPE_VERSION
from ..errors import SpecError
from ..layout import Layout
from ..lock import hold
from ..patch import apply as applying
from ..patch import series as patches
from ..patch.series import Series
from ..run import live
from ..source import mirror
from ..source.mirror import expected_origin
from ..source.sources import Source
from ..spec.toolchain import Toolchain
from . import repro

Say = Callable[[str], None]
MARKER = ".variant-dependency.json"


@dataclass(frozen=True)
class Dependency:
    source: Source
    series: tuple[Series, ...]
    origin: str  # decided without the network (source.mirror.expected_origin), then by the fetch
    build: tuple[tuple[str, Any], ...]  # the compilers, CMake version and environment it is built with
    home: Path  # .variant/deps

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def hash(self) -> str:
        payload = {
            "recipe": RECIPE_VERSION,
            "source": self.source.identity(),
            "origin": self.origin,
            "patches": [[s.name, p.path.name, p.sha256] for s in self.series for p in s.patches],
            "cmake": dict(self.source.cmake),
            **dict(self.build),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @property
    def prefix(self) -> Path:
        return self.home / f"{self.name}-{self.hash[:12]}"

    def exports(self) -> list[tuple[str, str]]:
        """The -D options a dependent's configure gets, with {prefix} filled in."""
        return [(k, v.replace("{prefix}", str(self.prefix))) for k, v in self.source.export]

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash}


def resolve(
    layout: Layout,
    src: Source,
    sources: dict[str, Source],
    tc: Toolchain,
    cmake_version: tuple[int, ...],
    env: Mapping[str, str],
    *,
    offline: bool,
) -> tuple[Dependency, ...]:
    out = []
    for name in src.depends:
        dep = sources[name]
        series = tuple(
            patches.load(
                layout.patches_dir, s, dep.name, referenced_from=dep.file, key=f"{dep.name}.patches[{i}]"
            )
            for i, s in enumerate(dep.patches)
        )
        build = {
            "toolchain": {k: v for k, v in tc.identity().items() if k != "name"},
            "cmake_version": list(cmake_version),
            "env": {k: v for k, v in env.items() if k not in ("PATH", "HOME", "TMPDIR")},
        }
        origin = expected_origin(layout, dep, offline=offline)
        out.append(Dependency(dep, series, origin, tuple(sorted(build.items())), layout.home / "deps"))
    return tuple(out)


def check_exports(dep: Dependency) -> None:
    if not dep.source.export:
        raise SpecError(
            dep.source.file, f"{dep.name}.export", "a dependency must say what it gives dependents"
        )


def ensure(
    layout: Layout,
    dep: Dependency,
    *,
    tc: Toolchain,
    cmake: str,
    env: Mapping[str, str],
    offline: bool,
    log_file: Path,
    say: Say,
) -> tuple[Dependency, dict[str, Any]]:
    """The dependency installed in its prefix (built now if no earlier build left it there).

    Returns it with the origin its source really came from (and so its real hash and prefix).
    """
    base = mirror.ensure_base(layout, dep.source, offline=offline, say=say)
    dep = dataclasses.replace(dep, origin=base.origin)
    with hold(layout.lock(f"dep-{dep.name}-{dep.hash[:12]}"), f"the {dep.name} dependency", say=say):
        marker = dep.prefix / MARKER
        if marker.is_file():
            record: dict[str, Any] = json.loads(marker.read_text())
            if record.get("hash") == dep.hash:
                return dep, record
        say(f"{dep.name}: building the dependency into {dep.prefix}")
        work = layout.home / "deps" / "work" / f"{dep.name}-{dep.hash[:12]}"
        wt, build = work / "src", work / "build"
        branch = f"variant/dep-{dep.name}-{dep.hash[:12]}"  # one branch per worktree: git allows no more
        mirror.ensure_worktree(layout, dep.source, wt, branch, base, say)
        head = applying.apply(wt, branch, base.commit, dep.series, say)
        stage = dep.prefix.with_name(dep.prefix.name + ".tmp")
        shutil.rmtree(stage, ignore_errors=True)
        configure = [
            cmake, "-S", str(wt / dep.source.cmake_dir), "-B", str(build), "-G", "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_C_COMPILER={tc.cc.path}", f"-DCMAKE_CXX_COMPILER={tc.cxx.path}",
            # The final prefix, so anything the install writes down points there; installed into
            # a stage and renamed, so a killed build never leaves a half-installed prefix.
            f"-DCMAKE_INSTALL_PREFIX={dep.prefix}", *(f"-D{k}={v}" for k, v in dep.source.cmake),
        ]  # fmt: skip
        shutil.rmtree(build, ignore_errors=True)  # once per hash: nothing to reuse
        # This machine's paths and clock kept out of the dependency's bytes too (plan/repro.py).
        include = repro.write_include(work, repro.dependency_maps(work, dep.name))
        configure.append(f"-DCMAKE_PROJECT_INCLUDE={include}")
        env = {**env, "SOURCE_DATE_EPOCH": repro.source_date_epoch(wt, base.commit)}
        live(configure, log_file=log_file, env=env, inherit_env=False)
        live([cmake, "--build", str(build)], log_file=log_file, env=env, inherit_env=False)
        live(
            [cmake, "--install", str(build), "--prefix", str(stage)],
            log_file=log_file,
            env=env,
            inherit_env=False,
        )
        record = {
            "name": dep.name,
            "hash": dep.hash,
            "prefix": str(dep.prefix),
            "worktree": str(wt),  # its sources (T-MAC's python/ writes the fork's model format)
            "origin": base.origin,
            "origin_detail": base.detail,
            "base_commit": base.commit,
            "head_commit": head,
            "patches": [
                {"series": s.name, "file": p.path.name, "sha256": p.sha256}
                for s in dep.series
                for p in s.patches
            ],
        }
        (stage / MARKER).write_text(json.dumps(record, indent=1))
        shutil.rmtree(dep.prefix, ignore_errors=True)
        os.rename(stage, dep.prefix)
        return dep, record
