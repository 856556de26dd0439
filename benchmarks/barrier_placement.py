#!/usr/bin/env python3
"""Where the futex barrier counts its CPUs: two thread pools, and a cgroup CPU quota.

Two experiments on installed variants (or any install folder with a bin/), interleaved round by
round, for review point 1 and point 5 of the futex-yield-barrier series (issue 26):

pools   llama-completion -t 2 -tb 2 with a strict batch pool (-Cb 0x3 --cpu-strict-batch 1), which
        pins the main thread to one CPU before the generation pool is made, once with the
        generation pool unmasked (its workers inherit that single CPU: really oversubscribed) and
        once with -C 0x3 (its workers run on both CPUs: it fits). Under strace -f -c: tg t/s and
        the sched_yield and futex calls. A barrier that counts the calling thread's CPUs yields in
        the second case; one that counts a process snapshot spins in the first.
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
from pathlib import Path

POOLS = {
    "unmasked": ["-Cb", "0x3", "--cpu-strict-batch", "1"],
    "masked": ["-C", "0x3", "-Cb", "0x3", "--cpu-strict-batch", "1"],
}


def bin_dir(root: Path, spec: str) -> tuple[str, Path]:
    label, _, where = spec.partition("=")
    where = where or label
    path = Path(where) if "/" in where else root / "dist" / where
    if not (path / "bin").is_dir():
        raise SystemExit(f"{spec}: no {path / 'bin'} (build the variant first)")
    return label, path / "bin"


def pools_round(bins: Path, model: Path, case: str, tries: int = 8) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as trace:
        argv = ["strace", "-f", "-c", "-e", "trace=sched_yield,futex", "-o", trace.name]
        argv += [str(bins / "llama-completion"), "-m", str(model), "-p", "The quick brown fox", "-n", "64"]
        argv += ["--temp", "0", "--seed", "1", "-no-cnv", "-t", "2", "-tb", "2", *POOLS[case]]
        # the generated model's text is not UTF-8: only stderr (the timings) is read, and leniently
        done = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace", check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
        calls = {
            m[2]: float(m[1])
            for m in re.finditer(
                r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", Path(trace.name).read_text(), re.M
            )
        }
    tg = re.search(
        r"(?:common_perf_print|llama_perf_context_print): +eval time.*?([\d.]+) tokens per second",
        done.stderr,
    )
    if not tg:
        # now and then the log loses its tail (smoke's rule: such a run is drawn again)
        if tries > 1:
            return pools_round(bins, model, case, tries - 1)
        raise SystemExit(f"no eval line from {' '.join(argv)}")
    return {
        "tg": float(tg[1]),
        "sched_yield": calls.get("sched_yield", 0.0),
        "futex": calls.get("futex", 0.0),
    }


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
    bench = [str(bins / "llama-bench"), "-m", str(model), "-t", "2", "-p", "64", "-n", "64"]
    bench += ["-r", "1", "-o", "csv"]
    # the child joins the group before it execs: every thread it makes is under the quota
    argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(group), *bench]
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    rows = [line.split('","') for line in done.stdout.splitlines()[1:]]
    if done.returncode != 0 or len(rows) != 2:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(bench)}\n{done.stderr[-2000:]}")
    return {"pp": float(rows[0][-2]), "tg": float(rows[1][-2])}


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
    ap.add_argument("--only", choices=("pools", "quota"))
    ap.add_argument("variants", nargs="+", help="LABEL=VARIANT or LABEL=FOLDER (an install with bin/)")
    args = ap.parse_args()
    bins = dict(bin_dir(args.root, v) for v in args.variants)
    generated = sorted((args.root / ".variant" / "models").glob("wide-q8_0-*.gguf"))
    model = args.model or (generated[0] if generated else None)
    if model is None or not model.is_file():
        raise SystemExit("no model: pass --model, or bench --suite e2e once (it makes the wide q8_0 one)")
    if args.only != "quota":
        for case in POOLS:
            pools: dict[str, list[dict[str, float]]] = {label: [] for label in bins}
            for r in range(args.rounds):
                for label, b in bins.items():
                    print(f"pools {case} round {r + 1}/{args.rounds} {label}", file=sys.stderr, flush=True)
                    pools[label].append(pools_round(b, model, case))
            flags = " ".join(POOLS[case])
            print(f"\npools, generation pool {case} ({flags}), tg64 t=2, {args.rounds} rounds:")
            summary(pools)
    if args.only != "pools":
        group = quota_group()
        quota: dict[str, list[dict[str, float]]] = {label: [] for label in bins}
        for r in range(args.rounds):
            for label, b in bins.items():
                print(f"quota round {r + 1}/{args.rounds} {label}", file=sys.stderr, flush=True)
                quota[label].append(quota_round(b, model, group))
        print(f"\nquota of 1 CPU ({group}), llama-bench -t 2, {args.rounds} rounds:")
        summary(quota)


if __name__ == "__main__":
    main()
