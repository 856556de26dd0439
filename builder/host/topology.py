"""The machine's scale as sysfs and procfs tell it: CPUs, cores, sockets, NUMA nodes, memory, storage.

Benchmarks of a user's model take their default thread counts from this and
record it with the run (`hardware()`), so a result from a 64-core, two-node
workstation says so. Everything is read below `root`, which tests point at a
fake tree. A missing file makes the simplest machine it could mean (no node
directory: one node; no topology files: every CPU its own core), because
containers and small kernels leave parts of /sys out.

Block devices are found the way the kernel links them: `sys/dev/block/MAJ:MIN`
is a symlink into `sys/devices/.../block/DISK[/PARTITION]`, followed with
`Path.resolve()`; a fake tree holds real relative symlinks of the same shape.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

ROOT = Path("/")


@dataclass(frozen=True)
class Node:
    id: int
    cpus: tuple[int, ...]  # the usable CPUs on this node (a memory-only node has none)
    cores: int  # physical cores among them
    memory: int | None  # bytes: nodeN/meminfo MemTotal


@dataclass(frozen=True)
class Topology:
    cpus: tuple[int, ...]  # logical CPUs this process may run on
    cores: int  # physical cores among them: distinct (package, core_id)
    sockets: int  # packages among them
    nodes: tuple[Node, ...]
    hugepage_kb: tuple[int, ...]  # huge page sizes the kernel offers, e.g. (2048, 1048576)
    thp: str | None  # transparent huge pages: always, madvise or never
    mem_available: int | None  # bytes


@dataclass(frozen=True)
class Storage:
    fstype: str | None = None  # ext4, xfs, btrfs, overlay, tmpfs...
    mount_point: str | None = None
    source: str | None = None  # mountinfo's mount source: /dev/nvme0n1p2, overlay, tmpfs
    device: str | None = None  # the block device under it (nvme0n1p2); None for overlay, tmpfs, NFS
    disk: str | None = None  # the whole disk the device is (or is a partition of): nvme0n1
    backing_file: str | None = None  # a loop device's file
    rotational: bool | None = None  # the disk's queue/rotational, where readable


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _int(path: Path) -> int | None:
    text = _read(path)
    return int(text) if text is not None and re.fullmatch(r"-?\d+", text) else None


def parse_cpulist(text: str) -> tuple[int, ...]:
    """The kernel's CPU list format, "0-3,8,10-11", as CPU numbers."""
    out: list[int] = []
    for part in filter(None, text.strip().split(",")):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(out)


def format_cpulist(cpus: Sequence[int]) -> str:
    """CPU numbers back in the kernel's list format: short even for 256 CPUs."""
    runs: list[list[int]] = []
    for c in sorted(cpus):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _meminfo(path: Path) -> dict[str, int]:
    """/proc/meminfo or nodeN/meminfo ("Node 0 MemTotal:  123 kB") as bytes by field name."""
    out: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(":")
        words = value.split()
        if key.split() and words and words[0].isdigit():
            out[key.split()[-1]] = int(words[0]) * (1024 if words[1:2] == ["kB"] else 1)
    return out


def mem_available(root: Path = ROOT) -> int:
    """MemAvailable in bytes: what can be allocated without swapping."""
    path = root / "proc/meminfo"
    found = _meminfo(path).get("MemAvailable")
    if found is None:
        raise UserError(f"{path}: no MemAvailable line (Linux 3.14 and later have one)")
    return found


def mem_total(root: Path = ROOT) -> int | None:
    """MemTotal in bytes (None where /proc/meminfo does not say)."""
    return _meminfo(root / "proc/meminfo").get("MemTotal")


def cpuinfo(root: Path, *keys: str) -> str | None:
    """/proc/cpuinfo's first non-empty value of any of keys (the first CPU's), spaces collapsed."""
    for line in (_read(root / "proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys and value.strip():
            return " ".join(value.split())
    return None


def cpu_model(root: Path = ROOT) -> str | None:
    """/proc/cpuinfo's first "model name" (x86; None where the kernel names no model, as on most Arm)."""
    return cpuinfo(root, "model name")


def topology(root: Path = ROOT) -> Topology:
    cpu_dir = root / "sys/devices/system/cpu"
    online = _read(cpu_dir / "online")
    cpus = (
        parse_cpulist(online)
        if online is not None
        else tuple(sorted(int(d.name[3:]) for d in cpu_dir.glob("cpu[0-9]*")))
    )
    if root == ROOT:  # taskset or a cgroup's cpuset may give this process fewer
        allowed = os.sched_getaffinity(0)
        cpus = tuple(c for c in cpus if c in allowed) or tuple(sorted(allowed))
    cpus = cpus or (0,)
    core_of: dict[int, tuple[int, str]] = {}
    for n in cpus:
        topo = cpu_dir / f"cpu{n}/topology"
        core = _int(topo / "core_id")
        package = _int(topo / "physical_package_id") or 0
        # core_id is unique only within a package; without it, each CPU is its own core.
        core_of[n] = (package, f"core{core}" if core is not None else f"cpu{n}")
    meminfo = _meminfo(root / "proc/meminfo")
    nodes: list[Node] = []
    for node_dir in (root / "sys/devices/system/node").glob("node[0-9]*"):
        mine = tuple(c for c in parse_cpulist(_read(node_dir / "cpulist") or "") if c in core_of)
        memory = _meminfo(node_dir / "meminfo").get("MemTotal")
        nodes.append(Node(int(node_dir.name[4:]), mine, len({core_of[c] for c in mine}), memory))
    nodes.sort(key=lambda n: n.id)
    cores = len(set(core_of.values()))
    hugepages = (root / "sys/kernel/mm/hugepages").glob("hugepages-*kB")
    thp = re.search(r"\[(\w+)\]", _read(root / "sys/kernel/mm/transparent_hugepage/enabled") or "")
    return Topology(
        cpus=cpus,
        cores=cores,
        sockets=len({pkg for pkg, _ in core_of.values()}),
        nodes=tuple(nodes) or (Node(0, cpus, cores, meminfo.get("MemTotal")),),
        hugepage_kb=tuple(sorted(int(d.name[10:-2]) for d in hugepages if d.name[10:-2].isdigit())),
        thp=thp[1] if thp else None,
        mem_available=meminfo.get("MemAvailable"),
    )


def default_threads(t: Topology, oversubscribe: bool = False) -> tuple[int, ...]:
    """1, one NUMA node's physical cores, all physical cores, all logical CPUs (and twice that).

    The steps a user's machine is judged at: one thread, a node (no remote
    memory), the cores (no SMT sibling sharing one), every hardware thread;
    twice the CPUs only for a suite that oversubscribes on purpose (a barrier
    under preemption).
    """
    largest = max(t.nodes, key=lambda n: n.cores)  # the first of the largest
    counts = [1, largest.cores, t.cores, len(t.cpus)] + ([2 * len(t.cpus)] if oversubscribe else [])
    return tuple(sorted({c for c in counts if c > 0}))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n / 1024:.3g} KiB"


def describe(t: Topology) -> str:
    """One line for progress output: '2 CPUs, 2 cores, 1 socket, 1 NUMA node, 23.1 GiB available, ...'."""
    parts = [
        _plural(len(t.cpus), "CPU"),
        _plural(t.cores, "core"),
        _plural(t.sockets, "socket"),
        _plural(len(t.nodes), "NUMA node"),
    ]
    if t.mem_available is not None:
        parts.append(f"{_size(t.mem_available)} available")
    if t.hugepage_kb:
        parts.append("huge pages " + "/".join(_size(kb * 1024) for kb in t.hugepage_kb))
    if t.thp:
        parts.append(f"THP {t.thp}")
    return ", ".join(parts)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal: \\040 \\011 \\012 \\134."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def _mounts(root: Path) -> list[tuple[str, str, str, str]]:
    """(mount point, major:minor, fstype, source) per line of mountinfo, in mount order."""
    try:
        # Mount points are bytes; surrogateescape decodes them as Path does a file name.
        text = (root / "proc/self/mountinfo").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        fields = line.split(" ")
        # ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
        if "-" in fields[6:] and len(fields) >= 9:
            sep = fields.index("-", 6)
            if len(fields) > sep + 2:
                out.append((_unescape(fields[4]), fields[2], fields[sep + 1], _unescape(fields[sep + 2])))
    return out


def storage(path: Path, root: Path = ROOT) -> Storage:
    """The filesystem and block device `path` is on. With a fake root, `path` is taken as absolute there."""
    where = path.resolve() if root == ROOT else path
    best: tuple[str, str, str, str] | None = None
    for mount in _mounts(root):
        # The deepest mount point holding the path; of equal ones the last mounted hides the others.
        depth = len(Path(mount[0]).parts)
        if where.is_relative_to(mount[0]) and (best is None or depth >= len(Path(best[0]).parts)):
            best = mount
    if best is None:
        return Storage()
    mount_point, majmin, fstype, source = best
    link = root / "sys/dev/block" / majmin
    if not link.exists() and source.startswith("/dev/"):
        # btrfs reports an anonymous 0:N device in mountinfo; its source names the real one.
        link = root / "sys/class/block" / Path(source).name
    if not link.exists():
        return Storage(fstype, mount_point, source)
    dev = link.resolve()
    disk = dev.parent if (dev / "partition").is_file() else dev
    rotational = _read(disk / "queue/rotational")
    return Storage(
        fstype=fstype,
        mount_point=mount_point,
        source=source,
        device=dev.name,
        disk=disk.name,
        backing_file=_read(disk / "loop/backing_file"),
        rotational=rotational == "1" if rotational in ("0", "1") else None,
    )


def _text(value: str | None) -> str | None:
    """value as Unicode text: bytes that are not UTF-8 (surrogate escapes) replaced."""
    return None if value is None else os.fsencode(value).decode("utf-8", "replace")


def hardware(paths: Sequence[Path] = (), root: Path = ROOT) -> dict[str, Any]:
    """The run's hardware record, JSON-able; each path's storage keyed by its file name.

    Records travel between machines, so no local path goes in: a file by its
    name, a loop device's backing file too; not the mount point or the mount's
    source (a home folder, a server's export). Names are text: a file name that
    is not UTF-8 keeps its readable part (the store takes only Unicode).
    """
    t = topology(root)
    files: dict[str, dict[str, Any]] = {}
    for path in paths:
        record = asdict(storage(path, root))
        del record["mount_point"], record["source"]
        for k in ("device", "disk", "fstype"):
            record[k] = _text(record[k])
        record["backing_file"] = _text(Path(record["backing_file"]).name) if record["backing_file"] else None
        name = _text(path.name) or "?"
        key, n = name, 1
        while key in files:  # two files of one name in two folders
            n += 1
            key = f"{name} ({n})"
        files[key] = record
    return {
        "cpu_model": cpu_model(root),
        "sockets": t.sockets,
        "numa_nodes": [
            {"id": n.id, "cpus": format_cpulist(n.cpus), "physical_cores": n.cores, "memory_bytes": n.memory}
            for n in t.nodes
        ],
        "physical_cores": t.cores,
        "logical_cpus": len(t.cpus),
        "hugepage_sizes_kb": list(t.hugepage_kb),
        "thp": t.thp,
        "mem_available_bytes": t.mem_available,
        "storage": files,
    }
