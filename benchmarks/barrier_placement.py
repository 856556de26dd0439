#!/usr/bin/env python3
"""Where the futex barrier counts its CPUs: two thread pools, and a cgroup CPU quota.

Two experiments on installed variants (or any install folder with a bin/), interleaved round by
round, for review point 1 and point 5 of the futex-yield-barrier series (issue 26):

pools   llama-completion -t 2 -tb 2 with a strict batch pool (-Cb 0x3 --cpu-strict-batch 1), which
        pins the main thread to one CPU before the generation pool is made, once with the
        generation pool unmasked (its workers inherit that single CPU: really oversubscribed) and
        once with -C 0x3 (its workers run on both CPUs: it fits). tg t/s from a plain run, then the
        sched_yield and futex calls from a second run under strace -f -c (strace slows every
        syscall: its run's speed is not reported). A barrier that counts the calling thread's CPUs
        yields in the second case; one that counts a process snapshot spins in the first.
mask    the same with -C 0xff -t 4: a mask naming more CPUs than the machine has (8 on a 2-CPU VM)
        must count the CPUs there are, so the 4 threads are oversubscribed and yield.
poll0   llama-bench tg64 at -t 2 --poll 0 (threads fit): the barrier's spin limit has a floor, so a
        pool that does not poll for work does not sleep at every barrier either.
quota   llama-bench pp64/tg64 at -t 2 in a CPU cgroup with a quota of one CPU (cgroup v1
        cpu.cfs_quota_us, or v2 cpu.max), as a container's --cpus makes. Root only.

    python3 benchmarks/barrier_placement.py --root CATALOGUE --rounds 9 \\
        spin=openmp-off-gcc v1=futex-v1-gcc v2=futex-gcc omp=upstream-gcc

Prints medians with [min, max] per variant, and each variant's round-by-round ratio to the first.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

POOLS = {
    "unmasked": ["-t", "2", "-tb", "2", "-Cb", "0x3", "--cpu-strict-batch", "1"],
    "masked": ["-t", "2", "-tb", "2", "-C", "0x3", "-Cb", "0x3", "--cpu-strict-batch", "1"],
    "mask 0xff, 4 threads": ["-t", "4", "-tb", "4", "-C", "0xff"],
}
EXPERIMENTS = ("pools", "mask", "poll0", "quota")
# --no-repack: ggml's extra buffer types (repack, and AMX on CPUs that have it) off in every program;
# on an AMX VM whose q8_0 AMX kernels crash (SIGSEGV in ldtilecfg), the only way to run q8_0 batches
NO_REPACK = {"llama-completion": ["-nr"], "llama-bench": ["--repack", "0"]}
EXTRA: dict[str, list[str]] = {}


def bin_dir(root: Path, spec: str) -> tuple[str, Path]:
    label, _, where = spec.partition("=")
    where = where or label
    path = Path(where) if "/" in where else root / "dist" / where
    if not (path / "bin").is_dir():
        raise SystemExit(f"{spec}: no {path / 'bin'} (build the variant first)")
    return label, path / "bin"


def completion(bins: Path, model: Path, flags: list[str], trace: Path | None, tries: int = 8) -> str:
    argv = [str(bins / "llama-completion"), "-m", str(model), "-p", "The quick brown fox", "-n", "64"]
    argv += ["--temp", "0", "--seed", "1", "-no-cnv", *flags, *EXTRA.get("llama-completion", [])]
    if trace is not None:
        argv = ["strace", "-f", "-c", "-e", "trace=sched_yield,futex", "-o", str(trace), *argv]
    # the generated model's text is not UTF-8: only stderr (the timings) is read, and leniently
    done = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace", check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
    if "eval time" not in done.stderr and tries > 1:
        # now and then the log loses its tail (smoke's rule: such a run is drawn again)
        return completion(bins, model, flags, trace, tries - 1)
    return done.stderr


def pools_round(bins: Path, model: Path, case: str) -> dict[str, float]:
    stderr = completion(bins, model, POOLS[case], None)
    tg = re.search(
        r"(?:common_perf_print|llama_perf_context_print): +eval time.*?([\d.]+) tokens per second", stderr
    )
    if not tg:
        raise SystemExit(f"no eval line from {bins}/llama-completion {' '.join(POOLS[case])}")
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as trace:
        completion(bins, model, POOLS[case], Path(trace.name))
        calls = {
            m[2]: float(m[1])
            for m in re.finditer(
                r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", Path(trace.name).read_text(), re.M
            )
        }
    yields, futex = calls.get("sched_yield", 0.0), calls.get("futex", 0.0)
    return {"tg": float(tg[1]), "sched_yield": yields, "futex": futex}


def bench_rows(argv: list[str]) -> list[list[str]]:
    argv = [*argv, *EXTRA.get("llama-bench", [])]
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    rows = [line.split('","') for line in done.stdout.splitlines()[1:]]
    if done.returncode != 0 or not rows:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
    return rows


def poll0_round(bins: Path, model: Path) -> dict[str, float]:
    bench = [str(bins / "llama-bench"), "-m", str(model), "-t", "2", "--poll", "0", "-p", "0", "-n", "64"]
    (row,) = bench_rows([*bench, "-r", "1", "-o", "csv"])
    return {"tg": float(row[-2])}


def quota_group() -> Path:
    v1 = Path("/sys/fs/cgroup/cpu")
    if v1.is_dir():
        group = v1 / "barrier-quota-1cpu"
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("100000")
        return group
    group = Path("/sys/fs/cgroup/barrier-quota-1cpu")
    group.mkdir(exist_ok=True)
    (group / "cpu.max").write_text("100000 100000")
    return group


def quota_round(bins: Path, model: Path, group: Path) -> dict[str, float]:
    bench = [str(bins / "llama-bench"), "-m", str(model), "-t", "2", "-p", "64", "-n", "64", "-r", "1"]
    # the child joins the group before it execs: every thread it makes is under the quota
    argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(group), *bench, "-o", "csv"]
    pp, tg = bench_rows(argv)
    return {"pp": float(pp[-2]), "tg": float(tg[-2])}


def summary(results: dict[str, list[dict[str, float]]]) -> None:
    first = next(iter(results))
    for label, rounds in results.items():
        for metric in rounds[0]:
            vals = [r[metric] for r in rounds]
            mid = statistics.median(vals)
            line = f"  {label:>8} {metric:>11}: median {mid:9.1f} [{min(vals):.1f}, {max(vals):.1f}]"
            base = [r[metric] for r in results[first]]
            if label != first and metric in ("tg", "pp") and all(base):
                ratios = [v / b for v, b in zip(vals, base, strict=True)]
                ratio = statistics.median(ratios)
                line += f"  vs {first}: {ratio:.3f} [{min(ratios):.3f}, {max(ratios):.3f}]"
            print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path.cwd())
    ap.add_argument("--model", type=Path, help="default: the catalogue's generated wide-q8_0 model")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", choices=EXPERIMENTS, action="append", help="repeatable; default: all")
    ap.add_argument("--no-repack", action="store_true", help="ggml's extra buffer types off (repack, AMX)")
    ap.add_argument("variants", nargs="+", help="LABEL=VARIANT or LABEL=FOLDER (an install with bin/)")
    args = ap.parse_args()
    bins = dict(bin_dir(args.root, v) for v in args.variants)
    generated = sorted((args.root / ".variant" / "models").glob("wide-q8_0-*.gguf"))
    model = args.model or (generated[0] if generated else None)
    if model is None or not model.is_file():
        raise SystemExit("no model: pass --model, or bench --suite e2e once (it makes the wide q8_0 one)")
    only = args.only or list(EXPERIMENTS)
    if args.no_repack:
        EXTRA.update(NO_REPACK)

    def interleave(what: str, one: Callable[[Path], dict[str, float]]) -> None:
        results: dict[str, list[dict[str, float]]] = {label: [] for label in bins}
        for r in range(args.rounds):
            for label, b in bins.items():
                print(f"{what} round {r + 1}/{args.rounds} {label}", file=sys.stderr, flush=True)
                results[label].append(one(b))
        print(f"\n{what}, {args.rounds} rounds:")
        summary(results)

    cases = [c for c in POOLS if ("mask" if c.startswith("mask") else "pools") in only]
    for case in cases:

        def one(b: Path, case: str = case) -> dict[str, float]:
            return pools_round(b, model, case)

        interleave(f"llama-completion tg64 {' '.join(POOLS[case])}", one)
    if "poll0" in only:
        interleave("llama-bench tg64 -t 2 --poll 0", lambda b: poll0_round(b, model))
    if "quota" in only:
        group = quota_group()
        interleave(f"llama-bench -t 2, quota of 1 CPU ({group})", lambda b: quota_round(b, model, group))


if __name__ == "__main__":
    main()
