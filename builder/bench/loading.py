"""Loading suites: load (cold and warm load time per load mode, fio's limit) and faults (rusage)."""

from __future__ import annotations

import functools
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import scratch
from ..errors import BuildError, UserError
from ..host import cgroup, topology
from ..models.installed import Installed, generate_argv
from ..run import capture
from ..store.results import Measurement
from . import observe, pagecache
from .case import Case, Context, Target, skipped, timeout


def model_params(target: Target, mode: str) -> dict[str, Any]:
    return {**target.params, "size_mib": target.size >> 20, "load_mode": mode}


# Load modes that hold all the weights in memory (read into the process, or mmap'd and locked).
RESIDENT = ("none", "dio", "uring", "mlock", "mmap+mlock")
HEADROOM = 0.9  # of MemAvailable: the KV cache, compute buffers and the page cache need the rest


def check_fits(ctx: Context, targets: list[Target]) -> None:
    """Refuse, before anything runs, a resident load mode for a model that does not fit in memory.

    An mmap'd model larger than memory streams from disk (slow, but what the
    big-model case is about); a resident one would push the machine into swap
    or the OOM killer, for numbers that mean nothing. --allow-swap overrides,
    except under a profile's memory-max: its cgroup has no swap to go to.
    """
    models = [(str(t.params["model"]), t.size) for t in targets]
    limit = ctx.profile.memory_max
    if limit is not None:
        check_memory(ctx.load_modes, models, limit)
    elif not ctx.allow_swap:
        check_memory(ctx.load_modes, models)


def check_memory(modes: tuple[str, ...], models: list[tuple[str, int]], limit: int | None = None) -> None:
    """check_fits for (name, bytes) of each model: smoke's load modes take it too.

    limit: a memory cgroup's, in bytes; it binds where it is below what the machine has available.
    """
    avail = topology.mem_available()
    has = f"this machine has {avail / 2**30:.2f} GiB available (MemAvailable"
    if limit is not None and limit < avail:
        avail, has = limit, f"the profile's memory-max is {cgroup.shown(limit)} (the cgroup's limit"
    for mode in (m for m in modes if m in RESIDENT):
        for name, size in models:
            if size > avail * HEADROOM:
                way = "use mmap or default" + (", or --allow-swap to run it anyway" if limit is None else "")
                raise UserError(
                    f"load mode {mode} holds the whole model in memory: {name} is "
                    f"{size / 2**30:.2f} GiB, {has}; {HEADROOM:.0%} of it may be used); {way}"
                )


def _argv(
    ctx: Context, inst: Installed, target: Target, mode: str, n_gen: int, threads: int | None = None
) -> list[str]:
    argv = generate_argv(inst, target.path, mode, n_gen, threads)
    # llama-simple takes no options beyond its own few; llama-completion takes --numa
    return argv + list(ctx.numa) if Path(argv[0]).name == "llama-completion" else argv


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


def tg_rate(log: str) -> float | None:
    """Generated tokens per second from a program's perf lines (llama-completion's eval line; llama-simple's
    "decoded" line), None when it printed neither."""
    # "eval time" lines, not "prompt eval time" (llama-completion stamps its lines; llama-simple does not)
    found = re.search(r"(?<!prompt)\s+eval time =.*?([\d.]+) tokens per second", log)
    found = found or re.search(r"decoded \d+ tokens in .*speed: ([\d.]+) t/s", log)
    return float(found[1]) if found else None


FIO_MODE = "fio"  # a --load-mode that reads the model file with fio instead of llama.cpp


def fio_argv(*files: Path) -> list[str]:
    """A sequential O_DIRECT read of the whole model (every part of a split one), 32 reads of 1 MiB in
    flight: what the disk gives."""
    fio = shutil.which("fio")
    if fio is None:
        raise UserError("--load-mode fio: fio is not installed (apt-get install fio)")
    # fio separates files with ':' and takes '\:' for one in a name
    names = ":".join(str(f).replace(":", "\\:") for f in files)
    return [
        fio, "--name=limit", f"--filename={names}", "--readonly", "--rw=read", "--bs=1M", "--direct=1",
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
    targets = ctx.targets()
    check_fits(ctx, targets)
    pagecache.check_drop_caches(ctx)
    told: set[tuple[str, str]] = set()

    def limit(target: Target) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            params = {"cache": "cold", **model_params(target, FIO_MODE)}
            pagecache.evict_all(ctx, target)
            m = ctx.run(inst, fio_argv(*target.files), target)
            if m.returncode is None:
                return [timeout("load", "load_ms", "ms", params, ctx, "lower", target)]
            ms, mb_s = fio_read(m.stdout)
            return [
                Measurement("load", "load_ms", "ms", params, ms, better="lower"),
                Measurement("load", "load_mb_s", "MB/s", params, mb_s, better="higher"),
            ]

        return run

    def one(target: Target, mode: str, cache: str) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            if not runs_mode(inst, mode, ctx, told):
                return []
            params = {"cache": cache, **model_params(target, mode)}
            if cache == "cold":  # how the cache was emptied: the results say which
                params["evict"] = "drop_caches" if ctx.drop_caches else "fadvise"
            if why := ctx.why_skipped(inst, target):
                return [skipped("load", "load_ms", "ms", params, why, "lower")]
            argv = _argv(ctx, inst, target, mode, 1)
            if cache == "cold":
                pagecache.evict_all(ctx, target)
            else:
                ctx.run(inst, argv, target)  # warms the page cache; not recorded
            m, io = observe.observed(ctx, inst, argv, target, "load", params)
            if m.returncode is None:
                return [timeout("load", "load_ms", "ms", params, ctx, "lower", target)]
            ms = load_ms(m.stdout + m.stderr)
            if ms is None:
                raise BuildError(f"{inst.name}: {Path(argv[0]).name} printed no load time:\n{m.tail()}")
            return [
                Measurement("load", "load_ms", "ms", params, ms, better="lower"),
                Measurement("load", "load_mb_s", "MB/s", params, target.size / 1e3 / ms, better="higher"),
                Measurement("load", "peak_rss", "MiB", params, m.maxrss_kib / 1024, better="lower"),
                *io,
            ]

        return run

    # fio reads with O_DIRECT, past the page cache: its warm run would repeat the cold one
    return [
        Case(
            "load",
            f"load {t.params['model']} {mode} {cache}",
            limit(t) if mode == FIO_MODE else one(t, mode, cache),
        )
        for t in targets
        for mode in ctx.load_modes
        for cache in ("cold", "warm")
        if mode != FIO_MODE or cache == "cold"
    ]


def faults_cases(ctx: Context, n_gen: int = 16) -> list[Case]:
    targets = ctx.targets()
    check_fits(ctx, targets)
    told: set[tuple[str, str]] = set()
    threads = max(ctx.threads)  # generation speed at the most threads the run measures

    def one(target: Target, mode: str) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            if not runs_mode(inst, mode, ctx, told):
                return []
            params = {**model_params(target, mode), "n_gen": n_gen, "threads": threads}
            if why := ctx.why_skipped(inst, target):
                return [skipped("faults", "minor_faults", "faults", params, why, "lower")]
            argv = _argv(ctx, inst, target, mode, n_gen, threads)
            m, io = observe.observed(ctx, inst, argv, target, "faults", params, huge_pages=True)
            if m.returncode is None:
                return [timeout("faults", "minor_faults", "faults", params, ctx, "lower", target)]
            log = m.stdout + m.stderr
            tps = tg_rate(log)
            per_token = [] if tps is None else [
                ("tg_tokens_s", "tokens/s", tps, "higher"),
                ("major_faults_per_token", "faults", m.majflt / n_gen, "lower"),
            ]  # fmt: skip
            figures = [
                *per_token,
                ("minor_faults", "faults", float(m.minflt), "lower"),
                ("major_faults", "faults", float(m.majflt), "lower"),
                ("peak_rss", "MiB", m.maxrss_kib / 1024, "lower"),
                ("user_cpu", "s", m.user_s, "lower"),
                ("sys_cpu", "s", m.sys_s, "lower"),
                ("anon_huge_pages", "MiB", m.anon_huge_kib / 1024, "higher"),
            ]
            return [
                Measurement("faults", name, unit, params, v, better=b) for name, unit, v, b in figures
            ] + io

        return run

    return [
        Case("faults", f"faults {t.params['model']} {mode}", one(t, mode))
        for t in targets
        for mode in ctx.load_modes
        if mode != FIO_MODE
    ]
