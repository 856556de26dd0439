#!/usr/bin/env python3
"""Run one `variant smoke` many times, with and without competing load, and count what failed.

A smoke that fails one time in a hundred is a test that CI will fail on some day
with no one able to say why. This runs the same smoke command --runs times in
each load condition and tallies every failing row (variant, program, and the
first words of its detail), with the stderr tail of the first time each row
failed, so a rare failure can be named and then fixed at its cause.

Load conditions (--load, comma-separated):
  none     nothing else running
  cpu      one CPU-bound process per CPU (`yes > /dev/null`), for the whole run
  io       a writer that keeps dirtying and syncing the page cache (dd + sync)

    python3 benchmarks/smoke_repeat.py iouring-gcc --load-mode none,dio,uring \\
        --runs 20 --load none,cpu,io [--out results.json]

The variant (and its baseline, when smoke compares with one) must be built.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DRAWN = re.compile(r"\((\d+) earlier runs? lost the log's tail")


@contextlib.contextmanager
def load(kind: str) -> Iterator[None]:
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="smoke-load-") as tmp:
        if kind == "cpu":
            procs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(os.cpu_count() or 1)]
        elif kind == "io":
            script = f'while :; do dd if=/dev/zero of="{tmp}/blob" bs=1M count=256 2>/dev/null; sync; done'
            procs = [subprocess.Popen(["sh", "-c", script], start_new_session=True)]
        elif kind != "none":
            raise SystemExit(f"--load: unknown condition {kind!r} (none, cpu, io)")
        try:
            yield
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, 9) if kind == "io" else p.kill()
                p.wait()


def _words(detail: object, n: int = 6) -> str:
    return " ".join(str(detail).split()[:n])


def smoke_once(argv: list[str]) -> tuple[int, list[dict[str, Any]], str, float]:
    t0 = time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True)
    try:
        rows = json.loads(out.stdout)
    except ValueError:
        rows = []
    return out.returncode, rows, out.stderr, time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+")
    ap.add_argument("--load-mode", default="")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--load", default="none,cpu")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    argv = ["variant", "smoke", *args.names, "--json"]
    if args.load_mode:
        argv += ["--load-mode", args.load_mode]
    summary: dict[str, Any] = {"command": argv, "conditions": {}}
    for kind in args.load.split(","):
        failures: collections.Counter[str] = collections.Counter()
        first: dict[str, str] = {}
        times = []
        bad_runs = 0
        drawn = 0  # runs smoke drew again because their log lost its tail
        with load(kind):
            for i in range(args.runs):
                code, rows, err, took = smoke_once(argv)
                times.append(took)
                failed = [r for r in rows if not r.get("ok")]
                drawn += sum(int(m[1]) for r in rows if (m := DRAWN.search(str(r.get("detail", "")))))
                if code != 0:
                    bad_runs += 1
                    keys = [
                        f"{r['variant']} {r['binary']}: {' '.join(str(r['detail']).split()[:6])}"
                        for r in failed
                    ]
                    for key in keys or [f"exit {code} without a failing row"]:
                        failures[key] += 1
                        first.setdefault(key, err[-1500:])
                print(f"{kind} {i + 1}/{args.runs}: exit {code} in {took:.1f} s", file=sys.stderr)
        summary["conditions"][kind] = {
            "runs": args.runs,
            "failed_runs": bad_runs,
            "drawn_again": drawn,
            "median_s": sorted(times)[len(times) // 2],
            "failures": dict(failures),
            "first_stderr": first,
        }
    print("| load | runs | failed | runs drawn again (lost log tail) | median s | failing rows |")
    print("|---|---:|---:|---:|---:|---|")
    for kind, c in summary["conditions"].items():
        rows_text = "; ".join(f"{k} (x{n})" for k, n in c["failures"].items()) or "-"
        cells = [kind, c["runs"], c["failed_runs"], c["drawn_again"], f"{c['median_s']:.1f}", rows_text]
        print("| " + " | ".join(map(str, cells)) + " |")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
