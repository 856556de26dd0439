"""Folded stacks: one line per distinct call stack, root first, and how much time it held.

`perf script` prints each sample as a header line (comm, tid, period, event)
and its stack, leaf first, one frame per line, then a blank line. Folding
turns that into Brendan Gregg's format, "comm;root;...;leaf WEIGHT", which
the flame graph, the top-functions table and the groups all read. The weight
is the sample's period (for cpu-clock: nanoseconds of CPU), so a profile
recorded at any frequency sums to the CPU time it saw.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

HEADER = re.compile(
    r"^(?P<comm>\S.*?)\s+(?P<tid>\d+)\s+(?:\S+:\s+)?(?P<period>\d+)\s+(?P<event>[\w:-]+)(?:/[^ ]*/)?:\s*$"
)
# What a sample's period counts, per software event (the only kind these VMs have).
UNITS = {"cpu-clock": "ns", "task-clock": "ns", "page-faults": "faults", "context-switches": "switches"}
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(?P<sym>.+?)(?:\+0x[0-9a-f]+)?\s+\((?P<dso>[^)]*)\)\s*$")
UNKNOWN = "[unknown]"


@dataclass(frozen=True)
class Profile:
    """Folded stacks and their weights, and what the weights mean."""

    stacks: dict[tuple[str, ...], int]  # root first
    unit: str  # "ns" (perf cpu-clock periods) or "samples"

    @property
    def total(self) -> int:
        return sum(self.stacks.values())

    def folded(self) -> str:
        return "".join(f"{';'.join(s)} {w}\n" for s, w in sorted(self.stacks.items()))


def _frame(sym: str, dso: str) -> str:
    if sym == UNKNOWN:
        # an address in a library without symbols: name the library, so the time is not lost
        name = dso.rsplit("/", 1)[-1]
        return f"[{name}]" if name and name != UNKNOWN else UNKNOWN
    return sym


def fold_perf_events(lines: Iterable[str], *, comm: bool = True) -> dict[str, Profile]:
    """Fold `perf script` output (default fields, or -F comm,tid,period,event,ip,sym,dso), one
    Profile per event: "cpu-clock/freq=999/" and "cpu-clock" are both cpu-clock."""
    by_event: dict[str, Counter[tuple[str, ...]]] = {}
    head: tuple[str, int, str] | None = None
    frames: list[str] = []

    def flush() -> None:
        if head is not None:
            name, period, event = head
            stack = tuple(reversed(frames)) or (UNKNOWN,)
            by_event.setdefault(event, Counter())[((name,) if comm else ()) + stack] += period

    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            flush()
            head, frames = None, []
            continue
        m = HEADER.match(line)
        if m and not line[0].isspace():
            flush()
            head, frames = (m["comm"], int(m["period"]), m["event"]), []
            continue
        f = FRAME.match(line)
        if f and head is not None:
            frames.append(_frame(f["sym"], f["dso"]))
    flush()
    return {e: Profile(dict(c), UNITS.get(e, "samples")) for e, c in by_event.items()}


def fold_perf_script(lines: Iterable[str], *, comm: bool = True) -> Profile:
    """The cpu-clock profile of `perf script` output (empty when it holds no cpu-clock sample)."""
    return fold_perf_events(lines, comm=comm).get("cpu-clock", Profile({}, "ns"))


def parse_folded(lines: Iterable[str], unit: str = "samples") -> Profile:
    """Folded stacks read back ("a;b;c 12"): Profile.folded(), or `uftrace dump --flame-graph`."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        stack, _, weight = line.rpartition(" ")
        if not stack or not weight.isdigit():
            raise ValueError(f"not a folded stack line: {line[:80]!r}")
        stacks[tuple(stack.split(";"))] += int(weight)
    return Profile(dict(stacks), unit)


def fold_uftrace(lines: Iterable[str], info: str) -> Profile:
    """`uftrace dump --flame-graph --sample-time=1us` under a root frame named after the program.

    uftrace's stacks start at each thread's first traced function; perf's start at the thread's
    command name, which the top-functions table leaves out. The same root here keeps one rule for
    both (and the flame graph one tree). info: `uftrace info`, whose "exe image" names the program.
    """
    exe = re.search(r"^# exe image\s*:\s*(\S+)", info, re.MULTILINE)
    root = exe[1].rsplit("/", 1)[-1] if exe else "uftrace"
    traced = parse_folded(lines, unit="us")
    return Profile({(root, *stack): w for stack, w in traced.stacks.items()}, "us")
