"""What the machine did during a case: the device under the model and the page cache, beside the program.

Taken around every measured run of the load and faults suites (host/iostat.py):
system-wide counters, so another process's I/O in the same interval counts too;
the hardware record says which device the model's file is on.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..host import iostat, topology
from ..models.installed import Installed
from ..run import Measured
from ..store.results import Measurement
from .case import Context, Target

# (metric, iostat.disk_delta's key, unit, better) of the figures of the device under the model
DISK = (
    ("disk_read_mb", "read_mb", "MB", "lower"),
    ("disk_read_mb_s", "read_mb_s", "MB/s", "higher"),
    ("disk_read_iops", "read_iops", "IOPS", "higher"),
    ("disk_avg_read_kib", "avg_read_kib", "KiB", "higher"),
    ("disk_read_await_ms", "read_await_ms", "ms", "lower"),
    ("disk_util_pct", "util_pct", "%", "lower"),
)

# (metric, iostat.vm_delta's key, unit) of the page cache's counters, beside pgpgin
VM = (
    ("sys_major_faults", "pgmajfault", "faults"),
    ("sys_faults", "pgfault", "faults"),
    ("sys_pgscan", "pgscan", "pages"),  # pages the reclaim looked at (a memory limit's reclaim shows here)
    ("sys_pgsteal", "pgsteal", "pages"),  # pages it took back
    ("sys_thp_fault_alloc", "thp_fault_alloc", "huge pages"),
    ("sys_thp_file_mapped", "thp_file_mapped", "huge pages"),
)
# Figures of what the disk and page cache did: all zero when the model was in the page cache
# throughout (a warm load, a small model), where compare, report and PR.md leave them out.
QUIET_WHEN_ZERO = frozenset([*(name for name, *_ in DISK), "sys_pgpgin_mb", *(name for name, *_ in VM)])


@functools.cache
def device_of(path: Path) -> str | None:
    """The block device /proc/diskstats counts the file's reads under: its partition, else its disk."""
    st = topology.storage(path)
    names = iostat.read_diskstats()
    return next((d for d in (st.device, st.disk) if d and d in names), None)


def observed(
    ctx: Context, inst: Installed, argv: list[str], target: Target, suite: str, params: dict[str, Any],
    *, huge_pages: bool = False,
) -> tuple[Measured, list[Measurement]]:  # fmt: skip
    """Run argv as ctx.run does, and what the device and the page cache did meanwhile (none on a timeout).

    cpu_busy is the program's user+sys CPU over its wall time: CPUs kept busy (2.0 on two CPUs is all
    of them); an I/O-bound load reads far below its thread count.
    """
    device = device_of(target.path)
    before = iostat.snapshot()
    m = ctx.run(inst, argv, target, huge_pages=huge_pages)
    after = iostat.snapshot()
    if m.returncode is None:
        return m, []
    out = []
    if device is not None and (disk := iostat.disk_delta(before, after, device)) is not None:
        out += [Measurement(suite, name, unit, params, disk[key], better=b) for name, key, unit, b in DISK]
    vm = iostat.vm_delta(before, after)
    busy = (m.user_s + m.sys_s) / max(m.wall_s, 1e-9)
    figures = [
        ("sys_pgpgin_mb", "MB", vm.get("pgpgin", 0) * 1024 / 1e6, "lower"),  # pgpgin counts KiB
        *((name, unit, float(vm.get(key, 0)), "lower") for name, key, unit in VM),
        ("cpu_busy", "CPUs", busy, "higher"),
    ]
    out += [Measurement(suite, name, unit, params, v, better=b) for name, unit, v, b in figures]
    return m, out
