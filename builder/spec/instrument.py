"""Instruments: how a variant is built for a profiler. The one table that says what each adds and proves."""

from __future__ import annotations

from dataclasses import dataclass

from .flags import Flags

FRAME_POINTERS = ("-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
FINSTRUMENT = ("-finstrument-functions", "-fno-omit-frame-pointer")
# clang instruments before inlining, so an always-inline libstdc++ member (GCC 12's
# basic_string::_M_use_local_data) gets its address taken for the hook and is left undefined at link
# time (llvm-project#50742: every llama.cpp program fails to link). After inlining, only the calls
# that remain are hooked, which is also what uftrace should see.
FINSTRUMENT_CLANG = ("-finstrument-functions-after-inlining", "-fno-omit-frame-pointer")


@dataclass(frozen=True)
class Instrument:
    name: str
    description: str
    flags: Flags  # added for every compiler family without its own entry; verified on every compile command
    hook: str | None = None  # a symbol every binary must reference (and no other variant may)
    tool: str | None = None  # the profiler, a `variant doctor` tool name
    by_family: tuple[tuple[str, Flags], ...] = ()  # a compiler family's own flags for the same thing

    def flags_for(self, family: str) -> Flags:
        return dict(self.by_family).get(family, self.flags)


INSTRUMENTS = {
    i.name: i
    for i in (
        Instrument("none", "not instrumented", Flags()),
        Instrument(
            "perf", "frame pointers, for perf record --call-graph fp", Flags(FRAME_POINTERS, FRAME_POINTERS),
            tool="perf",
        ),
        Instrument(
            "uftrace", "-finstrument-functions, for uftrace record", Flags(FINSTRUMENT, FINSTRUMENT),
            hook="__cyg_profile_func_enter", tool="uftrace",
            by_family=(("clang", Flags(FINSTRUMENT_CLANG, FINSTRUMENT_CLANG)),),
        ),
    )
}  # fmt: skip
# A hook that no variant may reference unless its instrument asks for it.
HOOKS = tuple(sorted({i.hook for i in INSTRUMENTS.values() if i.hook}))
