"""runners.toml: the machines the CI matrix builds on, and what each job of the matrix does.

```toml
[matrix]
cells-per-job = 4                 # a job builds at most this many variants back to back
bench-suites  = ["barrier"]       # the short bench each job runs (suites of `variant bench`)
bench-reps    = 3
setup         = ["make setup"]    # shell lines that prepare a fresh runner

[runner.linux-x64]
runs-on    = ["ubuntu-24.04"]     # the job's runs-on labels
image      = "python:3.11-bookworm"   # the container image the job runs in
toolchains = ["gcc", "clang"]     # toolchains/*.toml this runner has; default: all
```

Without the file the catalogue has one runner, `linux`, with every toolchain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import tomlfile as tf
from ..bench.suites import SUITES
from ..errors import SpecError
from ..spec import toolchain

MATRIX_KEYS = ("cells-per-job", "bench-suites", "bench-reps", "setup")
RUNNER_KEYS = ("runs-on", "image", "toolchains")
DEFAULT_RUNS_ON = ("ubuntu-24.04",)
# Debian 12 with Python 3.11 where pip may install: the packages `make setup` names exist there.
DEFAULT_IMAGE = "python:3.11-bookworm"
# GitHub runs at most 256 jobs per matrix.
MAX_JOBS = 256


@dataclass(frozen=True)
class Runner:
    name: str
    runs_on: tuple[str, ...]
    image: str
    toolchains: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    file: Path
    cells_per_job: int
    bench_suites: tuple[str, ...]
    bench_reps: int
    setup: tuple[str, ...]
    runners: tuple[Runner, ...]

    def runner(self, name: str) -> Runner:
        found = {r.name: r for r in self.runners}
        if name not in found:
            raise SpecError(self.file, "runner", f'no runner "{name}"' + tf.suggest(name, found))
        return found[name]


def _positive(path: Path, table: dict[str, object], key: str, default: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(path, f"matrix.{key}", "expected a positive integer")
    return value


def _suites(path: Path, matrix: dict[str, object]) -> tuple[str, ...]:
    """matrix.bench-suites: suites `variant bench` knows. Each becomes a word of a run: line, where
    GitHub expands ${{ }} before the shell's quoting counts, and a newline would end the block."""
    suites = tf.get_str_list(path, matrix, "bench-suites", "matrix.") or ("barrier",)
    for i, suite in enumerate(suites):
        if suite not in SUITES:
            raise SpecError(
                path,
                f"matrix.bench-suites[{i}]",
                f"unknown suite {json.dumps(suite, ensure_ascii=False)}" + tf.suggest(suite, SUITES),
            )
    return suites


def load(path: Path, toolchains_dir: Path) -> Config:
    data = tf.load(path) if path.is_file() else {}
    tf.check_keys(path, data, ("matrix", "runner"))
    matrix = tf.get_table(path, data, "matrix")
    tf.check_keys(path, matrix, MATRIX_KEYS, "matrix.")
    known = toolchain.available(toolchains_dir)
    runners = []
    for name, table in tf.get_table(path, data, "runner").items():
        # The name becomes part of the CI matrix's job, cache and artifact names.
        tf.check_name(path, f"runner.{name}", name, "runner")
        prefix = f"runner.{name}."
        if not isinstance(table, dict):
            raise SpecError(path, f"runner.{name}", "expected a table")
        tf.check_keys(path, table, RUNNER_KEYS, prefix)
        runs_on = table.get("runs-on", list(DEFAULT_RUNS_ON))
        if isinstance(runs_on, str):
            runs_on = [runs_on]
        table = {**table, "runs-on": runs_on}
        labels = tf.get_str_list(path, table, "runs-on", prefix) or ()
        if not labels:
            raise SpecError(path, prefix + "runs-on", "expected at least one runner label")
        tcs = tf.get_str_list(path, table, "toolchains", prefix)
        for i, tc in enumerate(tcs or ()):
            if tc not in known:
                raise SpecError(
                    path, f"{prefix}toolchains[{i}]", f'unknown toolchain "{tc}"' + tf.suggest(tc, known)
                )
        image = tf.get_str(path, table, "image", prefix) or DEFAULT_IMAGE
        runners.append(Runner(name, labels, image, tuple(known) if tcs is None else tcs))
    if not runners:
        runners.append(Runner("linux", DEFAULT_RUNS_ON, DEFAULT_IMAGE, tuple(known)))
    return Config(
        file=path,
        cells_per_job=_positive(path, matrix, "cells-per-job", 4),
        bench_suites=_suites(path, matrix),
        bench_reps=_positive(path, matrix, "bench-reps", 3),
        setup=tf.get_str_list(path, matrix, "setup", "matrix.") or ("make setup",),
        runners=tuple(runners),
    )
