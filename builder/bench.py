"""`variant bench`: kernel micro-benchmarks of installed variants, interleaved, into the database.

Suites (each measures one kernel, with the variant's own binaries):

  barrier  ns per graph node of test-barrier at each thread count
  ops      GFLOPS of MUL_MAT per weight type and shape (test-backend-ops perf)
  e2e      prompt and generation tokens/s, CPU seconds per generated token (llama-bench)
  load     model load time with a cold page cache (posix_fadvise DONTNEED) and warm, per load mode;
           the pseudo-mode "fio" reads the same file with fio (O_DIRECT, io_uring, 32 x 1 MiB in
           flight): the disk's limit, measured in the same run
  faults   minor/major page faults, peak RSS, CPU time, peak AnonHugePages (rusage, smaps_rollup),
           per load mode

The load and faults suites run llama-completion with `--load-mode MODE` for
each mode asked for (mmap, none, dio, or a mode a patch adds); mode "default"
runs it without the option, and falls back to llama-simple in variants that do
not build llama-completion.

Every repetition runs each variant once, in turn (A B A B ...), so drift hits
all of them alike; stats.py turns the pairs into ratios and a noise verdict.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import models, patches, profiles, results
from .errors import BuildError, UserError
from .install import read_manifest
from .layout import Layout
from .profiles import Profile
from .results import Measurement
from .run import Measured, measure
from .tomlfile import suggest

SUITES = ("barrier", "ops", "e2e", "load", "faults")
BINARIES = {
    "barrier": "test-barrier",
    "ops": "test-backend-ops",
    "e2e": "llama-bench",
    "load": "llama-completion",
    "faults": "llama-completion",
}
DEFAULT_LOAD_MODES = ("default",)
OPS_TYPES = ("f16", "q8_0", "q4_0", "tq2_0")
OPS_BATCHES = (1, 512)  # generation-like gemv and prompt-like gemm
PROMPT = "the model is fast"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Installed:
    name: str
    bin: Path
    manifest: dict[str, Any]

    def tool(self, name: str) -> str:
        path = self.bin / name
        if not path.is_file():
            raise UserError(f"{self.name} has no {name} (add it to the variant's targets and rebuild)")
        return str(path)


def installed(layout: Layout, name: str) -> Installed:
    manifest = read_manifest(layout, name)
    if manifest is None:
        raise UserError(f"{name} is not built; run `variant build {name}` first")
    return Installed(name, layout.dist / name / "bin", manifest)


@dataclass(frozen=True)
class Case:
    suite: str
    label: str
    run: Callable[[Installed], list[Measurement]]


@dataclass(frozen=True)
class Context:
    layout: Layout
    profile: Profile
    threads: tuple[int, ...]
    say: Say
    load_modes: tuple[str, ...] = DEFAULT_LOAD_MODES
    layers: int | None = None  # the wide model's layer count (default: its own)

    def model(self, size: str, type_: str = "q8_0") -> Path:
        default_type = "f16" if size == "tiny" else type_
        layers = self.layers if size == "wide" else None
        return models.ensure(
            self.layout.home / "models", models.spec_for(size, default_type, layers), self.say
        )

    def env(self) -> dict[str, str]:
        return dict(self.profile.env)

    def run(self, inst: Installed, argv: list[str]) -> Measured:
        m = measure(self.profile.wrap(argv), env=self.env(), timeout=self.profile.timeout)
        if m.returncode not in (0, None):
            raise BuildError(
                f"{inst.name}: {Path(argv[0]).name} failed with exit code {m.returncode}\n"
                f"  command: {shlex.join(m.argv)}\n" + "\n".join("  | " + ln for ln in m.tail().splitlines())
            )
        return m


def _timeout(
    suite: str, metric: str, unit: str, params: dict[str, Any], ctx: Context, better: str
) -> Measurement:
    return Measurement(suite, metric, unit, params, None, f"timeout after {ctx.profile.timeout:g} s", better)


# --- suites -----------------------------------------------------------------------------


def barrier_cases(ctx: Context, rounds: int = 20) -> list[Case]:
    def one(t: int) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            params = {"threads": t, "rounds": rounds}
            m = ctx.run(inst, [inst.tool("test-barrier"), str(t), str(rounds)])
            if m.returncode is None:
                return [
                    _timeout("barrier", k, u, params, ctx, "lower")
                    for k, u in (("ns_per_node", "ns"), ("cpu_s", "s"))
                ]
            found = re.search(r"([\d.]+) nsec per-node", m.stdout + m.stderr)
            if not found:
                raise BuildError(f"{inst.name}: test-barrier printed no 'nsec per-node':\n{m.tail()}")
            return [
                Measurement("barrier", "ns_per_node", "ns", params, float(found[1]), better="lower"),
                Measurement("barrier", "cpu_s", "s", params, m.user_s + m.sys_s, better="lower"),
            ]

        return run

    return [Case("barrier", f"barrier t={t}", one(t)) for t in ctx.threads]


def parse_backend_ops_sql(text: str) -> list[dict[str, str]]:
    """Rows of `test-backend-ops --output sql` (its CSV output has no timing columns)."""
    rows = []
    for m in re.finditer(r"INSERT INTO test_backend_ops \(([^)]*)\) VALUES \((.*)\);", text):
        cols = [c.strip() for c in m[1].split(",")]
        vals = next(csv.reader(io.StringIO(m[2]), quotechar="'", skipinitialspace=True))
        rows.append(dict(zip(cols, vals, strict=False)))
    return rows


def ops_cases(ctx: Context) -> list[Case]:
    regex = f"type_a=({'|'.join(OPS_TYPES)}),type_b=f32,m=4096,n=({'|'.join(map(str, OPS_BATCHES))}),k=14336,"

    def run(inst: Installed) -> list[Measurement]:
        argv = [
            inst.tool("test-backend-ops"),
            "perf",
            "-b",
            "CPU",
            "-o",
            "MUL_MAT",
            "-p",
            regex,
            "--output",
            "sql",
        ]
        m = ctx.run(inst, argv)
        if m.returncode is None:
            return [_timeout("ops", "gflops", "GFLOPS", {"op": "MUL_MAT"}, ctx, "higher")]
        out = []
        for row in parse_backend_ops_sql(m.stdout):
            if row.get("test_mode") != "perf" or row.get("supported") != "1":
                continue
            shape = dict(kv.split("=", 1) for kv in re.findall(r"(\w+=[^,\[]+)", row["op_params"]))
            params = {
                "op": row["op_name"],
                "type": shape.get("type_a"),
                "m": shape.get("m"),
                "n": shape.get("n"),
                "k": shape.get("k"),
            }
            out.append(
                Measurement("ops", "gflops", "GFLOPS", params, float(row["flops"]) / 1e9, better="higher")
            )
        if not out:
            raise BuildError(f"{inst.name}: test-backend-ops measured nothing for {regex}:\n{m.tail()}")
        return out

    return [Case("ops", "ops MUL_MAT", run)]


def e2e_cases(ctx: Context, n_prompt: int = 128, n_gen: int = 32) -> list[Case]:
    model = ctx.model("wide")

    def bench(t: int, pp: bool) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            np_, ng = (n_prompt, 0) if pp else (0, n_gen)
            params = {"threads": t, "model": model.name.split("-")[1], "n_prompt": np_, "n_gen": ng}
            argv = [
                inst.tool("llama-bench"),
                "-m",
                str(model),
                "-p",
                str(np_),
                "-n",
                str(ng),
                "-t",
                str(t),
                "-r",
                "1",
                "-o",
                "jsonl",
            ]
            m = ctx.run(inst, argv)
            metric = "pp_tps" if pp else "tg_tps"
            if m.returncode is None:
                return [_timeout("e2e", metric, "tokens/s", params, ctx, "higher")]
            line = next((json.loads(x) for x in m.stdout.splitlines() if x.startswith("{")), None)
            if line is None:
                raise BuildError(f"{inst.name}: llama-bench printed no JSON line:\n{m.tail()}")
            out = [Measurement("e2e", metric, "tokens/s", params, float(line["avg_ts"]), better="higher")]
            if not pp:
                # llama-bench warms up with one generated token before the measured ones.
                per_token = (m.user_s + m.sys_s) / (ng + 1)
                out.append(
                    Measurement("e2e", "cpu_s_per_token", "s/token", params, per_token, better="lower")
                )
            return out

        return run

    cases = []
    for t in ctx.threads:
        cases.append(Case("e2e", f"e2e pp t={t}", bench(t, True)))
        cases.append(Case("e2e", f"e2e tg t={t}", bench(t, False)))
    return cases


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache; no root needed (posix_fadvise DONTNEED)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def generate_argv(
    inst: Installed, model: Path, mode: str, n_gen: int, threads: int | None = None
) -> list[str]:
    """A greedy generation of n_gen tokens that loads the model with `mode`."""
    if mode == "default" and not (inst.bin / "llama-completion").is_file():
        return [inst.tool("llama-simple"), "-m", str(model), "-n", str(n_gen), PROMPT]
    argv = [inst.tool("llama-completion"), "-m", str(model), "-p", PROMPT, "-n", str(n_gen)]
    argv += ["-no-cnv", "--temp", "0", "--no-warmup", "--seed", "1"]
    argv += [] if threads is None else ["-t", str(threads)]
    return argv + ([] if mode == "default" else ["--load-mode", mode])


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


def load_cases(ctx: Context) -> list[Case]:
    model = ctx.model("wide")

    def limit(inst: Installed) -> list[Measurement]:
        params = {"cache": "cold", **model_params(model, FIO_MODE)}
        evict(model)
        m = ctx.run(inst, fio_argv(model))
        if m.returncode is None:
            return [_timeout("load", "load_ms", "ms", params, ctx, "lower")]
        ms, mb_s = fio_read(m.stdout)
        return [
            Measurement("load", "load_ms", "ms", params, ms, better="lower"),
            Measurement("load", "load_mb_s", "MB/s", params, mb_s, better="higher"),
        ]

    def one(mode: str, cache: str) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            params = {"cache": cache, **model_params(model, mode)}
            argv = generate_argv(inst, model, mode, 1)
            if cache == "cold":
                evict(model)
            else:
                ctx.run(inst, argv)  # warms the page cache; not recorded
            m = ctx.run(inst, argv)
            if m.returncode is None:
                return [_timeout("load", "load_ms", "ms", params, ctx, "lower")]
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

    def one(mode: str) -> Callable[[Installed], list[Measurement]]:
        def run(inst: Installed) -> list[Measurement]:
            params = {**model_params(model, mode), "n_gen": n_gen}
            m = ctx.run(inst, generate_argv(inst, model, mode, n_gen))
            if m.returncode is None:
                return [_timeout("faults", "minor_faults", "faults", params, ctx, "lower")]
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


MAKERS: dict[str, Callable[[Context], list[Case]]] = {
    "barrier": barrier_cases,
    "ops": ops_cases,
    "e2e": e2e_cases,
    "load": load_cases,
    "faults": faults_cases,
}


def default_threads(suite: str) -> tuple[int, ...]:
    n = profiles.cpu_count()
    return tuple(dict.fromkeys((1, n, 2 * n))) if suite == "barrier" else (n,)


def suites_for(insts: list[Installed], layout: Layout) -> tuple[str, ...]:
    """The suites the variants' patch series declare (series.toml bench); all of them if none do."""
    wanted: list[str] = []
    for inst in insts:
        for p in inst.manifest.get("patches", []):
            sdir = layout.patches_dir / p["series"]
            if (sdir / "series.toml").is_file():
                s = patches.load(
                    layout.patches_dir,
                    p["series"],
                    inst.manifest["source"]["name"],
                    referenced_from=sdir / "series.toml",
                    key="bench",
                )
                wanted += [b for b in s.bench if b in SUITES]
    return tuple(dict.fromkeys(wanted)) or SUITES


def run(
    layout: Layout,
    names: list[str],
    *,
    baseline: str | None,
    suites: tuple[str, ...],
    reps: int,
    threads: tuple[int, ...],
    profile: Profile,
    command: str,
    say: Say,
    load_modes: tuple[str, ...] = DEFAULT_LOAD_MODES,
    layers: int | None = None,
) -> int:
    """Run the suites, interleaving the variants in every repetition; return the run id."""
    order = list(dict.fromkeys(([baseline] if baseline else []) + names))
    insts = [installed(layout, n) for n in order]
    suites = suites or suites_for(insts, layout)
    for s in suites:
        if s not in SUITES:
            raise UserError(f'unknown suite "{s}"' + suggest(s, SUITES))
    profiles.check(profile)
    cases: list[Case] = []
    for s in suites:
        ctx = Context(
            layout, profile, threads or profile.threads or default_threads(s), say, load_modes, layers
        )
        cases += MAKERS[s](ctx)
    total = len(cases) * reps * len(insts)
    done = 0
    with results.connect(layout.home / "results.sqlite") as con, profiles.competing_load(profile):
        run_id = results.start_run(con, profile.name, command)
        for case in cases:
            for rep in range(reps):
                for inst in insts:
                    done += 1
                    say(f"[{done}/{total}] {case.label} rep {rep + 1}/{reps} {inst.name}")
                    for m in case.run(inst):
                        results.record(con, run_id, inst.manifest, rep, m)
    return run_id
