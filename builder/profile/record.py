"""A bench case run under a profiler, and its output folded into a Profile.

The cases are `variant bench`'s own (suites.py): the profiler goes in front of
the case's program through the bench profile's wrapper, so what is profiled
is exactly what is benchmarked. Only software events exist on these VMs (no
hardware counters): perf records cpu-clock, page faults and context switches,
and the files say so.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..run import capture
from . import bpf
from .stacks import Profile, fold_perf_events, fold_uftrace

# What each tool needs in the binary, as `instrument` in the variant's manifest.
NEEDS = {
    "perf": ("perf", "frame pointers (perf record --call-graph fp walks them; without them a stack is "
             "one or two frames deep)"),
    "uftrace": ("uftrace", "-finstrument-functions (uftrace records the entry and exit hooks it adds)"),
}  # fmt: skip
# Software events only (no hardware counters on these VMs): CPU time sampled at 999 Hz, and every
# page fault and context switch with its call stack (period 1: each one is a sample).
PERF_EVENTS = ("cpu-clock/freq=999/", "page-faults/period=1/", "context-switches/period=1/")
UFTRACE_SAMPLE = "1us"
UFTRACE_MIN_TIME = "5us"
# The profile each tool's flame graph and groups are drawn from; the others are beside it.
MAIN = {"perf": "cpu-clock", "uftrace": "time", "bpf": "off-cpu"}


@dataclass(frozen=True)
class Recorder:
    tool: str  # "perf" or "uftrace"
    folder: Path  # where the case's raw data goes

    @property
    def data(self) -> Path:
        return self.folder / ("perf.data" if self.tool == "perf" else "uftrace.data")

    def prefix(self) -> tuple[str, ...]:
        """The argv that goes in front of the case's program (bpf: none, its tracers run beside it)."""
        if self.tool == "bpf":
            return ()
        exe = shutil.which(self.tool)
        if exe is None:
            raise UserError(f"{self.tool} is not installed (make setup installs it; see `variant doctor`)")
        if self.tool == "perf":
            events = tuple(a for e in PERF_EVENTS for a in ("-e", e))
            return (exe, "record", "-q", *events, "--call-graph", "fp", "-o", str(self.data), "--")
        # Every function of the binary has entry and exit hooks; calls shorter than the time filter are
        # dropped while recording (their time stays in the caller), or a generated token's millions of
        # dot-product calls would make gigabytes of trace.
        return (exe, "record", "--no-pager", "-t", UFTRACE_MIN_TIME, "-d", str(self.data), "--")

    def fold(self) -> dict[str, Profile]:
        """The recorded profiles by event, MAIN[tool] first (it is there even when it caught nothing)."""
        if self.tool == "perf":
            out = capture(["perf", "script", "-i", self.data, "-F", "comm,tid,period,event,ip,sym,dso"])
            events = fold_perf_events(out.stdout.splitlines())
            return {"cpu-clock": events.pop("cpu-clock", Profile({}, "ns")), **events}
        out = capture(
            ["uftrace", "dump", "-d", self.data, "--flame-graph", f"--sample-time={UFTRACE_SAMPLE}"]
        )
        info = capture(["uftrace", "info", "-d", self.data]).stdout
        return {"time": fold_uftrace(out.stdout.splitlines(), info)}

    def extras(self) -> dict[str, Path]:
        """uftrace's own views: its call-graph summary and a Chrome/Perfetto trace of the run."""
        if self.tool != "uftrace":
            return {}
        files: dict[str, list[str | Path]] = {
            "report.txt": ["uftrace", "report", "-d", self.data, "--no-pager"],
            "graph.txt": ["uftrace", "graph", "-d", self.data, "--no-pager"],
            "trace.json": ["uftrace", "dump", "-d", self.data, "--chrome"],
        }
        out = {}
        for name, argv in files.items():
            path = self.folder / name
            path.write_text(capture(argv).stdout)
            out[name] = path
        return out


def tool_for(instrument: str, asked: str | None, name: str) -> str:
    """The profiler a variant was built for, or a UserError when it lacks what `asked` needs.

    BPF needs nothing of the binary (off-CPU stacks are the kernel's; user frames need frame pointers
    to go deep), only of the machine: root, BTF and the tools.
    """
    if asked == "bpf":
        if why := bpf.refusal():
            raise UserError(f"--tool bpf: {why}")
        return "bpf"
    built_for = {"perf": "perf", "uftrace": "uftrace"}.get(instrument)
    tool = asked or built_for
    if tool is None:
        raise UserError(
            f'{name} is built with instrument = "{instrument}", for no profiler; profile a variant built '
            'with instrument = "perf" (perf-gcc) or "uftrace" (uftrace-clang), or extend one'
        )
    want, what = NEEDS[tool]
    if instrument != want:
        raise UserError(
            f'{name}: --tool {tool} needs {what}; it is built with instrument = "{instrument}" '
            f'(a variant with instrument = "{want}" has them)'
        )
    return tool
