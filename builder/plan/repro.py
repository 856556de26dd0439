"""What keeps a build's bytes independent of where and when it is built.

A compiler writes two kinds of facts of the build itself into its output:

- Paths: `__FILE__` (ggml's asserts and logs), the debug info's compile folder and file
  names. Every absolute path a variant's compile sees is under the variant's folder (its
  worktree with the nested trees, its build folder) or a dependency's prefix. Each is mapped
  to a fixed name with `-ffile-prefix-map` (gcc >= 8, clang >= 10: `__FILE__`, debug info and
  `__builtin_FILE` alike). ccache rewrites a map's path below base_dir relative to the build
  folder before hashing it, so every sibling's maps hash alike and a sibling's cached object is
  the bytes a fresh compile here would give (measured: two trees at two paths, one miss, one
  hit, byte-identical objects), while an object cached without maps is not served to a compile
  with them (measured: two misses).
- Time: `__DATE__`, `__TIME__` and CMake's `string(TIMESTAMP)` follow `SOURCE_DATE_EPOCH`,
  set to the base commit's time, which is the same on every machine (an sdist import is
  committed at a fixed date). ccache is not told to ignore time macros (ccache/ccache.py), so
  an object with another date is never served.

Neither is part of a variant's hash: both follow from what the hash already covers (the
source commit; the variant's folder is its name). Archive member order, build-id and the
$ORIGIN rpath need nothing: binutils' `ar` is deterministic by default on Debian, build-id is
a digest of the content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .. import git

# The variant's folder (src/ and build/ below it keep their names). Not ".": a name of our own
# tells the variant's compile units from the toolchain's, whose distributions map their own
# build folders to "." (verify/verify.py: debug info in a Release build).
VARIANT_DIR = "variant"
DEPS_DIR = "deps"  # a dependency's prefix: deps/NAME


def prefix_maps(variant_dir: Path, deps: Iterable[tuple[str, Path]]) -> tuple[str, ...]:
    """The -ffile-prefix-map options of a variant's compiles: its folder, then each dependency."""
    maps = [f"-ffile-prefix-map={variant_dir}={VARIANT_DIR}"]
    maps += [f"-ffile-prefix-map={prefix}={DEPS_DIR}/{name}" for name, prefix in deps]
    return tuple(maps)


INCLUDE = "prefix-maps.cmake"


def include_file(folder: Path) -> Path:
    """The CMake script (CMAKE_PROJECT_INCLUDE) that adds the prefix maps of a build in folder."""
    return folder / INCLUDE


def write_include(folder: Path, maps: Iterable[str]) -> Path:
    """Write the script that adds maps to every compile of the project, once.

    Not CMAKE_C_FLAGS: that is one string split at spaces (a catalogue path may hold one), and
    CMake's try_compile drops the quotes that would keep it whole. add_compile_options takes
    each map as one argument and quotes it for the shell itself. CMake runs the script after
    every project(); the global property keeps nested projects (ggml's) from adding it again.
    """
    args = " ".join('"' + re.sub(r'([\\"$;])', r"\\\1", m) + '"' for m in maps)
    text = (
        "# Written by variant: keep this machine's paths out of the build's bytes (plan/repro.py).\n"
        "get_property(_variant_maps GLOBAL PROPERTY VARIANT_PREFIX_MAPS SET)\n"
        "if(NOT _variant_maps)\n"
        "  set_property(GLOBAL PROPERTY VARIANT_PREFIX_MAPS ON)\n"
        f"  add_compile_options({args})\n"
        "endif()\n"
    )
    path = include_file(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def dependency_maps(work: Path, name: str) -> tuple[str, ...]:
    """A dependency's own build: its work folder (sources and build folder) under deps/NAME-build."""
    return (f"-ffile-prefix-map={work}={DEPS_DIR}/{name}-build",)


def source_date_epoch(worktree: Path, commit: str) -> str:
    """The commit time of the source's base commit, as SOURCE_DATE_EPOCH wants it (seconds)."""
    return git.out("show", "-s", "--format=%ct", commit, cwd=worktree).strip()
