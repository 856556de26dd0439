"""Instruments: how a variant is built for a profiler. The one table that says what each adds and proves."""

from __future__ import annotations

from dataclasses import dataclass

from .flags import Flags

FRAME_POINTERS = ("-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
FINSTRUMENT = ("-finstrument-functions", "-fno-omit-frame-pointer")


@dataclass(frozen=True)
class Instrument:
    name: str
    description: str
    flags: Flags  # added for both gcc and clang; verified on every compile command
    hook: str | None = None  # a symbol every binary must reference (and no other variant may)
    tool: str | None = None  # the profiler, a `variant doctor` tool name


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
        ),
    )
}  # fmt: skip
# A hook that no variant may reference unless its instrument asks for it.
HOOKS = tuple(sorted({i.hook for i in INSTRUMENTS.values() if i.hook}))
