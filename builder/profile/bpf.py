"""`variant profile --tool bpf`: where a case's time goes off the CPU, and what the disk and page cache did.

The seed's methodology for a model that does not fit in memory: biolatency
(the block I/O latency histogram), cachestat (page-cache hits and misses) and
off-CPU stacks. Three tracers run beside the case's program, system-wide,
attached before it starts and stopped (SIGINT) when it ends:

- libbpf-tools' biolatency, on the disk under the model where it is known;
- libbpf-tools' offcputime, whose stacks are kept for the variant's programs
  only (by command name) and folded into the off-CPU flame graph;
- a bpftrace program on the filemap tracepoints, counting the pages brought
  into the page cache for the model's files (by inode). libbpf-tools'
  cachestat attaches fentry probes, which a kernel without kprobes or with
  fentry forbidden refuses; the tracepoint is there on any kernel with BTF,
  and filtering by inode counts the model's pages, not the whole machine's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..background import tracing
from ..store.results import Measurement
from .stacks import Profile

TOOLS = {"biolatency": "libbpf-tools", "offcputime": "libbpf-tools", "bpftrace": "bpftrace",
         "stdbuf": "coreutils"}  # fmt: skip
BTF = Path("/sys/kernel/btf/vmlinux")
EVENT = "filemap/mm_filemap_add_to_page_cache"
TRACEFS = (Path("/sys/kernel/tracing/events"), Path("/sys/kernel/debug/tracing/events"))
OFFCPU_STACKS = 16384  # distinct stacks kept system-wide (the tool's default of 1024 overflows)
COMM = 15  # the kernel keeps a command name's first 15 bytes
PAGE = os.sysconf("SC_PAGE_SIZE")


def refusal(
    euid: int | None = None, btf: Path = BTF, tracefs: Sequence[Path] = TRACEFS,
    which: Callable[[str], str | None] = shutil.which,
) -> str | None:  # fmt: skip
    """Why BPF tracing cannot run here (None: it can)."""
    if (os.geteuid() if euid is None else euid) != 0:
        return "BPF tracing needs root (CAP_BPF and CAP_PERFMON); run variant as root"
    if not btf.is_file():
        return f"this kernel exposes no BTF ({btf}): the libbpf-tools programs cannot be relocated to it"
    if missing := [t for t in TOOLS if which(t) is None]:
        packages = " ".join(sorted({TOOLS[t] for t in missing}))
        return f"{', '.join(missing)} missing (apt-get install -y {packages}; `variant doctor` lists them)"
    if not any((root / EVENT).is_dir() for root in tracefs):
        return (
            f"the kernel's tracepoint {EVENT} is not visible (tracefs not mounted at /sys/kernel/tracing: "
            "mount -t tracefs nodev /sys/kernel/tracing, as make setup does)"
        )
    return None


def cache_script(inodes: Sequence[int]) -> str:
    """The bpftrace program: pages added to the page cache for these inodes (numbers only, no names)."""
    match = " || ".join(f"args->i_ino == {int(i)}" for i in inodes) or "0"
    return (
        'BEGIN { printf("attached\\n"); }\n'
        f"tracepoint:filemap:mm_filemap_add_to_page_cache /{match}/ {{ @added = sum(1 << args->order); }}\n"
    )  # bpftrace prints "@added: N" as it exits; nothing when no page was added


def parse_added(text: str) -> int | None:
    """Pages the model's files brought into the page cache: bpftrace's "@added: N" as it exits, 0 when it
    attached and printed none; None when it never attached."""
    m = re.search(r"^@added: (\d+)$", text, re.M)
    return int(m[1]) if m else 0 if re.search(r"^attached$", text, re.M) else None


HIST = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s*:\s*(\d+)\s*\|", re.M)


def parse_histogram(text: str) -> list[tuple[int, int, int]]:
    """biolatency's buckets: (low, high, count) in microseconds."""
    return [(int(lo), int(hi), int(n)) for lo, hi, n in HIST.findall(text)]


def summary(buckets: list[tuple[int, int, int]]) -> dict[str, float]:
    """Requests, and their latency's mean (bucket midpoints), median and 99th percentile (bucket tops)."""
    total = sum(n for _, _, n in buckets)
    if not total:
        return {}
    mean = sum((lo + hi) / 2 * n for lo, hi, n in buckets) / total

    def top(q: float) -> float:
        seen = 0
        for _, hi, n in buckets:
            seen += n
            if seen >= q * total:
                return float(hi)
        return float(buckets[-1][1])

    return {"requests": float(total), "mean_us": mean, "p50_us": top(0.5), "p99_us": top(0.99)}


TAIL = re.compile(r"^\s+-\s+(?P<comm>.+?) \((?P<pid>\d+)\)\s*$")


def fold_offcpu(text: str, programs: frozenset[str]) -> Profile:
    """offcputime's stacks (leaf first, then "- comm (pid)", then microseconds) of the given programs,
    folded root first under the command name; the tracer's own frames are left out."""
    stacks: Counter[tuple[str, ...]] = Counter()
    frames: list[str] = []
    comm: str | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            frames, comm = [], None
        elif m := TAIL.match(line):
            comm = m["comm"]
        elif comm is not None and line.strip().isdigit():
            if comm in programs:
                kept = [f for f in frames if not f.startswith(("bpf_prog_", "bpf_trace_run"))]
                stacks[(comm, *reversed(kept))] += int(line)
            frames, comm = [], None
        elif line.startswith("    ") and comm is None:
            frames.append(line.strip())
    return Profile(dict(stacks), "us")


@dataclass(frozen=True)
class Tracers:
    folder: Path
    files: tuple[Path, ...]  # the model's files (none: a suite with no model of the user's or generated)
    disk: str | None  # the block device under them, for biolatency -d
    programs: frozenset[str]  # the variant's program names, as the kernel keeps them

    def path(self, name: str) -> Path:
        return self.folder / name

    @contextlib.contextmanager
    def attached(self) -> Iterator[None]:
        """The three tracers running around the block; their output in biolatency.txt, offcpu.txt,
        cache.txt."""
        self.folder.mkdir(parents=True, exist_ok=True)
        script = self.path("cache.bt")
        script.write_text(cache_script([f.stat().st_ino for f in self.files]))
        # line-buffered, so "Tracing..." (printed once attached) reaches the file while it runs
        bio = ["stdbuf", "-oL", "biolatency", *(["-d", self.disk] if self.disk else [])]
        offcpu = ["offcputime", f"--stack-storage-size={OFFCPU_STACKS}"]
        with (
            tracing(bio, self.path("biolatency.txt"), "Tracing block device I/O"),
            tracing(offcpu, self.path("offcpu.txt"), None, settle=2.0, grace=600),
            tracing(["bpftrace", "-B", "line", script], self.path("cache.txt"), "attached"),
        ):
            yield

    def fold(self) -> dict[str, Profile]:
        return {"off-cpu": fold_offcpu(self.path("offcpu.txt").read_text(errors="replace"), self.programs)}

    def figures(self, passes: int | None) -> list[tuple[str, str, float, str]]:
        """(metric, unit, value, better) of the block I/O latency and the model's page-cache traffic.

        passes: how many times the case's program reads every weight (a generation of n tokens: n);
        with it, the page-cache hit ratio is 1 - pages brought in / pages the passes read.
        """
        out: list[tuple[str, str, float, str]] = []
        hist = summary(parse_histogram(self.path("biolatency.txt").read_text(errors="replace")))
        if hist:
            out += [("bio_requests", "requests", hist["requests"], "lower")]
            out += [(f"bio_{k}", "us", v, "lower") for k, v in hist.items() if k != "requests"]
        added = parse_added(self.path("cache.txt").read_text(errors="replace"))
        size = sum(f.stat().st_size for f in self.files)
        if added is not None and size:
            out.append(("cache_added_mib", "MiB", added * PAGE / 2**20, "lower"))
            out.append(("cache_model_reads", "x model", added * PAGE / size, "lower"))
            if passes:
                hit = max(0.0, 1 - added * PAGE / (size * passes))
                out.append(("cache_hit_ratio", "ratio", hit, "higher"))
        return out


def programs_of(bin_dir: Path) -> frozenset[str]:
    """The names the kernel gives the variant's programs' threads (the first 15 bytes of each)."""
    return frozenset(p.name[:COMM] for p in bin_dir.iterdir()) if bin_dir.is_dir() else frozenset()


def passes_of(measured: Sequence[Measurement]) -> int | None:
    """How many forward passes the case ran over every weight: its n_gen (the faults suite's), if any."""
    for m in measured:
        n = m.params.get("n_gen")
        if isinstance(n, int) and n > 0:
            return n
    return None
