"""The environment a benchmark process runs in: explicit, stored with the run, never the caller's whole one.

OMP_NUM_THREADS, OMP_WAIT_POLICY, GOMP_SPINCOUNT, KMP_*, GGML_*, LLAMA_*,
LD_PRELOAD, MALLOC_* and the like change the numbers a benchmark takes; a
child that inherited them from whoever typed `variant bench` would change the
results without a trace. A benchmark process (`variant bench`, `variant
profile`) gets exactly:

- host/env.py's PASSED, copied from the caller when set (PASSED_BECAUSE says why);
- FIXED;
- what the variant's programs need at run time (its manifest's runtime env,
  e.g. TMAC_KCFG_FILE; recorded in the manifest);
- the profile's env, with `variant bench --env NAME=VALUE` over it.

FIXED and the profile's env are the run's recorded environment (results.sqlite
runs.env, exported with the run, shown by `variant report`). Everything else of
the caller's is dropped; the dropped variables that are known to change the
numbers (KNOBS) are named when a run starts, so that whoever exported one
learns to give it with --env, where it is recorded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ..errors import UserError
from ..host import env as host_env
from ..tomlfile import ENV_NAME

# The caller's variables a benchmark process gets, as a build does (host/env.py); none of them
# changes what the programs compute. Why each:
PASSED_BECAUSE = {
    "PATH": "taskset, chrt, fio, perf and uftrace are found on it (the variant's programs run by full path)",
    "HOME": "perf reads ~/.perfconfig and keeps its build-id cache in ~/.debug",
    "TMPDIR": "where a program puts scratch files: the file system the caller chose for them",
}
# The programs print numbers the bench parses: with a '.', whatever the caller's locale (builds: host/env.py).
FIXED = {"LC_ALL": "C"}
# Dropped from the caller's environment and named when set: these change the numbers.
# OpenMP (OMP_, libgomp's GOMP_, LLVM's KMP_), llama.cpp's own (GGML_, LLAMA_), glibc's allocator and
# tunables, BLAS libraries' threads, the libraries loaded in front of or instead of the variant's own.
KNOBS = re.compile(
    r"(OMP|GOMP|KMP|GGML|LLAMA|TMAC|MALLOC|GLIBC|MIMALLOC|MKL|OPENBLAS|BLIS)_\w+"
    r"|LD_PRELOAD|LD_LIBRARY_PATH|LD_BIND_NOW"
)


def recorded(profile_env: Mapping[str, str]) -> dict[str, str]:
    """The run's environment as stored: what is set deliberately (FIXED, then the profile's and --env)."""
    return dict(sorted({**FIXED, **profile_env}.items()))


def child(profile_env: Mapping[str, str], runtime: Mapping[str, str]) -> dict[str, str]:
    """A benchmark process's whole environment (see the module's docstring)."""
    return {**host_env.passed(), **FIXED, **runtime, **profile_env}


def dropped(profile_env: Mapping[str, str]) -> dict[str, str]:
    """The caller's variables that would change the numbers and that a benchmark process does not get."""
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if KNOBS.fullmatch(k) and k not in profile_env and k not in host_env.PASSED
    }


def parse(assignments: tuple[str, ...], option: str = "--env") -> dict[str, str]:
    """NAME=VALUE arguments as a dict (a later one of a name wins); a UserError for anything else."""
    out: dict[str, str] = {}
    for a in assignments:
        name, eq, value = a.partition("=")
        if not eq or not ENV_NAME.fullmatch(name):
            raise UserError(f'{option} "{a}": expected NAME=VALUE, NAME of letters, digits and _')
        if "\0" in value:
            raise UserError(f"{option} {name}: a value cannot hold a NUL byte")
        out[name] = value
    return out


def show(env: Mapping[str, str] | None) -> str:
    """The recorded environment as one line: NAME=VALUE ..., or why there is none."""
    if env is None:
        return "not recorded (a run stored before runs recorded their environment)"
    return " ".join(f"{k}={v}" for k, v in sorted(env.items())) or "nothing set"
