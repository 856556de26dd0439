"""Where the build tools are: CMake (new enough for relocatable unity builds) and Ninja."""

from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path

from ..run import capture

# CMake 3.27 added CMAKE_UNITY_BUILD_RELOCATABLE. llama.cpp builds libllama as
# a unity build; without relocatable unity files they #include sources by
# absolute path, which differs per worktree, so no sibling variant could reuse
# a single libllama object from the shared ccache.
CMAKE_MIN_RELOCATABLE = (3, 27)


def parse_version(text: str) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return ()
    return tuple(int(g) for g in m.groups() if g is not None)


@functools.cache
def cmake_binary() -> tuple[str, tuple[int, ...]]:
    """The CMake to use: the first new enough of the one on PATH and the PyPI wheel's."""
    candidates: list[str | None] = [shutil.which("cmake")]
    try:
        import cmake as cmake_wheel  # the PyPI package: a dependency of ours

        candidates.append(str(Path(cmake_wheel.CMAKE_BIN_DIR) / "cmake"))
    except ImportError:
        pass
    found: list[tuple[str, tuple[int, ...]]] = []
    for path in candidates:
        if path and os.access(path, os.X_OK):
            out = capture([path, "--version"], check=False).stdout
            found.append((path, parse_version(out)))
    for path, version in found:
        if version >= CMAKE_MIN_RELOCATABLE:
            return path, version
    return found[0] if found else ("cmake", ())


def ninja_binary() -> str:
    return shutil.which("ninja") or shutil.which("ninja-build") or "ninja"
