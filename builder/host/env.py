"""The environment a build runs in: explicit, never the caller's whole os.environ.

CPATH, LIBRARY_PATH, PKG_CONFIG_PATH (which decides LLAMA_URING), CFLAGS,
CMAKE_TOOLCHAIN_FILE, CCACHE_* and the like would change what is compiled
without any trace in the spec. Builds get PATH (to find the tools the hash
already names by absolute path), HOME and TMPDIR, and a fixed locale and time
zone; the manifest records all of it.
"""

from __future__ import annotations

import os

PASSED = ("PATH", "HOME", "TMPDIR")
FIXED = {"LC_ALL": "C", "TZ": "UTC"}


def passed() -> dict[str, str]:
    """The caller's variables every child the tool runs explicitly gets (builds and benchmarks)."""
    env = {k: os.environ[k] for k in PASSED if k in os.environ}
    env.setdefault("PATH", os.defpath)
    return env


def build_env() -> dict[str, str]:
    return {**passed(), **FIXED}
