"""The machine's memory bandwidth, measured: the limit token generation runs against.

Token generation reads every weight once per token, so its speed is bounded by
how fast the cores can stream memory. bwprobe.c measures that with the same
thread counts as the benchmark (pinned to the CPUs the process may use, as a
profile's taskset leaves them): a plain streaming read, the access pattern of
a matrix-vector product, and STREAM's triad as the figure people quote. The
buffer is far larger than the last-level cache (4x it, 1 GiB at least), or
the figure would be the cache's.

A probe is measured once per machine, CPU set and thread count and kept in
`.variant/bandwidth.json`; a changed machine (CPU model, CPU count, memory,
kernel) measures anew. The file is read back as hostile input: anything not of
its shape is a UserError naming it, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..clock import now_iso
from ..errors import UserError
from ..run import capture
from . import topology

SOURCE = Path(__file__).with_name("bwprobe.c")
ROUND = 64 << 20  # the buffer's size is a multiple of this
VERSION = 1  # of bandwidth.json's shape and of what the probe measures
MIN_BUFFER = 1 << 30
CACHE_FACTOR = 4  # the buffer against the last-level cache
DEFAULT_REPS = 15  # a repetition of each kind takes a fifth of a second over 2 GiB at 20 GB/s
Say = Callable[[str], None]


class BadProbeFile(UserError):
    """bandwidth.json is not of its shape: exit 2, naming it (never measured over silently)."""


class NoProbe(UserError):
    """The probe cannot run here (too little free memory): a bench goes on without shares."""


@dataclass(frozen=True)
class Probe:
    threads: int
    cpus: str  # the CPU list the probe (and the benchmark) ran on; "" for every CPU
    buffer_bytes: int
    read: tuple[float, ...]  # GB/s per repetition (1e9 bytes)
    triad: tuple[float, ...]
    when: str

    def figures(self) -> dict[str, Any]:
        """As a run's hardware record holds it: median, min, max and n of each, GB/s."""
        return {"read": spread(self.read), "triad": spread(self.triad), "buffer_bytes": self.buffer_bytes,
                "cpus": self.cpus, "probed": self.when}  # fmt: skip


def spread(values: Sequence[float]) -> dict[str, float | int]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def last_level_cache(root: Path = topology.ROOT) -> int | None:
    """Bytes of the highest cache level, summed over its instances (one per socket, or per CCX)."""
    best: dict[str, int] = {}
    level_seen = 0
    for index in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cache/index[0-9]*")):
        try:
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip()
            shared = (index / "shared_cpu_list").read_text().strip()
        except (OSError, ValueError):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        try:
            nbytes = int(size.rstrip("KMG")) * scale
        except ValueError:
            continue
        if level > level_seen:
            best, level_seen = {}, level
        if level == level_seen:
            best[shared] = nbytes
    return sum(best.values()) or None


def buffer_bytes(llc: int | None, available: int | None) -> int:
    """CACHE_FACTOR x the last-level cache, at least MIN_BUFFER, at most a third of the free memory.

    VARIANT_BANDWIDTH_BYTES sets it instead: the test suite's quick probes (whose figures are the cache's).
    """
    if given := os.environ.get("VARIANT_BANDWIDTH_BYTES"):
        if not given.isdigit() or int(given) < 1 << 20:
            raise UserError(
                f'VARIANT_BANDWIDTH_BYTES="{given}": expected a number of bytes, at least 1048576'
            )
        return int(given)
    want = max(MIN_BUFFER, CACHE_FACTOR * (llc or 0))
    if available:
        want = min(want, available // 3)
    want = want // ROUND * ROUND  # free memory moves by kilobytes: the size (and the stored probe) does not
    if want < ROUND:
        raise NoProbe(f"the bandwidth probe needs at least {3 * ROUND >> 20} MiB of free memory "
                      f"({(available or 0) >> 20} MiB free)")  # fmt: skip
    return want


def machine() -> dict[str, Any]:
    """What makes a probe stale when it changes."""
    return {"cpu_model": topology.cpu_model(), "logical_cpus": os.cpu_count(), "kernel": platform.release(),
            "memory_bytes": topology.mem_total()}  # fmt: skip


def compiled(tools: Path) -> Path:
    """bwprobe built here (-O3 -march=native: the machine's widest loads), once per source, compiler and
    CPU: a home on a shared disk never runs another CPU's -march=native binary."""
    cc = os.environ.get("CC", "cc")
    version = capture([cc, "--version"], timeout=30).stdout
    cpu = json.dumps([topology.cpu_model(), topology.cpuinfo(topology.ROOT, "flags", "Features")])
    key = hashlib.sha256(SOURCE.read_bytes() + version.encode() + cpu.encode()).hexdigest()[:12]
    binary = tools / f"bwprobe-{key}"
    if binary.is_file():
        return binary
    tools.mkdir(parents=True, exist_ok=True)
    tmp = tools / f".bwprobe-{key}.{os.getpid()}"
    flags = ["-O3", "-march=native", "-pthread"]
    if capture([cc, *flags, "-o", tmp, SOURCE], check=False, timeout=120).returncode != 0:
        capture([cc, "-O3", "-pthread", "-o", tmp, SOURCE], timeout=120)  # a compiler without -march=native
    os.replace(tmp, binary)
    return binary


def measure(binary: Path, threads: int, nbytes: int, reps: int, cpus: str = "") -> Probe:
    argv = [str(binary), str(threads), str(nbytes), str(reps)]
    out = capture(["taskset", "-c", cpus, *argv] if cpus else argv, timeout=600).stdout
    figures: dict[str, list[float]] = {"read": [], "triad": []}
    for line in out.splitlines():
        kind, _, value = line.partition(" ")
        if kind in figures:
            figures[kind].append(float(value))
    if len(figures["read"]) != reps or len(figures["triad"]) != reps:
        raise UserError(f"{binary}: the bandwidth probe printed {out!r}, not {reps} figures of each kind")
    return Probe(threads, cpus, nbytes, tuple(figures["read"]), tuple(figures["triad"]), now_iso())


class Store:
    """bandwidth.json: {"version", "machine", "probes": {"CPUS/THREADS": Probe}}."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.probes: dict[str, Probe] = {}

    @staticmethod
    def key(cpus: str, threads: int) -> str:
        return f"{cpus or 'all'}/{threads}"

    def load(self) -> None:
        """The probes of this machine (none when the file is absent or from another machine)."""
        if not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise self._bad(f"not JSON ({exc})") from None
        if (
            not isinstance(data, dict)
            or data.get("version") != VERSION
            or not isinstance(data.get("probes"), dict)
        ):
            raise self._bad(f'expected an object with "version": {VERSION} and "probes"')
        if data.get("machine") != machine():
            return  # another machine's, or this one changed: measure again
        for key, p in data["probes"].items():
            self.probes[key] = self._probe(key, p)

    def _probe(self, key: str, p: Any) -> Probe:
        def floats(name: str) -> tuple[float, ...]:
            v = p.get(name)
            if not isinstance(v, list) or not v or not all(_positive(x) for x in v):
                raise self._bad(f'probe {key}: "{name}" is {v!r:.200}, expected a list of positive numbers')
            return tuple(float(x) for x in v)

        if not isinstance(p, dict):
            raise self._bad(f"probe {key} is {p!r}, expected an object")
        threads, nbytes, cpus, when = p.get("threads"), p.get("buffer_bytes"), p.get("cpus"), p.get("when")
        if (
            not _positive(threads)
            or not isinstance(threads, int)
            or not isinstance(nbytes, int)
            or isinstance(nbytes, bool)
            or nbytes < 1
        ):
            raise self._bad(f'probe {key}: "threads" and "buffer_bytes" must be positive integers')
        if not isinstance(cpus, str) or not isinstance(when, str) or key != self.key(cpus, threads):
            raise self._bad(f'probe {key}: "cpus" and "when" must be text, and the key CPUS/THREADS')
        return Probe(threads, cpus, nbytes, floats("read"), floats("triad"), when)

    def _bad(self, what: str) -> BadProbeFile:
        return BadProbeFile(
            f"{self.path}: {what}; delete it, or measure again with `variant bandwidth --again` "
            "(`variant bench --no-bandwidth` runs without it)"
        )

    def save(self) -> None:
        data = {"version": VERSION, "machine": machine(),
                "probes": {k: asdict(p) for k, p in sorted(self.probes.items())}}  # fmt: skip
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, self.path)


def _positive(x: Any) -> bool:
    """A finite number above 0: JSON's 1e999 (inf) and 10**400 (no float) are not."""
    if not isinstance(x, int | float) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(float(x)) and x > 0
    except OverflowError:
        return False


def probes(
    home: Path, threads: Sequence[int], say: Say, *, cpus: str = "", again: bool = False,
    reps: int = DEFAULT_REPS,
) -> list[Probe]:  # fmt: skip
    """A probe per thread count: the stored ones, measuring those missing (all of them with again).

    A stored probe of a smaller buffer than this one's (VARIANT_BANDWIDTH_BYTES, less free memory then)
    is measured anew; a larger one is kept (it is further from the cache).
    """
    store = Store(home / "bandwidth.json")
    try:
        store.load()
    except BadProbeFile:
        if not again:
            raise
        say(f"{store.path}: unreadable, measured anew")
    out, binary = [], None
    llc = last_level_cache()
    nbytes = buffer_bytes(llc, topology.topology().mem_available)
    for t in dict.fromkeys(threads):
        key = store.key(cpus, t)
        stored = store.probes.get(key)
        if again or stored is None or stored.buffer_bytes < nbytes:
            if binary is None and llc and nbytes < CACHE_FACTOR * llc:
                say(f"bandwidth probe: {nbytes >> 20} MiB is less than {CACHE_FACTOR}x the last-level cache "
                    f"({llc >> 20} MiB): its figures may be partly the cache's")  # fmt: skip
            binary = binary or compiled(home / "tools")
            say(f"bandwidth probe: {t} thread(s), {nbytes >> 20} MiB, {reps} repetitions")
            store.probes[key] = measure(binary, t, nbytes, reps, cpus)
            store.save()
        out.append(store.probes[key])
    return out


def record(found: Sequence[Probe]) -> dict[str, Any]:
    """The run's hardware record entry: each kind's figures by thread count, and the cache they beat.

    {"read": {"1": {median, min, max, n}, ...}, "triad": {...}, "buffer_bytes", "cpus", "probed": {"1": when},
    "llc_bytes"}: flat enough for the store's nesting bound (storecheck.py).
    """
    figures = {str(p.threads): p.figures() for p in found}
    return {"bandwidth": {
        "read": {t: f["read"] for t, f in figures.items()},
        "triad": {t: f["triad"] for t, f in figures.items()},
        "probed": {t: f["probed"] for t, f in figures.items()},
        "buffer_bytes": max((p.buffer_bytes for p in found), default=0),
        "cpus": found[0].cpus if found else "",
        "llc_bytes": last_level_cache(),
    }}  # fmt: skip
