"""What the disk and the page cache did while a program ran: deltas of /proc/vmstat and /proc/diskstats.

The counters `sar -d -B` and iostat read, and they need no privileges: taken just
before and just after a benchmark process, their differences say how much it read
from the device under the model (MB/s, IOPS, average request size, await,
utilisation) and what the page cache did (pgpgin, major faults, reclaim, THP).
They are system-wide: another process's I/O in the same interval counts too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/")
SECTOR = 512  # /proc/diskstats counts 512-byte sectors whatever the device's own size
# The vmstat counters a case is judged by; pgscan_* and pgsteal_* are summed (kswapd, direct, khugepaged).
VMSTAT = ("pgpgin", "pgpgout", "pgfault", "pgmajfault", "thp_fault_alloc", "thp_fault_fallback",
          "thp_collapse_alloc", "thp_file_alloc", "thp_file_mapped")  # fmt: skip
SUMMED = ("pgscan", "pgsteal")


@dataclass(frozen=True)
class Disk:
    reads: int  # completed
    merged: int  # reads merged into others
    sectors: int  # read
    read_ms: int  # time spent reading (all requests)
    io_ms: int  # time the device had I/O in flight


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic()
    vmstat: Mapping[str, int]
    disks: Mapping[str, Disk]


def read_vmstat(root: Path = ROOT) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (root / "proc/vmstat").read_text().splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[name] = int(value)
    return out


def read_diskstats(root: Path = ROOT) -> dict[str, Disk]:
    """Every block device's read counters, by name (vda, nvme0n1, nvme0n1p2, loop0, md0...)."""
    out = {}
    for line in (root / "proc/diskstats").read_text().splitlines():
        f = line.split()
        if len(f) < 14 or not all(x.isdigit() for x in f[3:14]):
            continue  # not a line of the format (kernels before 2.6.25 had fewer fields)
        out[f[2]] = Disk(int(f[3]), int(f[4]), int(f[5]), int(f[6]), int(f[12]))
    return out


def snapshot(root: Path = ROOT) -> Snapshot:
    return Snapshot(time.monotonic(), read_vmstat(root), read_diskstats(root))


def vm_delta(before: Snapshot, after: Snapshot) -> dict[str, int]:
    """The VMSTAT counters' growth, pgscan_*/pgsteal_* summed; pgpgin/pgpgout are KiB."""
    out = {k: after.vmstat.get(k, 0) - before.vmstat.get(k, 0) for k in VMSTAT if k in after.vmstat}
    for prefix in SUMMED:
        keys = [k for k in after.vmstat if k.startswith(prefix + "_")]
        if keys:
            out[prefix] = sum(after.vmstat[k] - before.vmstat.get(k, 0) for k in keys)
    return out


def disk_delta(before: Snapshot, after: Snapshot, device: str) -> dict[str, float] | None:
    """What device did between the snapshots: read MB/s, IOPS, average request KiB, await ms, util %.

    None when the device is unknown to either snapshot (a tmpfs or overlay has none).
    """
    a, b = before.disks.get(device), after.disks.get(device)
    if a is None or b is None:
        return None
    seconds = max(after.at - before.at, 1e-9)
    reads, sectors = b.reads - a.reads, b.sectors - a.sectors
    return {
        "read_mb_s": sectors * SECTOR / 1e6 / seconds,
        "read_iops": reads / seconds,
        "avg_read_kib": sectors * SECTOR / 1024 / reads if reads else 0.0,
        "read_await_ms": (b.read_ms - a.read_ms) / reads if reads else 0.0,
        "util_pct": min(100.0, (b.io_ms - a.io_ms) / (seconds * 1000) * 100),
        "read_mb": sectors * SECTOR / 1e6,
    }


def devices(names: Iterable[str | None]) -> tuple[str, ...]:
    """The distinct device names of the models' files (topology.storage's disk), in order, none dropped."""
    return tuple(dict.fromkeys(n for n in names if n))
