#!/usr/bin/env python3
"""How far from the limit, measured: the bandwidth probe, then benches whose tg rows show their share.

Runs in a catalogue (the current folder, or --root) whose variants are built:

1. `variant bandwidth --again` at the thread counts: the probe's read and triad
   figures with their spreads, measured anew (a quiet machine gives the limit);
2. each bench given with --bench (the words after `variant bench`), as a user
   would type it;
3. every stored row of those runs that has a limit, as one table: variant,
   case, tokens/s, bytes per token, GB/s, the share, and the sanity check:
   a row above 100% beyond the probe's spread is "OVER"; one whose token
   bytes fit in the last-level cache is marked so (its share may not be of memory alone).

    python3 benchmarks/bandwidth.py --threads 1,2,4 \\
        --bench "futex-gcc --vs openmp-off-gcc --suite e2e --type f16 --threads 1,2,4 --reps 5" \\
        --bench "tmac-clang --suite formats --threads 1,2 --reps 5" [--json out.json]

With --run RUN (repeatable) it measures nothing: it shows stored runs' rows
again, each with the probe its run recorded (after a change to how shares are
computed, which reads the stored facts and records anew).

    python3 benchmarks/bandwidth.py --run 19 --run 20

Exit 1 when a tg row is OVER and does not fit in the cache: a figure the tool cannot explain (a pp
row past the estimated peak is marked OVER too, but only says the estimate missed something).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from typing import Any


def variant(root: str | None, *args: str) -> str:
    """A `variant` command's stdout (its progress goes on to ours)."""
    argv = ["variant", *(["--root", root] if root else []), *args]
    print("$ " + shlex.join(argv), file=sys.stderr, flush=True)
    return subprocess.run(argv, check=True, text=True, stdout=subprocess.PIPE).stdout


def rows(text: str) -> list[dict[str, Any]]:
    """Every side of every row with a limit, from `variant bench --format json` (an array per pair)."""
    out, at, decoder = [], 0, json.JSONDecoder()
    while (at := text.find("[", at)) >= 0:
        data, at = decoder.raw_decode(text, at)
        for r in data:
            for side in ("baseline", "candidate"):
                limit = (r.get("limit") or {}).get(side)
                figures = r.get(side) or {}
                if limit and "median" in figures:
                    out.append({"variant": figures["variant"], "metric": r["metric"], "params": r["params"],
                                "value": figures["median"], **limit})  # fmt: skip
    return out


def stored(root: str | None, run_ids: list[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stored runs' rows (as rows() gives them) and their probes, through the tool's own code."""
    from pathlib import Path

    from builder.layout import Layout, find_root
    from builder.results import compare, tables
    from builder.store import results

    layout = Layout.at(find_root(Path.cwd(), root))
    found, probes = [], []
    with results.connect(layout.home / "results.sqlite") as con:
        for run in run_ids:
            query = "SELECT variant FROM measurements WHERE run_id = ? ORDER BY id"
            names = list(dict.fromkeys(r[0] for r in con.execute(query, (run,))))
            if not names:
                raise SystemExit(f"--run {run}: no stored run has that id (`variant results list`)")
            probes.append({"run": run, **(compare.hardware_of(con, run) or {}).get("bandwidth", {})})
            if len(names) == 1:
                data = [tables.as_dict(r, None, names[0]) for r in compare.single_rows(con, names[0], run)]
            else:
                data = []
                for other in names[1:]:
                    _, pairs = compare.pair_rows(con, names[0], other, None, run)
                    data += [tables.as_dict(r, names[0], other) for r in pairs]
            found += rows(json.dumps(data))
    return found, probes


def _probe_table(bw: dict[str, Any]) -> None:
    print("| threads | read GB/s | triad GB/s |\n|---:|---:|---:|")
    for t in bw.get("read", {}):
        r, s = bw["read"][t], bw["triad"][t]
        print(f"| {t} | {r['median']:.1f} [{r['min']:.1f}, {r['max']:.1f}] | "
              f"{s['median']:.1f} [{s['min']:.1f}, {s['max']:.1f}] |")  # fmt: skip
    llc = f"{bw['llc_bytes'] >> 20} MiB" if bw.get("llc_bytes") else "unknown"
    print(f"\nlast-level cache {llc}, buffer {bw.get('buffer_bytes', 0) >> 20} MiB\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", help="the catalogue (default: the current folder)")
    ap.add_argument("--threads", default="1,2", help="the probe's thread counts")
    ap.add_argument(
        "--bench", action="append", default=[], help="the words after `variant bench` (repeatable)"
    )
    ap.add_argument(
        "--run", type=int, action="append", default=[], help="show a stored run again (repeatable)"
    )
    ap.add_argument("--json", dest="json_out", help="write the probe and every row here")
    a = ap.parse_args()
    found: list[dict[str, Any]] = []
    if a.run:
        found, probes = stored(a.root, a.run)
        for p in probes:
            print(f"run {p['run']}, its probe:\n")
            _probe_table(p)
        probe: dict[str, Any] = {"runs": probes}
    else:
        probe = json.loads(variant(a.root, "bandwidth", "--again", "--threads", a.threads, "--json"))
        _probe_table(probe["bandwidth"])
    for line in a.bench:
        found += rows(variant(a.root, "bench", *shlex.split(line), "--format", "json"))
    bad = 0
    print("| variant | metric | case | figure | bytes/token | achieved | share | check |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for r in found:
        case = " ".join(f"{k}={v}" for k, v in r["params"].items() if k not in ("n_prompt", "n_gen"))
        share = "-" if r["share"] is None else f"{100 * r['share']:.0f}%"
        check = ("OVER" if r["over_limit"] else "ok") + (", fits in cache" if r["in_cache"] else "")
        bad += check == "OVER" and r["kind"] == "memory"  # past an estimate: the estimate is what is wrong
        per = f"{r['bytes_per_token'] / (1 << 20):.1f} MiB" if r["bytes_per_token"] else "-"
        print(f"| {r['variant']} | {r['metric']} | {case} | {r['value']:.4g} | {per} | "
              f"{r['achieved']:.4g} {r['unit']} | {share} | {check} |")  # fmt: skip
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"probe": probe, "rows": found}, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
