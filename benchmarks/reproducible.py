#!/usr/bin/env python3
"""Reproducible binaries, measured: one variant built in two catalogues at two paths, each from an
empty compile cache, must give the same bytes, and no binary may name the place it was built in.

    python3 benchmarks/reproducible.py --repo . --work /tmp/repro \\
        openmp-off-gcc futex-gcc tmac-futex-clang

Clones the repository twice, into "WORK/one place/llama-variants" and "WORK/čaj ü/llama-variants"
(a space, non-ASCII letters), builds the variants in order in each with the clone's own code
(`python -m builder.cli`, VARIANT_MIRRORS passed through), and prints per variant: build
seconds and ccache hits/misses in each catalogue, whether every file of dist/NAME/bin has the
same sha256 in both, and any absolute path of either catalogue (or any /.variant/ folder) found
in a binary. With --sibling A=B, B is built after A in the first catalogue (B's objects from A's
cache) and B's binaries are searched for A's folder. With --check NAME, `variant build NAME
--check` runs in the first catalogue (it must pass); with --probe NAME, a variant NAME-timestamp
(NAME plus a series whose patch compiles __TIMESTAMP__, the source file's modification time,
into ggml.c) is checked the same way, and must fail. Exit 1 if anything differs or leaks, or a
check answers otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PLACES = ("one place", "čaj ü")


def variant(root: Path, *args: str) -> None:
    argv = [sys.executable, "-m", "builder.cli", "--root", str(root), *args]
    print(f"$ (cd {root}) variant {' '.join(args)}", file=sys.stderr, flush=True)
    subprocess.run(argv, cwd=root, check=True)


def digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def leaks(folder: Path, needles: list[bytes]) -> list[str]:
    """Files of folder that hold any of needles, with the first needle found."""
    found = []
    for p in sorted(folder.iterdir()):
        data = p.read_bytes()
        hit = next((n for n in needles if n in data), None)
        if hit is not None:
            found.append(f"{p.name}: {hit.decode(errors='replace')}")
    return found


PROBE = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: llama-variants dev <dev@llama-variants.invalid>
Date: Thu, 3 Dec 2026 00:00:00 +0000
Subject: [PATCH] ggml : the source file's modification time (an unreproducible probe)

---
diff --git a/ggml/src/ggml.c b/ggml/src/ggml.c
--- a/ggml/src/ggml.c
+++ b/ggml/src/ggml.c
@@ -{start},3 +{start},6 @@
{context}
+
+const char * ggml_probe_built_at(void);
+const char * ggml_probe_built_at(void) {{ return __TIMESTAMP__; }}
--
2.39.5

"""


def probe_variant(root: Path, name: str) -> str:
    """NAME-timestamp: NAME with a one-patch series that compiles __TIMESTAMP__ into ggml.c."""
    src = root / ".variant" / "work" / name / "src"
    lines = subprocess.run(
        ["git", "-C", str(src), "show", "HEAD:ggml/src/ggml.c"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    series = root / "patches" / "timestamp-probe"
    series.mkdir(exist_ok=True)
    context = "\n".join(" " + line for line in lines[-3:])
    text = PROBE.format(start=len(lines) - 2, context=context)
    (series / "0001-ggml-the-source-file-s-modification-time.patch").write_text(text)
    (series / "series.toml").write_text('description = "an unreproducible probe"\nstatus = "local"\n')
    probe = f"{name}-timestamp"
    (root / "variants" / f"{probe}.toml").write_text(
        f'extends = ["{name}"]\npatches = ["timestamp-probe"]\ndescription = "{name}, unreproducible"\n'
    )
    variant(root, "patch", "pin", "timestamp-probe")
    return probe


def check(root: Path, name: str) -> tuple[int, str]:
    argv = [sys.executable, "-m", "builder.cli", "--root", str(root), "build", name, "--check"]
    print(f"$ variant build {name} --check", file=sys.stderr, flush=True)
    done = subprocess.run(argv, cwd=root, stderr=subprocess.PIPE, text=True, check=False)
    sys.stderr.write(done.stderr)
    said = [line for line in done.stderr.splitlines() if "reproducible" in line or "first difference" in line]
    return done.returncode, " / ".join(said)


def manifest(root: Path, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((root / "dist" / name / "manifest.json").read_text())
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=Path.cwd())
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--sibling", action="append", default=[], help="A=B: B built after A, from its cache")
    ap.add_argument("--check", action="append", default=[], help="a variant that must pass --check")
    ap.add_argument("--probe", action="append", default=[], help="a variant whose probe must fail --check")
    ap.add_argument("variants", nargs="*")
    args = ap.parse_args()
    roots = []
    for place in PLACES:
        root = args.work / place / "llama-variants"
        if not root.exists():
            root.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "clone", "-q", str(args.repo.resolve()), str(root)], check=True)
        roots.append(root)
    rows, bad = [], False
    needles = [str(r).encode() for r in roots] + [b"/.variant/"]
    for name in args.variants:
        cells = []
        for root in roots:
            started = time.monotonic()
            variant(root, "build", name)
            m = manifest(root, name)
            cache = m.get("ccache") or {}
            assert isinstance(cache, dict)
            cells.append(f"{m['build_seconds']} s, {cache.get('hits', 0)}/{cache.get('misses', 0)}")
            print(f"{name} in {root}: {time.monotonic() - started:.0f} s", file=sys.stderr)
        bins = [digests(root / "dist" / name / "bin") for root in roots]
        same = bins[0] == bins[1]
        leaked = [leak for root in roots for leak in leaks(root / "dist" / name / "bin", needles)]
        bad |= not same or bool(leaked)
        rows.append((name, *cells, f"{len(bins[0])} files " + ("identical" if same else "DIFFER"),
                     "; ".join(leaked) or "none"))  # fmt: skip
    for pair in args.sibling:
        first, second = pair.split("=", 1)
        root = roots[0]
        variant(root, "build", first)
        variant(root, "build", second)
        m = manifest(root, second)
        cache = m.get("ccache") or {}
        assert isinstance(cache, dict)
        folder = str(root / ".variant" / "work" / first).encode()
        leaked = leaks(root / "dist" / second / "bin", [folder, f"/work/{first}/".encode()])
        bad |= bool(leaked)
        built = f"{m['build_seconds']} s, {cache.get('hits', 0)}/{cache.get('misses', 0)}"
        rows.append((f"{second} after {first}", built, "", "", "; ".join(leaked) or f"nothing of {first}"))
    for name in args.check:
        code, said = check(roots[0], name)
        bad |= code != 0
        rows.append((f"{name} --check", f"exit {code}", "", "", said))
    for name in args.probe:
        variant(roots[0], "build", name)
        code, said = check(roots[0], probe_variant(roots[0], name))
        bad |= code != 1
        rows.append((f"{name}-timestamp --check", f"exit {code}", "", "", said))
    head = "| variant | build in 1 (s, ccache hits/misses) | build in 2 | dist/NAME/bin | paths in binaries |"
    print("\n" + head + "\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\ncatalogue 1: {roots[0]}\ncatalogue 2: {roots[1]}")
    print(f"VARIANT_MIRRORS={os.environ.get('VARIANT_MIRRORS', '')}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
