"""Check that every axis of a spec took effect in the artifacts, not just on the command line.

Each check reads what was built (ELF: NEEDED, symbols, .comment, debug info),
the exact compile commands, the CMake cache or the worktree: never the spec
alone. A build that says one thing and is another does not reach dist/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError
from ..plan import repro
from ..plan.plan import Plan
from ..spec.instrument import HOOKS, INSTRUMENTS
from . import elf
from .elf import ElfFacts

OPENMP_LIB = re.compile(r"^lib(g|i)?omp\b")
# Entry points a compiler's OpenMP lowering calls: a binary that calls none of them runs no
# OpenMP region, whatever it links (clang-19 keeps libomp in NEEDED when the pragmas are gone).
OPENMP_CALLS = {"gcc": "GOMP_", "clang": "__kmpc_"}
OPENMP_ANY = ("GOMP_", "__kmpc_", "omp_")
# [cmake] options that build with a sanitizer, and a symbol prefix its runtime always brings.
SANITIZERS = {
    "thread": (("GGML_SANITIZE_THREAD", "LLAMA_SANITIZE_THREAD"), "__tsan_"),
    "address": (("GGML_SANITIZE_ADDRESS", "LLAMA_SANITIZE_ADDRESS"), "__asan_"),
    "undefined": (("GGML_SANITIZE_UNDEFINED", "LLAMA_SANITIZE_UNDEFINED"), "__ubsan_"),
}
# Each sanitizer's runtime as the drivers link it: clang's static compiler-rt archive, gcc's library.
RUNTIMES = {
    "thread": ("libclang_rt.tsan-x86_64.a", "libclang_rt.tsan.a", "libtsan.so"),
    "address": ("libclang_rt.asan-x86_64.a", "libclang_rt.asan.a", "libasan.so"),
    "undefined": ("libclang_rt.ubsan_standalone-x86_64.a", "libclang_rt.ubsan_standalone.a", "libubsan.so"),
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def openmp(plan: Plan, facts: list[ElfFacts]) -> Check:
    linked = {f.path.name for f in facts if any(OPENMP_LIB.match(n) for n in f.needed)}
    calls = {f.path.name for f in facts if any(f.mentions(p) for p in OPENMP_ANY)}
    if not plan.openmp():
        if linked or calls:
            return Check(
                "openmp", False, f"GGML_OPENMP is off but {sorted(linked | calls)} link or call OpenMP"
            )
        return Check("openmp", True, "no OpenMP runtime in NEEDED and no OpenMP call")
    family = plan.toolchain.spec.family
    want_lib = "libomp" if family == "clang" else "libgomp"
    entry = OPENMP_CALLS[family]
    callers = {f.path.name for f in facts if any(s.startswith(entry) for s in f.undefined)}
    wrong_lib = [f.path.name for f in facts if any(OPENMP_LIB.match(n) and not n.startswith(want_lib)
                                                   for n in f.needed)]  # fmt: skip
    idle = sorted(linked - callers)
    if not callers or idle or wrong_lib:
        why = []
        if not callers:
            why.append(f"no binary calls the OpenMP runtime ({entry}*)")
        if idle:
            why.append(f"{idle} link it but call no {entry}* entry point")
        if wrong_lib:
            why.append(f"{wrong_lib} need another compiler's OpenMP runtime, not {want_lib}")
        hint = "; is the OpenMP runtime for this compiler installed? see `variant doctor`"
        return Check("openmp", False, "GGML_OPENMP is on but " + "; ".join(why) + hint)
    return Check("openmp", True, f"{', '.join(sorted(callers))} call {want_lib} ({entry}*)")


def compiler(plan: Plan, facts: list[ElfFacts]) -> Check:
    """Every compiler string in .comment is the toolchain's own or the C runtime's."""
    tc = plan.toolchain
    own = {tc.cc.comment_marker, tc.cxx.comment_marker}
    runtime = elf.runtime_comments(tc.cc.path) | elf.runtime_comments(tc.cxx.path)
    bad = []
    for f in facts:
        if not any(m in c for c in f.comments for m in own):
            bad.append(f"{f.path.name} has nothing compiled by {sorted(own)[0]}")
        foreign = [c for c in f.comments if c not in runtime and not any(m in c for m in own)]
        if foreign:
            bad.append(f"{f.path.name} has code from {foreign}, neither the toolchain nor the C runtime")
        # The C runtime of a clang toolchain is gcc-built: a gcc object cannot hide in a gcc variant,
        # and a clang one cannot hide in a gcc variant either (runtime strings are gcc's).
    if bad:
        return Check("compiler", False, "; ".join(bad))
    extra = sorted(runtime - own)
    also = f" (and the C runtime's {extra})" if extra else ""
    return Check("compiler", True, f"{sorted(own)[0]} in .comment of every binary{also}")


def sanitizers(plan: Plan, facts: list[ElfFacts]) -> Check:
    wrong, on, carried = [], [], []
    enabled = [n for n, (options, _) in SANITIZERS.items() if any(plan.enabled(o) for o in options)]
    prefixes = tuple(prefix for _, prefix in SANITIZERS.values())
    # symbols of another sanitizer that an enabled one's runtime brings along (clang: tsan has __ubsan_*)
    cxx = plan.toolchain.cxx.path
    bundled = {p: n for n in enabled for p in elf.sanitizer_runtime_prefixes(cxx, RUNTIMES[n], prefixes)}
    for name, (_options, prefix) in SANITIZERS.items():
        have = {f.path.name for f in facts if f.mentions(prefix)}
        if name in enabled:
            on.append(name)
            missing = sorted({f.path.name for f in facts} - have)
            if missing:
                wrong.append(f"{name} sanitizer on, but {missing} carry no {prefix}* runtime")
        elif have and prefix in bundled:
            carried.append(f"{prefix}* come with the {bundled[prefix]} sanitizer's runtime")
        elif have:
            wrong.append(f"{name} sanitizer off, but {sorted(have)} carry its runtime ({prefix}*)")
    if wrong:
        return Check("sanitizers", False, "; ".join(wrong))
    detail = f"{', '.join(on)} in every binary" if on else "none, in no binary"
    return Check("sanitizers", True, detail + (f" ({'; '.join(carried)})" if carried else ""))


def instrument(plan: Plan, facts: list[ElfFacts]) -> Check:
    want = INSTRUMENTS[plan.variant.instrument].hook
    wrong = []
    for hook in HOOKS:
        for f in facts:
            if (hook in f.undefined or hook in f.defined) != (hook == want):
                wrong.append(f"{f.path.name} {'does not reference' if hook == want else 'references'} {hook}")
    if wrong:
        return Check("instrument", False, "; ".join(wrong))
    detail = f"{want} referenced by every binary" if want else f"no {', '.join(HOOKS)} (not instrumented)"
    return Check("instrument", True, detail)


def _ours(path: str, work_root: Path) -> bool:
    """A path of the variant's build: under the work root, or under the name the prefix maps give it."""
    return Path(path).is_relative_to(work_root) or Path(path).parts[:1] == (repro.VARIANT_DIR,)


def debug_info(plan: Plan, facts: list[ElfFacts], want: bool, work_root: Path) -> Check:
    """Debug info is there exactly when the build type's flags (or the spec's) ask for it.

    Without -g some debug info may still come in with the toolchain's own
    objects (a sanitizer's pre-init object, say): only units compiled in a
    variant's build folder count.
    """
    if want:
        lacking = [f.path.name for f in facts if not f.debug_info]
        if lacking:
            return Check("debug-info", False, f"{plan.variant.build_type}: {lacking} lack .debug_info")
        return Check("debug-info", True, f"{plan.variant.build_type}: .debug_info in every binary")
    ours = {}
    for f in facts:
        if f.debug_info:
            units = [n for n, d in elf.debug_units(f.path) if _ours(d, work_root) or _ours(n, work_root)]
            if units:
                ours[f.path.name] = units
    if ours:
        first = next(iter(ours.values()))[0]
        return Check(
            "debug-info",
            False,
            f"{plan.variant.build_type}: {sorted(ours)} carry .debug_info (e.g. of {first})",
        )
    return Check("debug-info", True, f"{plan.variant.build_type}: no .debug_info from the variant's sources")


def artifacts(plan: Plan, facts: list[ElfFacts], debug: bool, work_root: Path) -> list[Check]:
    return [
        openmp(plan, facts),
        compiler(plan, facts),
        sanitizers(plan, facts),
        instrument(plan, facts),
        debug_info(plan, facts, debug, work_root),
    ]


def require(plan: Plan, checks: list[Check]) -> list[Check]:
    failed = [c for c in checks if not c.ok]
    if failed:
        raise BuildError(
            f"{plan.name}: the build does not match its spec:\n"
            + "\n".join(f"  - {c.name}: {c.detail}" for c in failed)
        )
    return checks
