#!/usr/bin/env python3
"""The catalogue after a pin bump: `variant pin SOURCE REF`, then back to where it was.

Runs in a catalogue with some variants of SOURCE built. Each way it prints the state of every
series, each variant's build seconds and ccache hits, and the wall time of the whole command
against one cold build (--cold SECONDS: a build of the source's baseline at a version the cache
has never seen, e.g. from `variant history`'s table):

    python3 benchmarks/pin_bump.py --root CATALOGUE --source llama.cpp --to 0.3.30 --cold 500

The questions are left out (--no-questions): their benches would be most of the time, and
they say nothing about the cost of the rebuild.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def pin(root: Path, source: str, ref: str, every: bool) -> tuple[dict[str, Any], float]:
    cmd = ["variant", "--root", str(root), "pin", source, ref, "--no-questions", "--json"]
    cmd += ["--all"] if every else []
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}")
    return json.loads(done.stdout), wall


def show(out: dict[str, Any], wall: float, cold: float | None) -> None:
    print(f"\n## {out['old']} -> {out['new']}\n")
    print("| series | state | detail |\n|---|---|---|")
    for name, r in out["series"].items():
        print(f"| {name} | {r['state']} | {r['detail']} |")
    print("\n| variant | state | build s | ccache hits / misses | smoke |\n|---|---|---|---|---|")
    for name, r in out["variants"].items():
        cache = f"{r.get('hits')} / {r.get('misses')}" if r.get("hits") is not None else "-"
        print(f"| {name} | {r['state']} | {r.get('seconds', '-')} | {cache} | {r.get('smoke', '-')} |")
    ratio = f", {out['rebuild_seconds'] / cold:.2f}x one cold build ({cold:g} s)" if cold else ""
    whole = f"the whole command {wall:.0f} s (rebase and smoke included)"
    print(f"\nrebuild {out['rebuild_seconds']:g} s{ratio}; {whole}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--source", default="llama.cpp")
    ap.add_argument("--to", required=True, help="The version to pin to.")
    ap.add_argument("--back", help="The version to pin back to (default: the one pinned now).")
    ap.add_argument("--cold", type=float, help="Seconds of one cold build, for the ratio.")
    ap.add_argument("--all", action="store_true", help="Every variant of the source, not only the built.")
    args = ap.parse_args()
    there, wall = pin(args.root, args.source, args.to, args.all)
    show(there, wall, args.cold)
    back, wall = pin(args.root, args.source, args.back or there["old"], args.all)
    show(back, wall, args.cold)


if __name__ == "__main__":
    main()
