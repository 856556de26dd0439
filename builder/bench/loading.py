"""Loading suites: load (cold and warm load time per load mode, fio's limit) and faults (rusage)."""

from __future__ import annotations

import ctypes
import functools
import json
import mmap
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import scratch
from ..errors import BuildError, UserError
from ..models.installed import Installed, generate_argv
from ..run import capture
from ..store.results import Measurement
from .case import Case, Context, timeout


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache; no root needed (posix_fadvise DONTNEED)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_fraction(path: Path) -> float:
    """The share of a file's pages in the page cache, from mincore(2) over a mapping of it."""
    size = path.stat().st_size
    if size == 0:
        return 0.0
    page = mmap.PAGESIZE
    pages = (size + page - 1) // page
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"mmap {path}")
        try:
            vec = ctypes.create_string_buffer(pages)
            if libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), f"mincore {path}")
            return sum(b & 1 for b in vec.raw) / pages
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def model_params(model: Path, mode: str) -> dict[str, Any]:
    return {"model": model.name.split("-")[1], "size_mib": model.stat().st_size >> 20, "load_mode": mode}


STAMP = r"^(\d+)\.(\d+)\.(\d+)\.(\d+) \w "  # common's log prefix: minutes.seconds.ms.us


def _stamp_s(m: re.Match[str]) -> float:
    return int(m[1]) * 60 + int(m[2]) + int(m[3]) / 1e3 + int(m[4]) / 1e6


def load_ms(log: str) -> float | None:
    """Model load time in ms from a program's log.

    llama-completion stamps its log lines: the load runs from "load the model" to
    the construction of the context that uses it (the last one: common's fit pass
    constructs a throwaway context first). What follows, the KV cache and compute
    buffers, is the same whichever way the weights were read, and is not reading
    the file. llama-simple has no stamps; its perf line's "load time" also runs to
    the end of the first evaluation, which counts the pages an mmap load defers.
    """
    start = re.search(STAMP + r".*load the model", log, re.M)
    ends = list(re.finditer(STAMP + r".*constructing llama_context", log, re.M))
    end = ends[-1] if ends else re.search(STAMP + r".*threadpool init", log, re.M)
    if start and end:
        return (_stamp_s(end) - _stamp_s(start)) * 1e3
    found = re.search(r"load time =\s*([\d.]+) ms", log)
    return float(found[1]) if found else None


FIO_MODE = "fio"  # a --load-mode that reads the model file with fio instead of llama.cpp


def fio_argv(model: Path) -> list[str]:
    """A sequential O_DIRECT read of the whole file, 32 reads of 1 MiB in flight: what the disk gives."""
    fio = shutil.which("fio")
    if fio is None:
        raise UserError("--load-mode fio: fio is not installed (apt-get install fio)")
    return [
        fio, "--name=limit", f"--filename={model}", "--readonly", "--rw=read", "--bs=1M", "--direct=1",
        "--ioengine=io_uring", "--iodepth=32", "--output-format=json",
    ]  # fmt: skip


def fio_read(stdout: str) -> tuple[float, float]:
    """(ms, MB/s) of the read job in fio's JSON output."""
    try:
        read = json.loads(stdout[stdout.index("{") :])["jobs"][0]["read"]
        return float(read["runtime"]), float(read["bw_bytes"]) / 1e6
    except (ValueError, KeyError, IndexError) as e:
        raise BuildError(f"fio printed no read job ({e}):\n{stdout[-1000:]}") from None


@functools.cache
def _listed_modes(completion: str) -> frozenset[str]:
    """The load modes llama-completion's --help documents ("- uring: ..." in a patched build)."""
    res = capture([completion, "--help"], check=False, timeout=60, cwd=scratch.folder())
    block = re.search(r"--load-mode[^\n]*\n((?:[ \t]{8,}[^\n]*\n)+)", res.stdout + res.stderr)
    return frozenset(re.findall(r"^\s+- ([a-z0-9][a-z0-9+_-]*):", block[1], re.M)) if block else frozenset()


def runs_mode(inst: Installed, mode: str, ctx: Context, told: set[tuple[str, str]]) -> bool:
    """Whether the variant's loader has this mode: a series may add one (uring) that the baseline lacks.

    A mode the variant does not document is skipped on it (said once), so a run
    can hold the patched build's new mode against the baseline's modes.
    """
    completion = inst.bin / "llama-completion"
    if mode == "default" or not completion.is_file() or mode in _listed_modes(str(completion)):
        return True  # without llama-completion, generate_argv says what is missing
    if (inst.name, mode) not in told:
        told.add((inst.name, mode))
        ctx.say(f"{inst.name}: its llama-completion has no load mode {mode}; skipped there")
    return False


def load_cases(ctx: Context) -> list[Case]:
    model = ctx.model("wide")
    told: set[tuple[str, str]] = set()

    def limit(inst: Installed) -> list[Measurement]:
        params = {"cache": "cold", **model_params(model, FIO_MODE)}
        evict(model)
        m = ctx.run(inst, fio_argv(model))
        if m.returncode is None:
            return [timeout("load", "load_ms", "ms", params, ctx, "lower")]
        ms, mb_s = fio_read(m.stdout)
        return [
            Measurement("load", "load_ms", "ms", params, ms, better="lower"),
            Measurement("load", "load_mb_s", "MB/s", params, mb_s, better="higher"),
        ]

    def one(mode: str, cache: str) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            if not runs_mode(inst, mode, ctx, told):
                return []
            params = {"cache": cache, **model_params(model, mode)}
            argv = generate_argv(inst, model, mode, 1)
            if cache == "cold":
                evict(model)
            else:
                ctx.run(inst, argv)  # warms the page cache; not recorded
            m = ctx.run(inst, argv)
            if m.returncode is None:
                return [timeout("load", "load_ms", "ms", params, ctx, "lower")]
            ms = load_ms(m.stdout + m.stderr)
            if ms is None:
                raise BuildError(f"{inst.name}: {Path(argv[0]).name} printed no load time:\n{m.tail()}")
            return [
                Measurement("load", "load_ms", "ms", params, ms, better="lower"),
                Measurement(
                    "load", "load_mb_s", "MB/s", params, model.stat().st_size / 1e3 / ms, better="higher"
                ),
                Measurement("load", "peak_rss", "MiB", params, m.maxrss_kib / 1024, better="lower"),
            ]

        return run

    # fio reads with O_DIRECT, past the page cache: its warm run would repeat the cold one
    return [
        Case("load", f"load {mode} {cache}", limit if mode == FIO_MODE else one(mode, cache))
        for mode in ctx.load_modes
        for cache in ("cold", "warm")
        if mode != FIO_MODE or cache == "cold"
    ]


def faults_cases(ctx: Context, n_gen: int = 16) -> list[Case]:
    model = ctx.model("wide")
    told: set[tuple[str, str]] = set()

    def one(mode: str) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            if not runs_mode(inst, mode, ctx, told):
                return []
            params = {**model_params(model, mode), "n_gen": n_gen}
            m = ctx.run(inst, generate_argv(inst, model, mode, n_gen))
            if m.returncode is None:
                return [timeout("faults", "minor_faults", "faults", params, ctx, "lower")]
            figures = [
                ("minor_faults", "faults", float(m.minflt), "lower"),
                ("major_faults", "faults", float(m.majflt), "lower"),
                ("peak_rss", "MiB", m.maxrss_kib / 1024, "lower"),
                ("user_cpu", "s", m.user_s, "lower"),
                ("sys_cpu", "s", m.sys_s, "lower"),
                ("anon_huge_pages", "MiB", m.anon_huge_kib / 1024, "higher"),
            ]
            return [Measurement("faults", name, unit, params, v, better=b) for name, unit, v, b in figures]

        return run

    return [Case("faults", f"faults {mode}", one(mode)) for mode in ctx.load_modes if mode != FIO_MODE]
