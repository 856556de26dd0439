#!/usr/bin/env python3
"""The big-model case on a small machine: one model several times a memory limit, with and without it.

Runs in a catalogue with the variants built (as root: the limit is a memory cgroup):

1. under --memory-max: the faults suite (16 tokens, so every weight is read 16 times) and the load
   suite, default (mmap) load mode, and fio's O_DIRECT read of the same file in the same run;
   the resident modes are refused up front (the memory guard), which the script checks;
2. the same without the limit, every load mode (the cliff);
3. one `variant profile --tool bpf` of the limited case.

    python3 benchmarks/big_model.py --root CATALOGUE --layers 60 --limit 2G --reps 2 \\
        --baseline upstream-gcc openmp-off-gcc futex-gcc hugepage-gcc iouring-gcc

Prints one table per condition: tokens/s, disk read MB/s, average request, major faults per token,
CPUs busy (medians over the repetitions), and the run ids (variant compare/report read them).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

COLUMNS = (
    ("tg_tokens_s", "tg t/s", "{:.3f}"),
    ("disk_read_mb_s", "read MB/s", "{:,.0f}"),
    ("disk_avg_read_kib", "avg request KiB", "{:,.0f}"),
    ("major_faults_per_token", "major faults/token", "{:,.1f}"),
    ("cpu_busy", "CPUs busy", "{:.2f}"),
    ("peak_rss", "peak RSS MiB", "{:,.0f}"),
)


def variant(root: Path, *args: str) -> str:
    """Run `variant`, stream its stderr, return its stderr (the run id is said there)."""
    cmd = ["variant", "--root", str(root), *args]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    sys.stderr.write(done.stderr[-3000:])
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}")
    return done.stderr


def run_id(stderr: str) -> int:
    m = re.search(r"(?:stored as run|profile run) (\d+)", stderr)
    if not m:
        raise SystemExit("no run id in the output")
    return int(m[1])


def table(db: Path, run: int) -> str:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT variant, suite, metric, params, value FROM measurements"
        " WHERE run_id = ? AND value IS NOT NULL",
        (run,),
    ).fetchall()
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    fio: list[float] = []
    for variant_, suite, metric, params, value in rows:
        p = json.loads(params)
        if suite == "load" and p.get("load_mode") == "fio" and metric == "load_mb_s":
            fio.append(value)
        if suite == "faults":
            cells.setdefault((variant_, p["load_mode"]), {}).setdefault(metric, []).append(value)
    head = "| variant | load mode | " + " | ".join(c[1] for c in COLUMNS) + " |"
    out = [head, "|---|---|" + "---:|" * len(COLUMNS)]
    for (v, mode), metrics in sorted(cells.items()):
        shown = [fmt.format(statistics.median(metrics[m])) if m in metrics else "-" for m, _, fmt in COLUMNS]
        out.append(f"| {v} | {mode} | " + " | ".join(shown) + " |")
    if fio:
        out.append(f"\nfio O_DIRECT read of the same file, same run: {statistics.median(fio):,.0f} MB/s")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--layers", default="60")
    ap.add_argument("--type", default="f16")
    ap.add_argument("--limit", default="2G")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--reps", default="2")
    ap.add_argument("--profile-variant", default="perf-gcc")
    a = ap.parse_args()
    db = a.root / ".variant" / "results.sqlite"
    common = ["--vs", a.baseline, "--suite", "faults", "--suite", "load", "--layers", a.layers,
              "--type", a.type, "--threads", a.threads, "--reps", a.reps]  # fmt: skip
    names = [v for v in a.variants if v != a.baseline]

    refused = subprocess.run(
        ["variant", "--root", str(a.root), "bench", *names, *common, "--load-mode", "none",
         "--memory-max", a.limit],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    print(
        f"resident mode under the limit: exit {refused.returncode}: {refused.stderr.strip().splitlines()[-1]}"
    )

    limited = run_id(
        variant(a.root, "bench", *names, *common, "--load-mode", "default,fio", "--memory-max", a.limit)
    )
    print(f"\n## Under memory-max {a.limit} (run {limited})\n\n{table(db, limited)}", flush=True)

    free = run_id(variant(a.root, "bench", *names, *common, "--load-mode", "default,none,dio,uring,fio"))
    print(f"\n## Without a limit (run {free})\n\n{table(db, free)}", flush=True)

    # profile has no --layers: the model the benches generated, by path (the largest of its type)
    model = max(
        (a.root / ".variant" / "models").glob(f"wide-{a.type}-*.gguf"), key=lambda p: p.stat().st_size
    )
    prof = run_id(
        variant(a.root, "profile", a.profile_variant, "--tool", "bpf", "--suite", "faults", "--model",
                f"wide={model}", "--threads", a.threads, "--memory-max", a.limit)
    )  # fmt: skip
    print(f"\n## --tool bpf under memory-max {a.limit}: profile run {prof} (.variant/profiles/{prof}/)")


if __name__ == "__main__":
    main()
