"""A wheel's native libraries checked like a variant's binaries, before the wheel reaches --out.

The same checks as `variant build` where they apply to shared libraries: the
OpenMP runtime linked and really called (or neither), the toolchain's compiler
and nothing else in .comment, sanitizers, instrumentation, the source's kernel
symbols, the series' own code, and the exact compile commands. What
llama-cpp-python decides itself (shared libraries) is reported as forced.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ..verify import commands, elf, features, verify
from ..verify.verify import Check
from .recipe import MANIFEST, PROGRAMS, Recipe

LIBS = "llama_cpp/lib/"


def libraries(wheel: Path, dest: Path) -> list[Path]:
    """The wheel's shared libraries, unpacked under dest."""
    out = []
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(LIBS) and ".so" in Path(name).name:
                target = dest / Path(name).name
                target.write_bytes(zf.read(name))
                out.append(target)
    return sorted(out)


def carried_manifest(wheel: Path) -> bool:
    with zipfile.ZipFile(wheel) as zf:
        return f"llama_cpp/{MANIFEST}" in zf.namelist()


def forced(recipe: Recipe, libs: list[Path], cache: dict[str, str]) -> list[dict[str, str]]:
    """Options the variant asked for that llama-cpp-python's build decided otherwise (cache: CMakeCache)."""
    plan = recipe.plan
    out = []
    if not plan.enabled("BUILD_SHARED_LIBS") and libs:
        by = "llama-cpp-python's CMakeLists.txt (a Python package loads .so files)"
        asked = plan.option("BUILD_SHARED_LIBS") or "OFF"
        out.append({"option": "BUILD_SHARED_LIBS", "asked": asked, "got": "ON", "by": by})
    for key, want in plan.options:
        got = cache.get(key)
        # the program switches are this tool's choice (recipe.PROGRAMS), not llama-cpp-python's
        if got is not None and got != want and key != "BUILD_SHARED_LIBS" and key not in PROGRAMS:
            out.append({"option": key, "asked": want, "got": got, "by": "llama-cpp-python's CMakeLists.txt"})
    return out


def run(recipe: Recipe, wheel: Path, dest: Path) -> tuple[list[Check], dict[str, Any]]:
    """Every check on the wheel; and what it holds (libraries, forced options) for the record."""
    plan = recipe.plan
    libs = libraries(wheel, dest)
    if not libs:
        return [Check("libraries", False, f"{wheel.name} holds no {LIBS}*.so")], {}
    facts = [elf.read(p) for p in libs]
    cache = commands.cache(recipe.build_dir)
    # pip and scikit-build-core build in folders of their own: the variant's prefix maps are not
    # given to a wheel (it is not made reproducible), so they are not asked of its compiles
    flags = commands.config_flags(plan, cache, mapped=False)
    checks = [
        # a zip holds no symlinks: libggml.so, .so.0 and .so.0.25.3 are three copies of one library
        Check("libraries", True, ", ".join(sorted({p.name.split(".so")[0] + ".so" for p in libs}))),
        Check("manifest", carried_manifest(wheel), f"llama_cpp/{MANIFEST} in the wheel"),
        verify.openmp(plan, facts),
        verify.compiler(plan, facts),
        verify.sanitizers(plan, facts),
        verify.instrument(plan, facts),
        features.kernels(plan, facts),
        features.series_code(plan, libs),
        commands.compile_commands(plan, flags),
    ]
    return checks, {"libraries": [p.name for p in libs], "forced": forced(recipe, libs, cache)}
