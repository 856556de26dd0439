#!/usr/bin/env python3
"""Builder overhead and incremental reuse, measured on real llama.cpp in one run.

1. plain by hand: `cmake -G Ninja` + `ninja <targets>` of upstream-gcc's targets,
   same source tree and -D options, no ccache (what a person types);
2. `variant build upstream-gcc`, cold (empty ccache, new worktree);
   repeated --reps times, alternating with 1, so drift hits both alike;
3. `variant build openmp-off-gcc` right after (one CMake option apart);
4. a variant that differs from openmp-off-gcc by a one-file patch made here;
5. a no-op `variant build` of an up-to-date variant (median of 5).

Everything runs in a temporary catalogue and home; only the sdist download
cache is shared (VARIANT_DOWNLOADS, or the repository's .variant/downloads).
Prints a Markdown table and writes the numbers as JSON (--out).

    python3 benchmarks/build_overhead.py [--reps 1] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def sh(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def variant(root: Path, env: dict[str, str], *args: str) -> tuple[float, list[dict[str, Any]]]:
    t0 = time.monotonic()
    out = subprocess.run(
        ["variant", "--root", str(root), *args, "--json"], env=env, check=True, capture_output=True, text=True
    )
    return time.monotonic() - t0, json.loads(out.stdout)


def by_hand(root: Path, env: dict[str, str], home: Path, scratch: Path) -> float:
    """The same tree, options and targets, typed by hand: no ccache, no checks, no install."""
    show = json.loads(
        subprocess.run(
            ["variant", "--root", str(root), "show", "upstream-gcc", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    mirror = home / "mirrors" / "llama.cpp.git"
    commit = subprocess.run(
        [
            "git",
            "--git-dir",
            str(mirror),
            "rev-parse",
            f"refs/variant/pypi/{show['source']['pypi']['sha256']}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    src, build = scratch / "hand-src", scratch / "hand-build"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(build, ignore_errors=True)
    subprocess.run(
        ["git", "--git-dir", str(mirror), "worktree", "add", "-q", "--detach", str(src), commit], check=True
    )
    opts = [f"-D{k}={v}" for k, v in show["cmake"].items()]
    t0 = time.monotonic()
    sh(
        [
            "cmake",
            "-S",
            str(src),
            "-B",
            str(build),
            "-G",
            "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DCMAKE_C_COMPILER=gcc",
            "-DCMAKE_CXX_COMPILER=g++",
            *opts,
        ],
        env,
    )
    sh(["ninja", "-C", str(build), *show["targets"]], env)
    elapsed = time.monotonic() - t0
    subprocess.run(["git", "--git-dir", str(mirror), "worktree", "remove", "--force", str(src)], check=True)
    return elapsed


def one_file_series(root: Path, home: Path, scratch: Path, env: dict[str, str]) -> None:
    wt = home / "work" / "openmp-off-gcc" / "src"
    clone = scratch / "patch-clone"
    subprocess.run(["git", "clone", "-q", "--shared", str(wt), str(clone)], check=True)
    f = clone / "ggml" / "src" / "ggml-cpu" / "ggml-cpu.c"
    f.write_text(
        f.read_text().replace(
            "void ggml_barrier(", "void ggml_barrier_bench_touch(void) {}\nvoid ggml_barrier(", 1
        )
    )
    genv = {
        **env,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost",
    }
    subprocess.run(
        ["git", "-C", str(clone), "commit", "-q", "-a", "-m", "ggml-cpu: one-file change"],
        env=genv,
        check=True,
    )
    sdir = root / "patches" / "one-file"
    sdir.mkdir(parents=True)
    (sdir / "series.toml").write_text('description = "one-file change for the benchmark"\n')
    subprocess.run(["git", "-C", str(clone), "format-patch", "-q", "-1", "-o", str(sdir)], check=True)
    (root / "variants" / "one-file-gcc.toml").write_text(
        'description = "openmp-off-gcc + a one-file patch"\n'
        'extends = ["_openmp-off"]\npatches = ["one-file"]\n'
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=1, help="cold builds of each kind (alternating)")
    ap.add_argument("--out", type=Path, help="write the numbers as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="variant-bench-"))
    root, home = scratch / "cat", scratch / "home"
    root.mkdir()
    for d in ("variants", "toolchains"):
        shutil.copytree(REPO / d, root / d)
    (root / "patches").mkdir()
    shutil.copy(REPO / "sources.toml", root / "sources.toml")
    downloads = os.environ.get("VARIANT_DOWNLOADS") or str(REPO / ".variant" / "downloads")
    env = {**os.environ, "VARIANT_HOME": str(home), "VARIANT_DOWNLOADS": downloads}

    res: dict[str, Any] = {"hand": [], "tool_cold": []}
    res["fetch_s"] = sh(["variant", "--root", str(root), "fetch", "--offline"], env)
    for rep in range(args.reps):
        print(f"rep {rep + 1}/{args.reps}: by hand ...", file=sys.stderr, flush=True)
        res["hand"].append(by_hand(root, env, home, scratch))
        print(
            f"rep {rep + 1}/{args.reps}: variant build upstream-gcc (cold) ...", file=sys.stderr, flush=True
        )
        shutil.rmtree(home / "ccache", ignore_errors=True)
        shutil.rmtree(home / "work" / "upstream-gcc", ignore_errors=True)
        subprocess.run(
            ["git", "--git-dir", str(home / "mirrors" / "llama.cpp.git"), "worktree", "prune"], check=True
        )
        t, (m,) = variant(root, env, "build", "--offline", "--force", "upstream-gcc")
        res["tool_cold"].append(t)
        res["cold_ccache"] = m["ccache"]
    print("openmp-off-gcc after upstream-gcc ...", file=sys.stderr, flush=True)
    t, (m,) = variant(root, env, "build", "--offline", "openmp-off-gcc")
    res["sibling_s"], res["sibling_ccache"] = t, m["ccache"]
    print("one-file patch variant ...", file=sys.stderr, flush=True)
    one_file_series(root, home, scratch, env)
    t, (m,) = variant(root, env, "build", "--offline", "one-file-gcc")
    res["patch_s"], res["patch_ccache"] = t, m["ccache"]
    noops = [variant(root, env, "build", "--offline", "upstream-gcc")[0] for _ in range(5)]
    res["noop_s"] = statistics.median(noops)

    hand, cold = statistics.median(res["hand"]), statistics.median(res["tool_cold"])
    res["overhead_ratio"] = cold / hand
    rows = [
        ("plain cmake + ninja by hand (no ccache)", f"{hand:.1f} s", "1.000"),
        ("variant build upstream-gcc, cold ccache", f"{cold:.1f} s", f"{cold / hand:.3f}"),
        (
            "variant build openmp-off-gcc next",
            f"{res['sibling_s']:.1f} s",
            f"{res['sibling_s'] / cold:.3f} of cold; ccache {res['sibling_ccache']}",
        ),
        (
            "one-file patch sibling",
            f"{res['patch_s']:.1f} s",
            f"{res['patch_s'] / cold:.3f} of cold; ccache {res['patch_ccache']}",
        ),
        ("no-op build (median of 5)", f"{res['noop_s']:.2f} s", ""),
        ("sdist import (variant fetch --offline), once", f"{res['fetch_s']:.1f} s", ""),
    ]
    print("| step | wall | ratio |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
