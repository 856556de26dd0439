"""What makes a fork worth building, checked in its binaries: its kernels' symbols, a series' code.

sources.toml's [NAME.verify] maps an option (or "*", always) to symbols every
binary must define when the option is on, and none may define when it is off:
T-MAC's kernels with GGML_TMAC, BitNet's LUT kernels with BITNET_X86_TL2, ik's
IQK matmul. A trailing "*" makes a name a prefix. A series' verify-strings are
text its code brings (a getenv name): some binary must contain each.
"""

from __future__ import annotations

from pathlib import Path

from ..plan.plan import Plan
from .elf import ElfFacts
from .verify import Check


def _has(f: ElfFacts, symbol: str) -> bool:
    if symbol.endswith("*"):
        return any(s.startswith(symbol[:-1]) for s in f.defined)
    return symbol in f.defined


def kernels(plan: Plan, facts: list[ElfFacts]) -> Check:
    wanted, absent, said = [], [], []
    for tree in plan.trees:
        for option, symbols in tree.source.verify:
            on = option == "*" or plan.enabled(option)
            said.append(
                f"{'always' if option == '*' else option + (' on' if on else ' off')}: {', '.join(symbols)}"
            )
            for sym in symbols:
                if on:
                    wanted += [f"{f.path.name} lacks {sym}" for f in facts if not _has(f, sym)]
                elif option != "*":
                    absent += [f"{f.path.name} has {sym} with {option} off" for f in facts if _has(f, sym)]
    if not said:
        return Check("kernels", True, "no kernel symbols declared for this source")
    if wanted or absent:
        bad = wanted + absent
        return Check("kernels", False, f"{len(bad)} problem(s), e.g. {bad[0]}")
    return Check("kernels", True, "; ".join(said))


def series_code(plan: Plan, binaries: list[Path]) -> Check:
    wanted = [(s.name, text) for s in plan.series for text in s.verify_strings]
    if not wanted:
        return Check("series-code", True, "no series declares verify-strings")
    blobs = [b.read_bytes() for b in binaries]
    missing = [f"{name}: {text!r}" for name, text in wanted if not any(text.encode() in b for b in blobs)]
    if missing:
        return Check("series-code", False, f"no binary contains {', '.join(missing)}")
    return Check("series-code", True, ", ".join(f"{text!r} ({name})" for name, text in wanted) + " present")
