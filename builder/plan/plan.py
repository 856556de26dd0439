"""A resolved variant plus everything it is built from: the exact commands and the hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import RECIPE_VERSION, redact
from ..ccache import ccache
from ..errors import SpecError, UserError
from ..host import doctor
from ..host.cpu import native_isa
from ..host.env import PASSED, build_env
from ..host.tools import cmake_binary as cmake_binary
from ..host.tools import ninja_binary
from ..layout import Layout
from ..patch.series import Series
from ..source import sources as sources_mod
from ..source import versions
from ..source.sources import Source
from ..source.versions import Version
from ..spec import toolchain
from ..spec import variant as spec
from ..spec.flags import Flags
from ..spec.instrument import INSTRUMENTS
from ..spec.toolchain import Toolchain
from ..spec.variant import Variant
from ..tomlfile import cmake_name, suggest
from . import deps as deps_mod
from . import floors, repro
from . import trees as trees_mod
from .deps import Dependency
from .trees import Tree

# Options the tool owns: a spec sets them through toolchain, build-type or flags.
RESERVED = {
    "CMAKE_C_COMPILER": "toolchain",
    "CMAKE_CXX_COMPILER": "toolchain",
    "CMAKE_BUILD_TYPE": "build-type",
    "CMAKE_C_FLAGS": "flags.c",
    "CMAKE_CXX_FLAGS": "flags.cxx",
    "CMAKE_EXE_LINKER_FLAGS": "flags.ld",
    "CMAKE_SHARED_LINKER_FLAGS": "flags.ld",
    "CMAKE_C_COMPILER_LAUNCHER": "(the shared ccache)",
    "CMAKE_CXX_COMPILER_LAUNCHER": "(the shared ccache)",
    "CMAKE_PROJECT_INCLUDE": "(the prefix maps of reproducible builds)",
}

# Recipe defaults for every code base; sources.toml adds per-source ones, the
# spec's [cmake] comes last. Static binaries keep dist/<variant>/bin
# self-contained; with BUILD_SHARED_LIBS=ON the libraries are published beside
# them and found through an $ORIGIN rpath.
RECIPE_CMAKE = {
    "BUILD_SHARED_LIBS": "OFF",
    # Unity sources that #include by relative path: siblings share libllama's objects.
    "CMAKE_UNITY_BUILD_RELOCATABLE": "ON",
    "CMAKE_BUILD_RPATH_USE_ORIGIN": "ON",
    "CMAKE_EXPORT_COMPILE_COMMANDS": "ON",
}


def _by_name(*tables: dict[str, str]) -> dict[str, tuple[str, str]]:
    """CMake options merged in order by name: a typed key (NAME:STRING) replaces an untyped one."""
    return {cmake_name(k): (k, v) for table in tables for k, v in table.items()}


def _on(value: str | None) -> bool:
    """CMake's truth for an option value (ON, TRUE, 1, YES, Y)."""
    return (value or "").upper() in ("ON", "TRUE", "1", "YES", "Y")


@dataclass(frozen=True)
class Plan:
    variant: Variant
    source: Source
    toolchain: Toolchain
    trees: tuple[Tree, ...]  # the source's tree first, then the ones nested in it, each with its series
    deps: tuple[Dependency, ...]  # installed before configuring; their -D exports are configure options
    requires: tuple[str, ...]
    flags: Flags
    options: tuple[tuple[str, str], ...]  # -D options that define the artifact
    env: tuple[tuple[str, str], ...]  # the build's whole environment (host/env.py)
    isa: tuple[tuple[str, Any], ...]  # what -march=native means here; empty unless GGML_NATIVE is on
    worktree: Path
    build_dir: Path
    ccache_env: tuple[tuple[str, str], ...]  # empty when ccache is missing
    cmake: str  # the cmake binary (see host.tools.cmake_binary)
    cmake_version: tuple[int, ...]
    remote: ccache.Remote | None = None  # ccache's remote storage (in ccache_env); never in the hash
    version: Version | None = None  # NAME@VERSION: the source at another version than its pin
    epoch: str | None = None  # SOURCE_DATE_EPOCH, the source commit's time, once it is checked out

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def branch(self) -> str:
        return f"variant/{self.variant.name}"

    @property
    def series(self) -> tuple[Series, ...]:
        return tuple(s for t in self.trees for s in t.series)

    @property
    def origin(self) -> str:
        """Where the variant's own tree comes from: "git", "pypi" or "archive"."""
        return self.trees[0].origin

    @property
    def hash(self) -> str:
        """A sha256 over everything that decides the binaries, and nothing else.

        Names, descriptions and paths are left out on purpose: two variants that
        would produce the same binaries have the same hash, wherever they live.
        PATH, HOME and TMPDIR are left out too: the tools they find are named by
        absolute path and version here.
        """
        v = self.variant
        payload = {
            "recipe": RECIPE_VERSION,
            "trees": [t.identity() for t in self.trees],
            "deps": [d.identity() for d in self.deps],
            "toolchain": {k: val for k, val in self.toolchain.identity().items() if k != "name"},
            "cmake_version": list(self.cmake_version),
            "build_type": v.build_type,
            "instrument": v.instrument,
            "targets": sorted(v.targets),
            "cmake": dict(self.options),
            "flags": [list(self.flags.c), list(self.flags.cxx), list(self.flags.ld)],
            "env": {k: val for k, val in self.env if k not in PASSED},
            "isa": dict(self.isa),
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def native(self) -> bool:
        return self.enabled("GGML_NATIVE", "ON")

    def option(self, name: str, default: str | None = None) -> str | None:
        return _by_name(dict(self.options)).get(name, (name, default))[1]

    def enabled(self, option: str, default: str = "OFF") -> bool:
        return _on(self.option(option, default))

    def openmp(self) -> bool:
        return self.enabled("GGML_OPENMP", "ON")

    def path_flags(self) -> tuple[str, ...]:
        """Prefix maps: no path of this machine in the binaries (plan/repro.py); outside the hash."""
        return repro.prefix_maps(self.build_dir.parent, ((d.name, d.prefix) for d in self.deps))

    def build_env(self) -> dict[str, str]:
        """The environment configure and build run in: the plan's, and SOURCE_DATE_EPOCH."""
        return {**dict(self.env), **({"SOURCE_DATE_EPOCH": self.epoch} if self.epoch else {})}

    def configure_argv(self) -> list[str]:
        where = ["-S", str(self.worktree / self.source.cmake_dir), "-B", str(self.build_dir), "-G", "Ninja"]
        where += [f"-DCMAKE_BUILD_TYPE={self.variant.build_type}"]
        maps = repro.include_file(self.build_dir.parent)  # build/configure.py writes it (a wheel has none)
        return [self.cmake, *where, *self.cmake_defines(), f"-DCMAKE_PROJECT_INCLUDE={maps}"]

    def cmake_defines(self) -> list[str]:
        """Every -D but the build type: compilers, flags, the ccache launcher, options, deps' exports."""
        tc = self.toolchain
        argv = [
            f"-DCMAKE_C_COMPILER={tc.cc.path}",
            f"-DCMAKE_CXX_COMPILER={tc.cxx.path}",
            f"-DCMAKE_C_FLAGS={' '.join(self.flags.c)}",
            f"-DCMAKE_CXX_FLAGS={' '.join(self.flags.cxx)}",
            f"-DCMAKE_EXE_LINKER_FLAGS={' '.join(self.flags.ld)}",
            f"-DCMAKE_SHARED_LINKER_FLAGS={' '.join(self.flags.ld)}",
        ]
        if self.ccache_env:
            # The launcher carries the cache settings itself (through env), so a
            # by-hand `ninja -C build` in this folder uses the same shared cache.
            launcher = ";".join(["/usr/bin/env", *(f"{k}={v}" for k, v in self.ccache_env), "ccache"])
            argv += [f"-DCMAKE_C_COMPILER_LAUNCHER={launcher}", f"-DCMAKE_CXX_COMPILER_LAUNCHER={launcher}"]
        argv += [f"-D{k}={v}" for k, v in self.options]
        # Paths of this machine, so outside the hash (the dependency's own hash is in it).
        argv += [f"-D{k}={v}" for d in self.deps for k, v in d.exports()]
        return argv

    def build_argv(self, jobs: int | None = None) -> list[str]:
        # Ninja itself, not `cmake --build`: on SIGTERM Ninja kills its running
        # jobs, while cmake --build would die and leave Ninja orphaned.
        argv = [ninja_binary(), "-C", str(self.build_dir)]
        if jobs:
            argv += ["-j", str(jobs)]
        return [*argv, *self.variant.targets]

    def patch_list(self) -> list[dict[str, str]]:
        return [
            {
                "series": s.name,
                "source": s.source,
                "file": p.path.name,
                "sha256": p.sha256,
                "subject": p.subject,
                "author": p.author,
            }
            for s in self.series
            for p in s.patches
        ]

    def describe(self) -> dict[str, Any]:
        """The resolved spec as plain data: `variant show --json` and the manifest use it."""
        return {
            **self.variant.describe(),
            "hash": self.hash,
            "source": {**self.source.identity(), "expected_origin": self.origin},
            "trees": [
                {"path": t.path, "source": t.source.name, "expected_origin": t.origin} for t in self.trees
            ],
            "deps": [{"name": d.name, "hash": d.hash, "prefix": str(d.prefix)} for d in self.deps],
            "runtime": {"files": list(self.source.runtime_files), "env": dict(self.source.runtime_env)},
            "toolchain": self.toolchain.identity(),
            "patches": self.patch_list(),
            "requires": list(self.requires),
            "cmake": dict(self.options),
            "flags": {"c": list(self.flags.c), "cxx": list(self.flags.cxx), "ld": list(self.flags.ld)},
            "env": dict(self.env),
            "isa": dict(self.isa) or None,
            "tools": {
                "cmake": self.cmake,
                "cmake_version": ".".join(map(str, self.cmake_version)),
                "ninja": ninja_binary(),
            },
            "configure": redact.argv(self.configure_argv()),
            "build": self.build_argv(),
        }


def make(
    layout: Layout, name: str, *, sources: dict[str, Source] | None = None, offline: bool = False
) -> Plan:
    """Resolve a variant against the catalogue; every error is a UserError naming file and key.

    A compiler this machine lacks raises spec.toolchain.ToolchainMissing, after
    every spec error has had its chance: the spec itself is valid.
    """
    if spec.is_mixin(name):
        raise UserError(f'"{name}" is a mixin (its name starts with "_"): it is only used through extends')
    spec.check_name(name)
    base, ref = spec.split_at(name)
    v = spec.resolve(layout.variants_dir, base)
    if sources is None:
        sources = sources_mod.load_all(layout.sources_file)
    if v.source not in sources:
        raise SpecError(
            v.origin("source"),
            "source",
            f'unknown source "{v.source}"' + suggest(v.source, sources) + f" (in {layout.sources_file})",
        )
    src = sources[v.source]
    version = None
    if ref is not None:
        # The variant at another upstream version: its own name (dist/NAME@VERSION, its worktree),
        # the version's source in place of the pinned one, the same spec and series.
        hist = versions.histories(layout, sources).get(src.name)
        version = versions.resolve(layout, src, ref, hist, fetch=False, say=lambda _: None)
        src = version.source
        sources = {**sources, src.name: src}
        v = dataclasses.replace(v, name=f"{base}@{version.label}")
        name = v.name
    if src.role != "tree":
        why = f'"{src.name}" is a dependency (role = "dependency"), not a tree to build'
        raise SpecError(v.origin("source"), "source", why)
    tspec = toolchain.load(
        layout.toolchains_dir, v.toolchain, referenced_from=v.origin("toolchain"), key="toolchain"
    )
    trees = trees_mod.resolve(layout, v, src, sources, offline=offline)
    series = tuple(s for t in trees for s in t.series)
    floor = floors.check_family(v, tspec, [t.source for t in trees])
    for key, _ in v.cmake:
        if (owned := cmake_name(key)) in RESERVED:  # not `name`: the variant's, used below
            why = f"set by the tool; use {RESERVED[owned]} instead"
            raise SpecError(v.origin("cmake"), f"cmake.{key}", why)
    for i, req in enumerate(v.requires):
        if req not in doctor.BY_NAME:
            raise SpecError(
                v.origin("requires"), f"requires[{i}]", f'unknown tool "{req}"' + suggest(req, doctor.BY_NAME)
            )
    tc = toolchain.resolve(tspec)
    floors.check_version(tc, floor)
    options = dict(_by_name(RECIPE_CMAKE, dict(src.cmake), dict(v.cmake)).values())
    flags = v.flags + INSTRUMENTS[v.instrument].flags_for(tspec.family)

    cmake_path, cmake_version = cmake_binary()
    env = build_env()
    deps = deps_mod.resolve(layout, src, sources, tc, cmake_version, env, offline=offline)
    dep_series = tuple(s for d in deps for s in d.series)
    requires = tuple(dict.fromkeys(v.requires + tuple(r for s in series + dep_series for r in s.requires)))
    native = _on(_by_name(options).get("GGML_NATIVE", ("", "ON"))[1])
    ccache_env, remote = ccache.settings(layout, name)
    return Plan(
        variant=v,
        source=src,
        toolchain=tc,
        trees=trees,
        deps=deps,
        requires=requires,
        flags=flags,
        options=tuple(sorted(options.items())),
        env=tuple(sorted(env.items())),
        isa=tuple(sorted(native_isa(tc.cc.path).items())) if native else (),
        worktree=layout.worktree(name),
        build_dir=layout.build_dir(name),
        ccache_env=ccache_env,
        cmake=cmake_path,
        cmake_version=cmake_version,
        remote=remote,
        version=version,
    )
